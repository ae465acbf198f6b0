//! Request dispatch: method and length checks, routing, answering from the mirror or the
//! checksum-database proxy, and per-request metrics, logs and request ids.

use std::sync::Arc;
use std::time::Instant;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use tracing::Instrument;

use super::body::{self, Body};
use super::response::{self, Failure, IMMUTABLE};
use super::route::{self, ProxyRequest, Route};
use super::HttpState;
use crate::access::{Authn, Decision};
use crate::auditlog::RequestEvent;
use crate::store::blob::FileStamp;

/// Handles one request; never fails (every problem becomes a response).
pub async fn handle<B>(
    state: Arc<HttpState>,
    conn: super::ConnInfo,
    req: Request<B>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let start = Instant::now();
    let (parts, _body) = req.into_parts();
    let rid = request_id(&parts);
    let path = parts.uri.path().to_string();
    let span = tracing::info_span!("request", id = %rid, method = %parts.method, path = %truncate(&path, 200), client = %conn.peer);
    let (endpoint, mut resp, trail) = async {
        // Boxed: the whole request future nests deep enough to trip the compiler's layout
        // recursion limit otherwise, and one allocation per request is nothing next to it.
        let (endpoint, result, trail) = Box::pin(dispatch(&state, &parts, &path)).await;
        let resp = result.unwrap_or_else(|f| f.response(state.upstream_error_status));
        (endpoint, resp, trail)
    }
    .instrument(span.clone())
    .await;
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    if parts.version < http::Version::HTTP_2 && has_body(&parts.headers) {
        // No GOPROXY request has a body. hyper 1.12 drains an unread one after the response
        // and may then answer a malformed next request ahead of this response's queued body,
        // inside it; closing after this response leaves nothing to interleave with.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(hit) = trail.as_ref().and_then(|t| t.cache) {
        resp.headers_mut()
            .insert("cache-status", HeaderValue::from_static(cache_status(hit)));
    }
    record(endpoint, &resp, start, &span);
    if let Some(t) = trail {
        audit(&state, conn, &rid, &t, &resp);
    }
    Ok(resp)
}

/// Whether a request head announces a body.
fn has_body(headers: &http::HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// What the audit trail records about a module request.
struct Trail {
    module: String,
    version: Option<String>,
    kind: &'static str,
    who: Authn,
    cache: Option<bool>,
}

fn audit(state: &HttpState, conn: super::ConnInfo, rid: &str, t: &Trail, resp: &Response<Body>) {
    let identity = t.who.identity();
    let bytes = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    state.audit.request(RequestEvent {
        identity: identity.map(|i| i.name.as_str()),
        auth_method: identity.map(|i| i.method.as_str()),
        client: conn.peer,
        module: &t.module,
        version: t.version.as_deref(),
        kind: t.kind,
        status: resp.status().as_u16(),
        bytes,
        cache: match t.cache {
            Some(true) => "hit",
            Some(false) => "fill",
            None => "none",
        },
        node: state.node_id,
        request_id: rid,
    });
}

/// The `Cache-Status` (RFC 9211) of a module answer: served from this cluster's state, or
/// fetched from the upstream and stored (`cairn prefetch` counts fills with it).
fn cache_status(hit: bool) -> &'static str {
    if hit {
        "cairn; hit"
    } else {
        "cairn; fwd=miss; stored"
    }
}

fn record(endpoint: &'static str, resp: &Response<Body>, start: Instant, span: &tracing::Span) {
    let status = resp.status();
    let elapsed = start.elapsed();
    metrics::counter!(super::metrics::REQUESTS_TOTAL, "endpoint" => endpoint, "status" => status_label(status))
        .increment(1);
    metrics::histogram!(super::metrics::REQUEST_DURATION, "endpoint" => endpoint)
        .record(elapsed.as_secs_f64());
    if let Some(len) = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        metrics::counter!(super::metrics::RESPONSE_BYTES_TOTAL, "endpoint" => endpoint)
            .increment(len);
    }
    let ms = elapsed.as_secs_f64() * 1000.0;
    let _g = span.enter();
    if status.is_server_error() {
        tracing::warn!(status = status.as_u16(), ms, "request failed");
    } else if status.is_client_error() {
        tracing::info!(status = status.as_u16(), ms, "request refused");
    } else {
        tracing::debug!(status = status.as_u16(), ms, "request served");
    }
}

