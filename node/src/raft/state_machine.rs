//! openraft's state machine over the `sm_*` sled trees, plus the current snapshot.
//!
//! The state machine is persistent: sled holds the records together with `last_applied` and the
//! membership (written in the same transaction), so a restart resumes from what sled recovered
//! and openraft re-applies `(last_applied, committed]` from the log. Applies are not fsynced
//! individually; the log holds those entries durably, and the flush in `purge` makes the state
//! machine durable before any entry it depends on is deleted.
//!
//! Concurrency: openraft builds snapshots in a separate task, in parallel with `apply`. sled has
//! no consistent multi-key read view, so an async `RwLock` orders them: apply and install take it
//! exclusively, snapshot building shares it. [`MetaReader`](super::MetaReader) does not take it:
//! it reads single records, each of which sled updates atomically.

use std::error::Error;
use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    Entry, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use tokio::sync::RwLock;

use super::apply::apply_entries;
use super::db::{read_json, sm_key, snapshot_key, JsonReadError, MetaDb};
use super::error::ConsensusError;
use super::flusher::Flusher;
use super::snapshot::{self, SnapshotError};
use super::{NodeAddr, NodeId, TypeConfig};
use crate::store::meta::MetaResp;

type SnapshotMetaT = SnapshotMeta<NodeId, NodeAddr>;

/// The sled-backed state machine (also its own snapshot builder; cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct StateMachine {
    db: MetaDb,
    flusher: Flusher,
    /// Apply/install exclusive, snapshot building shared.
    lock: Arc<RwLock<()>>,
}

impl StateMachine {
    /// The state machine stored in `db`.
    pub(crate) fn new(db: MetaDb, flusher: Flusher) -> StateMachine {
        StateMachine {
            db,
            flusher,
            lock: Arc::new(RwLock::new(())),
        }
    }

    /// Makes sure the state machine is not behind the purged part of the log (which can only
    /// happen if a snapshot install was lost in a crash): reinstalls the stored snapshot then.
    pub(crate) async fn recover(
        &mut self,
        last_purged: Option<LogId<NodeId>>,
    ) -> Result<(), ConsensusError> {
        let (applied, _) = self.applied_state().await?;
        if applied >= last_purged {
            return Ok(());
        }
        tracing::warn!(
            ?applied,
            ?last_purged,
            "state machine behind the purged log; reinstalling the snapshot"
        );
        match self.get_current_snapshot().await? {
            Some(snap) if snap.meta.last_log_id >= last_purged => {
                Ok(self.install_snapshot(&snap.meta, snap.snapshot).await?)
            }
            _ => Err(ConsensusError::SnapshotMissing {
                applied_index: applied.map(|l| l.index),
                purged_index: last_purged.map_or(0, |l| l.index),
            }),
        }
    }

    fn current_snapshot_blocking(&self) -> Result<Option<Snapshot<TypeConfig>>, SnapshotError> {
        let tree = &self.db.raft_snapshot;
        let meta: Option<SnapshotMetaT> = read_json(tree, snapshot_key::META)?;
        let (Some(meta), Some(data)) = (meta, tree.get(snapshot_key::DATA)?) else {
            return Ok(None);
        };
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data.to_vec())),
        }))
    }

    /// Records `meta`/`data` as the current snapshot, replacing the previous one atomically.
    fn save_snapshot_blocking(
        &self,
        meta: &SnapshotMetaT,
        data: &[u8],
    ) -> Result<(), SnapshotError> {
        let mut batch = sled::Batch::default();
        batch.insert(snapshot_key::META, serde_json::to_vec(meta)?);
        batch.insert(snapshot_key::DATA, data);
        self.db.raft_snapshot.apply_batch(batch)?;
        Ok(())
    }

    fn build_blocking(&self) -> Result<Snapshot<TypeConfig>, SnapshotError> {
        let built = snapshot::build(&self.db.sm)?;
        let seq = self.db.db.generate_id()?;
        let snapshot_id = match &built.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, seq),
            None => format!("0-0-{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: built.last_applied,
            last_membership: built.membership,
            snapshot_id,
        };
        self.save_snapshot_blocking(&meta, &built.data)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(built.data)),
        })
    }
}

// === backup (`cairn backup`) ===

impl StateMachine {
    /// Serializes the state machine like a snapshot build (under the shared lock, so no apply
    /// runs meanwhile: a consistent view at `last_applied`), without recording it as the Raft
    /// snapshot.
    pub(crate) async fn export(&self) -> Result<snapshot::Built, ConsensusError> {
        let guard = self.lock.clone().read_owned().await;
        let trees = self.db.sm.clone();
        let res = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            snapshot::build(&trees)
        })
        .await;
        flatten(res).map_err(|e| ConsensusError::Backup(e.to_string()))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let guard = self.lock.clone().read_owned().await;
        let this = self.clone();
        let res = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            this.build_blocking()
        })
        .await;
        let snap = flatten(res).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        tracing::info!(snapshot = %snap.meta, "raft snapshot built");
        Ok(snap)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, NodeAddr>), StorageError<NodeId>>
    {
        let meta = &self.db.sm.meta;
        let read = |e: JsonReadError| StorageIOError::read_state_machine(&e);
        let applied: Option<Option<LogId<NodeId>>> =
            read_json(meta, sm_key::LAST_APPLIED).map_err(read)?;
        let membership = read_json(meta, sm_key::MEMBERSHIP).map_err(read)?;
        Ok((applied.flatten(), membership.unwrap_or_default()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<MetaResp>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id) else {
            return Ok(Vec::new());
        };
        let guard = self.lock.clone().write_owned().await;
        let trees = self.db.sm.clone();
        let res = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            apply_entries(&trees, &entries)
        })
        .await;
        flatten(res).map_err(|e| StorageIOError::apply(last, &e).into())
    }

    async fn get_snapshot_builder(&mut self) -> StateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaT,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let guard = self.lock.clone().write_owned().await;
        let this = self.clone();
        let owned_meta = meta.clone();
        let res = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            let data = snapshot.into_inner();
            let sm = &this.db.sm;
            snapshot::install(
                sm,
                &data,
                &owned_meta.last_log_id,
                &owned_meta.last_membership,
            )?;
            this.save_snapshot_blocking(&owned_meta, &data)
        })
        .await;
        let sig = Some(meta.signature());
        flatten(res).map_err(|e| StorageIOError::write_snapshot(sig.clone(), &e))?;
        self.flusher
            .flush()
            .await
            .map_err(|e| StorageIOError::write_snapshot(sig, &e))?;
        tracing::info!(snapshot = %meta, "raft snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let this = self.clone();
        let res = tokio::task::spawn_blocking(move || this.current_snapshot_blocking()).await;
        Ok(flatten(res).map_err(|e| StorageIOError::read_snapshot(None, &e))?)
    }
}

/// A blocking task's result with a panic/cancellation turned into an error.
#[derive(Debug, thiserror::Error)]
enum TaskError<E: Error + 'static> {
    #[error(transparent)]
    Inner(E),
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

fn flatten<T, E: Error + 'static>(
    res: Result<Result<T, E>, tokio::task::JoinError>,
) -> Result<T, TaskError<E>> {
    res?.map_err(TaskError::Inner)
}
