//! Errors at the consensus boundary: starting/stopping ([`ConsensusError`]) and proposing
//! ([`ProposeError`]).

use std::path::PathBuf;

use openraft::error::{ChangeMembershipError, Fatal, InitializeError, RaftError};

use super::{NodeAddr, NodeId};

/// Starting, initializing or stopping consensus failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsensusError {
    /// A `[raft]` setting is out of range.
    #[error("invalid raft setting {field}: {reason}")]
    Settings {
        /// The offending field of `RaftSettings`.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// openraft rejected the derived configuration (e.g. election timeout not above heartbeat).
    #[error("invalid raft timing: {0}")]
    Config(#[source] Box<openraft::ConfigError>),
    /// The sled database could not be opened (another process may hold its lock).
    #[error("cannot open metadata store at {path}: {source}")]
    Open {
        /// The database directory.
        path: PathBuf,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
    /// Reading or writing the metadata store failed.
    #[error("metadata store error: {0}")]
    Storage(#[from] sled::Error),
    /// A stored value could not be decoded.
    #[error("cannot decode stored {what}: {source}")]
    Decode {
        /// Which value.
        what: &'static str,
        /// The decoder error.
        #[source]
        source: serde_json::Error,
    },
    /// The data directory belongs to another node id.
    #[error("data directory belongs to node {stored}, not node {given}")]
    NodeIdMismatch {
        /// The id recorded in the data directory.
        stored: NodeId,
        /// The id this process was started with.
        given: NodeId,
    },
    /// The data directory was written by an incompatible version of cairn.
    #[error("metadata store format {found} is not supported (expected {supported})")]
    DataVersion {
        /// The format recorded in the data directory.
        found: u64,
        /// The format this build understands.
        supported: u64,
    },
    /// openraft failed to start (storage error while loading state).
    #[error("raft failed to start: {0}")]
    Start(#[source] Box<Fatal<NodeId>>),
    /// Initializing the cluster membership failed.
    #[error("cluster initialization failed: {0}")]
    Initialize(#[source] Box<RaftError<NodeId, InitializeError<NodeId, NodeAddr>>>),
    /// The Raft storage failed while loading or recovering state.
    #[error("raft storage error: {0}")]
    RaftStorage(#[source] Box<openraft::StorageError<NodeId>>),
    /// The state machine is behind the purged log and no snapshot covers the gap.
    #[error("state machine (applied {applied_index:?}) is behind the purged log ({purged_index}) and no snapshot covers it")]
    SnapshotMissing {
        /// The last applied index, if any.
        applied_index: Option<u64>,
        /// The last purged index.
        purged_index: u64,
    },
    /// A blocking background task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// Making the metadata store durable failed.
    #[error("metadata store flush failed: {0}")]
    Flush(#[source] std::io::Error),
    /// The Raft core task failed while shutting down.
    #[error("raft shutdown failed: {0}")]
    Shutdown(#[source] tokio::task::JoinError),
    /// The state machine could not be serialized for a backup (`cairn backup`).
    #[error("cannot serialize the state machine for a backup: {0}")]
    Backup(String),
    /// A backed-up state could not be installed into a new data directory (`cairn restore`).
    #[error("cannot install the backed-up state: {0}")]
    Restore(String),
}

impl From<openraft::ConfigError> for ConsensusError {
    fn from(e: openraft::ConfigError) -> Self {
        ConsensusError::Config(Box::new(e))
    }
}

impl From<openraft::StorageError<NodeId>> for ConsensusError {
    fn from(e: openraft::StorageError<NodeId>) -> Self {
        ConsensusError::RaftStorage(Box::new(e))
    }
}

/// A proposal was not applied. Every command is idempotent, so a proposal that failed with a
/// retryable error may be retried as is (even if it was in fact applied).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError {
    /// No leader was elected within the propose timeout.
    #[error("no raft leader elected within {waited_ms} ms")]
    NoLeader {
        /// How long the proposal waited.
        waited_ms: u64,
    },
    /// This node leads but could not reach a quorum of voters within the propose timeout.
    #[error("raft leader could not reach a quorum within {waited_ms} ms")]
    NoQuorum {
        /// How long the proposal waited.
        waited_ms: u64,
    },
    /// The proposal was not applied within the propose timeout; it may still be applied later.
    #[error("proposal not applied within {waited_ms} ms")]
    Timeout {
        /// How long the proposal waited.
        waited_ms: u64,
    },
    /// Another node is the leader: the proposal must be forwarded there.
    #[error("not the raft leader; leader is node {leader_id} at {leader_addr}")]
    ForwardToLeader {
        /// The leader's node id.
        leader_id: NodeId,
        /// The leader's cluster address from the membership (may be empty if unknown).
        leader_addr: String,
    },
    /// The forwarding budget ran out before reaching a leader (leadership is moving).
    #[error("proposal forwarded too many times without reaching the leader")]
    HopsExhausted,
    /// Forwarding to the leader failed at the transport level.
    #[error("forwarding to leader node {leader_id} failed: {reason}")]
    Forward {
        /// The leader the proposal was sent to.
        leader_id: NodeId,
        /// The transport error, as text.
        reason: String,
    },
    /// The command could not be encoded or a reply decoded.
    #[error("cannot encode or decode a proposal: {0}")]
    Codec(#[from] serde_json::Error),
    /// Raft is shutting down or has stopped.
    #[error("raft is shut down")]
    ShuttingDown,
    /// Raft stopped on a fatal error (storage failure or panic); the process should restart.
    #[error("raft stopped on a fatal error: {0}")]
    Fatal(#[source] Box<Fatal<NodeId>>),
    /// openraft reported a membership-change error for a plain write (should not happen).
    #[error("unexpected membership error: {0}")]
    Membership(#[source] ChangeMembershipError<NodeId>),
}

impl ProposeError {
    /// Whether retrying later (or on another node) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProposeError::NoLeader { .. }
                | ProposeError::NoQuorum { .. }
                | ProposeError::Timeout { .. }
                | ProposeError::ForwardToLeader { .. }
                | ProposeError::HopsExhausted
                | ProposeError::Forward { .. }
        )
    }
}

/// A membership change (`cairn members add|remove`) was refused or failed. Each message says what
/// the operator can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// Node id 0 is reserved ("no node" on the wire).
    #[error("node id 0 is reserved; use a positive id that was never used before")]
    ZeroId,
    /// The cluster address is not `host:port`.
    #[error("invalid cluster address {addr:?}: {reason} (expected HOST:PORT of the node's --cluster-listen)")]
    BadAddr {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The id is already a member, at another address.
    #[error("node {id} is already a member at {existing}; remove it first (`cairn members remove {id}`) or add the new node under a new id")]
    IdConflict {
        /// The id.
        id: NodeId,
        /// Its address in the membership.
        existing: String,
    },
    /// Another member already uses the address.
    #[error("address {addr} already belongs to node {existing_id}; remove node {existing_id} first (`cairn members remove {existing_id}`)")]
    AddrConflict {
        /// The address.
        addr: String,
        /// The member that has it.
        existing_id: NodeId,
    },
    /// The id is not a member.
    #[error("node {id} is not a member of the cluster")]
    NotMember {
        /// The id.
        id: NodeId,
    },
    /// Promoting the node would give one region a majority of the voters.
    #[error("{problem}: spread the voters so that no region holds a majority (e.g. one voter in each of three regions, or two large regions plus a tie-breaker voter in a third), add the node as a learner (`cairn members add --learner`), or pass --force-placement to accept it")]
    Placement {
        /// What is wrong.
        problem: super::placement::PlacementProblem,
    },
    /// Removing the node would leave no voter.
    #[error("node {id} is the last voter; a cluster cannot remove its last voter")]
    LastVoter {
        /// The id.
        id: NodeId,
    },
    /// This node is not the leader (membership changes run on the leader).
    #[error("not the raft leader; {}", leader_hint(*leader_id, leader_addr))]
    NotLeader {
        /// The leader this node knows of, if any.
        leader_id: Option<NodeId>,
        /// Its cluster address (empty if unknown).
        leader_addr: String,
    },
    /// The learner did not catch up in time; it stays a learner.
    #[error("node {id} was added as a learner but did not catch up within {waited_secs} s; check that it runs and is reachable at its address, then run `cairn members add` again to promote it (or `cairn members remove {id}`)")]
    CatchUpTimeout {
        /// The learner.
        id: NodeId,
        /// How long the leader waited.
        waited_secs: u64,
    },
    /// A change is already being committed (joint configuration).
    #[error(
        "another membership change is still in progress; wait for it to finish and retry: {0}"
    )]
    InProgress(String),
    /// The change was not committed in time (no quorum?). It may still take effect.
    #[error("membership change not committed within {waited_secs} s (is a quorum of voters up?); check `cairn members list` before retrying")]
    Timeout {
        /// How long the leader waited.
        waited_secs: u64,
    },
    /// Raft stopped or failed; the process should be restarted.
    #[error("raft failed: {0}")]
    Fatal(#[source] Box<Fatal<NodeId>>),
}

fn leader_hint(leader_id: Option<NodeId>, addr: &str) -> String {
    match leader_id {
        Some(id) => format!("the leader is node {id} at {addr}"),
        None => "no leader is known (an election is running or the quorum is lost); restore a quorum of voters, then retry".to_string(),
    }
}