/// The `status` label: a static string for the usual codes (no allocation per request).
fn status_label(status: StatusCode) -> metrics::SharedString {
    let s: &'static str = match status.as_u16() {
        200 => "200",
        206 => "206",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        410 => "410",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => return metrics::SharedString::from(status.as_str().to_string()),
    };
    metrics::SharedString::const_str(s)
}

fn request_id(parts: &http::request::Parts) -> String {
    let given = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok());
    match given {
        Some(id)
            if !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            id.to_string()
        }
        _ => format!("{:016x}", rand::random::<u64>()),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    let mut cut = s.len().min(max);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

type Answer = Result<Response<Body>, Failure>;

async fn dispatch(
    state: &HttpState,
    parts: &http::request::Parts,
    path: &str,
) -> (&'static str, Answer, Option<Trail>) {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return ("other", Err(Failure::Method), None);
    }
    if path.len() > state.max_path_bytes {
        return ("other", Err(Failure::TooLong), None);
    }
    let route = match route::parse(path) {
        Ok(r) => r,
        Err(e) => return ("other", Err(Failure::Route(e)), None),
    };
    match route {
        Route::Healthz => (
            "health",
            Ok(text(StatusCode::OK, "ok\n".into(), "no-store")),
            None,
        ),
        Route::Readyz => ("health", Ok(super::health::readyz(state)), None),
        Route::Metrics => {
            let answer = match state.access.metrics_allowed(&parts.headers) {
                true => Ok(metrics_page(state)),
                false => Err(Failure::Unauthenticated {
                    reason: "/metrics needs the metrics token (Authorization: Bearer)".into(),
                    challenge: HeaderValue::from_static("Bearer realm=\"metrics\""),
                }),
            };
            ("metrics", answer, None)
        }
        Route::Whoami => (
            "whoami",
            Box::pin(super::whoami::answer(state, parts)).await,
            None,
        ),
        Route::Index => (
            "index",
            Ok(Box::pin(super::policy::feed(state, parts)).await),
            None,
        ),
        Route::Sumdb(rest) => {
            let who = state.access.authenticate(&parts.headers).await;
            let lookup = sumdb_lookup(&rest);
            let decision = match &lookup {
                Some((module, _)) => state.access.authorize(&who, module),
                None => state.access.authorize_any(&who),
            };
            let open = match &lookup {
                Some((module, _)) => state.access.authorize(&Authn::Anonymous, module),
                None => state.access.authorize_any(&Authn::Anonymous),
            } == Decision::Allow;
            let (mut answer, cache) = match refusal(state, &who, decision) {
                Some(f) => (Err(f), None),
                None => crate::mirror::observe_cache(Box::pin(sumdb(state, parts, &rest))).await,
            };
            if !open {
                privatize(&mut answer);
            }
            let trail = lookup.map(|(module, version)| Trail {
                module,
                version: Some(version),
                kind: "sumdb-lookup",
                who,
                cache,
            });
            ("sumdb", answer, trail)
        }
        Route::Proxy(req) => {
            let endpoint = req.endpoint();
            let who = state.access.authenticate(&parts.headers).await;
            let (module, version) = req.module_version();
            let (module, version) = (module.to_string(), version.map(str::to_string));
            let open = state.access.authorize(&Authn::Anonymous, &module) == Decision::Allow;
            let decision = state.access.authorize(&who, &module);
            let (mut answer, cache) = match refusal(state, &who, decision) {
                Some(f) => (Err(f), None),
                None => crate::mirror::observe_cache(proxy(state, parts, req)).await,
            };
            if !open {
                privatize(&mut answer);
            }
            let trail = Trail {
                module,
                version,
                kind: endpoint,
                who,
                cache,
            };
            (endpoint, answer, Some(trail))
        }
    }
}

