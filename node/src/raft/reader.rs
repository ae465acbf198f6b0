//! [`MetaReader`]: local, leaderless reads of this node's applied state machine.
//!
//! It reads sled directly, one record per get, without the state machine's lock: sled updates
//! each key atomically, and a snapshot install swaps every key in one transaction, so a read
//! sees either the old or the new record. Reads may lag the leader by the replication delay,
//! which a mirror accepts (DESIGN.md, "Read path").

use serde::Deserialize;

use super::db::{read_u64, sm_key, version_key, version_prefix, SmTrees};
use crate::store::meta::{LatestRecord, ListRecord, TreeHeadRecord, VersionRecord, ZipRef};

/// Reading the local state machine failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// sled failed to read.
    #[error("metadata store read failed: {0}")]
    Storage(#[from] sled::Error),
    /// A stored record is not valid JSON for its type (corruption or a format bug).
    #[error("stored {kind} record for {key} is corrupt: {source}")]
    Corrupt {
        /// The record type (`version`, `list`, `latest`).
        kind: &'static str,
        /// The key read.
        key: String,
        /// The decoder error.
        #[source]
        source: serde_json::Error,
    },
}

/// A cheap, cloneable read handle to this node's applied state (`Send + Sync`).
///
/// Holding a reader keeps the sled database open; drop all readers before reopening the same
/// directory in the same process.
#[derive(Clone, Debug)]
pub struct MetaReader {
    trees: SmTrees,
}

impl MetaReader {
    pub(crate) fn new(trees: SmTrees) -> MetaReader {
        MetaReader { trees }
    }

    /// The record of `module`@`version` (both unescaped), if this node has applied one.
    pub fn get_version(
        &self,
        module: &str,
        version: &str,
    ) -> Result<Option<VersionRecord>, MetaError> {
        let key = version_key(module, version);
        decode(self.trees.versions.get(&key)?, "version", || {
            format!("{module}@{version}")
        })
    }

    /// Every version recorded for exactly this module path, in byte order of the version string.
    pub fn module_versions(&self, module: &str) -> Result<Vec<String>, MetaError> {
        let prefix = version_prefix(module);
        let mut out = Vec::new();
        for key in self.trees.versions.scan_prefix(&prefix).keys() {
            let key = key?;
            out.push(String::from_utf8_lossy(&key[prefix.len()..]).into_owned());
        }
        Ok(out)
    }

    /// The cached `@v/list` answer for `module`.
    pub fn get_list(&self, module: &str) -> Result<Option<ListRecord>, MetaError> {
        decode(self.trees.lists.get(module.as_bytes())?, "list", || {
            module.to_string()
        })
    }

    /// The cached `@latest` answer for `module`.
    pub fn get_latest(&self, module: &str) -> Result<Option<LatestRecord>, MetaError> {
        decode(self.trees.latest.get(module.as_bytes())?, "latest", || {
            module.to_string()
        })
    }

    /// The replicated tree head of checksum database `db`, if one was verified.
    pub fn get_tree_head(&self, db: &str) -> Result<Option<TreeHeadRecord>, MetaError> {
        let key = sm_key::sumdb_head(db);
        decode(self.trees.meta.get(key)?, "sumdb tree head", || {
            db.to_string()
        })
    }

    /// A replicated checksum-database answer (`lookup/…`, `tile/…`) of `db`.
    pub fn get_sumdb_item(&self, db: &str, path: &str) -> Result<Option<Vec<u8>>, MetaError> {
        let value = self.trees.meta.get(sm_key::sumdb_item(db, path))?;
        Ok(value.map(|v| v.to_vec()))
    }

    /// Every applied version record, in key order. Lazy, like [`Self::zip_refs`].
    pub fn versions(
        &self,
    ) -> impl Iterator<Item = Result<VersionRecord, MetaError>> + Send + 'static {
        self.trees.versions.iter().map(|item| {
            let (key, value) = item?;
            serde_json::from_slice(&value).map_err(|source| MetaError::Corrupt {
                kind: "version",
                key: String::from_utf8_lossy(&key).into_owned(),
                source,
            })
        })
    }

    /// Every zip referenced by an applied version record, in key order. Lazy: it walks sled one
    /// record at a time (each `next` is a short blocking read) and decodes only the `zip`
    /// field, so it suits a background scan over the whole state.
    pub fn zip_refs(&self) -> impl Iterator<Item = Result<ZipRef, MetaError>> + Send + 'static {
        self.trees.versions.iter().filter_map(|item| {
            let (key, value) = match item {
                Ok(kv) => kv,
                Err(e) => return Some(Err(MetaError::Storage(e))),
            };
            match serde_json::from_slice::<ZipOnly>(&value) {
                Ok(rec) => rec.zip.map(Ok),
                Err(source) => Some(Err(MetaError::Corrupt {
                    kind: "version",
                    key: String::from_utf8_lossy(&key).into_owned(),
                    source,
                })),
            }
        })
    }

    /// The state-machine trees (for local bookkeeping stored next to them, see `queue.rs`).
    pub(super) fn trees(&self) -> &SmTrees {
        &self.trees
    }

    /// How many module versions this node has applied (0 if the counter cannot be read).
    pub fn version_count(&self) -> u64 {
        match read_u64(&self.trees.meta, sm_key::VERSION_COUNT) {
            Ok(n) => n.unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the version counter");
                0
            }
        }
    }
}

/// The part of a stored [`VersionRecord`] that a blob scan needs (other fields are skipped).
#[derive(Deserialize)]
struct ZipOnly {
    zip: Option<ZipRef>,
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: Option<sled::IVec>,
    kind: &'static str,
    key: impl FnOnce() -> String,
) -> Result<Option<T>, MetaError> {
    match bytes {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| MetaError::Corrupt {
                kind,
                key: key(),
                source,
            }),
    }
}
