//! Operator policy in the replicated state (issue 12): deny rules, purge tombstones and the
//! commit-ordered `/index` feed.
//!
//! Everything lives in `sm_meta` under its own prefix, so the apply transaction and the
//! snapshot install cover it without new trees:
//!
//! | key                               | value                                   |
//! |-----------------------------------|-----------------------------------------|
//! | `deny/<pattern>\0<version>`       | JSON `DenyRule` (empty version: all)     |
//! | `tombstone/<module>@<version>`    | JSON `Tombstone`                        |
//! | `index/<seq BE u64>`              | JSON `IndexEntry` (seq from 1, no gaps) |
//! | `index_of/<module>@<version>`     | BE u64: the entry the feed shows        |
//! | `index_tail`                      | JSON `IndexTail`                        |
//! | `purge_pending/<sha256>`          | empty: a blob this node should delete   |
//!
//! `purge_pending` is written by apply (deterministically, on every node) but drained by the
//! local purger outside the transaction, and it is not part of snapshots: an install queues
//! the blob of every tombstone instead.

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError as TxError, TransactionalTree};

use super::db::{decode_u64, version_key};
use super::reader::{MetaError, MetaReader};
use super::snapshot::{raw_section, BodyWriter, SnapshotError};
use crate::store::meta::{DenyRule, IndexEntry, MetaResp, Tombstone, VersionRecord};

/// Key prefixes and builders.
pub(crate) mod key {
    /// Prefix of deny rules.
    pub const DENY: &[u8] = b"deny/";
    /// Prefix of tombstones.
    pub const TOMBSTONE: &[u8] = b"tombstone/";
    /// Prefix of index entries.
    pub const INDEX: &[u8] = b"index/";
    /// Prefix of the version → shown index entry map.
    pub const INDEX_OF: &[u8] = b"index_of/";
    /// The last index entry's sequence number and timestamp.
    pub const INDEX_TAIL: &[u8] = b"index_tail";
    /// Prefix of blobs this node should delete.
    pub const PURGE_PENDING: &[u8] = b"purge_pending/";

    /// The key of a deny rule.
    pub fn deny(pattern: &str, version: Option<&str>) -> Vec<u8> {
        let v = version.unwrap_or("");
        [DENY, pattern.as_bytes(), b"\0", v.as_bytes()].concat()
    }

    /// The key of a tombstone.
    pub fn tombstone(module: &str, version: &str) -> Vec<u8> {
        [TOMBSTONE, module.as_bytes(), b"@", version.as_bytes()].concat()
    }

    /// The key of index entry `seq`.
    pub fn index(seq: u64) -> Vec<u8> {
        [INDEX, &seq.to_be_bytes()[..]].concat()
    }

    /// The key of a version's shown index entry.
    pub fn index_of(module: &str, version: &str) -> Vec<u8> {
        [INDEX_OF, module.as_bytes(), b"@", version.as_bytes()].concat()
    }

    /// The key of a pending blob deletion.
    pub fn purge_pending(sha256: &str) -> Vec<u8> {
        [PURGE_PENDING, sha256.as_bytes()].concat()
    }
}

/// The end of the index: its last sequence number and timestamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IndexTail {
    /// The last sequence number used (0: empty).
    pub seq: u64,
    /// The last entry's timestamp (unix µs).
    pub ts_us: i64,
}

type TxResult<T> = Result<T, TxError<super::apply::ApplyError>>;

fn json<T: Serialize>(v: &T) -> TxResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| TxError::Abort(e.into()))
}

fn from_json<T: serde::de::DeserializeOwned>(b: &[u8]) -> TxResult<T> {
    serde_json::from_slice(b).map_err(|e| TxError::Abort(e.into()))
}

/// Why a deny rule is malformed (`None`: it is fine). Checked by the admin RPC before
/// proposing and again by apply, so a bad rule never reaches the state.
pub fn deny_rule_problem(pattern: &str, version: Option<&str>) -> Option<String> {
    if pattern.is_empty() || pattern.contains(',') || pattern.contains('@') {
        return Some(format!(
            "bad pattern {pattern:?}: one module path or glob, without ',' or '@'"
        ));
    }
    if let Err(e) = crate::routing::glob::validate_patterns(pattern) {
        return Some(format!("bad pattern {pattern:?}: {e}"));
    }
    match version {
        Some(v) => version_problem(v),
        None => None,
    }
}

/// Why `version` is not a canonical module version (`None`: it is).
pub fn version_problem(version: &str) -> Option<String> {
    let base = version.strip_suffix("+incompatible").unwrap_or(version);
    if crate::module::is_canonical(base) && !base.contains('+') {
        None
    } else {
        Some(format!(
            "bad version {version:?}: not a canonical semantic version (like v1.2.3)"
        ))
    }
}

