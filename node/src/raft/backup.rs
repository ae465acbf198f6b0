//! Backup and restore of the replicated state (`cairn backup`, `cairn restore`).
//!
//! - [`Consensus::catch_up_with_leader`] first makes a follower apply as far as the leader has
//!   (so a backup from any node holds every write acknowledged before it started).
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
use std::time::Duration;

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

/// How long one `Admin.Status` call to the leader may take during a backup's catch-up.
const LEADER_STATUS_TIMEOUT: Duration = Duration::from_secs(3);

impl Consensus {
    /// Before a backup on a follower: asks the leader for its applied index and waits (at most
    /// `timeout`) until this node has applied as far, so that a backup taken from any node
    /// includes every write acknowledged before it started (a write is acknowledged once the
    /// leader applied it). Returns the index waited for; `None` when this node leads (it is
    /// current by definition) or no leader could be asked (the backup is then as of this node's
    /// own applied index, still consistent, and a warning is logged).
    pub async fn catch_up_with_leader(
        &self,
        timeout: Duration,
    ) -> Result<Option<u64>, ConsensusError> {
        let (leader, addr) = {
            let metrics = self.inner.raft.metrics();
            let m = metrics.borrow();
            let Some(leader) = m.current_leader else {
                tracing::warn!("backup: no leader known; backing up this node's applied state");
                return Ok(None);
            };
            if leader == self.inner.id {
                return Ok(None);
            }
            let addr = m
                .membership_config
                .membership()
                .get_node(&leader)
                .map(|n| n.cluster_addr.clone());
            (leader, addr)
        };
        let Some(addr) = addr else {
            return Ok(None);
        };
        let target = match self.leader_applied(leader, &addr).await {
            Ok(index) => index,
            Err(reason) => {
                tracing::warn!(leader, %reason, "backup: cannot ask the leader how far it applied; backing up this node's applied state");
                return Ok(None);
            }
        };
        self.inner
            .raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(target), "backup catch-up")
            .await
            .map_err(|e| {
                ConsensusError::Backup(format!(
                    "this node did not apply up to the leader's index {target} within {timeout:?}: {e}"
                ))
            })?;
        tracing::info!(
            leader,
            index = target,
            "backup: applied up to the leader's index"
        );
        Ok(Some(target))
    }

    /// The leader's applied index (`Admin.Status` over the cluster channel).
    async fn leader_applied(&self, leader: NodeId, addr: &str) -> Result<u64, String> {
        let reply = self
            .inner
            .network
            .probe_status(leader, addr, LEADER_STATUS_TIMEOUT)
            .await?;
        Ok(reply.last_applied_index)
    }

    /// Serializes this node's state machine at its current applied index (see the module
    /// docs for what it costs).
    pub async fn export_state(&self) -> Result<StateExport, ConsensusError> {
        let (built, data) = self.inner.sm.export().await?;
        let membership = built.membership.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, addr)| (*id, addr.cluster_addr.clone(), voters.contains(id)))
            .collect();
        Ok(StateExport {
            data,
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
    if !db.raft_meta.is_empty() || !db.raft_log.is_empty() || !db.sm.versions.is_empty() {
        return Err(ConsensusError::Restore(format!(
            "{} already holds a metadata store; restore needs a fresh data directory",
            meta_dir.display()
        )));
    }
    db.check_identity(node_id)?;
    let log_id = applied.log_id();
    let nodes = BTreeMap::from([(node_id, NodeAddr::at(cluster_addr))]);
    let membership = StoredMembership::new(
        Some(log_id),
        Membership::new(vec![BTreeSet::from([node_id])], nodes),
    );
    let data = data.to_vec();
    let task = tokio::task::spawn_blocking(move || -> Result<(), ConsensusError> {
        let restore = |e: &dyn std::fmt::Display| ConsensusError::Restore(e.to_string());
        snapshot::install(&db.sm, &data[..], &Some(log_id), &membership)
            .map_err(|e| restore(&e))?;
        let name = db
            .snapshots
            .copy_in(db.db.generate_id()?, &data[..])
            .map_err(|e| restore(&e))?;
        let meta = SnapshotMeta {
            last_log_id: Some(log_id),
            last_membership: membership,
            snapshot_id: format!("{}-{}-restored", log_id.leader_id.term, log_id.index),
        };
        let mut snap = sled::Batch::default();
        snap.insert(snapshot_key::META, enc(&meta)?);
        snap.insert(snapshot_key::FILE, name.as_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::testing::{self, wait_until};
    use crate::raft::BootstrapState;
    use crate::store::meta::{MetaCmd, MetaResp};

    fn list(module: &str, at: i64) -> MetaCmd {
        MetaCmd::PutList {
            module: module.into(),
            versions: vec![format!("v1.0.{at}")],
            fetched_at_ms: at,
        }
    }

    /// A state exported from one cluster and restored elsewhere starts a new one-node cluster
    /// that holds every record, continues its log after the backed-up index in a newer term,
    /// and has only the restored node, at its new address, as member.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restored_state_starts_a_new_cluster_after_the_backed_up_index() {
        let settings = testing::settings();
        let src = tempfile::tempdir().unwrap();
        let (_listener, addr) = testing::listen().await;
        let peers = testing::peers(&[(1, addr.as_str())]);
        let c = Consensus::start(1, peers, &src.path().join("meta"), &settings)
            .await
            .unwrap();
        wait_until("the node leads", || c.status().leader_id == Some(1)).await;
        for i in 0..3 {
            let cmd = list(&format!("example.com/m{i}"), i);
            assert_eq!(c.propose(cmd).await.unwrap(), MetaResp::Applied);
        }
        let caught_up = c.catch_up_with_leader(Duration::from_secs(1)).await;
        assert_eq!(
            caught_up.unwrap(),
            None,
            "a leader is current by definition"
        );
        let export = c.export_state().await.unwrap();
        let applied = export.applied.unwrap();
        // (Raft metrics may trail the state machine by a moment; never the reverse.)
        assert!(Some(applied.index) >= c.status().applied_index);
        assert_eq!(export.members, vec![(1, addr.clone(), true)]);
        check_state(&export.data).unwrap();
        c.shutdown().await.unwrap();
        drop(c);

        let dst = tempfile::tempdir().unwrap();
        let meta = dst.path().join("meta");
        let new_addr = "127.0.0.1:1";
        restore_state(&meta, 1, new_addr, &export.data, applied)
            .await
            .unwrap();
        let r = Consensus::start(1, BTreeMap::new(), &meta, &settings)
            .await
            .unwrap();
        wait_until("the restored node leads", || {
            r.status().leader_id == Some(1)
        })
        .await;
        assert_eq!(r.bootstrap_state(), BootstrapState::Existing);
        let st = r.status();
        assert!(st.term > applied.term, "{st:?} vs {applied:?}");
        let members: Vec<(u64, String)> =
            st.members.iter().map(|m| (m.id, m.addr.clone())).collect();
        assert_eq!(members, vec![(1, new_addr.to_string())]);
        for i in 0..3 {
            let got = r.reader().get_list(&format!("example.com/m{i}")).unwrap();
            assert_eq!(got.unwrap().versions, vec![format!("v1.0.{i}")]);
        }
        let after = list("example.com/after", 9);
        assert_eq!(r.propose(after).await.unwrap(), MetaResp::Applied);
        assert!(r.status().applied_index.unwrap() > applied.index);
        r.shutdown().await.unwrap();
        drop(r);

        let again = restore_state(&meta, 1, new_addr, &export.data, applied).await;
        assert!(
            matches!(again, Err(ConsensusError::Restore(_))),
            "a metadata store that holds data is never overwritten: {again:?}"
        );
    }
}
