//! openraft's log storage over the `raft_log` and `raft_meta` sled trees.
//!
//! Durability rules (openraft `RaftLogStorage` docs, RAFT-NOTES §2.1–2.2):
//! - `append` writes all entries in one atomic batch (readable on return) and hands the
//!   `LogFlushed` callback to the flusher, which completes it only after an fsync.
//! - `save_vote` returns only after the vote is flushed.
//! - `purge` makes `last_purged` (and the state machine behind it) durable, hides the purged
//!   entries from readers at once and deletes them in the background, in small batches: a
//!   purge after a large snapshot covers hundreds of thousands of entries, and openraft's core
//!   awaits `purge` before its next append. Entries left over by a crash are hidden the same
//!   way and deleted by the next purge.
//! - `truncate` deletes and flushes before returning.
//!
//! All writes go through one sled log, which is recovered in order, so a later write never
//! survives a crash that an earlier one does not.

// openraft's storage traits fix the error type (`StorageError`, 224 bytes).
#![allow(clippy::result_large_err)]

use std::error::Error;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
};

use super::db::{log_key, meta_key, read_json, to_json, MetaDb};
use super::flusher::Flusher;
use super::{NodeId, TypeConfig};

/// The Raft log store (owned by openraft's core task).
#[derive(Clone, Debug)]
pub(crate) struct LogStore {
    db: MetaDb,
    flusher: Flusher,
    /// The first index readers may see (one past the last purged entry).
    floor: Arc<AtomicU64>,
    /// Serializes background deletions.
    deleting: Arc<Mutex<()>>,
}

/// A reader of the Raft log, used concurrently by replication tasks.
#[derive(Clone, Debug)]
pub(crate) struct LogReader {
    log: sled::Tree,
    floor: Arc<AtomicU64>,
}

/// Entries deleted per sled batch by a background purge.
const PURGE_CHUNK: usize = 2048;

