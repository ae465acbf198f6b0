//! When each blob was last served, kept cheaply in memory for least-recently-served eviction.
//!
//! A hit must cost next to nothing: no Raft write, no disk write. The map is split into
//! [`SHARDS`] shards by the first byte of the address; each entry is an `AtomicU64`, so a hit
//! on a known blob takes one shard's *read* lock and one relaxed store (readers never wait on
//! each other), and only the first hit of a blob takes the write lock. The disk worker persists
//! the entries touched since its last pass to a local tree now and then, so the order survives
//! a restart approximately.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;

/// Number of shards (a power of two).
pub const SHARDS: usize = 64;

type Shard = RwLock<HashMap<Box<str>, AtomicU64>>;

/// Last-served times (unix ms) by blob address.
#[derive(Debug)]
pub struct AccessTimes {
    shards: Vec<Shard>,
    enabled: AtomicBool,
}

impl Default for AccessTimes {
    fn default() -> Self {
        AccessTimes {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            enabled: AtomicBool::new(true),
        }
    }
}

/// Wall-clock unix milliseconds (persisted, so not monotonic).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl AccessTimes {
    fn shard(&self, sha256: &str) -> &Shard {
        let b = sha256.as_bytes();
        let h =
            b.first().copied().unwrap_or(0) as usize * 31 + b.get(1).copied().unwrap_or(0) as usize;
        &self.shards[h & (SHARDS - 1)]
    }

    /// Turns recording off or on (for the bench that measures its cost).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Records that `sha256` was served now.
    pub fn touch(&self, sha256: &str) {
        if self.enabled.load(Ordering::Relaxed) {
            self.touch_at(sha256, now_ms());
        }
    }

    /// Records that `sha256` was served at `ms` (keeps the later time).
    pub fn touch_at(&self, sha256: &str, ms: u64) {
        let shard = self.shard(sha256);
        {
            let map = shard.read().unwrap_or_else(|p| p.into_inner());
            if let Some(t) = map.get(sha256) {
                t.fetch_max(ms, Ordering::Relaxed);
                return;
            }
        }
        let mut map = shard.write().unwrap_or_else(|p| p.into_inner());
        map.entry(sha256.into())
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_max(ms, Ordering::Relaxed);
    }

    /// When `sha256` was last served, if known.
    pub fn get(&self, sha256: &str) -> Option<u64> {
        let map = self.shard(sha256).read().unwrap_or_else(|p| p.into_inner());
        map.get(sha256).map(|t| t.load(Ordering::Relaxed))
    }

    /// Forgets `sha256` (its blob was evicted).
    pub fn remove(&self, sha256: &str) {
        let mut map = self
            .shard(sha256)
            .write()
            .unwrap_or_else(|p| p.into_inner());
        map.remove(sha256);
    }

    /// Entries touched at or after `since_ms` (what to persist since the last pass).
    pub fn touched_since(&self, since_ms: u64) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let map = shard.read().unwrap_or_else(|p| p.into_inner());
            out.extend(map.iter().filter_map(|(k, t)| {
                let t = t.load(Ordering::Relaxed);
                (t >= since_ms).then(|| (k.to_string(), t))
            }));
        }
        out
    }

    /// Number of blobs with a known time.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// Whether no time is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_time_and_lists_what_changed() {
        let a = AccessTimes::default();
        let (x, y) = ("aa".repeat(32), "bb".repeat(32));
        a.touch_at(&x, 10);
        a.touch_at(&x, 5);
        a.touch_at(&y, 20);
        assert_eq!(a.get(&x), Some(10));
        assert_eq!(a.len(), 2);
        let mut since = a.touched_since(15);
        since.sort();
        assert_eq!(since, vec![(y.clone(), 20)]);
        a.remove(&y);
        assert_eq!(a.get(&y), None);
        a.set_enabled(false);
        a.touch(&y);
        assert_eq!(a.get(&y), None, "disabled tracking records nothing");
    }
}
