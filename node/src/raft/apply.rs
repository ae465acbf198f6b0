//! Deterministic, idempotent apply of committed entries to the state-machine trees.
//!
//! One sled transaction covers a whole batch of entries: the data changes, `last_applied`, the
//! membership and the version counter commit together or not at all. Apply never reads the clock
//! and decides only from the command and the stored records, so every replica reaches the same
//! state.
//!
//! Besides the replicated trees, a `PutVersion` that records a zip also adds the blob to this
//! node's local `blob_queue` (see `queue.rs`) in the same transaction, so the repair worker
//! fetches every blob the state references even if the node crashes right after applying.

use openraft::{Entry, EntryPayload, LogId, StoredMembership};
use sled::transaction::{
    ConflictableTransactionError as TxError, TransactionError, TransactionalTree,
};
use sled::Transactional;

use super::db::{decode_u64, sm_key, version_key, SmTrees};
use super::policy;
use super::queue::enqueue_in_tx;
use super::{NodeAddr, NodeId, TypeConfig};
use crate::store::meta::PinRecord;
use crate::store::meta::{
    LatestRecord, ListRecord, MetaCmd, MetaResp, QuarantineRecord, SumdbItem, TreeHeadRecord,
    VersionRecord,
};

/// Why a batch could not be applied (the transaction was rolled back).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    /// sled failed.
    #[error("metadata store error: {0}")]
    Sled(#[from] sled::Error),
    /// A stored or new value could not be (de)serialized.
    #[error("cannot encode or decode a state-machine record: {0}")]
    Json(#[from] serde_json::Error),
}

type TxResult<T> = Result<T, TxError<ApplyError>>;

/// The transactional views of the state-machine trees.
struct Tx<'a> {
    meta: &'a TransactionalTree,
    versions: &'a TransactionalTree,
    lists: &'a TransactionalTree,
    latest: &'a TransactionalTree,
    /// This node's blob fetch queue (local bookkeeping, not replicated state).
    queue: &'a TransactionalTree,
}

/// Applies `entries` in one transaction and returns one response per entry.
pub(crate) fn apply_entries(
    trees: &SmTrees,
    entries: &[Entry<TypeConfig>],
) -> Result<Vec<MetaResp>, ApplyError> {
    let all = (
        &trees.meta,
        &trees.versions,
        &trees.lists,
        &trees.latest,
        &trees.blob_queue,
    );
    let res = all.transaction(|(meta, versions, lists, latest, queue)| {
        let tx = Tx {
            meta,
            versions,
            lists,
            latest,
            queue,
        };
        apply_in_tx(&tx, entries)
    });
    res.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => ApplyError::Sled(e),
    })
}

fn apply_in_tx(tx: &Tx<'_>, entries: &[Entry<TypeConfig>]) -> TxResult<Vec<MetaResp>> {
    let mut count = tx
        .meta
        .get(sm_key::VERSION_COUNT)?
        .and_then(|v| decode_u64(&v))
        .unwrap_or(0);
    let mut out = Vec::with_capacity(entries.len());
    let mut last_applied: Option<LogId<NodeId>> = None;
    let mut membership: Option<StoredMembership<NodeId, NodeAddr>> = None;
    for entry in entries {
        last_applied = Some(entry.log_id);
        let resp = match &entry.payload {
            EntryPayload::Blank => MetaResp::Unchanged,
            EntryPayload::Membership(m) => {
                membership = Some(StoredMembership::new(Some(entry.log_id), m.clone()));
                MetaResp::Unchanged
            }
            EntryPayload::Normal(cmd) => apply_cmd(tx, cmd, &mut count)?,
        };
        out.push(resp);
    }
    if let Some(m) = membership {
        tx.meta.insert(sm_key::MEMBERSHIP, json(&m)?)?;
    }
    if last_applied.is_some() {
        tx.meta.insert(sm_key::LAST_APPLIED, json(&last_applied)?)?;
        tx.meta
            .insert(sm_key::VERSION_COUNT, &count.to_be_bytes())?;
    }
    Ok(out)
}

