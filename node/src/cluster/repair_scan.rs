//! The repair worker's scan (queue what the state references but this node lacks) and scrub
//! (re-hash what it holds).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{metrics, now_ms, Shared};
use crate::raft::{MetaError, QueueError};
use crate::store::meta::ZipRef;

/// Why a scan or a queue read failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum RepairError {
    /// Reading the version records failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Reading or writing the queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A blocking task panicked or was cancelled.
    #[error("repair task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What one scan found.
#[derive(Debug, Default)]
struct ScanCounts {
    /// Blobs referenced by the state.
    referenced: u64,
    /// Of those, absent here.
    missing: u64,
    /// Of those, newly queued.
    queued: u64,
}

/// Version records a scan reads before it pauses as long as they took: a scan of a
/// million-record state takes about half a core for a few seconds instead of a whole one,
/// leaving the rest to serving.
const SCAN_CHUNK: usize = 1024;

// === impl Shared (scan and scrub) ===

impl Shared {
    /// Queues every referenced blob absent here and updates the `missing` gauge. Paced (see
    /// [`SCAN_CHUNK`]) and stopped by `shutdown`.
    pub(super) async fn scan_missing(self: &Arc<Self>, shutdown: &CancellationToken) {
        let this = self.clone();
        let stop = shutdown.clone();
        let res = tokio::task::spawn_blocking(move || this.scan_blocking(&stop)).await;
        match res.map_err(RepairError::from).and_then(|r| r) {
            Ok(None) => {}
            Ok(Some(c)) => {
                self.missing.store(c.missing, Ordering::Relaxed);
                self.last_scan_ms.store(now_ms(), Ordering::Relaxed);
                metrics::set_missing(c.missing);
                if c.queued > 0 {
                    tracing::info!(
                        referenced = c.referenced,
                        missing = c.missing,
                        queued = c.queued,
                        "blob scan queued missing blobs"
                    );
                    self.wake.notify_one();
                }
            }
            Err(e) => tracing::warn!(error = %e, "blob scan failed"),
        }
    }

    /// The scan; `None` when `shutdown` stopped it.
    fn scan_blocking(
        &self,
        shutdown: &CancellationToken,
    ) -> Result<Option<ScanCounts>, RepairError> {
        let mut c = ScanCounts::default();
        let mut chunk = (std::time::Instant::now(), 0usize);
        for zip in self.reader.zip_refs() {
            chunk.1 += 1;
            if chunk.1 == SCAN_CHUNK {
                if shutdown.is_cancelled() {
                    return Ok(None);
                }
                std::thread::sleep(chunk.0.elapsed());
                chunk = (std::time::Instant::now(), 0);
            }
            let Some(zip) = skip_corrupt(zip)? else {
                continue;
            };
            c.referenced += 1;
            // Evicted on purpose (issue 12): not missing; the next request refills it.
            if self.blobs.contains(&zip.sha256) || self.blobs.is_evicted(&zip.sha256) {
                continue;
            }
            c.missing += 1;
            if self.queue.enqueue_if_absent(&zip.sha256, zip.size)? {
                c.queued += 1;
            }
        }
        Ok(Some(c))
    }

    /// How long until the next scrub is due (jittered up to a tenth of `every`).
    pub(super) fn until_next_scrub(&self, every: Duration) -> Duration {
        let now = now_ms();
        let last = match self.queue.last_scrub_ms() {
            Ok(Some(last)) => last,
            Ok(None) | Err(_) => {
                let _ = self.queue.set_last_scrub_ms(now);
                now
            }
        };
        let every_ms = every.as_millis() as u64;
        let jitter = rand::random_range(0..=every_ms / 10);
        let due = last.saturating_add(every_ms).saturating_add(jitter);
        Duration::from_millis(due.saturating_sub(now))
    }

    /// Re-hashes every referenced blob held here, one at a time, pausing as long as each
    /// hash took (so a scrub takes at most about half the disk's time).
    pub(super) async fn scrub(&self, shutdown: &CancellationToken) {
        self.scrubbing.store(true, Ordering::Relaxed);
        let started = tokio::time::Instant::now();
        let (mut checked, mut corrupt) = (0u64, 0u64);
        let mut refs = self.reader.zip_refs();
        while !shutdown.is_cancelled() {
            let zip = match refs.next().map(skip_corrupt) {
                None => break,
                Some(Ok(None)) => continue,
                Some(Ok(Some(zip))) => zip,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "scrub stopped: cannot read version records");
                    break;
                }
            };
            let t0 = tokio::time::Instant::now();
            match self.scrub_one(&zip).await {
                Some(true) => checked += 1,
                Some(false) => corrupt += 1,
                None => continue,
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(t0.elapsed()) => {}
            }
        }
        self.finish_scrub(shutdown.is_cancelled(), checked, corrupt, started);
    }

    /// Verifies one blob; `None` if it is not here, `Some(intact)` otherwise. A corrupt copy
    /// is quarantined and queued for a fetch from a peer.
    async fn scrub_one(&self, zip: &ZipRef) -> Option<bool> {
        if !self.blobs.contains(&zip.sha256) {
            return None;
        }
        match self.blobs.verify(&zip.sha256).await {
            Ok(true) => Some(true),
            Ok(false) => {
                metrics::count_scrub_corrupt();
                if let Err(e) = self.blobs.quarantine(&zip.sha256) {
                    tracing::warn!(sha256 = %zip.sha256, error = %e, "cannot quarantine a corrupt blob");
                }
                match self.queue.enqueue(&zip.sha256, zip.size) {
                    Ok(()) => self.wake.notify_one(),
                    Err(e) => {
                        tracing::warn!(sha256 = %zip.sha256, error = %e, "cannot queue a corrupt blob")
                    }
                }
                Some(false)
            }
            Err(e) => {
                // Typically removed or quarantined meanwhile; the next scan notices.
                tracing::debug!(sha256 = %zip.sha256, error = %e, "scrub could not read a blob");
                None
            }
        }
    }

    fn finish_scrub(
        &self,
        cancelled: bool,
        checked: u64,
        corrupt: u64,
        started: tokio::time::Instant,
    ) {
        self.scrubbing.store(false, Ordering::Relaxed);
        if cancelled {
            return;
        }
        metrics::count_scrub_run();
        if let Err(e) = self.queue.set_last_scrub_ms(now_ms()) {
            tracing::warn!(error = %e, "cannot record the scrub time");
        }
        let secs = started.elapsed().as_secs();
        if corrupt > 0 {
            tracing::warn!(
                checked,
                corrupt,
                secs,
                "scrub found corrupt blobs; refetching them"
            );
        } else {
            tracing::info!(checked, secs, "scrub finished; all blobs intact");
        }
    }
}

/// Skips (with a warning) version records that cannot be decoded; storage errors stay errors.
fn skip_corrupt(item: Result<ZipRef, MetaError>) -> Result<Option<ZipRef>, MetaError> {
    match item {
        Ok(zip) => Ok(Some(zip)),
        Err(MetaError::Corrupt { key, source, .. }) => {
            tracing::warn!(key, error = %source, "skipping a corrupt version record");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
