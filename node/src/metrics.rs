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
    let handle = builder()?.install_recorder()?;
    describe();
    register_zero();
    Ok(handle)
}

/// The exporter's configuration: explicit buckets for every `*_seconds` histogram.
fn builder() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), BUCKETS)
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
    crate::policy::metrics::describe();
    crate::tls::metrics::describe();
    crate::raft::describe_forwarding();
    crate::raft::election_gate::describe();
    crate::cluster::peers::describe();
    crate::cluster::region_health::describe();
    crate::cluster::transfer::metrics::describe();
    crate::cluster::repair::metrics::describe();
    crate::cluster::region::describe();
    crate::disk::metrics::describe();
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
    describe_gauge!(
        "cairn_blob_hot_bytes",
        Unit::Bytes,
        "Bytes of verified small blobs held in memory by the hot-blob cache (cache.hot_blob_bytes)."
    );
    describe_gauge!(
        "cairn_blob_hot_entries",
        "Blobs held in memory by the hot-blob cache."
    );
    describe_counter!(
        "cairn_blob_hot_hits_total",
        "Zip answers served from the hot-blob cache (no disk access)."
    );
    describe_counter!(
        "cairn_blob_hot_fills_total",
        "Small blobs read from disk, checked against their sha256 and kept in the hot-blob cache."
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

/// File kinds of the GOPROXY protocol, the `kind` label of the mirror's counters.
const KINDS: &[&str] = &["list", "latest", "info", "mod", "zip"];
/// The kinds that are immutable once committed (`.info`, `.mod`, `.zip`).
const VERSION_KINDS: &[&str] = &["info", "mod", "zip"];

/// Creates, at 0, the counters and gauges that alerts and the dashboard read but that the
/// `metrics` crate would only export after their first update.
///
/// Without this an idle node exports no `cairn_immutability_conflicts_total`, so a dashboard
/// shows "no data" instead of 0, and `increase()` misses the first event: a series that appears
/// at 1 has no earlier sample to grow from (prometheus/prometheus#1673). Only representative,
/// bounded label values are registered; series that depend on configuration (TLS listeners,
/// checksum databases, peers) are created where that configuration is known.
pub fn register_zero() {
    use crate::cluster::{repair, transfer};
    use crate::{direct, http, mirror, raft, sumdb, upstream};
    use metrics::{counter, gauge, histogram};
    crate::disk::metrics::register_zero();

    let zero = |name: &'static str, label: &'static str, values: &[&'static str]| {
        for &v in values {
            counter!(name, label => v).absolute(0);
        }
    };
    let zero2 = |name: &'static str,
                 (l1, v1s): (&'static str, &[&'static str]),
                 (l2, v2s): (&'static str, &[&'static str])| {
        for &v1 in v1s {
            for &v2 in v2s {
                counter!(name, l1 => v1, l2 => v2).absolute(0);
            }
        }
    };
    // HTTP plane.
    zero2(
        http::metrics::REQUESTS_TOTAL,
        ("endpoint", VERSION_KINDS),
        ("status", &["200"]),
    );
    zero(
        http::metrics::RESPONSE_BYTES_TOTAL,
        "endpoint",
        VERSION_KINDS,
    );
    zero(
        http::metrics::CONNECTIONS_REFUSED_TOTAL,
        "reason",
        &["per_client_limit", "header_timeout"],
    );
    counter!(crate::access::metrics::ATTEMPTS_TOTAL, "method" => "none", "source" => "none", "outcome" => "anonymous").absolute(0);
    // Mirror.
    zero2(
        mirror::metrics::CACHE_REQUESTS_TOTAL,
        ("kind", KINDS),
        ("result", &["hit", "miss"]),
    );
    zero(mirror::metrics::FLIGHT_WAITERS_TOTAL, "kind", KINDS);
    for &kind in KINDS {
        gauge!(mirror::metrics::FLIGHTS_INFLIGHT, "kind" => kind).increment(0.0);
    }
    zero(
        mirror::metrics::IMMUTABILITY_CONFLICTS_TOTAL,
        "kind",
        VERSION_KINDS,
    );
    zero(mirror::metrics::DEGRADED_PASSTHROUGH_TOTAL, "kind", KINDS);
    zero(
        mirror::metrics::STALE_SERVED_TOTAL,
        "kind",
        &["list", "latest"],
    );
    zero2(
        mirror::metrics::FILL_REJECTED_TOTAL,
        ("kind", &["zip"]),
        ("reason", &["bad_zip"]),
    );
    gauge!(mirror::metrics::NEGATIVE_ENTRIES).increment(0.0);
    // Upstreams. The gauges move by increment/decrement, so they are touched, never set.
    zero2(
        upstream::metrics::REQUESTS_TOTAL,
        ("kind", KINDS),
        ("result", &["ok", "not_found", "error", "breaker_open"]),
    );
    zero(upstream::metrics::RETRIES_TOTAL, "kind", KINDS);
    zero(upstream::metrics::BYTES_TOTAL, "kind", KINDS);
    gauge!(upstream::metrics::INFLIGHT).increment(0.0);
    gauge!(upstream::metrics::BREAKER_OPEN).increment(0.0);
    // `direct` sources.
    zero2(
        direct::metrics::REQUESTS_TOTAL,
        ("kind", KINDS),
        ("result", &["ok", "error"]),
    );
    zero2(
        direct::metrics::GIT_COMMANDS_TOTAL,
        ("command", &["ls-remote", "fetch"]),
        ("result", &["ok", "error"]),
    );
    counter!(direct::metrics::CLONES_TOTAL).absolute(0);
    counter!(direct::metrics::FETCHES_TOTAL).absolute(0);
    // Checksum database.
    zero("cairn_sumdb_requests_total", "result", &["hit", "miss"]);
    zero(
        sumdb::metrics::VERIFICATIONS_TOTAL,
        "result",
        &["verified", "mismatch", "unreachable"],
    );
    zero(sumdb::metrics::MISMATCHES_TOTAL, "kind", &["mod", "zip"]);
    counter!(sumdb::metrics::QUARANTINED_TOTAL).absolute(0);
    // Blobs, Raft and the cluster.
    counter!("cairn_blob_quarantined_total").absolute(0);
    counter!("cairn_blob_verify_failures_total").absolute(0);
    counter!(raft::metrics::LEADER_CHANGES_TOTAL).absolute(0);
    zero(
        raft::metrics::PROPOSALS_TOTAL,
        "result",
        &["applied", "error"],
    );
    zero(raft::FORWARDED_TOTAL, "result", &["ok", "error"]);
    zero(
        "cairn_owner_fills_total",
        "result",
        &["ok", "upstream_error", "unreachable"],
    );
    zero(
        transfer::metrics::PEER_FETCHES_TOTAL,
        "result",
        &["ok", "error"],
    );
    counter!(transfer::metrics::PEER_FETCH_BYTES_TOTAL).absolute(0);
    counter!(transfer::metrics::PEER_SERVED_BYTES_TOTAL).absolute(0);
    zero(
        transfer::metrics::BLOB_REPLICATIONS_TOTAL,
        "result",
        &["ok", "error"],
    );
    zero(
        repair::metrics::REPAIRS_TOTAL,
        "result",
        &["fetched", "failed"],
    );
    counter!(http::metrics::SENDFILE_BYTES_TOTAL).absolute(0);
    counter!(repair::metrics::SCRUB_RUNS_TOTAL).absolute(0);
    counter!(repair::metrics::SCRUB_CORRUPT_TOTAL).absolute(0);
    // Histograms: registering one makes the exporter render its buckets at 0.
    for &endpoint in VERSION_KINDS {
        let _ = histogram!(http::metrics::REQUEST_DURATION, "endpoint" => endpoint);
    }
    for &kind in KINDS {
        let _ = histogram!(upstream::metrics::REQUEST_DURATION_SECONDS, "kind" => kind);
    }
    let _ = histogram!(direct::metrics::GIT_COMMAND_SECONDS, "command" => "fetch");
    let _ = histogram!(raft::metrics::PROPOSE_DURATION_SECONDS);
    for direction in ["send", "receive"] {
        let _ =
            histogram!(transfer::metrics::BLOB_TRANSFER_DURATION_SECONDS, "direction" => direction);
    }
    let _ = histogram!(transfer::metrics::BLOB_REPLICATION_DURATION_SECONDS);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every series registered at zero renders as 0, and the alerts' counters are among them.
    #[test]
    fn register_zero_renders_zeros() {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, register_zero);
        let text = handle.render();
        for line in [
            "cairn_immutability_conflicts_total{kind=\"zip\"} 0",
            "cairn_sumdb_mismatches_total{kind=\"mod\"} 0",
            "cairn_degraded_passthrough_total{kind=\"info\"} 0",
            "cairn_upstream_requests_total{kind=\"zip\",result=\"error\"} 0",
            "cairn_scrub_corrupt_total 0",
            "cairn_raft_leader_changes_total 0",
            "cairn_upstream_breaker_open 0",
            "cairn_upstream_request_duration_seconds_count{kind=\"zip\"} 0",
            "cairn_http_request_duration_seconds_bucket{endpoint=\"zip\",le=\"0.1\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from:\n{text}"
            );
        }
    }
}