/// Applies [`crate::store::meta::MetaCmd::Deny`].
pub(super) fn apply_deny(meta: &TransactionalTree, rule: &DenyRule) -> TxResult<MetaResp> {
    if let Some(reason) = deny_rule_problem(&rule.pattern, rule.version.as_deref()) {
        return Ok(MetaResp::Conflict { reason });
    }
    let k = key::deny(&rule.pattern, rule.version.as_deref());
    let value = json(rule)?;
    if meta
        .get(&k)?
        .is_some_and(|old| old.as_ref() == value.as_slice())
    {
        return Ok(MetaResp::Unchanged);
    }
    meta.insert(k, value)?;
    Ok(MetaResp::Applied)
}

/// Applies [`crate::store::meta::MetaCmd::LiftDeny`].
pub(super) fn apply_lift_deny(
    meta: &TransactionalTree,
    pattern: &str,
    version: Option<&str>,
) -> TxResult<MetaResp> {
    match meta.remove(key::deny(pattern, version))? {
        Some(_) => Ok(MetaResp::Applied),
        None => Ok(MetaResp::Unchanged),
    }
}

/// Applies [`crate::store::meta::MetaCmd::Purge`]: removes the record (refusing an unknown
/// version), writes the tombstone and queues the blob for deletion on this node.
pub(super) fn apply_purge(
    meta: &TransactionalTree,
    versions: &TransactionalTree,
    tomb: &Tombstone,
    count: &mut u64,
) -> TxResult<MetaResp> {
    let tk = key::tombstone(&tomb.module, &tomb.version);
    if meta.get(&tk)?.is_some() {
        return Ok(MetaResp::Unchanged);
    }
    let vk = version_key(&tomb.module, &tomb.version);
    let Some(bytes) = versions.get(&vk)? else {
        return Ok(MetaResp::Conflict {
            reason: format!(
                "{}@{} is not held by the cluster: nothing to purge",
                tomb.module, tomb.version
            ),
        });
    };
    let rec: VersionRecord = from_json(&bytes)?;
    let sha256 = rec.zip.map(|z| z.sha256);
    versions.remove(vk)?;
    *count = count.saturating_sub(1);
    unindex(meta, &tomb.module, &tomb.version)?;
    if let Some(sha) = &sha256 {
        meta.insert(key::purge_pending(sha), &[][..])?;
    }
    let stored = Tombstone {
        sha256,
        ..tomb.clone()
    };
    meta.insert(tk, json(&stored)?)?;
    Ok(MetaResp::Applied)
}

/// Applies [`crate::store::meta::MetaCmd::LiftPurge`].
pub(super) fn apply_lift_purge(
    meta: &TransactionalTree,
    module: &str,
    version: &str,
) -> TxResult<MetaResp> {
    match meta.remove(key::tombstone(module, version))? {
        Some(_) => Ok(MetaResp::Applied),
        None => Ok(MetaResp::Unchanged),
    }
}

/// The refusal of a `PutVersion` for a tombstoned version (`None`: not tombstoned).
pub(super) fn tombstoned(
    meta: &TransactionalTree,
    rec: &VersionRecord,
) -> TxResult<Option<MetaResp>> {
    let Some(bytes) = meta.get(key::tombstone(&rec.module, &rec.version))? else {
        return Ok(None);
    };
    let t: Tombstone = from_json(&bytes)?;
    Ok(Some(MetaResp::Conflict {
        reason: format!(
            "{}@{} was purged ({}); lift the purge first",
            rec.module, rec.version, t.reason
        ),
    }))
}

/// Appends a newly stored version to the index. Its timestamp is the record's `cached_at_ms`
/// (in µs) but at least one µs after the previous entry's, so the feed's timestamps strictly
/// increase and `since` paging has neither gaps nor stalls.
pub(super) fn append_index(meta: &TransactionalTree, rec: &VersionRecord) -> TxResult<()> {
    let tail: IndexTail = match meta.get(key::INDEX_TAIL)? {
        Some(b) => from_json(&b)?,
        None => IndexTail::default(),
    };
    let next = IndexTail {
        seq: tail.seq + 1,
        ts_us: (tail.ts_us + 1).max(rec.cached_at_ms.saturating_mul(1000)),
    };
    let entry = IndexEntry {
        module: rec.module.clone(),
        version: rec.version.clone(),
        ts_us: next.ts_us,
    };
    meta.insert(key::index(next.seq), json(&entry)?)?;
    meta.insert(
        key::index_of(&rec.module, &rec.version),
        &next.seq.to_be_bytes()[..],
    )?;
    meta.insert(key::INDEX_TAIL, json(&next)?)?;
    Ok(())
}