fn apply_cmd(tx: &Tx<'_>, cmd: &MetaCmd, count: &mut u64) -> TxResult<MetaResp> {
    match cmd {
        MetaCmd::PutVersion(rec) => put_version(tx, rec, count),
        MetaCmd::PutVerifiedVersion {
            record,
            db,
            answers,
        } => {
            put_sumdb_items(tx, db, answers)?;
            put_version(tx, record, count)
        }
        MetaCmd::PutList {
            module,
            versions,
            fetched_at_ms,
        } => {
            let rec = ListRecord {
                versions: versions.clone(),
                fetched_at_ms: *fetched_at_ms,
            };
            put_if_newer(tx.lists, module, &rec, |r: &ListRecord| r.fetched_at_ms)
        }
        MetaCmd::PutLatest {
            module,
            info,
            fetched_at_ms,
        } => {
            let rec = LatestRecord {
                info: info.clone(),
                fetched_at_ms: *fetched_at_ms,
            };
            put_if_newer(tx.latest, module, &rec, |r: &LatestRecord| r.fetched_at_ms)
        }
        MetaCmd::PutTreeHead { db, head } => put_tree_head(tx, db, head),
        MetaCmd::MarkForked { db, evidence } => mark_forked(tx, db, evidence),
        MetaCmd::PutSumdbItems { db, items } => put_sumdb_items(tx, db, items),
        MetaCmd::MarkVerified {
            module,
            version,
            mod_h1,
            zip_h1,
        } => mark_verified(tx, module, version, mod_h1, zip_h1),
        MetaCmd::Quarantine {
            module,
            version,
            reason,
        } => quarantine(tx, module, version, reason, count),
        // === disk: pins (issue 12) ===
        MetaCmd::Pin(pin) => put_pin(tx, pin),
        MetaCmd::Unpin { pattern } => remove_pin(tx, pattern),
        // === operator policy (issue 12) ===
        MetaCmd::Deny(rule) => policy::apply_deny(tx.meta, rule),
        MetaCmd::LiftDeny { pattern, version } => {
            policy::apply_lift_deny(tx.meta, pattern, version.as_deref())
        }
        MetaCmd::Purge(tomb) => policy::apply_purge(tx.meta, tx.versions, tomb, count),
        MetaCmd::LiftPurge { module, version } => {
            policy::apply_lift_purge(tx.meta, module, version)
        }
        MetaCmd::IndexBackfill { versions } => {
            policy::apply_backfill(tx.meta, tx.versions, versions)
        }
    }
}

fn stored_head(tx: &Tx<'_>, db: &str) -> TxResult<Option<TreeHeadRecord>> {
    match tx.meta.get(sm_key::sumdb_head(db))? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(abort)?)),
        None => Ok(None),
    }
}

/// Stores a larger tree head; a forked database keeps its evidence and refuses new heads. Two
/// signed heads of the same size with different hashes are a fork by themselves: the database
/// is marked forked (the proposer proved the new head against an older stored one, and another
/// verification recorded its rival first).
fn put_tree_head(tx: &Tx<'_>, db: &str, head: &TreeHeadRecord) -> TxResult<MetaResp> {
    if let Some(stored) = stored_head(tx, db)? {
        if stored.forked.is_none() && stored.size == head.size && stored.hash != head.hash {
            let evidence = format!(
                "two signed tree heads of size {}: hashes {} and {}",
                head.size, stored.hash, head.hash
            );
            return mark_forked(tx, db, &evidence);
        }
        if stored.forked.is_some() || stored.size >= head.size {
            return Ok(MetaResp::Unchanged);
        }
    }
    let head = TreeHeadRecord {
        forked: None,
        ..head.clone()
    };
    tx.meta.insert(sm_key::sumdb_head(db), json(&head)?)?;
    Ok(MetaResp::Applied)
}

fn stored_version(tx: &Tx<'_>, key: &[u8]) -> TxResult<Option<VersionRecord>> {
    match tx.versions.get(key)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(abort)?)),
        None => Ok(None),
    }
}

/// Sets the verified flag and the database's zip hash of a stored version whose hashes are the
/// database's.
fn mark_verified(
    tx: &Tx<'_>,
    module: &str,
    version: &str,
    mod_h1: &str,
    zip_h1: &str,
) -> TxResult<MetaResp> {
    let key = version_key(module, version);
    let Some(mut rec) = stored_version(tx, &key)? else {
        return Ok(MetaResp::Unchanged);
    };
    if rec.sumdb_verified {
        return Ok(MetaResp::Unchanged);
    }
    let zip_differs = rec.zip.as_ref().is_some_and(|z| z.h1 != zip_h1);
    if rec.mod_h1 != mod_h1 || zip_differs {
        return Ok(conflict(format!(
            "{module}@{version} does not hold the database's hashes ({mod_h1}, {zip_h1})"
        )));
    }
    rec.sumdb_verified = true;
    rec.sumdb_zip_h1 = Some(zip_h1.to_owned());
    tx.versions.insert(key, json(&rec)?)?;
    Ok(MetaResp::Applied)
}

/// Moves a stored version to the quarantine.
fn quarantine(
    tx: &Tx<'_>,
    module: &str,
    version: &str,
    reason: &str,
    count: &mut u64,
) -> TxResult<MetaResp> {
    let key = version_key(module, version);
    let Some(record) = stored_version(tx, &key)? else {
        return Ok(MetaResp::Unchanged);
    };
    let q = QuarantineRecord {
        record,
        reason: reason.to_owned(),
    };
    tx.meta
        .insert(sm_key::quarantine(module, version), json(&q)?)?;
    tx.versions.remove(key)?;
    *count = count.saturating_sub(1);
    policy::unindex(tx.meta, module, version)?;
    Ok(MetaResp::Applied)
}

/// Stores answers not stored yet (they are immutable: a second copy changes nothing).
fn put_sumdb_items(tx: &Tx<'_>, db: &str, items: &[SumdbItem]) -> TxResult<MetaResp> {
    let mut resp = MetaResp::Unchanged;
    for item in items {
        let key = sm_key::sumdb_item(db, &item.path);
        if tx.meta.get(&key)?.is_none() {
            tx.meta.insert(key, item.body.as_slice())?;
            resp = MetaResp::Applied;
        }
    }
    Ok(resp)
}

