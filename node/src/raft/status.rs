//! [`RaftStatus`]: a plain copy of openraft's metrics for status pages, the CLI and readiness.

use std::collections::{BTreeMap, BTreeSet};

use openraft::{LogId, Membership, RaftMetrics, ServerState, Vote};
use serde::Serialize;

use super::{NodeAddr, NodeId};

/// The Raft role of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RaftRole {
    /// Leads the cluster: accepts proposals.
    Leader,
    /// Follows a leader (or waits for one).
    Follower,
    /// Campaigning in an election.
    Candidate,
    /// Replicates but does not vote (also a node not yet part of any cluster).
    Learner,
    /// Shutting down or stopped.
    Shutdown,
}

impl RaftRole {
    /// The role as a fixed string (`Leader`, `Follower`, ...), as the admin API reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            RaftRole::Leader => "Leader",
            RaftRole::Follower => "Follower",
            RaftRole::Candidate => "Candidate",
            RaftRole::Learner => "Learner",
            RaftRole::Shutdown => "Shutdown",
        }
    }
}

impl std::fmt::Display for RaftRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<ServerState> for RaftRole {
    fn from(s: ServerState) -> Self {
        match s {
            ServerState::Leader => RaftRole::Leader,
            ServerState::Follower => RaftRole::Follower,
            ServerState::Candidate => RaftRole::Candidate,
            ServerState::Learner => RaftRole::Learner,
            ServerState::Shutdown => RaftRole::Shutdown,
        }
    }
}

/// A member of the cluster as recorded in the Raft membership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RaftMember {
    /// Node id.
    pub id: NodeId,
    /// Cluster gRPC address.
    pub addr: String,
    /// Voter (true) or learner (false).
    pub voter: bool,
    /// The region the node reported (empty = none or not reported yet).
    pub region: String,
    /// The zone the node reported (empty = none).
    pub zone: String,
    /// The leader's view of the last log index replicated to it (only on the leader).
    pub matched_index: Option<u64>,
}

/// A snapshot of this node's Raft state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RaftStatus {
    /// This node's id.
    pub node_id: NodeId,
    /// This node's role.
    pub state: RaftRole,
    /// Current term.
    pub term: u64,
    /// The leader this node knows of.
    pub leader_id: Option<NodeId>,
    /// Index of the last entry in the local log.
    pub last_log_index: Option<u64>,
    /// Index of the last entry applied to the local state machine.
    pub applied_index: Option<u64>,
    /// Index covered by the last snapshot.
    pub snapshot_index: Option<u64>,
    /// Milliseconds since a quorum last acknowledged this leader (only on the leader).
    pub millis_since_quorum_ack: Option<u64>,
    /// Milliseconds since this node last heard from the leader it knows, once that exceeds
    /// `election_max_ms` (not on the leader; `None` while the leader is heard from).
    pub leader_silent_ms: Option<u64>,
    /// Whether the Raft core is running (false after a fatal error or shutdown).
    pub running: bool,
    /// Whether this node holds Raft state: a log (it was initialized or has joined a cluster) or
    /// a vote (openraft's own definition). A pristine node is not initialized.
    pub initialized: bool,
    /// Cluster members, ordered by id.
    pub members: Vec<RaftMember>,
}

impl RaftStatus {
    /// Copies the fields of interest out of openraft's metrics.
    pub(crate) fn from_metrics(m: &RaftMetrics<NodeId, NodeAddr>) -> RaftStatus {
        let members = members_of(m.membership_config.membership(), m.replication.as_ref());
        RaftStatus {
            node_id: m.id,
            state: m.state.into(),
            term: m.current_term,
            leader_id: m.current_leader,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            millis_since_quorum_ack: m.millis_since_quorum_ack,
            leader_silent_ms: None,
            running: m.running_state.is_ok(),
            initialized: m.last_log_index.is_some() || m.vote != Vote::default(),
            members,
        }
    }

    /// The member with id `id`, if any.
    pub fn member(&self, id: NodeId) -> Option<&RaftMember> {
        self.members.iter().find(|m| m.id == id)
    }
}

/// The members of `membership` ordered by id, with the leader's matched index where known.
pub(crate) fn members_of(
    membership: &Membership<NodeId, NodeAddr>,
    replication: Option<&BTreeMap<NodeId, Option<LogId<NodeId>>>>,
) -> Vec<RaftMember> {
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| RaftMember {
            id: *id,
            addr: node.cluster_addr.clone(),
            voter: voters.contains(id),
            region: node.region.clone(),
            zone: node.zone.clone(),
            matched_index: replication
                .and_then(|r| r.get(id).cloned().flatten())
                .map(|l| l.index),
        })
        .collect()
}
