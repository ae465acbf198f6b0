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
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use openraft::storage::RaftStateMachine;
use openraft::{
    Entry, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use super::apply::apply_entries;
use super::db::{read_json, sm_key, snapshot_key, JsonReadError, MetaDb};
use super::error::ConsensusError;
use super::flusher::Flusher;
use super::snapshot::{self, SnapshotError};
use super::snapshot_file::{SnapshotDir, SnapshotFile};
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
    /// Orders the recording of snapshots (a build records after releasing `lock`).
    save_lock: Arc<Mutex<()>>,
}

impl StateMachine {
    /// The state machine stored in `db`.
    pub(crate) fn new(db: MetaDb, flusher: Flusher) -> StateMachine {
        StateMachine {
            db,
            flusher,
            lock: Arc::new(RwLock::new(())),
            save_lock: Arc::new(Mutex::new(())),
        }
    }

    /// Makes sure the state machine is not behind the purged part of the log (which can only
    /// happen if a snapshot install was lost in a crash): reinstalls the stored snapshot then.
    pub(crate) async fn recover(
        &mut self,
        last_purged: Option<LogId<NodeId>>,
    ) -> Result<(), ConsensusError> {
        let (applied, _) = self.applied_state().await?;
        let interrupted = self
            .db
            .raft_snapshot
            .contains_key(snapshot_key::INSTALLING)?;
        if applied >= last_purged && !interrupted {
            return Ok(());
        }
        tracing::warn!(
            ?applied,
            ?last_purged,
            interrupted,
            "state machine behind the purged log or a snapshot install was interrupted; \
             reinstalling the snapshot"
        );
        match self.get_current_snapshot().await? {
            Some(snap) if interrupted || snap.meta.last_log_id >= last_purged => {
                Ok(self.install_snapshot(&snap.meta, snap.snapshot).await?)
            }
            _ => Err(ConsensusError::SnapshotMissing {
                applied_index: applied.map(|l| l.index),
                purged_index: last_purged.map_or(0, |l| l.index),
            }),
        }
    }

    /// The current snapshot's meta and file name, moving a snapshot stored by an older cairn
    /// as a sled value into a file first. Blocking.
    fn current_snapshot_blocking(&self) -> Result<Option<(SnapshotMetaT, String)>, SnapshotError> {
        let tree = &self.db.raft_snapshot;
        let Some(meta) = read_json::<SnapshotMetaT>(tree, snapshot_key::META)? else {
            return Ok(None);
        };
        if let Some(name) = tree.get(snapshot_key::FILE)? {
            return Ok(Some((meta, String::from_utf8_lossy(&name).into_owned())));
        }
        let Some(data) = tree.get(snapshot_key::LEGACY_DATA)? else {
            return Ok(None);
        };
        let name = self
            .db
            .snapshots
            .copy_in(self.db.db.generate_id()?, &data[..])?;
        self.save_snapshot_blocking(&meta, &name, false)?;
        tracing::info!(snapshot = %meta, file = %name, "moved the stored snapshot into a file");
        Ok(Some((meta, name)))
    }

    /// Records `meta`/`name` as the current snapshot (and whether it is being installed),
    /// replacing the previous one atomically, then deletes older snapshot files. A build that
    /// finished after a newer snapshot was recorded, or while one is being installed, is not
    /// recorded.
    fn save_snapshot_blocking(
        &self,
        meta: &SnapshotMetaT,
        name: &str,
        installing: bool,
    ) -> Result<bool, SnapshotError> {
        let _serial = self.save_lock.lock().unwrap_or_else(|p| p.into_inner());
        let tree = &self.db.raft_snapshot;
        let current: Option<SnapshotMetaT> = read_json(tree, snapshot_key::META)?;
        if !installing
            && (current.is_some_and(|c| c.last_log_id > meta.last_log_id)
                || tree.contains_key(snapshot_key::INSTALLING)?)
        {
            return Ok(false);
        }
        let mut batch = sled::Batch::default();
        batch.insert(snapshot_key::META, serde_json::to_vec(meta)?);
        batch.insert(snapshot_key::FILE, name.as_bytes());
        batch.remove(snapshot_key::LEGACY_DATA);
        if installing {
            batch.insert(snapshot_key::INSTALLING, &[][..]);
        } else {
            batch.remove(snapshot_key::INSTALLING);
        }
        tree.apply_batch(batch)?;
        if let Err(e) = self.db.snapshots.remove_all_but(name) {
            tracing::warn!(error = %e, dir = %self.db.snapshots.path().display(), "cannot delete old snapshot files");
        }
        Ok(true)
    }

