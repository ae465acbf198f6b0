//! Raft timing, log compaction and storage settings (the `[raft]` config section).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ConsensusError;

/// Raft timing, log compaction and storage settings.
///
/// Timing: openraft 0.9 draws the election timeout `e` once per process from
/// `[election_min_ms, election_max_ms)`, and a follower that knew a leader campaigns only after
/// `election_max_ms` (the leader lease, fixed in openraft 0.9) plus `e` of silence, with the
/// timer ticking every 1.5 heartbeats. The defaults (200 ms heartbeats, 450–900 ms) put that at
/// 1.35–1.8 s: a kill -9 of the leader costs about 1.6 s to the next committed write, while a
/// stall (CPU throttling, a slow fsync) must last over a second to start a needless election.
/// Snapshot transfers get 30 s per chunk.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftSettings {
    /// How often the leader sends heartbeats, in milliseconds.
    pub heartbeat_ms: u64,
    /// Lower bound of the randomized election timeout, in milliseconds (must exceed `heartbeat_ms`).
    pub election_min_ms: u64,
    /// Upper bound of the randomized election timeout, in milliseconds (must exceed `election_min_ms`).
    pub election_max_ms: u64,
    /// Timeout for sending one snapshot chunk to a follower, in milliseconds.
    pub install_snapshot_timeout_ms: u64,
    /// Size of one snapshot chunk sent to a follower, in bytes (sent raw; a peer from before
    /// `InstallSnapshotChunk` gets it JSON-encoded, about 3.6 times larger, hence the limit of
    /// `max_message_bytes / 4`).
    pub snapshot_chunk_bytes: u64,
    /// Build a snapshot after this many log entries since the last one (at least).
    pub snapshot_every_logs: u64,
    /// Build a snapshot only once the entries since the last one also amount to this percent of
    /// the state's version records (0: `snapshot_every_logs` alone), so that the cost of
    /// rewriting a large state is spread over proportionally many writes.
    pub snapshot_state_percent: u64,
    /// Log entries kept behind the last snapshot, so a briefly lagging follower catches up from
    /// the log instead of a full snapshot.
    pub max_logs_kept: u64,
    /// Purge the log in batches of at least this many entries (fewer, larger sled deletes).
    pub purge_batch_size: u64,
    /// Most log entries sent in one AppendEntries request.
    pub max_payload_entries: u64,
    /// Largest gRPC message accepted or sent on the Raft service, in bytes.
    pub max_message_bytes: u64,
    /// How long a proposal may wait for a leader and for being applied, in milliseconds.
    pub propose_timeout_ms: u64,
    /// Page cache budget of the sled database, in bytes (real RSS can be several times higher).
    pub sled_cache_bytes: u64,
    /// How many nodes a follower's proposal may pass through looking for the leader (0 = never
    /// forward: a follower fails with `ForwardToLeader`). Not a `[raft]` key: the node copies
    /// `cluster.forward_hops` here.
    #[serde(skip)]
    pub forward_hops: u32,
    /// TLS for connections to peers. Not a `[raft]` key: the node copies the cluster port's.
    #[serde(skip)]
    pub cluster_tls: crate::tls::ClusterTls,
    /// This node's region (`cluster.region`; the node copies it, not a `[raft]` key).
    #[serde(skip)]
    pub region: String,
    /// This node's zone (`cluster.zone`; the node copies it, not a `[raft]` key).
    #[serde(skip)]
    pub zone: String,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            heartbeat_ms: 200,
            election_min_ms: 450,
            election_max_ms: 900,
            install_snapshot_timeout_ms: 30_000,
            snapshot_chunk_bytes: 1024 * 1024,
            snapshot_every_logs: 10_000,
            snapshot_state_percent: 25,
            max_logs_kept: 1000,
            purge_batch_size: 64,
            max_payload_entries: 64,
            max_message_bytes: 64 * 1024 * 1024,
            propose_timeout_ms: 10_000,
            sled_cache_bytes: 64 * 1024 * 1024,
            forward_hops: 3,
            cluster_tls: crate::tls::ClusterTls::default(),
            region: String::new(),
            zone: String::new(),
        }
    }
}

