//! The Prometheus recorder and every subsystem's metric descriptions.
//!
//! Histograms (`*_seconds`) are rendered with explicit buckets so Grafana can compute
//! quantiles across nodes. Label values are bounded enums, never module paths.

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets (seconds) for request and upstream histograms.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Installs the global recorder (once per process) and describes every metric.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), BUCKETS)?
        .install_recorder()?;
    describe();
    Ok(handle)
}

/// Registers help text for all metrics.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, Unit};
    crate::http::metrics::describe();
    crate::auditlog::metrics::describe();
    crate::access::metrics::describe();
    crate::mirror::metrics::describe();
    crate::upstream::metrics::describe();
    crate::sumdb::metrics::describe();
    crate::direct::metrics::describe();
    crate::raft::metrics::describe();
    crate::tls::metrics::describe();
    crate::raft::describe_forwarding();
    crate::cluster::peers::describe();
    crate::cluster::transfer::metrics::describe();
    crate::cluster::repair::metrics::describe();
    describe_counter!("cairn_owner_fills_total", "Misses filled by the owning node on this node's behalf, by result (ok, not_found, upstream_error, unreachable).");
    describe_gauge!(
        "cairn_blob_objects",
        "Blobs (module zips) held by this node."
    );
    describe_gauge!(
        "cairn_blob_bytes",
        Unit::Bytes,
        "Bytes of blobs held by this node."
    );
    describe_counter!(
        "cairn_blob_quarantined_total",
        "Blobs moved to quarantine after failing sha256 verification."
    );
    describe_counter!(
        "cairn_blob_verify_failures_total",
        "Responses aborted because the blob failed verification while being served."
    );
    describe_gauge!(
        "cairn_version_records",
        "Module version records in this node's replicated state."
    );
    describe_counter!(
        "cairn_sumdb_requests_total",
        "Checksum-database lookups and tiles by result (hit, miss)."
    );
    describe_gauge!(
        "cairn_build_info",
        "Always 1; the version label says which cairn is running."
    );
    metrics::gauge!("cairn_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}
