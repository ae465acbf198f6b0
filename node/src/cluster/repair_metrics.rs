//! Repair worker metrics: names, descriptions and recording helpers. `result` labels are a
//! fixed set (`fetched|present|failed`).

use metrics::{describe_counter, describe_gauge, Unit};

/// Gauge: blobs in the repair queue.
pub const REPAIR_QUEUE_LENGTH: &str = "cairn_repair_queue_length";
/// Gauge: blobs referenced by the state but absent here, as of the last scan.
pub const BLOBS_MISSING: &str = "cairn_blobs_missing";
/// Counter: queue entries handled by result (`fetched|present|evicted|failed|waiting`).
pub const REPAIRS_TOTAL: &str = "cairn_repairs_total";
/// Counter: blobs the scrub found corrupt (quarantined and queued).
pub const SCRUB_CORRUPT_TOTAL: &str = "cairn_scrub_corrupt_total";
/// Counter: completed scrub runs.
pub const SCRUB_RUNS_TOTAL: &str = "cairn_scrub_runs_total";

/// Describes every repair metric (call once at startup, after installing the recorder).
pub fn describe() {
    describe_gauge!(
        REPAIR_QUEUE_LENGTH,
        Unit::Count,
        "Blobs queued for fetching from a peer on this node."
    );
    describe_gauge!(
        BLOBS_MISSING,
        Unit::Count,
        "Blobs referenced by the replicated state but absent on this node, as of the last scan."
    );
    describe_counter!(
        REPAIRS_TOTAL,
        Unit::Count,
        "Repair queue entries handled, by result (fetched, present, evicted, failed, waiting: another node of this region is bringing it across regions)."
    );
    describe_counter!(
        SCRUB_CORRUPT_TOTAL,
        Unit::Count,
        "Blobs the scrub found not matching their sha256 (quarantined and refetched)."
    );
    describe_counter!(
        SCRUB_RUNS_TOTAL,
        Unit::Count,
        "Completed scrub runs (every referenced local blob re-hashed)."
    );
}

/// Sets the queue length gauge.
pub(super) fn set_queue_length(n: usize) {
    metrics::gauge!(REPAIR_QUEUE_LENGTH).set(n as f64);
}

/// Sets the missing-blobs gauge.
pub(super) fn set_missing(n: u64) {
    metrics::gauge!(BLOBS_MISSING).set(n as f64);
}

/// Counts one handled queue entry.
pub(super) fn count_repair(result: &'static str) {
    metrics::counter!(REPAIRS_TOTAL, "result" => result).increment(1);
}

/// Counts one corrupt blob found by the scrub.
pub(super) fn count_scrub_corrupt() {
    metrics::counter!(SCRUB_CORRUPT_TOTAL).increment(1);
}

/// Counts one completed scrub.
pub(super) fn count_scrub_run() {
    metrics::counter!(SCRUB_RUNS_TOTAL).increment(1);
}
