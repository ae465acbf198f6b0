//! Raft metrics: names, descriptions, and the recording helpers used by consensus.
//!
//! Gauges mirror openraft's `RaftMetrics` (updated by the metrics watcher task that
//! `Consensus::start` spawns); proposal counters and latency are recorded by `propose`.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use openraft::{RaftMetrics, ServerState};

use super::{NodeAddr, NodeId};

/// Gauge: current Raft term.
pub const TERM: &str = "cairn_raft_term";
/// Gauge: 1 if this node is the leader, else 0.
pub const IS_LEADER: &str = "cairn_raft_is_leader";
/// Gauge: id of the known leader (0 if none).
pub const LEADER_ID: &str = "cairn_raft_leader_id";
/// Gauge: index of the last log entry.
pub const LAST_LOG_INDEX: &str = "cairn_raft_last_log_index";
/// Gauge: index of the last applied entry.
pub const APPLIED_INDEX: &str = "cairn_raft_applied_index";
/// Counter: times this node saw a new leader.
pub const LEADER_CHANGES_TOTAL: &str = "cairn_raft_leader_changes_total";
/// Counter: proposals by result (`applied|unchanged|conflict|error`).
pub const PROPOSALS_TOTAL: &str = "cairn_raft_proposals_total";
/// Histogram: time from proposing to the applied result (or error).
pub const PROPOSE_DURATION_SECONDS: &str = "cairn_raft_propose_duration_seconds";
/// Histogram: duration of one fsync of the metadata store.
pub const FLUSH_DURATION_SECONDS: &str = "cairn_raft_flush_duration_seconds";
/// Histogram: writes made durable by one fsync (group commit).
pub const FLUSH_BATCH_SIZE: &str = "cairn_raft_flush_batch_size";

/// Describes every Raft metric (call once at startup, after installing the recorder).
pub fn describe() {
    describe_gauge!(TERM, Unit::Count, "Current Raft term of this node.");
    describe_gauge!(
        IS_LEADER,
        Unit::Count,
        "1 if this node is the Raft leader, else 0."
    );
    describe_gauge!(
        LEADER_ID,
        Unit::Count,
        "Node id of the Raft leader this node knows of, 0 if none."
    );
    describe_gauge!(
        LAST_LOG_INDEX,
        Unit::Count,
        "Index of the last entry in this node's Raft log."
    );
    describe_gauge!(
        APPLIED_INDEX,
        Unit::Count,
        "Index of the last Raft entry applied to this node's state machine."
    );
    describe_counter!(
        LEADER_CHANGES_TOTAL,
        Unit::Count,
        "Number of times this node observed a new Raft leader."
    );
    describe_counter!(
        PROPOSALS_TOTAL,
        Unit::Count,
        "Metadata proposals made on this node, by result (applied, unchanged, conflict, error)."
    );
    describe_histogram!(
        PROPOSE_DURATION_SECONDS,
        Unit::Seconds,
        "Time from proposing a metadata command until its applied result or an error."
    );
    describe_histogram!(
        FLUSH_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of one fsync of the metadata store."
    );
    describe_histogram!(
        FLUSH_BATCH_SIZE,
        Unit::Count,
        "Writes made durable by one fsync of the metadata store."
    );
}

/// Sets the gauges from `m` and counts a leader change if the leader differs from `prev_leader`.
pub(crate) fn observe(m: &RaftMetrics<NodeId, NodeAddr>, prev_leader: &mut Option<NodeId>) {
    metrics::gauge!(TERM).set(m.current_term as f64);
    metrics::gauge!(IS_LEADER).set(if m.state == ServerState::Leader {
        1.0
    } else {
        0.0
    });
    metrics::gauge!(LEADER_ID).set(m.current_leader.unwrap_or(0) as f64);
    metrics::gauge!(LAST_LOG_INDEX).set(m.last_log_index.unwrap_or(0) as f64);
    metrics::gauge!(APPLIED_INDEX).set(m.last_applied.map_or(0, |l| l.index) as f64);
    if m.current_leader.is_some() && m.current_leader != *prev_leader {
        metrics::counter!(LEADER_CHANGES_TOTAL).increment(1);
    }
    if m.current_leader.is_some() {
        *prev_leader = m.current_leader;
    }
}

/// Records one finished proposal.
pub(crate) fn record_proposal(result: &'static str, seconds: f64) {
    metrics::counter!(PROPOSALS_TOTAL, "result" => result).increment(1);
    metrics::histogram!(PROPOSE_DURATION_SECONDS).record(seconds);
}