impl RaftSettings {
    /// Checks the settings and converts them into a validated openraft [`openraft::Config`].
    pub fn to_openraft_config(&self) -> Result<openraft::Config, ConsensusError> {
        let positive = [
            ("snapshot_every_logs", self.snapshot_every_logs),
            ("purge_batch_size", self.purge_batch_size),
            ("max_payload_entries", self.max_payload_entries),
            ("propose_timeout_ms", self.propose_timeout_ms),
            ("sled_cache_bytes", self.sled_cache_bytes),
            ("snapshot_chunk_bytes", self.snapshot_chunk_bytes),
            (
                "install_snapshot_timeout_ms",
                self.install_snapshot_timeout_ms,
            ),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConsensusError::Settings {
                field,
                reason: "must be greater than 0",
            });
        }
        if self.snapshot_chunk_bytes.saturating_mul(4) > self.max_message_bytes {
            return Err(ConsensusError::Settings {
                field: "snapshot_chunk_bytes",
                reason: "must be at most a quarter of max_message_bytes",
            });
        }
        let config = openraft::Config {
            cluster_name: "cairn".to_string(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_min_ms,
            election_timeout_max: self.election_max_ms,
            install_snapshot_timeout: self.install_snapshot_timeout_ms,
            snapshot_max_chunk_size: self.snapshot_chunk_bytes,
            // `compaction.rs` triggers builds (the interval depends on the state's size).
            snapshot_policy: openraft::SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: self.max_logs_kept,
            purge_batch_size: self.purge_batch_size,
            max_payload_entries: self.max_payload_entries,
            // Must stay above the snapshot interval (openraft's Config docs), otherwise a learner
            // being promoted is always "lagging".
            replication_lag_threshold: self.snapshot_every_logs.saturating_mul(2),
            ..openraft::Config::default()
        };
        Ok(config.validate()?)
    }

    /// [`RaftSettings::propose_timeout_ms`] as a duration.
    pub fn propose_timeout(&self) -> Duration {
        Duration::from_millis(self.propose_timeout_ms)
    }

    /// How long this node may know no leader before proposals fail at once instead of waiting:
    /// four times the longest election timeout. A split vote costs another `e`, and a candidate
    /// whose log is behind waits `2 × election_max_ms` more before retrying (openraft 0.9), so
    /// an election that lasts longer than this means the quorum is lost.
    pub fn degraded_after(&self) -> Duration {
        Duration::from_millis(self.election_max_ms.saturating_mul(4))
    }

    /// How often an idle or busy Raft channel pings its peer (HTTP/2 PING): the longest
    /// election timeout, at least one second.
    pub fn keepalive_interval(&self) -> Duration {
        Duration::from_millis(self.election_max_ms.max(1000))
    }

    /// How long a PING may go unanswered before the channel's connection is dropped and dialed
    /// afresh: four election timeouts, at least ten seconds. A link that drops packets
    /// silently (a cut, a dead middlebox) otherwise keeps the old connection, whose TCP
    /// retransmissions back off to many seconds, long after the link is back. Not shorter:
    /// a PING queues behind a snapshot chunk being sent (up to a stream window, about 1 MiB),
    /// which takes 8 s on a 1 Mbit/s link.
    pub fn keepalive_timeout(&self) -> Duration {
        Duration::from_millis(self.election_max_ms.saturating_mul(4).max(10_000))
    }

    /// [`RaftSettings::max_message_bytes`] as a `usize` (saturating on 32-bit targets).
    pub fn max_message_size(&self) -> usize {
        usize::try_from(self.max_message_bytes).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_fail_over_fast_without_flapping() {
        let s = RaftSettings::default();
        let c = s.to_openraft_config().unwrap();
        // A follower campaigns after the lease (election_max) plus e ≥ election_min of silence:
        // at least six heartbeats lost, and a leader kill detected within two seconds.
        let silence = c.election_timeout_max + c.election_timeout_min;
        assert!(silence >= 6 * c.heartbeat_interval);
        assert!(c.election_timeout_max + c.election_timeout_max < 2000);
        assert!(c.election_timeout_min >= 2 * c.heartbeat_interval);
        assert!(c.replication_lag_threshold > s.snapshot_every_logs);
    }

    #[test]
    fn rejects_bad_timeouts() {
        let s = RaftSettings {
            election_min_ms: 150,
            ..RaftSettings::default()
        };
        assert!(s.to_openraft_config().is_err());
        let s = RaftSettings {
            propose_timeout_ms: 0,
            ..RaftSettings::default()
        };
        assert!(s.to_openraft_config().is_err());
    }

    #[test]
    fn parses_partial_toml_like_json() {
        let s: RaftSettings = serde_json::from_str(r#"{"heartbeat_ms": 100}"#).unwrap();
        assert_eq!(s.heartbeat_ms, 100);
        assert_eq!(s.election_min_ms, 450);
        assert_eq!(s.forward_hops, 3, "not a config key, but defaulted");
        assert!(serde_json::from_str::<RaftSettings>(r#"{"forward_hops": 1}"#).is_err());
        assert!(serde_json::from_str::<RaftSettings>(r#"{"nope": 1}"#).is_err());
    }
}
