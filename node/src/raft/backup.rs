//! Backup and restore of the replicated state (`cairn backup`, `cairn restore`).
//!
//! - [`Consensus::export_state`] serializes the state machine exactly as a Raft snapshot build
//!   does (`snapshot::build`, under the state machine's shared lock), without recording it as
//!   the node's Raft snapshot: applies wait for the build, reads and serving never do.
//! - [`restore_state`] writes a fresh metadata store (`<data-dir>/meta`) that starts as a new
//!   single-node cluster at the backed-up index: the state machine installed from the backup,
//!   the same bytes recorded as the current snapshot, the log empty and purged up to that index,
//!   a membership of just the restored node, and a vote at the backup's term (so the first
//!   election moves to a newer term than any entry the backup covers). Other nodes added later
//!   catch up by snapshot, as any new member does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use openraft::{CommittedLeaderId, LogId, Membership, SnapshotMeta, StoredMembership, Vote};

use super::db::{meta_key, snapshot_key, to_json, MetaDb};
use super::error::ConsensusError;
use super::{snapshot, Consensus, NodeAddr, NodeId};

/// A serialized state machine at a known applied log id.
#[derive(Debug)]
pub struct StateExport {
    /// The snapshot body (JSON), the same bytes a Raft snapshot would carry.
    pub data: Vec<u8>,
    /// The last applied log id as (index, term, leader node id); `None` for an empty state.
    pub applied: Option<AppliedId>,
    /// The membership at that point: (id, cluster address, voter).
    pub members: Vec<(NodeId, String, bool)>,
}

/// A log id in plain numbers, as a backup records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppliedId {
    /// Log index.
    pub index: u64,
    /// Term of the leader that wrote the entry.
    pub term: u64,
    /// Node id of that leader.
    pub leader: NodeId,
}

impl AppliedId {
    fn of(l: &LogId<NodeId>) -> AppliedId {
        AppliedId {
            index: l.index,
            term: l.leader_id.term,
            leader: l.leader_id.node_id,
        }
    }

    fn log_id(&self) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(self.term, self.leader), self.index)
    }
}

impl Consensus {
    /// Serializes this node's state machine at its current applied index (see the module
    /// docs for what it costs).
    pub async fn export_state(&self) -> Result<StateExport, ConsensusError> {
        let built = self.inner.sm.export().await?;
        let membership = built.membership.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, addr)| (*id, addr.cluster_addr.clone(), voters.contains(id)))
            .collect();
        Ok(StateExport {
            data: built.data,
            applied: built.last_applied.as_ref().map(AppliedId::of),
            members,
        })
    }
}

/// Checks that `data` is a state this build can install (format, records), without writing.
pub fn check_state(data: &[u8]) -> Result<(), ConsensusError> {
    snapshot::check(data).map_err(|e| ConsensusError::Restore(e.to_string()))
}

/// Every version record of a backed-up state (what its blob manifest is made from).
pub fn state_versions(
    data: &[u8],
) -> Result<Vec<crate::store::meta::VersionRecord>, ConsensusError> {
    snapshot::versions(data).map_err(|e| ConsensusError::Restore(e.to_string()))
}

/// Builds a new metadata store in `meta_dir` (which must not hold one) from a backed-up state:
/// node `node_id`, reachable by its peers at `cluster_addr`, sole voter of a new cluster whose
/// log continues after `applied`. Blocking (sled); returns once everything is flushed.
pub async fn restore_state(
    meta_dir: &Path,
    node_id: NodeId,
    cluster_addr: &str,
    data: &[u8],
    applied: AppliedId,
) -> Result<(), ConsensusError> {
    let db = MetaDb::open(meta_dir, 64 << 20).await?;
    if db.raft_meta.len() > 0 || db.raft_log.len() > 0 || db.sm.versions.len() > 0 {
        return Err(ConsensusError::Restore(format!(
            "{} already holds a metadata store; restore needs a fresh data directory",
            meta_dir.display()
        )));
    }
    db.check_identity(node_id)?;
    let log_id = applied.log_id();
    let nodes = BTreeMap::from([(
        node_id,
        NodeAddr {
            cluster_addr: cluster_addr.to_string(),
        },
    )]);
    let membership = StoredMembership::new(
        Some(log_id),
        Membership::new(vec![BTreeSet::from([node_id])], nodes),
    );
    let data = data.to_vec();
    let task = tokio::task::spawn_blocking(move || -> Result<(), ConsensusError> {
        let restore = |e: &dyn std::fmt::Display| ConsensusError::Restore(e.to_string());
        snapshot::install(&db.sm, &data, &Some(log_id), &membership).map_err(|e| restore(&e))?;
        let meta = SnapshotMeta {
            last_log_id: Some(log_id),
            last_membership: membership,
            snapshot_id: format!("{}-{}-restored", log_id.leader_id.term, log_id.index),
        };
        let mut snap = sled::Batch::default();
        snap.insert(snapshot_key::META, enc(&meta)?);
        snap.insert(snapshot_key::DATA, data);
        db.raft_snapshot.apply_batch(snap)?;
        let mut raft = sled::Batch::default();
        raft.insert(meta_key::VOTE, enc(&Vote::new(applied.term, node_id))?);
        raft.insert(meta_key::COMMITTED, enc(&Some(log_id))?);
        raft.insert(meta_key::LAST_PURGED, enc(&Some(log_id))?);
        db.raft_meta.apply_batch(raft)?;
        db.db.flush()?;
        Ok(())
    });
    task.await.map_err(ConsensusError::Task)?
}

fn enc<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ConsensusError> {
    to_json(value).map_err(|e| ConsensusError::Restore(e.to_string()))
}
