//! Storage for the disk worker (issue 12): the replicated pins, read like any other record, and
//! this node's own bookkeeping in the local `repair_state` tree (never replicated, never in a
//! snapshot): last-served times (`disk_atime/<sha256>`) and blobs evicted on purpose
//! (`disk_evicted/<sha256>`), so LRU order and "evicted, not missing" survive a restart.

use super::db::sm_key;
use super::reader::{MetaError, MetaReader};
use super::Consensus;
use crate::store::meta::PinRecord;

const ATIME_PREFIX: &[u8] = b"disk_atime/";
const EVICTED_PREFIX: &[u8] = b"disk_evicted/";

impl MetaReader {
    /// Every pin, in pattern order.
    pub fn pins(&self) -> Result<Vec<PinRecord>, MetaError> {
        let mut out = Vec::new();
        for item in self.trees().meta.scan_prefix(sm_key::PIN_PREFIX) {
            let (k, v) = item?;
            let pin = serde_json::from_slice(&v).map_err(|source| MetaError::Corrupt {
                kind: "pin",
                key: String::from_utf8_lossy(&k).into_owned(),
                source,
            })?;
            out.push(pin);
        }
        Ok(out)
    }
}

/// This node's local disk bookkeeping (cheap to clone).
#[derive(Clone, Debug)]
pub struct DiskLocal {
    tree: sled::Tree,
}

impl Consensus {
    /// The disk worker's local bookkeeping, stored next to the state machine.
    pub fn disk_local(&self) -> DiskLocal {
        DiskLocal::from_trees(self.reader().trees())
    }
}

impl DiskLocal {
    /// The bookkeeping stored in the state-machine database's local `repair_state` tree.
    pub(crate) fn from_trees(trees: &super::db::SmTrees) -> DiskLocal {
        DiskLocal {
            tree: trees.repair_state.clone(),
        }
    }
}

fn key(prefix: &[u8], sha256: &str) -> Vec<u8> {
    [prefix, sha256.as_bytes()].concat()
}

fn scan(tree: &sled::Tree, prefix: &[u8]) -> Result<Vec<(String, u64)>, sled::Error> {
    let mut out = Vec::new();
    for item in tree.scan_prefix(prefix) {
        let (k, v) = item?;
        let sha = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
        let mut b = [0u8; 8];
        if v.len() == 8 {
            b.copy_from_slice(&v);
        }
        out.push((sha, u64::from_be_bytes(b)));
    }
    Ok(out)
}

impl DiskLocal {
    /// Stores last-served times (one batch).
    pub fn save_atimes(&self, entries: &[(String, u64)]) -> Result<(), sled::Error> {
        let mut batch = sled::Batch::default();
        for (sha, ms) in entries {
            batch.insert(key(ATIME_PREFIX, sha), &ms.to_be_bytes());
        }
        self.tree.apply_batch(batch)
    }

    /// Every stored last-served time.
    pub fn atimes(&self) -> Result<Vec<(String, u64)>, sled::Error> {
        scan(&self.tree, ATIME_PREFIX)
    }

    /// Records blobs as evicted on purpose (and forgets their times), in one batch.
    pub fn mark_evicted(&self, shas: &[String], at_ms: u64) -> Result<(), sled::Error> {
        let mut batch = sled::Batch::default();
        for sha in shas {
            batch.insert(key(EVICTED_PREFIX, sha), &at_ms.to_be_bytes());
            batch.remove(key(ATIME_PREFIX, sha));
        }
        self.tree.apply_batch(batch)
    }

    /// Forgets eviction marks (the blobs are back).
    pub fn unmark_evicted(&self, shas: &[String]) -> Result<(), sled::Error> {
        let mut batch = sled::Batch::default();
        for sha in shas {
            batch.remove(key(EVICTED_PREFIX, sha));
        }
        self.tree.apply_batch(batch)
    }

    /// Every blob marked evicted.
    pub fn evicted(&self) -> Result<Vec<String>, sled::Error> {
        Ok(scan(&self.tree, EVICTED_PREFIX)?
            .into_iter()
            .map(|(s, _)| s)
            .collect())
    }
}