/// Applies [`crate::store::meta::MetaCmd::IndexBackfill`].
pub(super) fn apply_backfill(
    meta: &TransactionalTree,
    versions: &TransactionalTree,
    list: &[(String, String)],
) -> TxResult<MetaResp> {
    let mut resp = MetaResp::Unchanged;
    for (module, version) in list {
        if meta.get(key::index_of(module, version))?.is_some() {
            continue;
        }
        let Some(bytes) = versions.get(version_key(module, version))? else {
            continue;
        };
        let rec: VersionRecord = from_json(&bytes)?;
        append_index(meta, &rec)?;
        resp = MetaResp::Applied;
    }
    Ok(resp)
}

/// Takes a version that is no longer held (purged, quarantined) out of the feed; a later
/// fill appends it again at the end, so a follower sees it once more, at its refill.
pub(super) fn unindex(meta: &TransactionalTree, module: &str, version: &str) -> TxResult<()> {
    meta.remove(key::index_of(module, version))?;
    Ok(())
}

// === snapshot support ===

/// One policy record of a snapshot.
#[derive(Debug)]
pub(crate) enum PolicyRecord {
    /// A deny rule.
    Deny(DenyRule),
    /// A tombstone.
    Tombstone(Tombstone),
    /// An index entry with its sequence number (entries come in order).
    Index(u64, IndexEntry),
    /// Which entry the feed shows for a version (`module@version`, seq).
    IndexOf(String, u64),
}

/// Writes the `policy` object of a snapshot (its fields; the caller opens and closes it).
pub(crate) fn write_snapshot<W: std::io::Write>(
    meta: &sled::Tree,
    out: &mut BodyWriter<W>,
) -> Result<(), SnapshotError> {
    raw_section(out, "deny", meta, key::DENY)?;
    raw_section(out, "tombstones", meta, key::TOMBSTONE)?;
    out.begin_array("index")?;
    for item in meta.scan_prefix(key::INDEX) {
        let (k, v) = item?;
        let seq = decode_u64(&k[key::INDEX.len()..]).unwrap_or(0);
        out.pair_raw(&seq, &v)?;
    }
    out.end_array()?;
    out.begin_array("index_of")?;
    for item in meta.scan_prefix(key::INDEX_OF) {
        let (k, v) = item?;
        let mv = String::from_utf8_lossy(&k[key::INDEX_OF.len()..]);
        out.value(&(&*mv, decode_u64(&v).unwrap_or(0)))?;
    }
    out.end_array()
}

/// Installs policy records into the batch that rebuilds `sm_meta`, tracking the index's end.
#[derive(Debug, Default)]
pub(crate) struct PolicyInstall {
    tail: IndexTail,
}

impl PolicyInstall {
    /// Adds one record to `batch`.
    pub(crate) fn add(
        &mut self,
        batch: &mut sled::Batch,
        rec: PolicyRecord,
    ) -> Result<(), serde_json::Error> {
        match rec {
            PolicyRecord::Deny(rule) => {
                let k = key::deny(&rule.pattern, rule.version.as_deref());
                batch.insert(k, serde_json::to_vec(&rule)?);
            }
            PolicyRecord::Tombstone(t) => {
                batch.insert(
                    key::tombstone(&t.module, &t.version),
                    serde_json::to_vec(&t)?,
                );
                if let Some(sha) = &t.sha256 {
                    batch.insert(key::purge_pending(sha), &[][..]);
                }
            }
            PolicyRecord::Index(seq, entry) => {
                batch.insert(key::index(seq), serde_json::to_vec(&entry)?);
                self.tail = IndexTail {
                    seq,
                    ts_us: entry.ts_us,
                };
            }
            PolicyRecord::IndexOf(mv, seq) => batch.insert(
                [key::INDEX_OF, mv.as_bytes()].concat(),
                &seq.to_be_bytes()[..],
            ),
        }
        Ok(())
    }

    /// Adds the index's end to `batch` once every record was added.
    pub(crate) fn finish(self, batch: &mut sled::Batch) -> Result<(), serde_json::Error> {
        batch.insert(key::INDEX_TAIL, serde_json::to_vec(&self.tail)?);
        Ok(())
    }
}

// === impl MetaReader (policy reads) ===

