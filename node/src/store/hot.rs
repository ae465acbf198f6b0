//! An in-memory cache of hot small blobs, so a hit on a popular zip costs no `open`, `stat`,
//! `read` or blocking-pool hop (issue 13: 100 KiB zips were served at half nginx's rate).
//!
//! Only bytes whose sha256 matched their address enter it (the fill hashes what it read), so a
//! response from memory is as correct as one verified from disk. The blob store drops an entry
//! whenever the blob's file goes away on purpose (eviction, quarantine, purge), so a blob that
//! is no longer held is never served from here. The cache is bounded by a byte budget and
//! evicts with the clock (second chance) algorithm: a hit sets a flag, the hand skips and clears
//! flagged entries and drops the first unflagged one.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Largest blob kept in memory (bigger ones are streamed from disk).
pub const MAX_ENTRY_BYTES: u64 = 1 << 20;

#[derive(Debug)]
struct Entry {
    bytes: Bytes,
    referenced: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    map: HashMap<Arc<str>, Entry>,
    /// The clock: addresses in insertion order (entries may have been removed since).
    ring: VecDeque<Arc<str>>,
    used: u64,
    /// Bumped by every removal: a fill that started before one may have read a file that is
    /// gone now, so it does not insert (see [`HotBlobs::ticket`]).
    epoch: u64,
}

/// Counters read by `/metrics`.
#[derive(Debug, Default)]
pub struct HotStats {
    /// Answers served from memory.
    pub hits: AtomicU64,
    /// Blobs read from disk into memory.
    pub fills: AtomicU64,
}

/// The hot-blob cache: address → verified bytes, within a byte budget.
#[derive(Debug)]
pub struct HotBlobs {
    budget: AtomicU64,
    state: Mutex<State>,
    stats: HotStats,
}

impl Default for HotBlobs {
    fn default() -> Self {
        HotBlobs::new(0)
    }
}

