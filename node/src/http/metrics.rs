//! Metric names owned by the HTTP server, and their descriptions.

/// Requests by endpoint and status code.
pub const REQUESTS_TOTAL: &str = "cairn_http_requests_total";
/// Request latency (until the response head is ready) by endpoint.
pub const REQUEST_DURATION: &str = "cairn_http_request_duration_seconds";
/// Body bytes promised in responses (Content-Length), by endpoint.
pub const RESPONSE_BYTES_TOTAL: &str = "cairn_http_response_bytes_total";
/// Zip body bytes sent from the page cache with `sendfile(2)` (plain HTTP/1).
pub const SENDFILE_BYTES_TOTAL: &str = "cairn_http_sendfile_bytes_total";
/// Open client connections.
pub const CONNECTIONS: &str = "cairn_http_connections";
/// Connections closed by a limit, by reason (`per_client_limit`, `header_timeout`).
pub const CONNECTIONS_REFUSED_TOTAL: &str = "cairn_http_connections_refused_total";
/// Size of the filesystem holding the data directory (read when `/metrics` renders).
pub const DATA_DIR_CAPACITY_BYTES: &str = "cairn_data_dir_capacity_bytes";
/// Bytes of that filesystem available to cairn (unprivileged free space).
pub const DATA_DIR_FREE_BYTES: &str = "cairn_data_dir_free_bytes";

/// Registers help text for the HTTP metrics.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(REQUESTS_TOTAL, "HTTP requests by endpoint (list, latest, info, mod, zip, sumdb, health, metrics, other) and status code.");
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time to produce the response head, by endpoint."
    );
    describe_counter!(
        RESPONSE_BYTES_TOTAL,
        Unit::Bytes,
        "Response body bytes sent (by Content-Length), by endpoint."
    );
    describe_counter!(
        SENDFILE_BYTES_TOTAL,
        Unit::Bytes,
        "Zip body bytes sent from the page cache with sendfile(2), on plain HTTP/1 connections (http.sendfile)."
    );
    describe_gauge!(CONNECTIONS, "Open HTTP client connections.");
    describe_counter!(
        CONNECTIONS_REFUSED_TOTAL,
        "Client connections closed by a limit, by reason (per_client_limit, header_timeout)."
    );
    describe_gauge!(
        DATA_DIR_CAPACITY_BYTES,
        Unit::Bytes,
        "Size of the filesystem holding the data directory, read when /metrics is rendered."
    );
    describe_gauge!(
        DATA_DIR_FREE_BYTES,
        Unit::Bytes,
        "Bytes of the data directory's filesystem available to unprivileged writers (what cairn can still use), read when /metrics is rendered."
    );
}
