//! Metric names owned by cairn's TLS listeners and the cluster port's access checks.

/// Certificate reloads by listener (`https`, `cluster`) and outcome (`ok`, `error`).
pub const RELOADS_TOTAL: &str = "cairn_tls_reloads_total";
/// When the served leaf certificate expires (Unix seconds), by listener.
pub const CERT_EXPIRY: &str = "cairn_tls_certificate_expiry_timestamp_seconds";
/// TLS handshakes that failed, by listener.
pub const HANDSHAKE_FAILURES_TOTAL: &str = "cairn_tls_handshake_failures_total";
/// Cluster RPCs refused, by service and reason (`no_certificate`, `no_identity`,
/// `not_operator`, `not_node`).
pub const CLUSTER_REFUSED_TOTAL: &str = "cairn_cluster_rpc_refused_total";

/// Registers help text for the TLS metrics.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, Unit};
    describe_counter!(
        RELOADS_TOTAL,
        "Certificate reloads after their files changed, by listener (https, cluster) and outcome (ok, error)."
    );
    describe_gauge!(
        CERT_EXPIRY,
        Unit::Seconds,
        "Expiry of the certificate a listener serves, as a Unix timestamp, by listener (https, cluster)."
    );
    describe_counter!(
        HANDSHAKE_FAILURES_TOTAL,
        "TLS handshakes that failed (plain-text clients, unknown CAs, expired certificates), by listener."
    );
    describe_counter!(
        CLUSTER_REFUSED_TOTAL,
        "Cluster-port RPCs refused for lack of the right client identity, by service and reason (no_certificate, no_identity, not_operator, not_node)."
    );
}
