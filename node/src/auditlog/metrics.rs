//! Metric names owned by the audit log, and their descriptions.

/// Lines written, by `type` (`request`, `admin`).
pub const EVENTS_TOTAL: &str = "cairn_audit_events_total";
/// Events dropped because the writer's queue was full (or the writer had stopped).
pub const DROPPED_TOTAL: &str = "cairn_audit_dropped_total";
/// Failed writes, rotations and flushes of the audit log.
pub const WRITE_ERRORS_TOTAL: &str = "cairn_audit_write_errors_total";

/// Registers help text for the audit log metrics.
pub fn describe() {
    use metrics::describe_counter;
    describe_counter!(
        EVENTS_TOTAL,
        "Audit log lines written, by type (request, admin)."
    );
    describe_counter!(
        DROPPED_TOTAL,
        "Audit events dropped because the writer's queue was full or the writer had stopped."
    );
    describe_counter!(
        WRITE_ERRORS_TOTAL,
        "Audit log writes, rotations or flushes that failed."
    );
}
