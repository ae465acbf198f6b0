//! Metric names of the policy gate and the purger.

/// Requests refused because a deny rule matched (counter).
pub const DENIED_REQUESTS_TOTAL: &str = "cairn_denied_requests_total";
/// Requests refused because the version was purged (counter).
pub const PURGED_REQUESTS_TOTAL: &str = "cairn_purged_requests_total";
/// Blobs deleted by the purger (counter).
pub const PURGED_BLOBS_TOTAL: &str = "cairn_purged_blobs_total";

/// Registers help texts.
pub fn describe() {
    metrics::describe_counter!(
        DENIED_REQUESTS_TOTAL,
        "GOPROXY requests answered with the deny status because an operator deny rule matched"
    );
    metrics::describe_counter!(
        PURGED_REQUESTS_TOTAL,
        "GOPROXY requests answered 410 because the version was purged"
    );
    metrics::describe_counter!(
        PURGED_BLOBS_TOTAL,
        "zip blobs this node deleted because their version was purged"
    );
}
