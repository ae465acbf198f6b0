//! [`BlobQueue`]: the persistent queue of blobs this node should fetch from its peers.
//!
//! It lives in the node's one sled database (tree `blob_queue`, sha256 → JSON [`QueueEntry`]),
//! next to the state machine but outside the replicated state. Three writers fill it:
//!
//! - apply, in the same transaction as a `PutVersion` that records a zip (`next_try_ms = 0`,
//!   never overwriting an entry, so re-applying the log on restart keeps the backoff);
//! - the repair worker's scan of the version records (a node that joined by snapshot install
//!   never applied the old entries);
//! - anyone who quarantined a corrupt copy ([`BlobQueue::enqueue`], due at once).
//!
//! The repair worker (`cluster::repair`) drains it. sled orders plain writes against
//! transactions, so the worker's removals never interleave with half an apply.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::db::{read_u64, SmTrees};
use super::Consensus;
use crate::store::blob::is_sha256_hex;

/// Key of the `repair_state` tree holding the last scrub time (unix ms, BE u64).
const LAST_SCRUB_MS: &[u8] = b"last_scrub_ms";

/// One blob waiting to be fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// Expected size in bytes (from the version record).
    pub size: u64,
    /// Failed fetch attempts so far.
    pub attempts: u32,
    /// Not before this time (unix ms); 0 = at once.
    pub next_try_ms: u64,
}

impl QueueEntry {
    /// A fresh entry, due at once.
    pub fn new(size: u64) -> QueueEntry {
        QueueEntry {
            size,
            attempts: 0,
            next_try_ms: 0,
        }
    }
}

/// Reading or writing the queue failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// sled failed.
    #[error("blob queue storage error: {0}")]
    Storage(#[from] sled::Error),
    /// A stored entry is not valid JSON (corruption or a format bug).
    #[error("blob queue entry for {sha256} is corrupt: {source}")]
    Corrupt {
        /// The key read.
        sha256: String,
        /// The decoder error.
        #[source]
        source: serde_json::Error,
    },
    /// The key is not a lowercase hex sha256.
    #[error("invalid blob address {0:?}")]
    BadAddress(String),
}

/// A handle to the persistent blob queue (cheap to clone, `Send + Sync`).
#[derive(Clone, Debug)]
pub struct BlobQueue {
    queue: sled::Tree,
    state: sled::Tree,
}

// === impl Consensus ===

impl Consensus {
    /// The persistent queue of blobs this node should fetch (local bookkeeping, filled by
    /// apply and drained by the repair worker).
    pub fn blob_queue(&self) -> BlobQueue {
        BlobQueue::from_trees(self.reader().trees())
    }
}

// === impl BlobQueue ===

impl BlobQueue {
    /// The queue stored in the state-machine database.
    pub(crate) fn from_trees(trees: &SmTrees) -> BlobQueue {
        BlobQueue {
            queue: trees.blob_queue.clone(),
            state: trees.repair_state.clone(),
        }
    }

    /// Queues `sha256` due at once: inserts a fresh entry, or makes an existing one due now
    /// (keeping its attempt count). Used after a corrupt copy was quarantined.
    pub fn enqueue(&self, sha256: &str, size: u64) -> Result<(), QueueError> {
        check(sha256)?;
        self.queue.update_and_fetch(sha256.as_bytes(), |old| {
            let mut entry = match old.map(serde_json::from_slice::<QueueEntry>) {
                Some(Ok(e)) => e,
                _ => QueueEntry::new(size),
            };
            entry.size = size;
            entry.next_try_ms = 0;
            Some(encode(&entry))
        })?;
        Ok(())
    }

    /// Queues `sha256` unless it is queued already (whose backoff is then kept). Returns
    /// whether an entry was added.
    pub fn enqueue_if_absent(&self, sha256: &str, size: u64) -> Result<bool, QueueError> {
        check(sha256)?;
        let value = encode(&QueueEntry::new(size));
        let swapped = self
            .queue
            .compare_and_swap(sha256.as_bytes(), None::<&[u8]>, Some(value))?;
        Ok(swapped.is_ok())
    }

    /// The entry of `sha256`, if queued.
    pub fn get(&self, sha256: &str) -> Result<Option<QueueEntry>, QueueError> {
        match self.queue.get(sha256.as_bytes())? {
            Some(bytes) => decode(sha256, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Up to `limit` entries due at `now_ms`, in key order. A corrupt entry is removed (the
    /// repair worker's scan of the version records queues whatever is still missing).
    pub fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<(String, QueueEntry)>, QueueError> {
        let mut out = Vec::new();
        for item in self.queue.iter() {
            if out.len() >= limit {
                break;
            }
            let (key, value) = item?;
            let sha256 = String::from_utf8_lossy(&key).into_owned();
            match decode(&sha256, &value) {
                Ok(entry) if entry.next_try_ms <= now_ms => out.push((sha256, entry)),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "dropping a corrupt blob queue entry");
                    self.queue.remove(&key)?;
                }
            }
        }
        Ok(out)
    }

    /// Replaces the entry of `sha256` if it is still queued (never resurrects a removed one).
    pub fn reschedule(&self, sha256: &str, entry: &QueueEntry) -> Result<(), QueueError> {
        let value = encode(entry);
        self.queue
            .update_and_fetch(sha256.as_bytes(), |old| old.map(|_| value.clone()))?;
        Ok(())
    }

    /// Removes `sha256` from the queue (nothing if absent).
    pub fn remove(&self, sha256: &str) -> Result<(), QueueError> {
        self.queue.remove(sha256.as_bytes())?;
        Ok(())
    }

    /// Number of queued blobs (walks the tree: O(n)).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// When the last scrub finished (unix ms), if one ever did.
    pub fn last_scrub_ms(&self) -> Result<Option<u64>, QueueError> {
        Ok(read_u64(&self.state, LAST_SCRUB_MS)?)
    }

    /// Records when a scrub finished (unix ms).
    pub fn set_last_scrub_ms(&self, ms: u64) -> Result<(), QueueError> {
        self.state.insert(LAST_SCRUB_MS, &ms.to_be_bytes())?;
        Ok(())
    }
}

/// Queues `sha256` inside an apply transaction unless it is queued already. Invalid addresses
/// are skipped (the worker could never fetch them). No clock read: the entry is due at once.
pub(crate) fn enqueue_in_tx<E>(
    queue: &TransactionalTree,
    sha256: &str,
    size: u64,
) -> Result<(), ConflictableTransactionError<E>> {
    if !is_sha256_hex(sha256) || queue.get(sha256.as_bytes())?.is_some() {
        return Ok(());
    }
    queue.insert(sha256.as_bytes(), encode(&QueueEntry::new(size)))?;
    Ok(())
}

fn check(sha256: &str) -> Result<(), QueueError> {
    if is_sha256_hex(sha256) {
        Ok(())
    } else {
        Err(QueueError::BadAddress(sha256.to_string()))
    }
}

fn encode(entry: &QueueEntry) -> Vec<u8> {
    // serde_json fails only on non-string map keys or a failing `Serialize` impl; a struct of
    // three integers has neither.
    serde_json::to_vec(entry).expect("a QueueEntry always serializes")
}

fn decode(sha256: &str, bytes: &[u8]) -> Result<QueueEntry, QueueError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(sha256, e))
}

