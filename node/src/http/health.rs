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
    match (st.leader_id, st.leader_silent_ms) {
        (Some(id), Some(ms)) => lines.push(format!(
            "[-]leader {id} unreachable for {ms} ms (degraded: serving cached modules, misses pass through)"
        )),
        (Some(id), None) => lines.push(format!("[+]leader {id}")),
        (None, _) => lines.push(
            "[-]leader none (degraded: no quorum; serving cached modules, misses pass through)"
                .into(),
        ),
    }
    if state.mirror.blobs().is_flooded() {
        // Still ready (issue 12): hits are served, misses pass through uncached.
        lines.push(
            "[-]disk at flood watermark (degraded: disk full; serving cached modules, misses pass through uncached)"
                .into(),
        );
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
    // The hot cache counts with plain atomics (no metrics call on the hit path).
    let hot = blobs.hot();
    let (hot_bytes, hot_entries) = hot.usage();
    metrics::gauge!("cairn_blob_hot_bytes").set(hot_bytes as f64);
    metrics::gauge!("cairn_blob_hot_entries").set(hot_entries as f64);
    let stats = hot.stats();
    metrics::counter!("cairn_blob_hot_hits_total")
        .absolute(stats.hits.load(std::sync::atomic::Ordering::Relaxed));
    metrics::counter!("cairn_blob_hot_fills_total")
        .absolute(stats.fills.load(std::sync::atomic::Ordering::Relaxed));
    metrics::gauge!("cairn_version_records").set(state.consensus.reader().version_count() as f64);
    match disk_space(&state.data_dir) {
        Ok(space) => {
            metrics::gauge!(super::metrics::DATA_DIR_CAPACITY_BYTES).set(space.capacity as f64);
            metrics::gauge!(super::metrics::DATA_DIR_FREE_BYTES).set(space.free as f64);
        }
        // Keep the last values: a gap would break `predict_linear`, and the error is logged.
        Err(e) => {
            tracing::warn!(path = %state.data_dir.display(), error = %e, "statvfs of the data directory failed")
        }
    }
}

/// Size and free space of a filesystem, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Total size of the filesystem.
    pub capacity: u64,
    /// Space available to unprivileged writers (`f_bavail`: excludes the root reserve, which
    /// cairn, running as a service user, cannot use).
    pub free: u64,
}

/// Reads the size and free space of the filesystem holding `path` (statvfs).
// `c_ulong` and `fsblkcnt_t` are u64 here but u32 on 32-bit targets, hence the conversions.
#[allow(clippy::useless_conversion)]
pub fn disk_space(path: &std::path::Path) -> nix::Result<DiskSpace> {
    let st = nix::sys::statvfs::statvfs(path)?;
    // POSIX counts f_blocks and f_bavail in units of f_frsize, not f_bsize.
    let unit = u64::from(st.fragment_size());
    Ok(DiskSpace {
        capacity: u64::from(st.blocks()).saturating_mul(unit),
        free: u64::from(st.blocks_available()).saturating_mul(unit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_space_of_a_temp_dir_is_plausible() {
        let dir = tempfile::tempdir().unwrap();
        let space = disk_space(dir.path()).unwrap();
        assert!(space.capacity > 0, "{space:?}");
        assert!(space.free <= space.capacity, "{space:?}");
    }

    #[test]
    fn disk_space_of_a_missing_dir_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(disk_space(&dir.path().join("absent")).is_err());
    }
}
