//! Metric names owned by the mirror, and their descriptions.

/// Cache lookups by file kind and result (`hit`, `miss`).
pub const CACHE_REQUESTS_TOTAL: &str = "cairn_cache_requests_total";
/// Requests that joined another request's in-flight fetch instead of starting their own.
pub const FLIGHT_WAITERS_TOTAL: &str = "cairn_flight_waiters_total";
/// Fetches in progress, by kind.
pub const FLIGHTS_INFLIGHT: &str = "cairn_flights_inflight";
/// Upstream answers rejected as invalid (and not cached), by kind and reason.
pub const FILL_REJECTED_TOTAL: &str = "cairn_fill_rejected_total";
/// Upstream answers that contradict an immutable cached version (rejected, not served).
pub const IMMUTABILITY_CONFLICTS_TOTAL: &str = "cairn_immutability_conflicts_total";
/// Misses answered from the upstream without being committed (no quorum), by kind.
pub const DEGRADED_PASSTHROUGH_TOTAL: &str = "cairn_degraded_passthrough_total";
/// Entries in the not-found memory.
pub const NEGATIVE_ENTRIES: &str = "cairn_negative_cache_entries";
/// Background refreshes of lists and latest, by kind and result.
pub const REFRESH_TOTAL: &str = "cairn_refresh_total";
/// Served answers that were stale because the upstream failed, by kind.
pub const STALE_SERVED_TOTAL: &str = "cairn_stale_served_total";

/// Registers help text for the mirror's metrics.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        CACHE_REQUESTS_TOTAL,
        "Cache lookups by file kind (list, latest, info, mod, zip) and result (hit, miss)."
    );
    describe_counter!(
        FLIGHT_WAITERS_TOTAL,
        "Requests that waited for another request's identical in-flight fetch (single flight)."
    );
    describe_gauge!(FLIGHTS_INFLIGHT, "Upstream fills in progress, by kind.");
    describe_counter!(
        FILL_REJECTED_TOTAL,
        "Upstream answers rejected as invalid and not cached, by kind and reason."
    );
    describe_counter!(
        IMMUTABILITY_CONFLICTS_TOTAL,
        "Upstream answers whose bytes differ from an already cached immutable version; rejected."
    );
    describe_counter!(DEGRADED_PASSTHROUGH_TOTAL, "Misses served from the upstream without being committed because the cluster had no quorum.");
    describe_gauge!(NEGATIVE_ENTRIES, "Not-found answers currently remembered.");
    describe_counter!(
        REFRESH_TOTAL,
        "Background refreshes of lists and @latest, by kind and result (ok, not_found, error)."
    );
    describe_counter!(
        STALE_SERVED_TOTAL,
        "Answers served from a stale cached copy because the upstream failed, by kind."
    );
}
