//! The snapshot format: every state-machine record as one JSON document.
//!
//! A snapshot is built under the state machine's read lock (no apply runs meanwhile), so it is a
//! consistent view at `last_applied`. Installing replaces the whole state machine in one sled
//! transaction: old keys are removed and the snapshot's records written, together with
//! `last_applied`, the membership and the version counter. A JSON document in memory is fine
//! while the metadata is tens of MB; a framed file format can replace it behind these two
//! functions.

use std::convert::Infallible;

use openraft::{LogId, StoredMembership};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::db::{read_json, sm_key, version_key, JsonReadError, SmTrees};
use super::{NodeAddr, NodeId};
use crate::store::meta::{
    LatestRecord, ListRecord, QuarantineRecord, SumdbItem, TreeHeadRecord, VersionRecord,
};

/// Version of [`SnapshotBody`]; a receiver refuses formats it does not know.
const FORMAT: u32 = 1;

/// The serialized state machine.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SnapshotBody {
    /// [`FORMAT`] at the time of writing.
    format: u32,
    /// Every version record.
    versions: Vec<VersionRecord>,
    /// Every list record, by module path.
    lists: Vec<(String, ListRecord)>,
    /// Every `@latest` record, by module path.
    latest: Vec<(String, LatestRecord)>,
    /// Every checksum database's tree head, by database name.
    #[serde(default)]
    sumdb_heads: Vec<(String, TreeHeadRecord)>,
    /// Every replicated checksum-database answer, by (database name, path).
    #[serde(default)]
    sumdb_items: Vec<(String, SumdbItem)>,
    /// Every quarantined version.
    #[serde(default)]
    quarantine: Vec<QuarantineRecord>,
    /// Every pin (issue 12, disk).
    #[serde(default)]
    pins: Vec<crate::store::meta::PinRecord>,
    /// Deny rules, tombstones and the `/index` feed (issue 12).
    #[serde(default)]
    policy: super::policy::PolicySnapshot,
}

