//! The repair worker's loops and its queue pass (see `repair.rs` for the policy).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::wait::other_region_reachable;
use super::{metrics, now_ms, Shared, SCAN_DUTY, SCAN_INTERVAL};
use crate::cluster::region::{self, Here};
use crate::cluster::transfer::TransferError;
use crate::raft::{NodeAddr, NodeId, QueueEntry};
use crate::store::blob::BlobInfo;

/// Due entries read per batch.
const BATCH: usize = 256;
/// Batches per wake-up before waiting again (bounds a pass if the queue cannot be updated).
const MAX_BATCHES: usize = 64;

type RaftMetricsRx = watch::Receiver<openraft::RaftMetrics<NodeId, NodeAddr>>;

/// Spawns the queue, scan and scrub loops; each stops when `shutdown` is cancelled.
pub(super) fn start(shared: Arc<Shared>, applied: RaftMetricsRx, shutdown: CancellationToken) {
    tokio::spawn(queue_loop(shared.clone(), applied, shutdown.clone()));
    tokio::spawn(scan_loop(shared.clone(), shutdown.clone()));
    if let Some(every) = shared.timing.scrub_interval {
        tokio::spawn(scrub_loop(shared, every, shutdown));
    }
}

/// Drains due entries on every tick, wake-up, or change of the applied index.
async fn queue_loop(shared: Arc<Shared>, mut applied: RaftMetricsRx, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(shared.timing.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_applied = None;
    let mut watching = true;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
            () = shared.wake.notified() => {}
            changed = applied.changed(), if watching => {
                if changed.is_err() {
                    watching = false; // Raft stopped; ticks and wake-ups still drive the queue
                    continue;
                }
                let now = applied.borrow_and_update().last_applied.map(|l| l.index);
                if std::mem::replace(&mut last_applied, now) == now {
                    continue;
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = shared.drain_due() => {}
        }
    }
    tracing::debug!("blob repair queue loop stopped");
}

/// Scans for missing blobs at start, then again [`SCAN_INTERVAL`] after each scan ends, or
/// [`SCAN_DUTY`] times as long as the scan took when that is longer: a large state is walked
/// less often (at a million versions a paced scan takes seconds), so the walks take at most
/// about 1/[`SCAN_DUTY`] of the time. New records queue their blobs when they are applied; the
/// scan is the safety net for what that misses (a snapshot install, a lost file).
async fn scan_loop(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let started = tokio::time::Instant::now();
        shared.scan_missing(&shutdown).await;
        let pause = scan_pause(started.elapsed());
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// How long the scan loop waits after a scan that took `took`.
fn scan_pause(took: Duration) -> Duration {
    SCAN_INTERVAL.max(took.saturating_mul(SCAN_DUTY))
}

/// Scrubs every `every` (jittered by up to a tenth), counting from the persisted last run; a
/// node that never scrubbed starts counting now (its blobs were verified when received).
async fn scrub_loop(shared: Arc<Shared>, every: Duration, shutdown: CancellationToken) {
    loop {
        let wait = shared.until_next_scrub(every);
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
        shared.scrub(&shutdown).await;
    }
}

// === impl Shared (queue pass) ===

impl Shared {
    /// Processes every due entry in batches of [`BATCH`], as many at a time as the transfer
    /// layer receives at once but one: a cross-region fetch of a small blob costs a round trip
    /// or two of waiting, so catching up after a cut is bound by how many overlap.
    pub(super) async fn drain_due(&self) {
        if self.blobs.is_flooded() {
            // Disk at its flood watermark (issue 12): nothing can be stored; the queue waits.
            return;
        }
        for _ in 0..MAX_BATCHES {
            let due = match self.due_batch().await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the blob repair queue");
                    break;
                }
            };
            let n = due.len();
            // One receive slot stays free for foreground work (a blob served from a peer, a
            // replica pushed for min_copies).
            let parallel = self.transfer.receive_slots().saturating_sub(1).max(1);
            futures_util::stream::iter(due)
                .for_each_concurrent(parallel, |(sha256, entry)| self.repair_one(sha256, entry))
                .await;
            if n < BATCH {
                break;
            }
        }
        metrics::set_queue_length(self.queue.len());
    }

    /// Reads due entries on a blocking thread (the queue may be long after a node joined).
    async fn due_batch(&self) -> Result<Vec<(String, QueueEntry)>, super::scan::RepairError> {
        let queue = self.queue.clone();
        let now = now_ms();
        Ok(tokio::task::spawn_blocking(move || queue.due(now, BATCH)).await??)
    }

    /// Fetches one queued blob unless it is here already: from this node's region first, from
    /// the other regions only as the region's cross-region puller (see `repair.rs`).
    async fn repair_one(&self, sha256: String, entry: QueueEntry) {
        if self.blobs.contains(&sha256) {
            return self.forget(&sha256, "present");
        }
        if self.blobs.is_evicted(&sha256) {
            // Dropped on purpose by the disk worker: refilled on demand, not by repair.
            return self.forget(&sha256, "evicted");
        }
        let view = (self.sources)();
        let here = Here {
            id: view.self_id,
            region: &view.region,
        };
        let takeover = self.waits.takeover(&sha256);
        let plan = region::blob_sources(&sha256, here, &view.members, takeover);
        let res = self.fetch_planned(&sha256, entry.size, &plan).await;
        match res {
            Ok(info) => {
                tracing::info!(
                    sha256,
                    size = info.size,
                    attempts = entry.attempts,
                    "missing blob fetched from a peer"
                );
                self.forget(&sha256, "fetched");
            }
            Err(e) if e.is_not_found() && plan.waiting_for.is_some() => {
                let puller = plan.waiting_for.unwrap_or_default();
                self.wait_more(&sha256, entry, other_region_reachable(&view), puller);
            }
            Err(e) => self.back_off(&sha256, entry, &e),
        }
    }

    /// Tries the region's members, then (if the plan allows) the other regions.
    async fn fetch_planned(
        &self,
        sha256: &str,
        size: u64,
        plan: &region::BlobSources,
    ) -> Result<BlobInfo, TransferError> {
        let no_peers = || TransferError::NoPeers {
            sha256: sha256.to_string(),
        };
        let local = match plan.local.is_empty() {
            true => Err(no_peers()),
            false => {
                self.transfer
                    .fetch_from_any(&plan.local, sha256, size)
                    .await
            }
        };
        match local {
            Ok(info) => return Ok(info),
            Err(e) if plan.remote.is_empty() => {
                // Nobody else has it here: a waiting node reports "not found" so it backs off
                // quietly; a node with no peer at all reports that.
                return match (&e, plan.waiting_for) {
                    (TransferError::NoPeers { .. }, Some(_)) => Err(TransferError::NotFound {
                        peer: "this region".to_string(),
                        sha256: sha256.to_string(),
                    }),
                    _ => Err(e),
                };
            }
            Err(e) => {
                tracing::debug!(sha256, error = %e, "no copy in this region; fetching from another")
            }
        }
        self.transfer
            .fetch_from_any(&plan.remote, sha256, size)
            .await
    }

    fn forget(&self, sha256: &str, result: &'static str) {
        self.waits.done(sha256);
        if let Err(e) = self.queue.remove(sha256) {
            tracing::warn!(sha256, error = %e, "cannot remove a repaired blob from the queue");
        }
        if result == "fetched" {
            self.missing
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| m.checked_sub(1))
                .ok();
        }
        metrics::count_repair("failed");
    }

    /// Reschedules a failed entry with exponential backoff. Logs at warn on the 1st, 2nd,
    /// 4th, 8th... failure of a blob and at debug otherwise, so a long outage stays readable.
    fn back_off(&self, sha256: &str, mut entry: QueueEntry, e: &TransferError) {
        entry.attempts = entry.attempts.saturating_add(1);
        let delay = backoff(entry.attempts, self.timing.backoff_max);
        entry.next_try_ms = now_ms().saturating_add(delay.as_millis() as u64);
        if let Err(qe) = self.queue.reschedule(sha256, &entry) {
            tracing::warn!(sha256, error = %qe, "cannot reschedule a blob repair");
        }
        metrics::count_repair("failed");
        let retry_s = delay.as_secs();
        if entry.attempts.is_power_of_two() {
            tracing::warn!(sha256, attempts = entry.attempts, retry_in_s = retry_s, error = %e, "blob repair failed; will retry");
        } else {
            tracing::debug!(sha256, attempts = entry.attempts, retry_in_s = retry_s, error = %e, "blob repair failed; will retry");
        }
    }
}

/// `min(max, 2^attempts s)`, then a uniformly random point in its upper half (jitter keeps
/// nodes that failed together from retrying together).
pub(super) fn backoff(attempts: u32, max: Duration) -> Duration {
    let exp = Duration::from_secs(1u64 << attempts.min(30));
    let capped = exp.min(max).max(Duration::from_secs(1));
    let ms = capped.as_millis() as u64;
    Duration::from_millis(rand::random_range(ms / 2..=ms))
}

#[cfg(test)]
mod scan_tests {
    use super::*;

    #[test]
    fn long_scans_space_out() {
        assert_eq!(scan_pause(Duration::from_millis(20)), SCAN_INTERVAL);
        assert_eq!(
            scan_pause(Duration::from_secs(5)),
            Duration::from_secs(5) * SCAN_DUTY
        );
    }
}
