//! `/whoami`: which identity and groups cairn sees for the request's credentials, so a
//! developer can debug a `.netrc` entry or a GOAUTH helper with `curl --netrc`.

use http::{header, HeaderValue, Response, StatusCode};

use super::body::{self, Body};
use super::response::Failure;
use super::HttpState;
use crate::access::Authn;

/// 200 with the identity as JSON, or 401 saying why there is none.
pub async fn answer(
    state: &HttpState,
    parts: &http::request::Parts,
) -> Result<Response<Body>, Failure> {
    let challenge = state.access.www_authenticate();
    let body =
        match state.access.authenticate(&parts.headers).await {
            Authn::Authenticated(id) => serde_json::json!({
                "identity": id.name,
                "groups": id.groups,
                "method": id.method.as_str(),
                "access_control": state.access.enabled(),
            }),
            Authn::Failed(why) => {
                return Err(Failure::Unauthenticated {
                    reason: super::response::auth_failed(&why),
                    challenge,
                })
            }
            Authn::Anonymous if !state.access.enabled() => serde_json::json!({
                "identity": null,
                "groups": [],
                "method": null,
                "access_control": false,
            }),
            Authn::Anonymous => return Err(Failure::Unauthenticated {
                reason:
                    "no credentials were sent: add a .netrc entry for this host (machine HOST:PORT login NAME password TOKEN; the port only if not 443) or a GOAUTH helper"
                        .into(),
                challenge,
            }),
        };
    let mut resp = Response::new(body::full(format!("{body}\n")));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
