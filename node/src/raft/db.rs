//! The one sled database of a node (`<data-dir>/meta`) and the layout of its trees.
//!
//! All trees share one page cache and one log, so a single `flush()` makes every earlier write in
//! every tree durable, and sled recovers writes in order (a prefix of the write history).
//!
//! | tree            | key                          | value                                  |
//! |-----------------|------------------------------|----------------------------------------|
//! | `raft_meta`     | `vote`, `committed`, `last_purged`, `node_id`, `data_version` | JSON / BE u64 |
//! | `raft_log`      | log index as big-endian u64  | JSON `Entry`                           |
//! | `raft_snapshot` | `meta`, `file`, `installing` | the current snapshot: JSON meta, its file in `cairn-snapshots/`, set while it is being installed |
//! | `sm_meta`       | `last_applied`, `membership`, `version_count` | JSON / BE u64          |
//! | `sm_versions`   | `module@version`             | JSON `VersionRecord`                   |
//! | `sm_lists`      | `module`                     | JSON `ListRecord`                      |
//! | `sm_latest`     | `module`                     | JSON `LatestRecord`                    |
//! | `blob_queue`    | blob sha256 (hex)            | JSON `QueueEntry` (local, not replicated) |
//! | `repair_state`  | `last_scrub_ms`              | BE u64 (local, not replicated)         |
//! | `repair_state`  | `disk_atime/<sha256>`, `disk_evicted/<sha256>` | BE u64 last-served ms / evicted ms (local, see `disk_local.rs`) |
//! | `sm_meta`       | `pin/<pattern>`              | JSON `PinRecord` (replicated)          |

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::ConsensusError;
use super::snapshot_file::SnapshotDir;
use super::NodeId;

/// On-disk format of the metadata store; bump with a migration when the layout changes.
pub(crate) const DATA_VERSION: u64 = 1;

/// Keys of the `raft_meta` tree.
pub(crate) mod meta_key {
    /// The current vote (JSON `Vote`).
    pub const VOTE: &[u8] = b"vote";
    /// The last known committed log id (JSON `Option<LogId>`).
    pub const COMMITTED: &[u8] = b"committed";
    /// The last purged log id (JSON `Option<LogId>`).
    pub const LAST_PURGED: &[u8] = b"last_purged";
    /// The node id owning this directory (BE u64).
    pub const NODE_ID: &[u8] = b"node_id";
    /// The on-disk format (BE u64).
    pub const DATA_VERSION: &[u8] = b"data_version";
}

/// Keys of the `sm_meta` tree.
pub(crate) mod sm_key {
    /// The last applied log id (JSON `Option<LogId>`).
    pub const LAST_APPLIED: &[u8] = b"last_applied";
    /// The last applied membership (JSON `StoredMembership`).
    pub const MEMBERSHIP: &[u8] = b"membership";
    /// Number of records in `sm_versions` (BE u64).
    pub const VERSION_COUNT: &[u8] = b"version_count";
    /// Prefix of the checksum-database tree heads (`sumdb_head/<db>` → JSON `TreeHeadRecord`).
    pub const SUMDB_HEAD_PREFIX: &[u8] = b"sumdb_head/";

    /// The key of database `db`'s tree head.
    pub fn sumdb_head(db: &str) -> Vec<u8> {
        [SUMDB_HEAD_PREFIX, db.as_bytes()].concat()
    }

    /// Prefix of quarantined versions (`quarantine/<module>@<version>` → JSON
    /// `QuarantineRecord`).
    pub const QUARANTINE_PREFIX: &[u8] = b"quarantine/";

    /// The key of a quarantined version.
    pub fn quarantine(module: &str, version: &str) -> Vec<u8> {
        [
            QUARANTINE_PREFIX,
            module.as_bytes(),
            b"@",
            version.as_bytes(),
        ]
        .concat()
    }

    /// Prefix of replicated checksum-database answers (`sumdb_item/<db>\0<path>` → body).
    pub const SUMDB_ITEM_PREFIX: &[u8] = b"sumdb_item/";

    /// The key of answer `path` of database `db` (database names hold no NUL).
    pub fn sumdb_item(db: &str, path: &str) -> Vec<u8> {
        [SUMDB_ITEM_PREFIX, db.as_bytes(), b"\0", path.as_bytes()].concat()
    }

    // === disk: pins (issue 12) ===
    /// Prefix of pins (`pin/<pattern>` → JSON `PinRecord`).
    pub const PIN_PREFIX: &[u8] = b"pin/";

    /// The key of a pin.
    pub fn pin(pattern: &str) -> Vec<u8> {
        [PIN_PREFIX, pattern.as_bytes()].concat()
    }
}

/// Keys of the `raft_snapshot` tree.
pub(crate) mod snapshot_key {
    /// The current snapshot's JSON `SnapshotMeta`.
    pub const META: &[u8] = b"meta";
    /// The name of the current snapshot's file in the snapshot directory.
    pub const FILE: &[u8] = b"file";
    /// Present while the current snapshot is being installed into the state machine (an
    /// install interrupted by a crash is redone at startup).
    pub const INSTALLING: &[u8] = b"installing";
    /// Before snapshot files: the current snapshot's bytes, moved to a file when first read.
    pub const LEGACY_DATA: &[u8] = b"data";
}

