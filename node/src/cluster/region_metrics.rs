//! Metrics of data moving between nodes by region: names, descriptions, recording helpers.
//!
//! Labels are bounded: `kind` is one of [`RequestKind`], `scope` is `local|cross_region`,
//! `direction` is `sent|received`, and `peer_region` is a region of the membership (`none`
//! when the peer has no region), so the cardinality is bounded by the number of regions.

use metrics::{describe_counter, Unit};

use super::Scope;

/// Counter: blob bytes sent to or received from peers of another region
/// (labels `direction`, `peer_region`).
pub const CROSS_REGION_BYTES_TOTAL: &str = "cairn_cluster_cross_region_bytes_total";
/// Counter: outgoing node-to-node data requests (labels `kind`, `peer_region`, `scope`).
pub const PEER_REQUESTS_TOTAL: &str = "cairn_cluster_peer_requests_total";

/// The data requests one node makes of another (Raft traffic and liveness probes are not
/// data requests and are not counted here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// `Mirror.Fill`: a miss sent to its owner.
    Fill,
    /// `Blob.FetchBlob`: one blob stream opened (a resumed stream counts again).
    FetchBlob,
    /// `Blob.PullBlob`: a peer asked to take a copy.
    PullBlob,
    /// `Blob.PutBlob`: a small blob pushed whole to a peer.
    PushBlob,
    /// `Blob.HasBlobs`: which blobs a peer holds.
    HasBlobs,
}

impl RequestKind {
    /// The `kind` label value.
    pub fn label(self) -> &'static str {
        match self {
            RequestKind::Fill => "fill",
            RequestKind::FetchBlob => "fetch_blob",
            RequestKind::PullBlob => "pull_blob",
            RequestKind::PushBlob => "push_blob",
            RequestKind::HasBlobs => "has_blobs",
        }
    }
}

/// Describes the region metrics (call once at startup).
pub fn describe() {
    describe_counter!(
        CROSS_REGION_BYTES_TOTAL,
        Unit::Bytes,
        "Blob bytes sent to (direction=sent) or received from (direction=received) nodes of another region, by the peer's region."
    );
    describe_counter!(
        PEER_REQUESTS_TOTAL,
        Unit::Count,
        "Outgoing node-to-node data requests (fill, fetch_blob, pull_blob, push_blob, has_blobs; not Raft or liveness probes), by the peer's region and whether it stays in this node's region (scope=local) or crosses to another (scope=cross_region)."
    );
}

/// The `peer_region` label of a region (`none` for the empty region).
fn region_label(region: &str) -> String {
    if region.is_empty() {
        "none".to_string()
    } else {
        region.to_string()
    }
}

/// Counts one outgoing request of `kind` to a peer in `peer_region`.
pub fn count_request(kind: RequestKind, peer_region: &str, scope: Scope) {
    metrics::counter!(
        PEER_REQUESTS_TOTAL,
        "kind" => kind.label(),
        "peer_region" => region_label(peer_region),
        "scope" => scope.label()
    )
    .increment(1);
}

/// Counts `n` blob bytes received from a peer of another region.
pub fn add_received(peer_region: &str, n: u64) {
    metrics::counter!(CROSS_REGION_BYTES_TOTAL, "direction" => "received", "peer_region" => region_label(peer_region))
        .increment(n);
}

/// Counts `n` blob bytes sent to a peer of another region.
pub fn add_sent(peer_region: &str, n: u64) {
    metrics::counter!(CROSS_REGION_BYTES_TOTAL, "direction" => "sent", "peer_region" => region_label(peer_region))
        .increment(n);
}
