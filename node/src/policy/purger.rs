//! The purger: deletes the local blobs of purged versions, outside the apply transaction.
//!
//! Apply records each purged zip under `purge_pending/` (see `raft/policy.rs`); this worker
//! polls that list, deletes a blob only when no remaining version record references it (two
//! versions can share a zip), drops any pending fetch of it, and forgets the entry. A crash
//! between apply and deletion only delays it: the entry is durable. It also deletes the zip of
//! a tombstoned version when it shows up again on this disk (a fill that raced the purge wrote
//! and replicated it before its record was refused).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::raft::{Consensus, MetaError};
use crate::store::blob::BlobStore;

/// How often the worker looks for pending deletions (purges are rare; the list is a prefix
/// scan of an almost always empty range).
const POLL: Duration = Duration::from_millis(500);

/// Starts the purger; it stops when `shutdown` is cancelled.
pub fn spawn(consensus: Consensus, blobs: BlobStore, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let (c, b) = (consensus.clone(), blobs.clone());
            match tokio::task::spawn_blocking(move || run_once(&c, &b)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(blobs = n, "deleted the blobs of purged versions"),
                Ok(Err(e)) => tracing::warn!(error = %e, "purger pass failed"),
                Err(e) => tracing::warn!(error = %e, "purger task failed"),
            }
        }
    });
}

/// One pass: handles every pending deletion, and deletes the zip of a tombstoned version that
/// reappeared on this disk (a fill that raced the purge wrote it before its record was refused),
/// and returns how many blob files were removed.
pub fn run_once(consensus: &Consensus, blobs: &BlobStore) -> Result<usize, MetaError> {
    let reader = consensus.reader();
    let pending = reader.purge_pending()?;
    let mut late = Vec::new();
    for t in reader.tombstones()? {
        if let Some(sha) = t.sha256 {
            if blobs.contains(&sha) && !pending.contains(&sha) {
                late.push(sha);
            }
        }
    }
    if pending.is_empty() && late.is_empty() {
        return Ok(0);
    }
    let mut removed = 0;
    let todo = pending
        .iter()
        .map(|s| (s, true))
        .chain(late.iter().map(|s| (s, false)));
    for (sha, queued) in todo {
        let mut referenced = false;
        for zip in reader.zip_refs() {
            if zip?.sha256 == *sha {
                referenced = true;
                break;
            }
        }
        if !referenced {
            if let Err(e) = consensus.blob_queue().remove(sha) {
                tracing::warn!(sha256 = %sha, error = %e, "cannot drop the pending fetch");
            }
            // Through the store, so its hot-memory copy goes too (issue 13).
            match blobs.remove_purged(sha) {
                Ok(true) => {
                    removed += 1;
                    metrics::counter!(super::metrics::PURGED_BLOBS_TOTAL).increment(1);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(sha256 = %sha, error = %e, "cannot delete a purged blob");
                    continue;
                }
            }
        }
        if queued {
            reader.purge_done(sha)?;
        }
    }
    Ok(removed)
}