impl HotBlobs {
    /// An empty cache holding at most `budget` bytes (0 = off).
    pub fn new(budget: u64) -> HotBlobs {
        HotBlobs {
            budget: AtomicU64::new(budget),
            state: Mutex::new(State::default()),
            stats: HotStats::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the budget (0 turns the cache off), dropping entries beyond it.
    pub fn set_budget(&self, budget: u64) {
        self.budget.store(budget, Ordering::Relaxed);
        let mut st = self.state();
        shrink(&mut st, budget);
    }

    /// Whether a blob of `size` bytes would be kept.
    pub fn admits(&self, size: u64) -> bool {
        let budget = self.budget.load(Ordering::Relaxed);
        size <= MAX_ENTRY_BYTES && size <= budget / 4
    }

    /// Whether `sha256` is cached (no hit is counted).
    pub fn contains(&self, sha256: &str) -> bool {
        self.state().map.contains_key(sha256)
    }

    /// The cached bytes of `sha256`, if any.
    pub fn get(&self, sha256: &str) -> Option<Bytes> {
        let st = self.state();
        let e = st.map.get(sha256)?;
        e.referenced.store(true, Ordering::Relaxed);
        self.stats.hits.fetch_add(1, Ordering::Relaxed);
        Some(e.bytes.clone())
    }

    /// Taken before a fill opens the blob's file; [`HotBlobs::insert`] keeps nothing if a
    /// removal happened since (the file may have been evicted, quarantined or purged while it
    /// was read).
    pub fn ticket(&self) -> u64 {
        self.state().epoch
    }

    /// Keeps `bytes` as the content of `sha256`, unless an entry was removed since `ticket`.
    /// The caller has checked that their sha256 is `sha256`.
    pub fn insert(&self, sha256: &str, bytes: Bytes, ticket: u64) {
        let size = bytes.len() as u64;
        if !self.admits(size) {
            return;
        }
        let budget = self.budget.load(Ordering::Relaxed);
        let mut st = self.state();
        if st.epoch != ticket || st.map.contains_key(sha256) {
            return;
        }
        shrink(&mut st, budget.saturating_sub(size));
        let key: Arc<str> = Arc::from(sha256);
        st.map.insert(
            key.clone(),
            Entry {
                bytes,
                referenced: AtomicBool::new(false),
            },
        );
        st.ring.push_back(key);
        st.used += size;
        self.stats.fills.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops `sha256` (its file was removed or found corrupt).
    pub fn remove(&self, sha256: &str) {
        let mut st = self.state();
        st.epoch += 1;
        if let Some(e) = st.map.remove(sha256) {
            st.used -= e.bytes.len() as u64;
        }
        if st.map.is_empty() {
            st.ring.clear();
        }
    }

    /// Bytes and entries held now.
    pub fn usage(&self) -> (u64, usize) {
        let st = self.state();
        (st.used, st.map.len())
    }

    /// Hit and fill counters.
    pub fn stats(&self) -> &HotStats {
        &self.stats
    }
}

/// Runs the clock hand until at most `limit` bytes are held.
fn shrink(st: &mut State, limit: u64) {
    while st.used > limit {
        let Some(key) = st.ring.pop_front() else {
            break;
        };
        let second_chance = match st.map.get(&key) {
            None => continue, // removed earlier; drop the stale ring slot
            Some(e) => e.referenced.swap(false, Ordering::Relaxed),
        };
        if second_chance {
            st.ring.push_back(key);
        } else if let Some(e) = st.map.remove(&key) {
            st.used -= e.bytes.len() as u64;
        }
    }
    // Stale slots (removed entries) would otherwise pile up under churn without pressure.
    if st.ring.len() > 2 * st.map.len() + 64 {
        let map = &st.map;
        let mut ring = std::mem::take(&mut st.ring);
        ring.retain(|k| map.contains_key(k));
        st.ring = ring;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: usize) -> Bytes {
        Bytes::from(vec![7u8; n])
    }

    #[test]
    fn keeps_within_budget_and_gives_referenced_entries_a_second_chance() {
        let hot = HotBlobs::new(4000);
        hot.insert("a", blob(1000), 0);
        hot.insert("b", blob(1000), 0);
        hot.insert("c", blob(1000), 0);
        assert!(hot.get("a").is_some()); // a is referenced: b goes first
        hot.insert("d", blob(1000), 0);
        hot.insert("e", blob(1000), 0);
        assert_eq!(hot.usage(), (4000, 4));
        assert!(hot.get("b").is_none());
        assert!(hot.get("a").is_some());
    }

    #[test]
    fn removed_entries_are_gone_and_large_blobs_are_not_kept() {
        let hot = HotBlobs::new(64 << 20);
        hot.insert("a", blob(10), 0);
        hot.remove("a");
        assert!(hot.get("a").is_none());
        assert_eq!(hot.usage(), (0, 0));
        hot.insert("big", blob(MAX_ENTRY_BYTES as usize + 1), hot.ticket());
        assert!(hot.get("big").is_none());
        let off = HotBlobs::new(0);
        off.insert("a", blob(10), 0);
        assert!(off.get("a").is_none());
    }

    #[test]
    fn a_fill_that_raced_a_removal_keeps_nothing() {
        let hot = HotBlobs::new(64 << 20);
        let ticket = hot.ticket();
        hot.remove("a"); // e.g. evicted while the fill was reading its file
        hot.insert("a", blob(10), ticket);
        assert!(hot.get("a").is_none());
        hot.insert("a", blob(10), hot.ticket());
        assert!(hot.get("a").is_some());
    }

    #[test]
    fn churn_without_pressure_does_not_grow_the_ring() {
        let hot = HotBlobs::new(64 << 20);
        for i in 0..10_000 {
            let k = format!("k{i}");
            hot.insert(&k, blob(1), hot.ticket());
            hot.remove(&k);
            hot.insert("x", blob(1), hot.ticket());
        }
        let st = hot.state();
        assert!(st.ring.len() <= 2 * st.map.len() + 65, "{}", st.ring.len());
    }
}