/// Marks an answer that needed credentials as cacheable by the client only: a shared cache
/// between the go command and cairn may store `public` responses to authorized requests and
/// hand them to anyone (RFC 9111 §3.5).
fn privatize(answer: &mut Answer) {
    let Ok(resp) = answer else { return };
    let h = resp.headers_mut();
    let private = h
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.replacen("public", "private", 1))
        .and_then(|v| HeaderValue::from_str(&v).ok());
    if let Some(v) = private {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.append(header::VARY, HeaderValue::from_static("Authorization"));
}

/// The failure for a refused request: 401 (with a challenge) when no valid identity was
/// given, 403 when the identity may not read the path. Neither says whether the path exists.
fn refusal(state: &HttpState, who: &Authn, decision: Decision) -> Option<Failure> {
    match decision {
        Decision::Allow => None,
        Decision::Unauthenticated => Some(Failure::Unauthenticated {
            reason: match who {
                Authn::Failed(why) => response::auth_failed(why),
                _ => "authentication required: add a .netrc entry for this host (machine HOST:PORT login NAME password TOKEN; the port only if not 443) or a GOAUTH helper".into(),
            },
            challenge: state.access.www_authenticate(),
        }),
        Decision::Forbidden => Some(Failure::Forbidden(format!(
            "{} may not read this path",
            who.identity().map_or("this identity", |i| i.name.as_str())
        ))),
    }
}

/// The module and version of a `<db>/lookup/<escaped path>@<version>` checksum-database path.
fn sumdb_lookup(rest: &str) -> Option<(String, String)> {
    let (_, lookup) = rest.split_once("/lookup/")?;
    let (escaped, version) = lookup.rsplit_once('@')?;
    let module = crate::module::unescape_path(escaped).ok()?;
    Some((module, version.to_string()))
}

