//! Blob transfer metrics: names, descriptions and recording helpers.
//!
//! Labels are bounded: `result` is one of a few fixed strings, `direction` is `send|receive`.

use std::time::Duration;

use metrics::{describe_counter, describe_histogram, Unit};

use super::TransferError;

/// Counter: blob fetches from a peer by result (`ok|not_found|error`).
pub const PEER_FETCHES_TOTAL: &str = "cairn_peer_fetches_total";
/// Counter: bytes received from peers.
pub const PEER_FETCH_BYTES_TOTAL: &str = "cairn_peer_fetch_bytes_total";
/// Counter: bytes sent to peers.
pub const PEER_SERVED_BYTES_TOTAL: &str = "cairn_peer_served_bytes_total";
/// Counter: replications asked of peers by result (`ok|present|error`).
pub const BLOB_REPLICATIONS_TOTAL: &str = "cairn_blob_replications_total";
/// Histogram: duration of completed blob transfers by `direction` (`send|receive`).
pub const BLOB_TRANSFER_DURATION_SECONDS: &str = "cairn_blob_transfer_duration_seconds";
/// Histogram: duration of replications asked of peers (until fsynced there).
pub const BLOB_REPLICATION_DURATION_SECONDS: &str = "cairn_blob_replication_duration_seconds";

/// Describes every blob transfer metric (call once at startup, after installing the recorder).
pub fn describe() {
    describe_counter!(
        PEER_FETCHES_TOTAL,
        Unit::Count,
        "Blob fetches from a peer by result (ok, not_found, error)."
    );
    describe_counter!(
        PEER_FETCH_BYTES_TOTAL,
        Unit::Bytes,
        "Blob bytes received from peers (including attempts that later failed)."
    );
    describe_counter!(
        PEER_SERVED_BYTES_TOTAL,
        Unit::Bytes,
        "Blob bytes sent to peers."
    );
    describe_counter!(
        BLOB_REPLICATIONS_TOTAL,
        Unit::Count,
        "Blob copies requested from peers by result (ok, present, error)."
    );
    describe_histogram!(
        BLOB_TRANSFER_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of completed blob transfers between nodes, by direction (send, receive)."
    );
    describe_histogram!(
        BLOB_REPLICATION_DURATION_SECONDS,
        Unit::Seconds,
        "Time for a peer to pull a blob and confirm it fsynced, including failures."
    );
}

/// Records the outcome of one fetch from a peer.
pub(super) fn record_fetch<T>(res: &Result<T, TransferError>, elapsed: Duration) {
    let result = match res {
        Ok(_) => {
            metrics::histogram!(BLOB_TRANSFER_DURATION_SECONDS, "direction" => "receive")
                .record(elapsed.as_secs_f64());
            "ok"
        }
        Err(e) if e.is_not_found() => "not_found",
        Err(_) => "error",
    };
    metrics::counter!(PEER_FETCHES_TOTAL, "result" => result).increment(1);
}

/// Records the outcome of one replication request (`Ok(already_present)`).
pub(super) fn record_replication(res: &Result<bool, TransferError>, elapsed: Duration) {
    let result = match res {
        Ok(false) => "ok",
        Ok(true) => "present",
        Err(_) => "error",
    };
    metrics::counter!(BLOB_REPLICATIONS_TOTAL, "result" => result).increment(1);
    metrics::histogram!(BLOB_REPLICATION_DURATION_SECONDS).record(elapsed.as_secs_f64());
}

/// Records a completed send.
pub(super) fn record_send(elapsed: Duration) {
    metrics::histogram!(BLOB_TRANSFER_DURATION_SECONDS, "direction" => "send")
        .record(elapsed.as_secs_f64());
}

/// Counts bytes received from a peer.
pub(super) fn add_fetched_bytes(n: usize) {
    metrics::counter!(PEER_FETCH_BYTES_TOTAL).increment(n as u64);
}

/// Counts bytes sent to a peer.
pub(super) fn add_served_bytes(n: u64) {
    metrics::counter!(PEER_SERVED_BYTES_TOTAL).increment(n);
}