/// Marks `db` forked, keeping the stored head (the last one verified) and the first evidence.
fn mark_forked(tx: &Tx<'_>, db: &str, evidence: &str) -> TxResult<MetaResp> {
    let mut head = stored_head(tx, db)?.unwrap_or(TreeHeadRecord {
        note: Vec::new(),
        size: 0,
        hash: String::new(),
        forked: None,
        recorded_at_ms: 0,
    });
    if head.forked.is_some() {
        return Ok(MetaResp::Unchanged);
    }
    head.forked = Some(evidence.to_owned());
    tx.meta.insert(sm_key::sumdb_head(db), json(&head)?)?;
    Ok(MetaResp::Applied)
}

/// Inserts a version; adds a zip to a version stored without one; otherwise compares. A zip
/// newly recorded is queued for this node to fetch.
fn put_version(tx: &Tx<'_>, rec: &VersionRecord, count: &mut u64) -> TxResult<MetaResp> {
    if rec.module.contains('@') {
        return Ok(conflict("module path contains '@'".to_string()));
    }
    if let Some(refusal) = policy::tombstoned(tx.meta, rec)? {
        return Ok(refusal);
    }
    let versions = tx.versions;
    let key = version_key(&rec.module, &rec.version);
    let Some(bytes) = versions.get(&key)? else {
        versions.insert(key, json(rec)?)?;
        policy::append_index(tx.meta, rec)?;
        *count += 1;
        if let Some(zip) = &rec.zip {
            enqueue_in_tx(tx.queue, &zip.sha256, zip.size)?;
        }
        return Ok(MetaResp::Applied);
    };
    let mut stored: VersionRecord = serde_json::from_slice(&bytes).map_err(abort)?;
    if let Some(reason) = immutable_difference(&stored, rec) {
        return Ok(conflict(reason));
    }
    match (&stored.zip, &rec.zip) {
        (None, Some(zip)) => {
            stored.zip = Some(zip.clone());
            versions.insert(key, json(&stored)?)?;
            enqueue_in_tx(tx.queue, &zip.sha256, zip.size)?;
            Ok(MetaResp::Applied)
        }
        (Some(old), Some(new)) if old != new => Ok(conflict(format!(
            "zip differs: stored sha256 {} size {} h1 {}, proposed sha256 {} size {} h1 {}",
            old.sha256, old.size, old.h1, new.sha256, new.size, new.h1
        ))),
        _ => Ok(MetaResp::Unchanged),
    }
}

/// What differs between the immutable parts (`.info`, `.mod`, go.mod `h1:`) of two records.
fn immutable_difference(stored: &VersionRecord, new: &VersionRecord) -> Option<String> {
    if stored.info != new.info {
        return Some("info differs from the stored record".to_string());
    }
    if stored.gomod != new.gomod {
        return Some("go.mod differs from the stored record".to_string());
    }
    if stored.mod_h1 != new.mod_h1 {
        return Some(format!(
            "go.mod h1 differs: stored {}, proposed {}",
            stored.mod_h1, new.mod_h1
        ));
    }
    None
}

/// Stores `rec` under `module` if absent or if `fetched_at` of `rec` is newer than the stored one.
fn put_if_newer<T, F>(
    tree: &TransactionalTree,
    module: &str,
    rec: &T,
    fetched_at: F,
) -> TxResult<MetaResp>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
    F: Fn(&T) -> i64,
{
    if let Some(bytes) = tree.get(module.as_bytes())? {
        let stored: T = serde_json::from_slice(&bytes).map_err(abort)?;
        if fetched_at(&stored) >= fetched_at(rec) {
            return Ok(MetaResp::Unchanged);
        }
    }
    tree.insert(module.as_bytes(), json(rec)?)?;
    Ok(MetaResp::Applied)
}

// === disk: pins (issue 12) ===

/// Stores a pin unless the pattern is pinned already (the first record, with its author, stays).
fn put_pin(tx: &Tx<'_>, pin: &PinRecord) -> TxResult<MetaResp> {
    let key = sm_key::pin(&pin.pattern);
    if tx.meta.get(&key)?.is_some() {
        return Ok(MetaResp::Unchanged);
    }
    tx.meta.insert(key, json(pin)?)?;
    Ok(MetaResp::Applied)
}

/// Removes a pin if present.
fn remove_pin(tx: &Tx<'_>, pattern: &str) -> TxResult<MetaResp> {
    Ok(match tx.meta.remove(sm_key::pin(pattern))? {
        Some(_) => MetaResp::Applied,
        None => MetaResp::Unchanged,
    })
}

fn conflict(reason: String) -> MetaResp {
    MetaResp::Conflict { reason }
}

fn json<T: serde::Serialize>(value: &T) -> TxResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(abort)
}

fn abort(e: serde_json::Error) -> TxError<ApplyError> {
    TxError::Abort(ApplyError::Json(e))
}
