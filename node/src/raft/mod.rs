//! Consensus: the replicated metadata log (openraft 0.9) with the Raft log and the state machine in
//! one sled database.
//!
//! - [`Consensus`] starts openraft on `<data-dir>/meta`, initializes a fresh cluster once, proposes
//!   [`MetaCmd`] commands and reports [`RaftStatus`].
//! - [`MetaReader`] reads this node's applied state straight from sled (no leader, no lock).
//! - [`BlobQueue`] (`queue.rs`): the local, persistent queue of blobs this node should fetch,
//!   filled by apply and drained by the repair worker.
//! - Storage: `log_store.rs` (log, vote, committed; durable through the group-commit `flusher.rs`),
//!   `state_machine.rs` + `apply.rs` (the sled-backed state machine and its deterministic apply),
//!   `snapshot.rs` (the snapshot format), `db.rs` (the one sled `Db` and its trees).
//! - Wire: `network.rs` (openraft's client side over tonic; also forwards proposals to the
//!   leader) and `service.rs` (the `cairn.v1.Raft` gRPC service).
//! - Cluster control: `bootstrap.rs` (safe static formation from `--peers`) and
//!   `membership.rs` (add/remove members on the leader, serialized).
//! - `metrics.rs`: Raft gauges, proposal counters and latency.
//!
//! `DESIGN.md` next to this file describes the storage layout, durability rules and wire format.

mod apply;
pub mod backup;
mod bootstrap;
mod compaction;
mod consensus;
mod db;
mod disk_local;
pub mod election_gate;
mod error;
mod flusher;
mod heartbeat;
pub mod location;
mod log_store;
mod membership;
pub mod metrics;
mod network;
pub mod placement;
pub mod policy;
#[cfg(test)]
mod policy_tests;
mod queue;
mod reader;
mod service;
mod settings;
mod snapshot;
mod snapshot_file;
#[cfg(test)]
mod snapshot_tests;
mod state_machine;
mod status;
#[cfg(test)]
mod tests;

pub use bootstrap::BootstrapState;
pub use consensus::Consensus;
pub use disk_local::DiskLocal;
pub use error::{ConsensusError, MembershipError, ProposeError};
pub use membership::LEARNER_CATCH_UP;
pub use network::{describe_forwarding, Network, NetworkConnection, FORWARDED_TOTAL};
pub use queue::{BlobQueue, QueueEntry, QueueError};
pub use reader::{MetaError, MetaReader};
pub use service::RaftGrpc;
pub use settings::RaftSettings;
pub use snapshot_file::SnapshotFile;
pub use status::{RaftMember, RaftRole, RaftStatus};

use crate::store::meta::{MetaCmd, MetaResp};

/// A Raft node id: stable for the life of a node's data directory.
pub type NodeId = u64;

/// Node address recorded in the Raft membership (and so replicated to every node).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct NodeAddr {
    /// `host:port` of the node's cluster gRPC listener (`--cluster-listen`), preferably a stable
    /// DNS name rather than a pod IP.
    pub cluster_addr: String,
    /// The node's region (`cluster.region`; empty = none or not yet reported by the node).
    pub region: String,
    /// The node's zone inside its region (`cluster.zone`; empty = none).
    pub zone: String,
}

impl NodeAddr {
    /// A node at `cluster_addr` whose location is not known (yet).
    pub fn at(cluster_addr: impl Into<String>) -> NodeAddr {
        NodeAddr {
            cluster_addr: cluster_addr.into(),
            ..NodeAddr::default()
        }
    }
}

impl std::fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.cluster_addr)
    }
}

openraft::declare_raft_types!(
    /// The openraft type configuration of cairn: commands are [`MetaCmd`], results [`MetaResp`].
    pub TypeConfig:
        D = MetaCmd,
        R = MetaResp,
        NodeId = NodeId,
        Node = NodeAddr,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The openraft handle type used throughout cairn.
pub type RaftHandle = openraft::Raft<TypeConfig>;