impl LogStore {
    /// A log store over `db`, fsyncing through `flusher`.
    pub(crate) fn new(db: MetaDb, flusher: Flusher) -> LogStore {
        let purged: Option<Option<LogId<NodeId>>> = read_json(&db.raft_meta, meta_key::LAST_PURGED)
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the last purged log id");
                None
            });
        let floor = purged.flatten().map_or(0, |l| l.index + 1);
        LogStore {
            db,
            flusher,
            floor: Arc::new(AtomicU64::new(floor)),
            deleting: Arc::new(Mutex::new(())),
        }
    }

    /// Deletes every entry up to `upto` on the blocking pool, a batch at a time.
    fn delete_in_background(&self, upto: u64) {
        let log = self.db.raft_log.clone();
        let deleting = self.deleting.clone();
        tokio::task::spawn_blocking(move || {
            let _serial = deleting.lock().unwrap_or_else(|p| p.into_inner());
            let range = key_range((Bound::Unbounded, Bound::Included(upto)));
            let mut n = 0;
            loop {
                let mut batch = sled::Batch::default();
                let mut len = 0;
                for key in log.range(range).keys().take(PURGE_CHUNK) {
                    match key {
                        Ok(key) => batch.remove(key),
                        Err(e) => {
                            tracing::warn!(error = %e, "deleting purged raft log entries");
                            return;
                        }
                    }
                    len += 1;
                }
                if len == 0 {
                    break;
                }
                if let Err(e) = log.apply_batch(batch) {
                    tracing::warn!(error = %e, "deleting purged raft log entries");
                    return;
                }
                n += len;
            }
            tracing::debug!(upto, deleted = n, "raft log purged");
        });
    }

    fn read_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError<NodeId>> {
        read_json(&self.db.raft_meta, key).map_err(|e| read_err(&e))
    }

    fn write_meta<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = to_json(value).map_err(|e| write_err(&e))?;
        self.db
            .raft_meta
            .insert(key, bytes)
            .map_err(|e| write_err(&e))?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), StorageError<NodeId>> {
        self.flusher.flush().await.map_err(|e| write_err(&e))
    }

    /// Deletes the entries with indexes in `range` in one atomic batch.
    fn delete_range(&self, range: (Bound<u64>, Bound<u64>)) -> Result<usize, StorageError<NodeId>> {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for key in self.db.raft_log.range(key_range(range)).keys() {
            batch.remove(key.map_err(|e| write_err(&e))?);
            n += 1;
        }
        self.db
            .raft_log
            .apply_batch(batch)
            .map_err(|e| write_err(&e))?;
        Ok(n)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        read_entries(
            &self.db.raft_log,
            &range,
            self.floor.load(Ordering::Acquire),
        )
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        read_entries(&self.log, &range, self.floor.load(Ordering::Acquire))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged_log_id: Option<LogId<NodeId>> =
            self.read_meta(meta_key::LAST_PURGED)?.flatten();
        let last = self.db.raft_log.last().map_err(|e| read_err(&e))?;
        let last_log_id = match last {
            // (Entries up to the purge point may still await their background deletion.)
            Some((_, bytes)) => Some(decode_entry(&bytes)?.log_id).max(last_purged_log_id),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        LogReader {
            log: self.db.raft_log.clone(),
            floor: self.floor.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let bytes = to_json(vote).map_err(|e| vote_err(&e, true))?;
        self.db
            .raft_meta
            .insert(meta_key::VOTE, bytes)
            .map_err(|e| vote_err(&e, true))?;
        self.flusher.flush().await.map_err(|e| vote_err(&e, true))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        read_json(&self.db.raft_meta, meta_key::VOTE).map_err(|e| vote_err(&e, false))
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        // Advisory (it only bounds the re-apply at startup), so it rides on the next flush.
        self.write_meta(meta_key::COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self
            .read_meta::<Option<LogId<NodeId>>>(meta_key::COMMITTED)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        let mut last = None;
        for entry in entries {
            let bytes = to_json(&entry).map_err(|e| write_err(&e))?;
            batch.insert(&log_key(entry.log_id.index), bytes);
            last = Some(entry.log_id);
        }
        self.db
            .raft_log
            .apply_batch(batch)
            .map_err(|e| write_err(&e))?;
        tracing::trace!(last = ?last, "raft log appended; waiting for flush");
        self.flusher
            .after_flush(callback)
            .map_err(|e| write_err(&e))
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let n = self.delete_range((Bound::Included(log_id.index), Bound::Unbounded))?;
        tracing::debug!(since = log_id.index, deleted = n, "raft log truncated");
        self.flush().await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        // Record the purge point durably first; this flush also covers every state-machine
        // write applied before, so the purged entries are never needed again.
        self.write_meta(meta_key::LAST_PURGED, &Some(log_id))?;
        self.flush().await?;
        self.floor.fetch_max(log_id.index + 1, Ordering::AcqRel);
        self.delete_in_background(log_id.index);
        Ok(())
    }
}

/// The entries in `range`, none below `floor` (purged ones awaiting deletion).
fn read_entries<RB: RangeBounds<u64>>(
    log: &sled::Tree,
    range: &RB,
    floor: u64,
) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
    let start = match range.start_bound().cloned() {
        Bound::Included(s) => Bound::Included(s.max(floor)),
        Bound::Excluded(s) if s >= floor => Bound::Excluded(s),
        Bound::Excluded(_) | Bound::Unbounded => Bound::Included(floor),
    };
    let bounds = (start, range.end_bound().cloned());
    if is_empty(bounds) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for item in log.range(key_range(bounds)) {
        let (_, bytes) = item.map_err(|e| read_err(&e))?;
        out.push(decode_entry(&bytes)?);
    }
    Ok(out)
}

/// Whether an index range selects nothing (sled panics on inverted ranges).
fn is_empty((start, end): (Bound<u64>, Bound<u64>)) -> bool {
    let lo = match start {
        Bound::Included(s) => u128::from(s),
        Bound::Excluded(s) => u128::from(s) + 1,
        Bound::Unbounded => 0,
    };
    let hi = match end {
        Bound::Included(e) => u128::from(e) + 1,
        Bound::Excluded(e) => u128::from(e),
        Bound::Unbounded => u128::from(u64::MAX) + 1,
    };
    lo >= hi
}

fn key_range((start, end): (Bound<u64>, Bound<u64>)) -> (Bound<[u8; 8]>, Bound<[u8; 8]>) {
    (start.map(log_key), end.map(log_key))
}

fn decode_entry(bytes: &[u8]) -> Result<Entry<TypeConfig>, StorageError<NodeId>> {
    serde_json::from_slice(bytes).map_err(|e| read_err(&e))
}

fn read_err<E: Error + 'static>(e: &E) -> StorageError<NodeId> {
    StorageIOError::read_logs(e).into()
}

fn write_err<E: Error + 'static>(e: &E) -> StorageError<NodeId> {
    StorageIOError::write_logs(e).into()
}

fn vote_err<E: Error + 'static>(e: &E, write: bool) -> StorageError<NodeId> {
    if write {
        StorageIOError::write_vote(e).into()
    } else {
        StorageIOError::read_vote(e).into()
    }
}
