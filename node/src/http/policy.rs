//! Glue between the GOPROXY handler and the operator policy (`crate::policy`): refusals for
//! denied and purged versions, filtered lists and `@latest`, and the `/index` feed.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use super::body::{self, Body};
use super::route::ProxyRequest;
use super::HttpState;
use crate::access::{Authn, Decision};
use crate::policy::gate::{self, Refusal};
use crate::policy::index::{self, IndexQuery};
use crate::raft::MetaError;

/// A plain-text answer that no cache keeps (a lifted rule takes effect at once).
fn plain(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(body::full(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn refused(r: Refusal) -> Response<Body> {
    let counter = if r.denied {
        crate::policy::metrics::DENIED_REQUESTS_TOTAL
    } else {
        crate::policy::metrics::PURGED_REQUESTS_TOTAL
    };
    metrics::counter!(counter).increment(1);
    plain(r.status, r.body)
}

fn storage(e: &MetaError) -> Response<Body> {
    tracing::warn!(error = %e, "cannot read the operator policy");
    plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        "cannot read the operator policy\n".into(),
    )
}

/// The refusal for a request a deny rule or a tombstone covers, before the mirror is asked
/// (so a purged version is never fetched from the upstream).
pub(super) fn before(state: &HttpState, req: &ProxyRequest) -> Option<Response<Body>> {
    let reader = state.consensus.reader();
    let res = match req.module_version() {
        (module, None) => gate::refuse_module(&reader, state.deny_status, module),
        (module, Some(version)) => {
            gate::refuse_version(&reader, state.deny_status, module, version)
        }
    };
    match res {
        Ok(r) => r.map(refused),
        Err(e) => Some(storage(&e)),
    }
}

/// An `@v/list` body without denied and purged versions (or the answer to send instead).
pub(super) fn list(
    state: &HttpState,
    module: &str,
    body: Bytes,
) -> Result<Bytes, Box<Response<Body>>> {
    gate::filter_list(&state.consensus.reader(), module, body).map_err(|e| Box::new(storage(&e)))
}

/// An `@latest` body that offers no denied or purged version (or the deny status when every
/// known version is).
pub(super) fn latest(
    state: &HttpState,
    module: &str,
    body: Bytes,
) -> Result<Bytes, Box<Response<Body>>> {
    match gate::replace_latest(&state.consensus.reader(), module, body) {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(Box::new(refused(Refusal {
            status: state.deny_status,
            body: format!("every known version of {module} is denied or purged\n"),
            denied: true,
        }))),
        Err(e) => Err(Box::new(storage(&e))),
    }
}

/// The refusal for an `.info` query (`@v/master.info`) that resolved to a denied version.
pub(super) fn resolved(state: &HttpState, module: &str, body: &[u8]) -> Option<Response<Body>> {
    let version = gate::info_version(body)?;
    let reader = state.consensus.reader();
    match gate::refuse_version(&reader, state.deny_status, module, &version) {
        Ok(r) => r.map(refused),
        Err(e) => Some(storage(&e)),
    }
}

/// `/index?since=&limit=`: entries of modules `who` may not read are left out; a request with
/// credentials that fail is refused with the usual 401.
pub(super) async fn feed(state: &HttpState, parts: &http::request::Parts) -> Response<Body> {
    let query = match IndexQuery::parse(parts.uri.query()) {
        Ok(q) => q,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let who = state.access.authenticate(&parts.headers).await;
    if let Authn::Failed(why) = &who {
        let mut resp = plain(StatusCode::UNAUTHORIZED, super::response::auth_failed(why));
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, state.access.www_authenticate());
        return resp;
    }
    let reader = state.consensus.reader();
    let visible = |module: &str| state.access.authorize(&who, module) == Decision::Allow;
    let page = match reader.index_page(query.since_us, query.limit, visible) {
        Ok(p) => p,
        Err(e) => return storage(&e),
    };
    let mut resp = plain(StatusCode::OK, index::render(&page));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}
