//! `/readyz`: can this node serve GOPROXY traffic? Storage writable and state loaded. A missing
//! leader or quorum does not make a node unready (it still serves what it holds), but the body
//! says so.

use std::sync::atomic::Ordering;

use http::{header, HeaderValue, Response, StatusCode};

use super::body::{self, Body};
use super::HttpState;

/// The readiness response, listing each layer.
pub fn readyz(state: &HttpState) -> Response<Body> {
    let mut ok = true;
    let mut lines = Vec::new();
    match state.mirror.blobs().check_writable() {
        Ok(()) => lines.push("[+]storage ok".to_string()),
        Err(e) => {
            ok = false;
            lines.push(format!("[-]storage not writable: {e}"));
        }
    }
    if state.started.load(Ordering::Acquire) && state.consensus.is_caught_up() {
        lines.push("[+]state ok".to_string());
    } else {
        ok = false;
        lines.push("[-]state loading".to_string());
    }
    let st = state.consensus.status();
    match st.leader_id {
        Some(id) => lines.push(format!("[+]leader {id}")),
        None => lines.push(
            "[-]leader none (degraded: no quorum; serving cached modules, misses pass through)"
                .into(),
        ),
    }
    lines.push(if ok {
        "ready".into()
    } else {
        "not ready".into()
    });
    let mut resp = Response::new(body::full(lines.join("\n") + "\n"));
    *resp.status_mut() = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Updates gauges that are read rather than pushed, just before `/metrics` renders.
pub fn refresh_gauges(state: &HttpState) {
    let blobs = state.mirror.blobs();
    metrics::gauge!("cairn_blob_objects").set(blobs.objects() as f64);
    metrics::gauge!("cairn_blob_bytes").set(blobs.bytes() as f64);
    metrics::gauge!("cairn_version_records").set(state.consensus.reader().version_count() as f64);
}
