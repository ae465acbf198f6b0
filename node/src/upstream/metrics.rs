//! Metrics of upstream fetching. Labels are bounded: `kind` is one of
//! `list|latest|info|mod|zip|sumdb` and `result` one of `ok|not_found|error|breaker_open`; module
//! paths and upstream URLs never become labels.

use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};

use super::error::UpstreamError;
use super::request::Kind;

/// Requests to an upstream entry (one per entry consulted, retries included), by kind and result.
pub const REQUESTS_TOTAL: &str = "cairn_upstream_requests_total";
/// Time spent on one entry for one request, retries and backoff included.
pub const REQUEST_DURATION_SECONDS: &str = "cairn_upstream_request_duration_seconds";
/// Retries after a transient failure, by kind.
pub const RETRIES_TOTAL: &str = "cairn_upstream_retries_total";
/// HTTP attempts and file reads currently holding a concurrency slot.
pub const INFLIGHT: &str = "cairn_upstream_inflight";
/// Circuit breakers currently open or half-open.
pub const BREAKER_OPEN: &str = "cairn_upstream_breaker_open";
/// Body bytes received from upstreams, by kind.
pub const BYTES_TOTAL: &str = "cairn_upstream_bytes_total";

/// Registers units and help texts; called once at startup by the root `metrics` module.
pub fn describe() {
    describe_counter!(
        REQUESTS_TOTAL,
        Unit::Count,
        "Requests made to upstream entries, one per entry consulted, by file kind and result."
    );
    describe_histogram!(
        REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time spent fetching one file from one upstream entry, including retries and backoff."
    );
    describe_counter!(
        RETRIES_TOTAL,
        Unit::Count,
        "Attempts repeated after a connect error, timeout, truncated body, 429 or 5xx answer."
    );
    describe_gauge!(
        INFLIGHT,
        Unit::Count,
        "Upstream requests currently holding one of the max_concurrent slots."
    );
    describe_gauge!(
        BREAKER_OPEN,
        Unit::Count,
        "Upstream circuit breakers currently open or half-open (failing fast)."
    );
    describe_counter!(
        BYTES_TOTAL,
        Unit::Bytes,
        "Body bytes successfully received from upstream entries, by file kind."
    );
}

/// The `result` label of a finished request.
fn result_label<T>(result: &Result<T, UpstreamError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(UpstreamError::NotFound { .. }) => "not_found",
        Err(UpstreamError::BreakerOpen { .. }) => "breaker_open",
        Err(_) => "error",
    }
}

/// Records one finished request to an entry.
pub(crate) fn request_done<T>(kind: Kind, elapsed: Duration, result: &Result<T, UpstreamError>) {
    let outcome = result_label(result);
    counter!(REQUESTS_TOTAL, "kind" => kind.as_str(), "result" => outcome).increment(1);
    histogram!(REQUEST_DURATION_SECONDS, "kind" => kind.as_str()).record(elapsed.as_secs_f64());
}

/// Records received body bytes.
pub(crate) fn bytes(kind: Kind, n: u64) {
    counter!(BYTES_TOTAL, "kind" => kind.as_str()).increment(n);
}

/// Records one retry.
pub(crate) fn retry(kind: Kind) {
    counter!(RETRIES_TOTAL, "kind" => kind.as_str()).increment(1);
}

/// A breaker went from closed to open.
pub(crate) fn breaker_opened() {
    gauge!(BREAKER_OPEN).increment(1.0);
}

/// A breaker went from open or half-open to closed.
pub(crate) fn breaker_closed() {
    gauge!(BREAKER_OPEN).decrement(1.0);
}

/// Counts a request as in flight until dropped.
pub(crate) struct InflightGuard(());

impl InflightGuard {
    /// Increments the in-flight gauge.
    pub(crate) fn new() -> InflightGuard {
        gauge!(INFLIGHT).increment(1.0);
        InflightGuard(())
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        gauge!(INFLIGHT).decrement(1.0);
    }
}