fn corrupt(sha256: &str, source: serde_json::Error) -> QueueError {
    QueueError::Corrupt {
        sha256: sha256.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use openraft::testing::log_id;
    use openraft::{Entry, EntryPayload};

    use super::*;
    use crate::raft::apply::apply_entries;
    use crate::raft::db::MetaDb;
    use crate::raft::TypeConfig;
    use crate::store::meta::{MetaCmd, VersionRecord, ZipRef};

    fn rec(version: &str, zip: Option<&str>) -> VersionRecord {
        VersionRecord {
            module: "example.com/q".to_string(),
            version: version.to_string(),
            info: b"{}".to_vec(),
            gomod: b"module example.com/q\n".to_vec(),
            mod_h1: "h1:mod=".to_string(),
            zip: zip.map(|c| ZipRef {
                sha256: c.repeat(64),
                size: 42,
                h1: "h1:zip=".to_string(),
            }),
            source: "file:///x".to_string(),
            cached_at_ms: 1,
            sumdb_verified: false,
            sumdb_zip_h1: None,
        }
    }

    fn apply(db: &MetaDb, first: u64, recs: Vec<VersionRecord>) {
        let entries: Vec<Entry<TypeConfig>> = recs
            .into_iter()
            .enumerate()
            .map(|(i, r)| Entry {
                log_id: log_id(1, 1, first + i as u64),
                payload: EntryPayload::Normal(MetaCmd::PutVersion(r)),
            })
            .collect();
        apply_entries(&db.sm, &entries).unwrap();
    }

    #[tokio::test]
    async fn apply_queues_new_zips_once_and_keeps_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let db = MetaDb::open(dir.path(), 8 << 20).await.unwrap();
        let q = BlobQueue::from_trees(&db.sm);
        apply(
            &db,
            1,
            vec![
                rec("v1.0.0", None),
                rec("v1.0.0", Some("a")),
                rec("v2.0.0", Some("b")),
            ],
        );
        assert_eq!(q.len(), 2);
        assert_eq!(q.get(&"a".repeat(64)).unwrap(), Some(QueueEntry::new(42)));
        let backed_off = QueueEntry {
            size: 42,
            attempts: 3,
            next_try_ms: 99,
        };
        q.reschedule(&"a".repeat(64), &backed_off).unwrap();
        apply(
            &db,
            4,
            vec![rec("v1.0.0", Some("a")), rec("v3.0.0", Some("a"))],
        );
        assert_eq!(q.get(&"a".repeat(64)).unwrap(), Some(backed_off));
        assert_eq!(q.due(50, 10).unwrap().len(), 1, "only b is due before 99");
        assert_eq!(q.due(99, 10).unwrap().len(), 2);
        assert_eq!(q.due(99, 1).unwrap().len(), 1, "limit is honoured");
    }

    #[tokio::test]
    async fn enqueue_variants_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let db = MetaDb::open(dir.path(), 8 << 20).await.unwrap();
        let q = BlobQueue::from_trees(&db.sm);
        let sha = "c".repeat(64);
        assert!(q.enqueue("nothex", 1).is_err());
        assert!(q.enqueue_if_absent(&sha, 7).unwrap());
        let later = QueueEntry {
            size: 7,
            attempts: 2,
            next_try_ms: 1000,
        };
        q.reschedule(&sha, &later).unwrap();
        assert!(!q.enqueue_if_absent(&sha, 7).unwrap(), "backoff kept");
        assert_eq!(q.get(&sha).unwrap(), Some(later));
        q.enqueue(&sha, 7).unwrap();
        let due = q.get(&sha).unwrap().unwrap();
        assert_eq!(
            (due.attempts, due.next_try_ms),
            (2, 0),
            "due now, attempts kept"
        );
        q.remove(&sha).unwrap();
        q.reschedule(&sha, &later).unwrap();
        assert!(q.is_empty(), "reschedule never resurrects");
        assert_eq!(q.last_scrub_ms().unwrap(), None);
        q.set_last_scrub_ms(5).unwrap();
        assert_eq!(q.last_scrub_ms().unwrap(), Some(5));
    }
}
