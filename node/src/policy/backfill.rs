//! Lists in the `/index` feed the versions stored before the feed existed (a cluster upgraded
//! from a release without it): the leader proposes them in batches
//! ([`MetaCmd::IndexBackfill`]); every node applies the same batches, so the feed stays
//! identical everywhere. New versions are indexed by apply itself, so once nothing is left the
//! worker stops.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::raft::{Consensus, MetaError, ProposeError};
use crate::store::meta::MetaCmd;

/// A backfill step failed (the worker logs it and tries again).
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// Reading the state failed.
    #[error("cannot read the versions: {0}")]
    Read(#[from] MetaError),
    /// The blocking read task failed.
    #[error("the read task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The batch could not be committed.
    #[error("cannot commit the batch: {0}")]
    Propose(#[from] ProposeError),
}

/// How often a node looks again while versions are left (the first look is one period after
/// start, once the node has caught up).
const POLL: Duration = Duration::from_secs(2);
/// Versions per proposal (one log entry, one transaction).
const BATCH: usize = 256;

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Every held version is listed: the worker is done.
    Done,
    /// Versions are left, and this node is not the leader (or not caught up): look again later.
    Waiting,
    /// This node proposed a batch of this many versions.
    Proposed(usize),
}

/// Starts the worker; it ends when done or when `shutdown` is cancelled.
pub fn spawn(consensus: Consensus, shutdown: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
            match step(&consensus).await {
                Ok(Step::Done) => return,
                Ok(Step::Waiting) => {}
                Ok(Step::Proposed(n)) => {
                    tracing::info!(versions = n, "listed older versions in the /index feed");
                }
                Err(e) => tracing::warn!(error = %e, "index backfill step failed"),
            }
        }
    });
}

/// One step: finds unlisted versions and, on the leader, proposes one batch of them.
pub async fn step(consensus: &Consensus) -> Result<Step, BackfillError> {
    if !consensus.is_caught_up() {
        return Ok(Step::Waiting);
    }
    let reader = consensus.reader();
    let batch = tokio::task::spawn_blocking(move || reader.unindexed(BATCH)).await??;
    if batch.is_empty() {
        return Ok(Step::Done);
    }
    if consensus.status().leader_id != Some(consensus.node_id()) {
        return Ok(Step::Waiting);
    }
    let n = batch.len();
    consensus
        .propose(MetaCmd::IndexBackfill { versions: batch })
        .await?;
    Ok(Step::Proposed(n))
}
