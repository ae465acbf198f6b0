//! Metric names owned by checksum-database verification, and their descriptions.

/// Verifications of module versions by result (`verified`, `unverified`, `mismatch`,
/// `unreachable`, `not_logged`, `invalid`, `forked`).
pub const VERIFICATIONS_TOTAL: &str = "cairn_sumdb_verifications_total";
/// Module files whose `h1:` differs from the checksum database's (refused, never stored).
pub const MISMATCHES_TOTAL: &str = "cairn_sumdb_mismatches_total";
/// 1 while a checksum database is known to be forked (verification against it refused).
pub const FORKED: &str = "cairn_sumdb_forked";
/// Versions stored unverified that the database then disagreed with (taken out of service).
pub const QUARANTINED_TOTAL: &str = "cairn_sumdb_quarantined_total";
/// Tree heads proven consistent with the replicated one and recorded, by database.
pub const TREE_HEADS_TOTAL: &str = "cairn_sumdb_tree_heads_total";

/// Registers help text for the verification metrics.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_counter!(
        VERIFICATIONS_TOTAL,
        "Module versions checked against the checksum database, by result (verified, unverified, mismatch, unreachable, not_logged, invalid, forked)."
    );
    describe_counter!(
        MISMATCHES_TOTAL,
        "Module files whose h1 hash differs from the checksum database's; refused and never stored."
    );
    describe_gauge!(
        FORKED,
        "1 while a checksum database is known to have forked (two inconsistent signed tree heads); verification against it is refused."
    );
    describe_counter!(
        QUARANTINED_TOTAL,
        "Versions stored unverified (best-effort) that the checksum database then disagreed with; quarantined, never served again."
    );
    describe_counter!(
        TREE_HEADS_TOTAL,
        "Newer signed tree heads proven consistent with the replicated one and recorded, by database."
    );
}

/// Counts one verification outcome.
pub(crate) fn verification(result: &'static str) {
    metrics::counter!(VERIFICATIONS_TOTAL, "result" => result).increment(1);
}
