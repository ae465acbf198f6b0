//! Waiting for the region's cross-region puller (issue 14; policy in `repair.rs`).
//!
//! A node that waits does not count the wait as a failed attempt: it re-checks its region
//! every few seconds (short backoff, capped at [`WAIT_RECHECK_MAX`]) and keeps, in memory, how
//! long it has waited while some other region was reachable. Only that time counts towards
//! [`TAKEOVER_AFTER`], so a cut between regions never makes every node of a region pull the
//! same blob across once the link returns. A restart forgets the waits (they start over).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::worker::backoff;
use super::{metrics, now_ms, Shared, Sources};
use crate::raft::QueueEntry;

/// A waiting node pulls a blob across regions itself once it has waited this long while
/// another region was reachable: its region's puller is live but does not get the blob (disk
/// at its flood mark, an evicted copy, a transfer that keeps failing).
pub const TAKEOVER_AFTER: Duration = Duration::from_secs(600);
/// Longest pause between two checks of the region while waiting.
pub const WAIT_RECHECK_MAX: Duration = Duration::from_secs(16);

/// One blob being waited for.
#[derive(Clone, Copy, Debug)]
pub(super) struct Wait {
    /// Since when the wait counts (moved forward while no other region is reachable).
    since: Instant,
    /// Checks so far (drives the recheck backoff).
    checks: u32,
}

/// The blobs this node waits for, by sha256.
#[derive(Debug, Default)]
pub(super) struct Waits(Mutex<HashMap<String, Wait>>);

impl Waits {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Wait>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this node has waited long enough for `sha256` to pull it across itself.
    pub(super) fn takeover(&self, sha256: &str) -> bool {
        self.takeover_at(sha256, Instant::now())
    }

    fn takeover_at(&self, sha256: &str, now: Instant) -> bool {
        self.lock()
            .get(sha256)
            .is_some_and(|w| now.saturating_duration_since(w.since) >= TAKEOVER_AFTER)
    }

    /// Forgets the wait for `sha256` (the blob arrived or left the queue).
    pub(super) fn done(&self, sha256: &str) {
        self.lock().remove(sha256);
    }

    /// Records one more check without the blob; returns the pause before the next one.
    fn record(&self, sha256: &str, other_region_reachable: bool, cap: Duration) -> Duration {
        self.record_at(sha256, other_region_reachable, cap, Instant::now())
    }

    fn record_at(&self, sha256: &str, reachable: bool, cap: Duration, now: Instant) -> Duration {
        let mut waits = self.lock();
        let w = waits.entry(sha256.to_string()).or_insert(Wait {
            since: now,
            checks: 0,
        });
        if !reachable {
            w.since = now; // a cut: the puller cannot get it either
        }
        w.checks = w.checks.saturating_add(1);
        backoff(w.checks, cap.min(WAIT_RECHECK_MAX))
    }
}

/// Whether a live member of another region answers (this node's region is cut off if not).
pub(super) fn other_region_reachable(view: &Sources) -> bool {
    view.members
        .iter()
        .any(|p| p.live && p.id != view.self_id && p.region != view.region)
}

// === impl Shared (waiting) ===

impl Shared {
    /// Reschedules a blob this node waits for without counting a failed attempt.
    pub(super) fn wait_more(
        &self,
        sha256: &str,
        mut entry: QueueEntry,
        reachable: bool,
        puller: u64,
    ) {
        let pause = self
            .waits
            .record(sha256, reachable, self.timing.backoff_max);
        entry.next_try_ms = now_ms().saturating_add(pause.as_millis() as u64);
        if let Err(e) = self.queue.reschedule(sha256, &entry) {
            tracing::warn!(sha256, error = %e, "cannot reschedule a blob repair");
        }
        metrics::count_repair("waiting");
        tracing::debug!(
            sha256,
            puller,
            retry_in_ms = pause.as_millis() as u64,
            "waiting for this region's puller to bring the blob across"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_time_with_another_region_reachable_counts_towards_takeover() {
        let w = Waits::default();
        let cap = Duration::from_secs(60);
        let t0 = Instant::now();
        let mut t = t0;
        // A cut twice as long as the takeover time: never enough.
        while t < t0 + TAKEOVER_AFTER * 2 {
            let pause = w.record_at("x", false, cap, t);
            assert!(pause <= WAIT_RECHECK_MAX);
            t += pause.max(Duration::from_millis(1));
            assert!(!w.takeover_at("x", t), "takeover during a cut");
        }
        // The link is back: the wait counts from the last check of the cut.
        let healed = t;
        while !w.takeover_at("x", t) {
            w.record_at("x", true, cap, t);
            t += Duration::from_secs(5);
        }
        let waited = t - healed;
        assert!(waited >= TAKEOVER_AFTER - WAIT_RECHECK_MAX, "{waited:?}");
        assert!(waited <= TAKEOVER_AFTER + WAIT_RECHECK_MAX, "{waited:?}");
        w.done("x");
        assert!(!w.takeover_at("x", t));
    }
}