impl MetaReader {
    /// Every deny rule, in key order (pattern, then version).
    pub fn deny_rules(&self) -> Result<Vec<DenyRule>, MetaError> {
        scan(&self.trees().meta, key::DENY, "deny rule")
    }

    /// Every tombstone, in key order.
    pub fn tombstones(&self) -> Result<Vec<Tombstone>, MetaError> {
        scan(&self.trees().meta, key::TOMBSTONE, "tombstone")
    }

    /// The tombstone of `module@version`, if it was purged.
    pub fn tombstone(&self, module: &str, version: &str) -> Result<Option<Tombstone>, MetaError> {
        let k = key::tombstone(module, version);
        match self.trees().meta.get(&k)? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| MetaError::Corrupt {
                    kind: "tombstone",
                    key: format!("{module}@{version}"),
                    source,
                }),
        }
    }

    /// Up to `limit` feed entries with a timestamp at or after `since_us`, in commit order,
    /// leaving out versions no longer held (purged) and those `visible` refuses.
    pub fn index_page(
        &self,
        since_us: i64,
        limit: usize,
        visible: impl Fn(&str) -> bool,
    ) -> Result<Vec<IndexEntry>, MetaError> {
        let meta = &self.trees().meta;
        let Some(mut seq) = self.first_index_at(since_us)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(entry) = self.index_entry(seq)? else {
                break;
            };
            let shown = meta
                .get(key::index_of(&entry.module, &entry.version))?
                .and_then(|v| decode_u64(&v));
            if shown == Some(seq) && visible(&entry.module) {
                out.push(entry);
            }
            seq += 1;
        }
        Ok(out)
    }

    /// Up to `limit` held versions the feed does not list (stored before it existed), in key
    /// order, as `(module, version)`.
    pub fn unindexed(&self, limit: usize) -> Result<Vec<(String, String)>, MetaError> {
        let trees = self.trees();
        let mut out = Vec::new();
        for k in trees.versions.iter().keys() {
            if out.len() >= limit {
                break;
            }
            let k = k?;
            if trees.meta.get([key::INDEX_OF, &k[..]].concat())?.is_some() {
                continue;
            }
            let mv = String::from_utf8_lossy(&k);
            if let Some((m, v)) = mv.rsplit_once('@') {
                out.push((m.to_owned(), v.to_owned()));
            }
        }
        Ok(out)
    }

    /// Blobs this node should delete (their records were purged).
    pub fn purge_pending(&self) -> Result<Vec<String>, MetaError> {
        let mut out = Vec::new();
        for k in self.trees().meta.scan_prefix(key::PURGE_PENDING).keys() {
            let k = k?;
            out.push(String::from_utf8_lossy(&k[key::PURGE_PENDING.len()..]).into_owned());
        }
        Ok(out)
    }

    /// Forgets a pending deletion once done (local bookkeeping, see the module doc).
    pub fn purge_done(&self, sha256: &str) -> Result<(), MetaError> {
        self.trees().meta.remove(key::purge_pending(sha256))?;
        Ok(())
    }

    fn index_entry(&self, seq: u64) -> Result<Option<IndexEntry>, MetaError> {
        match self.trees().meta.get(key::index(seq))? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| MetaError::Corrupt {
                    kind: "index entry",
                    key: seq.to_string(),
                    source,
                }),
        }
    }

    /// The first sequence number whose timestamp is `>= since_us` (binary search: sequence
    /// numbers have no gaps and timestamps increase).
    fn first_index_at(&self, since_us: i64) -> Result<Option<u64>, MetaError> {
        let tail: IndexTail = match self.trees().meta.get(key::INDEX_TAIL)? {
            None => return Ok(None),
            Some(b) => serde_json::from_slice(&b).map_err(|source| MetaError::Corrupt {
                kind: "index tail",
                key: "index_tail".into(),
                source,
            })?,
        };
        let (mut lo, mut hi) = (1u64, tail.seq + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.index_entry(mid)? {
                Some(e) if e.ts_us < since_us => lo = mid + 1,
                _ => hi = mid,
            }
        }
        Ok((lo <= tail.seq).then_some(lo))
    }
}

fn scan<T: serde::de::DeserializeOwned>(
    tree: &sled::Tree,
    prefix: &[u8],
    kind: &'static str,
) -> Result<Vec<T>, MetaError> {
    let mut out = Vec::new();
    for item in tree.scan_prefix(prefix) {
        let (k, v) = item?;
        out.push(
            serde_json::from_slice(&v).map_err(|source| MetaError::Corrupt {
                kind,
                key: String::from_utf8_lossy(&k).into_owned(),
                source,
            })?,
        );
    }
    Ok(out)
}