/// Handles to the state-machine trees (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct SmTrees {
    /// `sm_meta`: last applied log id, membership, counters.
    pub meta: sled::Tree,
    /// `sm_versions`: one record per module version.
    pub versions: sled::Tree,
    /// `sm_lists`: the upstream's `@v/list` answer per module.
    pub lists: sled::Tree,
    /// `sm_latest`: the upstream's `@latest` answer per module.
    pub latest: sled::Tree,
    /// `blob_queue`: blobs this node should fetch (sha256 → JSON `QueueEntry`). Local
    /// bookkeeping, not replicated state: apply adds to it, the repair worker drains it, and
    /// snapshots neither carry nor clear it.
    pub blob_queue: sled::Tree,
    /// `repair_state`: the repair worker's own persistent state (last scrub time). Local.
    pub repair_state: sled::Tree,
}

/// The sled database and all its trees (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct MetaDb {
    /// The database itself (flush goes through the flusher task only).
    pub db: sled::Db,
    /// `raft_meta`: vote, committed, last purged, identity.
    pub raft_meta: sled::Tree,
    /// `raft_log`: the Raft log.
    pub raft_log: sled::Tree,
    /// `raft_snapshot`: the current snapshot.
    pub raft_snapshot: sled::Tree,
    /// The state machine.
    pub sm: SmTrees,
    /// Where snapshot files live.
    pub snapshots: SnapshotDir,
}

/// How long `open` retries while another handle in this process still holds the sled lock.
const LOCK_RETRY: Duration = Duration::from_secs(10);

impl MetaDb {
    /// Opens (or creates) the database in `dir`, retrying for a while if the directory is still
    /// locked by a previous instance that is shutting down.
    pub(crate) async fn open(dir: &Path, cache_bytes: u64) -> Result<MetaDb, ConsensusError> {
        let deadline = tokio::time::Instant::now() + LOCK_RETRY;
        loop {
            let path = dir.to_path_buf();
            let res =
                tokio::task::spawn_blocking(move || MetaDb::open_blocking(&path, cache_bytes))
                    .await
                    .map_err(ConsensusError::Task)?;
            match res {
                Err(ConsensusError::Open { source, .. })
                    if is_lock_error(&source) && tokio::time::Instant::now() < deadline =>
                {
                    tracing::debug!(path = %dir.display(), "metadata store locked; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }

    fn open_blocking(dir: &PathBuf, cache_bytes: u64) -> Result<MetaDb, ConsensusError> {
        let open_err = |source| ConsensusError::Open {
            path: dir.clone(),
            source,
        };
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .mode(sled::Mode::LowSpace)
            .open()
            .map_err(open_err)?;
        let sm = SmTrees {
            meta: db.open_tree("sm_meta")?,
            versions: db.open_tree("sm_versions")?,
            lists: db.open_tree("sm_lists")?,
            latest: db.open_tree("sm_latest")?,
            blob_queue: db.open_tree("blob_queue")?,
            repair_state: db.open_tree("repair_state")?,
        };
        Ok(MetaDb {
            raft_meta: db.open_tree("raft_meta")?,
            raft_log: db.open_tree("raft_log")?,
            raft_snapshot: db.open_tree("raft_snapshot")?,
            sm,
            db,
            snapshots: SnapshotDir::open(dir).map_err(|e| ConsensusError::Open {
                path: dir.clone(),
                source: e.into(),
            })?,
        })
    }

    /// Binds the directory to `node_id` and the on-disk format on first use; afterwards refuses
    /// a different node id or format (a node must never reuse another node's log).
    pub(crate) fn check_identity(&self, node_id: NodeId) -> Result<(), ConsensusError> {
        match read_u64(&self.raft_meta, meta_key::DATA_VERSION)? {
            Some(found) if found != DATA_VERSION => {
                return Err(ConsensusError::DataVersion {
                    found,
                    supported: DATA_VERSION,
                })
            }
            Some(_) => {}
            None => {
                self.raft_meta
                    .insert(meta_key::DATA_VERSION, &DATA_VERSION.to_be_bytes())?;
            }
        }
        match read_u64(&self.raft_meta, meta_key::NODE_ID)? {
            Some(stored) if stored != node_id => Err(ConsensusError::NodeIdMismatch {
                stored,
                given: node_id,
            }),
            Some(_) => Ok(()),
            None => {
                self.raft_meta
                    .insert(meta_key::NODE_ID, &node_id.to_be_bytes())?;
                Ok(())
            }
        }
    }
}

fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

/// The `raft_log` key of a log index: big-endian, so byte order is numeric order.
pub(crate) fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The `sm_versions` key of a module version. Module paths never contain `@`, so the prefix
/// `module@` selects exactly one module's versions (`a` never matches `ab@…`).
pub(crate) fn version_key(module: &str, version: &str) -> Vec<u8> {
    let mut key = version_prefix(module);
    key.extend_from_slice(version.as_bytes());
    key
}

/// The `sm_versions` key prefix of all versions of `module`.
pub(crate) fn version_prefix(module: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(module.len() + 1);
    key.extend_from_slice(module.as_bytes());
    key.push(b'@');
    key
}

/// Decodes a big-endian u64 value (`None` if absent or malformed).
pub(crate) fn decode_u64(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
}

/// Reads a big-endian u64 value.
pub(crate) fn read_u64(tree: &sled::Tree, key: &[u8]) -> Result<Option<u64>, sled::Error> {
    Ok(tree.get(key)?.and_then(|v| decode_u64(&v)))
}

/// A JSON value could not be read from sled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JsonReadError {
    /// sled failed.
    #[error(transparent)]
    Sled(#[from] sled::Error),
    /// The stored bytes are not the expected JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Reads and decodes a JSON value.
pub(crate) fn read_json<T: DeserializeOwned>(
    tree: &sled::Tree,
    key: &[u8],
) -> Result<Option<T>, JsonReadError> {
    match tree.get(key)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

/// Encodes a value as JSON.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(value)
}
