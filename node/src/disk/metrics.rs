//! Metric names and descriptions of the disk worker (issue 12).

use metrics::{describe_counter, describe_gauge, Unit};

/// Gauge: bytes used on the data directory's filesystem (as `df` counts them).
pub const USED_BYTES: &str = "cairn_disk_used_bytes";
/// Gauge: the watermark state, 0 normal, 1 low, 2 high, 3 flood.
pub const WATERMARK_STATE: &str = "cairn_disk_watermark_state";
/// Gauge: the blob budget in bytes (0 = none).
pub const BLOB_BUDGET_BYTES: &str = "cairn_disk_blob_budget_bytes";
/// Counter: blobs evicted from this node.
pub const EVICTIONS_TOTAL: &str = "cairn_disk_evictions_total";
/// Counter: bytes evicted from this node.
pub const EVICTED_BYTES_TOTAL: &str = "cairn_disk_evicted_bytes_total";
/// Counter: misses answered uncached because the disk is at flood, by kind.
pub const FLOOD_PASSTHROUGH_TOTAL: &str = "cairn_disk_flood_passthrough_total";
/// Counter: eviction candidates kept because a keeper could not confirm its copy.
pub const EVICTIONS_DEFERRED_TOTAL: &str = "cairn_disk_evictions_deferred_total";

/// Describes every disk metric.
pub fn describe() {
    describe_gauge!(
        USED_BYTES,
        Unit::Bytes,
        "Bytes used on the data directory's filesystem, as df counts them."
    );
    describe_gauge!(
        WATERMARK_STATE,
        "Disk watermark state: 0 normal, 1 above low, 2 above high (evicting), 3 flood (not storing)."
    );
    describe_gauge!(
        BLOB_BUDGET_BYTES,
        Unit::Bytes,
        "The configured cap on the blob store's size (disk.blob_budget_bytes; 0 = none)."
    );
    describe_counter!(
        EVICTIONS_TOTAL,
        Unit::Count,
        "Blobs evicted from this node (least recently served first)."
    );
    describe_counter!(
        EVICTED_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes of blobs evicted from this node."
    );
    describe_counter!(
        crate::store::DISK_REFILLS_TOTAL,
        Unit::Count,
        "Evicted blobs stored again on this node, by where they came from (peer, upstream)."
    );
    describe_counter!(
        FLOOD_PASSTHROUGH_TOTAL,
        Unit::Count,
        "Misses answered from the upstream without storing, because the disk is at flood, by kind."
    );
    describe_counter!(
        EVICTIONS_DEFERRED_TOTAL,
        Unit::Count,
        "Non-refetchable blobs kept because their keeper nodes could not confirm a copy."
    );
}

/// Creates the counters at 0 so dashboards and `increase()` see them from the start.
pub fn register_zero() {
    metrics::counter!(EVICTIONS_TOTAL).absolute(0);
    metrics::counter!(EVICTED_BYTES_TOTAL).absolute(0);
    metrics::counter!(EVICTIONS_DEFERRED_TOTAL).absolute(0);
    for from in ["peer", "upstream"] {
        metrics::counter!(crate::store::DISK_REFILLS_TOTAL, "from" => from).absolute(0);
    }
    for kind in ["info", "mod", "zip"] {
        metrics::counter!(FLOOD_PASSTHROUGH_TOTAL, "kind" => kind).absolute(0);
    }
    metrics::gauge!(WATERMARK_STATE).set(0.0);
}