    /// Writes the state machine to a new snapshot file (holding the read lock `guard` only
    /// while the trees are read) and records it as the current snapshot.
    fn build_blocking(
        &self,
        guard: OwnedRwLockReadGuard<()>,
    ) -> Result<Snapshot<TypeConfig>, SnapshotError> {
        let seq = self.db.db.generate_id()?;
        let (file, part) = self.db.snapshots.create_part(seq)?;
        let written = snapshot::write_body(&self.db.sm, BufWriter::with_capacity(1 << 20, file))
            .and_then(|(built, w)| {
                drop(guard);
                let file = w.into_inner().map_err(|e| e.into_error())?;
                file.sync_all()?;
                Ok(built)
            });
        let built = match written {
            Ok(built) => built,
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
        };
        let name = self.db.snapshots.promote(&part)?;
        let snapshot_id = match &built.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, seq),
            None => format!("0-0-{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: built.last_applied,
            last_membership: built.membership,
            snapshot_id,
        };
        let snapshot = self.db.snapshots.open_snapshot(&name)?;
        if !self.save_snapshot_blocking(&meta, &name, false)? {
            let _ = std::fs::remove_file(self.db.snapshots.path_of(&name)?);
        }
        tracing::info!(snapshot = %meta, versions = built.versions, "raft snapshot built");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(snapshot),
        })
    }

    /// Installs the complete snapshot file at `path`: checks it whole first (nothing is
    /// touched if it is not a snapshot this build can install), then records it as current
    /// and marked as installing, flushes, replaces the state machine, clears the mark and
    /// flushes again.
    async fn install_file(&self, meta: &SnapshotMetaT, path: PathBuf) -> Result<(), SnapshotError> {
        let check_path = path.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&check_path)?;
            let res = snapshot::check(BufReader::with_capacity(1 << 20, file));
            if res.is_err() && SnapshotDir::is_part(&check_path) {
                let _ = std::fs::remove_file(&check_path);
            }
            res
        })
        .await;
        flatten(checked).map_err(TaskError::into_snapshot)?;
        let _guard = self.lock.clone().write_owned().await;
        let (this, owned_meta) = (self.clone(), meta.clone());
        let recorded = tokio::task::spawn_blocking(move || -> Result<String, SnapshotError> {
            let snapshots = &this.db.snapshots;
            let name = if snapshots.holds(&path) {
                snapshots.promote(&path)?
            } else {
                snapshots.copy_in(this.db.db.generate_id()?, std::fs::File::open(&path)?)?
            };
            this.save_snapshot_blocking(&owned_meta, &name, true)?;
            Ok(name)
        })
        .await;
        let name = flatten(recorded).map_err(TaskError::into_snapshot)?;
        self.flusher.flush().await.map_err(SnapshotError::Io)?;
        let (this, owned_meta) = (self.clone(), meta.clone());
        let installed = tokio::task::spawn_blocking(move || -> Result<u64, SnapshotError> {
            let file = std::fs::File::open(this.db.snapshots.path_of(&name)?)?;
            let reader = BufReader::with_capacity(1 << 20, file);
            let sm = &this.db.sm;
            let n = snapshot::install(
                sm,
                reader,
                &owned_meta.last_log_id,
                &owned_meta.last_membership,
            )?;
            this.db.raft_snapshot.remove(snapshot_key::INSTALLING)?;
            Ok(n)
        })
        .await;
        let versions = flatten(installed).map_err(TaskError::into_snapshot)?;
        self.flusher.flush().await.map_err(SnapshotError::Io)?;
        tracing::info!(snapshot = %meta, versions, "raft snapshot installed");
        Ok(())
    }
}

// === backup (`cairn backup`) ===

impl StateMachine {
    /// Serializes the state machine like a snapshot build (under the shared lock, so no apply
    /// runs meanwhile: a consistent view at `last_applied`), without recording it as the Raft
    /// snapshot.
    pub(crate) async fn export(&self) -> Result<(snapshot::Built, Vec<u8>), ConsensusError> {
        let guard = self.lock.clone().read_owned().await;
        let trees = self.db.sm.clone();
        let res = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            snapshot::write_body(&trees, Vec::new())
        })
        .await;
        flatten(res).map_err(|e| ConsensusError::Backup(e.to_string()))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let guard = self.lock.clone().read_owned().await;
        let this = self.clone();
        let res = tokio::task::spawn_blocking(move || this.build_blocking(guard)).await;
        Ok(flatten(res).map_err(|e| StorageIOError::write_snapshot(None, &e))?)
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
    ) -> Result<Box<SnapshotFile>, StorageError<NodeId>> {
        let this = self.clone();
        let res = tokio::task::spawn_blocking(move || -> Result<SnapshotFile, SnapshotError> {
            Ok(this.db.snapshots.receive(this.db.db.generate_id()?)?)
        })
        .await;
        let file = flatten(res).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaT,
        snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError<NodeId>> {
        let sig = Some(meta.signature());
        let err = |e: SnapshotError| StorageIOError::write_snapshot(sig.clone(), &e);
        let path = snapshot.finish_writing().await.map_err(|e| err(e.into()))?;
        self.install_file(meta, path).await.map_err(err)?;
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let this = self.clone();
        let res = tokio::task::spawn_blocking(move || {
            let Some((meta, name)) = this.current_snapshot_blocking()? else {
                return Ok(None);
            };
            let snapshot = Box::new(this.db.snapshots.open_snapshot(&name)?);
            Ok::<_, SnapshotError>(Some(Snapshot { meta, snapshot }))
        })
        .await;
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

impl TaskError<SnapshotError> {
    fn into_snapshot(self) -> SnapshotError {
        match self {
            TaskError::Inner(e) => e,
            TaskError::Join(e) => SnapshotError::Io(std::io::Error::other(e)),
        }
    }
}

fn flatten<T, E: Error + 'static>(
    res: Result<Result<T, E>, tokio::task::JoinError>,
) -> Result<T, TaskError<E>> {
    res?.map_err(TaskError::Inner)
}