/// Building or installing a snapshot failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SnapshotError {
    /// sled failed.
    #[error("metadata store error: {0}")]
    Sled(#[from] sled::Error),
    /// A record or the snapshot could not be (de)serialized.
    #[error("cannot encode or decode snapshot data: {0}")]
    Json(#[from] serde_json::Error),
    /// The snapshot was written in an unknown format.
    #[error("unsupported snapshot format {0}")]
    Format(u32),
}

impl From<super::policy::SnapshotReadError> for SnapshotError {
    fn from(e: super::policy::SnapshotReadError) -> Self {
        match e {
            super::policy::SnapshotReadError::Sled(e) => SnapshotError::Sled(e),
            super::policy::SnapshotReadError::Json(e) => SnapshotError::Json(e),
        }
    }
}

impl From<JsonReadError> for SnapshotError {
    fn from(e: JsonReadError) -> Self {
        match e {
            JsonReadError::Sled(e) => SnapshotError::Sled(e),
            JsonReadError::Json(e) => SnapshotError::Json(e),
        }
    }
}

/// What a built snapshot covers.
pub(crate) struct Built {
    /// The serialized state machine.
    pub data: Vec<u8>,
    /// The last log id applied to it.
    pub last_applied: Option<LogId<NodeId>>,
    /// The membership applied to it.
    pub membership: StoredMembership<NodeId, NodeAddr>,
}

/// Serializes the state machine. The caller must hold the state machine's read lock.
pub(crate) fn build(trees: &SmTrees) -> Result<Built, SnapshotError> {
    let last_applied = read_json::<Option<LogId<NodeId>>>(&trees.meta, sm_key::LAST_APPLIED)?;
    let membership = read_json(&trees.meta, sm_key::MEMBERSHIP)?.unwrap_or_default();
    let mut body = SnapshotBody {
        format: FORMAT,
        ..SnapshotBody::default()
    };
    for item in trees.versions.iter() {
        let (_, v) = item?;
        body.versions.push(serde_json::from_slice(&v)?);
    }
    body.lists = read_by_module(&trees.lists)?;
    body.latest = read_by_module(&trees.latest)?;
    for item in trees.meta.scan_prefix(sm_key::SUMDB_HEAD_PREFIX) {
        let (k, v) = item?;
        let db = String::from_utf8_lossy(&k[sm_key::SUMDB_HEAD_PREFIX.len()..]).into_owned();
        body.sumdb_heads.push((db, serde_json::from_slice(&v)?));
    }
    for item in trees.meta.scan_prefix(sm_key::QUARANTINE_PREFIX) {
        let (_, v) = item?;
        body.quarantine.push(serde_json::from_slice(&v)?);
    }
    for item in trees.meta.scan_prefix(sm_key::PIN_PREFIX) {
        let (_, v) = item?;
        body.pins.push(serde_json::from_slice(&v)?);
    }
    for item in trees.meta.scan_prefix(sm_key::SUMDB_ITEM_PREFIX) {
        let (k, v) = item?;
        let rest = String::from_utf8_lossy(&k[sm_key::SUMDB_ITEM_PREFIX.len()..]).into_owned();
        if let Some((db, path)) = rest.split_once('\0') {
            let item = SumdbItem {
                path: path.to_owned(),
                body: v.to_vec(),
            };
            body.sumdb_items.push((db.to_owned(), item));
        }
    }
    body.policy = super::policy::snapshot_build(&trees.meta)?;
    Ok(Built {
        data: serde_json::to_vec(&body)?,
        last_applied: last_applied.flatten(),
        membership,
    })
}

fn read_by_module<T: serde::de::DeserializeOwned>(
    tree: &sled::Tree,
) -> Result<Vec<(String, T)>, SnapshotError> {
    let mut out = Vec::new();
    for item in tree.iter() {
        let (k, v) = item?;
        out.push((
            String::from_utf8_lossy(&k).into_owned(),
            serde_json::from_slice(&v)?,
        ));
    }
    Ok(out)
}

/// Replaces the whole state machine with `data` at `last_applied`/`membership`, atomically.
/// The caller must hold the state machine's write lock.
pub(crate) fn install(
    trees: &SmTrees,
    data: &[u8],
    last_applied: &Option<LogId<NodeId>>,
    membership: &StoredMembership<NodeId, NodeAddr>,
) -> Result<(), SnapshotError> {
    let body: SnapshotBody = serde_json::from_slice(data)?;
    if body.format != FORMAT {
        return Err(SnapshotError::Format(body.format));
    }
    let mut versions = clear_batch(&trees.versions)?;
    for rec in &body.versions {
        versions.insert(
            version_key(&rec.module, &rec.version),
            serde_json::to_vec(rec)?,
        );
    }
    let lists = module_batch(&trees.lists, &body.lists)?;
    let latest = module_batch(&trees.latest, &body.latest)?;
    let mut meta = clear_batch(&trees.meta)?;
    meta.insert(sm_key::LAST_APPLIED, serde_json::to_vec(last_applied)?);
    meta.insert(sm_key::MEMBERSHIP, serde_json::to_vec(membership)?);
    meta.insert(
        sm_key::VERSION_COUNT,
        &(body.versions.len() as u64).to_be_bytes(),
    );
    for (db, head) in &body.sumdb_heads {
        meta.insert(sm_key::sumdb_head(db), serde_json::to_vec(head)?);
    }
    for q in &body.quarantine {
        let key = sm_key::quarantine(&q.record.module, &q.record.version);
        meta.insert(key, serde_json::to_vec(q)?);
    }
    for (db, item) in &body.sumdb_items {
        meta.insert(sm_key::sumdb_item(db, &item.path), item.body.as_slice());
    }
    for pin in &body.pins {
        meta.insert(sm_key::pin(&pin.pattern), serde_json::to_vec(pin)?);
    }
    super::policy::snapshot_install(&mut meta, &body.policy)?;
    let res: Result<(), TransactionError<Infallible>> =
        (&trees.meta, &trees.versions, &trees.lists, &trees.latest).transaction(|(m, v, l, t)| {
            m.apply_batch(&meta)?;
            v.apply_batch(&versions)?;
            l.apply_batch(&lists)?;
            t.apply_batch(&latest)?;
            Ok::<(), ConflictableTransactionError<Infallible>>(())
        });
    match res {
        Ok(()) => Ok(()),
        Err(TransactionError::Storage(e)) => Err(SnapshotError::Sled(e)),
        Err(TransactionError::Abort(never)) => match never {},
    }
}

/// A batch removing every key of `tree` (later inserts of the same key win).
fn clear_batch(tree: &sled::Tree) -> Result<sled::Batch, SnapshotError> {
    let mut batch = sled::Batch::default();
    for key in tree.iter().keys() {
        batch.remove(key?);
    }
    Ok(batch)
}

fn module_batch<T: Serialize>(
    tree: &sled::Tree,
    records: &[(String, T)],
) -> Result<sled::Batch, SnapshotError> {
    let mut batch = clear_batch(tree)?;
    for (module, rec) in records {
        batch.insert(module.as_bytes(), serde_json::to_vec(rec)?);
    }
    Ok(batch)
}

// === backup (`cairn backup verify`, `cairn restore`) ===

/// Checks that `data` is a snapshot body this build can install: known format, every record
/// decodable. Writes nothing.
pub(crate) fn check(data: &[u8]) -> Result<(), SnapshotError> {
    let body: SnapshotBody = serde_json::from_slice(data)?;
    if body.format != FORMAT {
        return Err(SnapshotError::Format(body.format));
    }
    Ok(())
}

/// Every version record of a snapshot body (for the blob manifest of a backup).
pub(crate) fn versions(data: &[u8]) -> Result<Vec<VersionRecord>, SnapshotError> {
    let body: SnapshotBody = serde_json::from_slice(data)?;
    if body.format != FORMAT {
        return Err(SnapshotError::Format(body.format));
    }
    Ok(body.versions)
}