fn text(status: StatusCode, body: String, cache: &'static str) -> Response<Body> {
    let mut resp = Response::new(body::full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}

fn metrics_page(state: &HttpState) -> Response<Body> {
    super::health::refresh_gauges(state);
    let mut resp = text(StatusCode::OK, state.metrics.render(), "no-store");
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

async fn proxy(state: &HttpState, parts: &http::request::Parts, req: ProxyRequest) -> Answer {
    let m = &state.mirror;
    let short = state.mutable_max_age.as_str();
    if let Some(refused) = super::policy::before(state, &req) {
        return Ok(refused);
    }
    match req {
        ProxyRequest::List { module } => {
            let body = Box::pin(m.list(&module)).await.map_err(Failure::Mirror)?;
            let body = match super::policy::list(state, &module, body) {
                Ok(b) => b,
                Err(refused) => return Ok(*refused),
            };
            Ok(bytes_response(
                parts,
                body,
                "text/plain; charset=utf-8",
                short,
            ))
        }
        ProxyRequest::Latest { module } => {
            let body = Box::pin(m.latest(&module)).await.map_err(Failure::Mirror)?;
            let body = match super::policy::latest(state, &module, body) {
                Ok(b) => b,
                Err(refused) => return Ok(*refused),
            };
            Ok(bytes_response(parts, body, "application/json", short))
        }
        ProxyRequest::Info { module, version } => {
            // Hits answer without building the fill's future (boxed: it is large).
            let hit = m.version_hit(&module, &version, "info");
            let a = match hit.map_err(Failure::Mirror)? {
                Some(rec) => crate::mirror::version::InfoAnswer {
                    body: bytes::Bytes::from(rec.info),
                    immutable: true,
                },
                None => Box::pin(m.info(&module, &version))
                    .await
                    .map_err(Failure::Mirror)?,
            };
            if let Some(refused) = super::policy::resolved(state, &module, &a.body) {
                return Ok(refused);
            }
            let cache = if a.immutable { IMMUTABLE } else { short };
            Ok(bytes_response(parts, a.body, "application/json", cache))
        }
        ProxyRequest::Mod { module, version } => {
            let body = match m
                .version_hit(&module, &version, "mod")
                .map_err(Failure::Mirror)?
            {
                Some(rec) => bytes::Bytes::from(rec.gomod),
                None => Box::pin(m.gomod(&module, &version))
                    .await
                    .map_err(Failure::Mirror)?,
            };
            Ok(bytes_response(
                parts,
                body,
                "text/plain; charset=utf-8",
                IMMUTABLE,
            ))
        }
        ProxyRequest::Zip { module, version } => zip(state, parts, &module, &version).await,
    }
}

/// A 200 (or 304) with an in-memory body, a strong ETag and `Content-Length`.
fn bytes_response(
    parts: &http::request::Parts,
    body: bytes::Bytes,
    content_type: &'static str,
    cache: &str,
) -> Response<Body> {
    let etag = response::etag_of(&body);
    let len = body.len();
    let mut resp = if response::not_modified(parts, &etag) {
        let mut r = Response::new(body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(if parts.method == Method::HEAD {
            body::empty()
        } else {
            body::full(body)
        });
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    set_common(&mut resp, &etag, cache);
    resp
}

fn set_common(resp: &mut Response<Body>, etag: &str, cache: &str) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
}

async fn zip(
    state: &HttpState,
    parts: &http::request::Parts,
    module: &str,
    version: &str,
) -> Answer {
    // Hits answer without building the fill's future (boxed: it is large).
    let hit = state.mirror.zip_hit(module, version);
    let mut a = match hit.map_err(Failure::Mirror)? {
        Some(a) => a,
        None => Box::pin(state.mirror.zip(module, version))
            .await
            .map_err(Failure::Mirror)?,
    };
    if a.body.is_none() && !state.mirror.blobs().servable(&a.sha256) {
        // Evicted between the lookup and now (issue 12): this refills it.
        a = Box::pin(state.mirror.zip(module, version))
            .await
            .map_err(Failure::Mirror)?;
    }
    let etag = format!("\"{}\"", a.sha256);
    if response::not_modified(parts, &etag) {
        let mut r = Response::new(body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        set_common(&mut r, &etag, IMMUTABLE);
        return Ok(r);
    }
    let range = response::range(parts, &etag, a.size).map_err(|_| Failure::Range(a.size))?;
    let (start, end) = range.map(|r| (r.start, r.end)).unwrap_or((0, a.size));
    let outbox = parts.extensions.get::<super::sendfile::Outbox>();
    let mut resp = if parts.method == Method::HEAD {
        Response::new(body::empty())
    } else if let Some(bytes) = &a.body {
        // Passed through uncached (disk at flood): validated in memory, never stored.
        Response::new(body::full(bytes.slice(start as usize..end as usize)))
    } else if let Some(bytes) = hot_blob(state, &a.sha256, a.size).await? {
        // A small blob from memory: verified when it was read in (issue 13).
        Response::new(body::full(bytes.slice(start as usize..end as usize)))
    } else {
        match zip_body(state, &a.sha256, (start, end), a.size, outbox).await {
            Ok(b) => Response::new(b),
            // Evicted after the check above (the disk worker runs meanwhile): refill once.
            Err(_) if !state.mirror.blobs().contains(&a.sha256) => {
                let again = Box::pin(state.mirror.zip(module, version))
                    .await
                    .map_err(Failure::Mirror)?;
                match &again.body {
                    Some(bytes) => {
                        Response::new(body::full(bytes.slice(start as usize..end as usize)))
                    }
                    None => Response::new(
                        zip_body(state, &again.sha256, (start, end), again.size, outbox).await?,
                    ),
                }
            }
            Err(f) => return Err(f),
        }
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if range.is_some() {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{}", start, end - 1, a.size)) {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    set_common(&mut resp, &etag, IMMUTABLE);
    Ok(resp)
}

/// A small blob's verified bytes from the hot cache (filled from disk on first use), or
/// `None` when it is not kept in memory. A copy that fails its check is quarantined and the
/// request fails (retrying refills it).
async fn hot_blob(
    state: &HttpState,
    sha256: &str,
    size: u64,
) -> Result<Option<bytes::Bytes>, Failure> {
    if state.mirror.verify_on_read() == crate::config::VerifyPolicy::Always {
        // Every response re-reads and re-hashes the file (the operator asked for that).
        return Ok(None);
    }
    let bytes = state
        .mirror
        .blobs()
        .read_hot(sha256, size)
        .await
        .map_err(|e| {
            Failure::Mirror(crate::mirror::MirrorError::Storage(format!(
                "{e}; try again"
            )))
        })?;
    // The recorded size is what Content-Length says; a mismatch cannot pass the hash check,
    // but never slice past the end.
    Ok(bytes.filter(|b| b.len() as u64 == size))
}

/// Opens the blob and streams `[start, end)`. Unless the policy says otherwise, a blob whose
/// file changed since it was last verified is checked: a whole-file read as it streams (the last
/// chunk is held back until the hash matched), a partial range only after hashing the whole blob.
/// A blob needing no check goes out with `sendfile(2)` when the connection has an `outbox`.
async fn zip_body(
    state: &HttpState,
    sha256: &str,
    (start, end): (u64, u64),
    size: u64,
    outbox: Option<&super::sendfile::Outbox>,
) -> Result<Body, Failure> {
    use crate::config::VerifyPolicy;
    let blobs = state.mirror.blobs().clone();
    let storage = |e: String| Failure::Mirror(crate::mirror::MirrorError::Storage(e));
    let path = blobs.path_of(sha256).map_err(|e| storage(e.to_string()))?;
    let file = std::fs::File::open(&path).map_err(|e| storage(format!("cannot open blob: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| storage(format!("cannot stat blob: {e}")))?;
    let stamp = FileStamp::of(&meta);
    let check = match state.mirror.verify_on_read() {
        VerifyPolicy::Always => true,
        VerifyPolicy::Changed => !blobs.is_verified(sha256, &stamp),
        VerifyPolicy::Never => false,
    };
    // A file shorter than recorded takes the reading path, which answers with an error status
    // instead of a cut body.
    if let Some(outbox) = outbox.filter(|_| !check && meta.len() >= end) {
        return Ok(super::sendfile::body(outbox.clone(), file, start, end));
    }
    let whole = start == 0 && end == size;
    if check && !whole {
        if !blobs
            .verify(sha256)
            .await
            .map_err(|e| storage(e.to_string()))?
        {
            let _ = blobs.quarantine(sha256);
            return Err(storage(format!(
                "blob {sha256} failed verification; try again"
            )));
        }
        return body::file_range(file, start, end, None)
            .await
            .map_err(|e| storage(e.to_string()));
    }
    let verify = check.then(|| body::Verify {
        sha256: sha256.to_string(),
        blobs,
        stamp,
    });
    body::file_range(file, start, end, verify)
        .await
        .map_err(|e| storage(format!("cannot read blob {sha256}: {e}")))
}

async fn sumdb(state: &HttpState, parts: &http::request::Parts, rest: &str) -> Answer {
    let a = state.sumdb.get(rest).await.map_err(Failure::Sumdb)?;
    let cache = if a.immutable {
        IMMUTABLE
    } else {
        "public, max-age=60"
    };
    let cache = if rest.ends_with("/supported") {
        "no-store"
    } else {
        cache
    };
    Ok(bytes_response(parts, a.body, a.content_type, cache))
}
