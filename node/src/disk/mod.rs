//! Bounded disk (issue 12): watermarks on the data volume and an optional blob budget, the
//! eviction of local blob copies least recently served first, pins, and the flood state.
//!
//! - [`settings`]: the `[disk]` section and its validation into a [`DiskPolicy`].
//! - [`level`]: usage against the watermarks (pure).
//! - [`plan`]: which blobs may go, in which order, and the `min_copies` rule for blobs that
//!   cannot be fetched again (pure).
//! - [`pins`]: pin patterns.
//! - `worker.rs`: the named background worker that measures every `check_interval_secs` (and at
//!   once when a store crosses the budget's high mark), evicts, persists access times, and sets
//!   the blob store's flood flag.
//!
//! Records are never touched: an evicted version stays in the replicated state with its hashes,
//! and the next request refills its blob from a peer or the upstream (verified against the
//! record). The repair worker leaves evicted blobs alone ([`BlobStore::is_evicted`]).

pub mod level;
pub mod metrics;
pub mod pins;
pub mod plan;
pub mod settings;
mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use level::Level;
pub use settings::{DiskPolicy, DiskSettings};

use crate::cluster::transfer::BlobTransfer;
use crate::raft::{Consensus, DiskLocal};
use crate::store::blob::BlobStore;

/// Handle to the running disk worker (cheap to clone).
#[derive(Clone)]
pub struct Disk {
    shared: Arc<Shared>,
}

/// State shared by the handle and the worker.
struct Shared {
    policy: DiskPolicy,
    data_dir: PathBuf,
    blobs: BlobStore,
    consensus: Consensus,
    transfer: BlobTransfer,
    local: DiskLocal,
    self_id: u64,
    min_copies: usize,
    /// The last measured [`Level`] (as `u8`).
    level: AtomicU8,
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disk")
            .field("level", &self.level())
            .finish_non_exhaustive()
    }
}

/// What the worker needs from the node.
pub struct DiskParts {
    /// The validated `[disk]` policy.
    pub policy: DiskPolicy,
    /// The data directory (its filesystem is measured).
    pub data_dir: PathBuf,
    /// The blob store.
    pub blobs: BlobStore,
    /// Pins, version records, membership and local bookkeeping.
    pub consensus: Consensus,
    /// `HasBlobs` calls to the keepers of non-refetchable blobs.
    pub transfer: BlobTransfer,
    /// This node's id.
    pub self_id: u64,
    /// `cluster.min_copies`.
    pub min_copies: usize,
}

impl Disk {
    /// Restores the local bookkeeping (access times, evicted marks), measures once, and
    /// starts the worker; it stops when `shutdown` is cancelled.
    pub async fn spawn(parts: DiskParts, shutdown: CancellationToken) -> Disk {
        let local = parts.consensus.disk_local();
        let shared = Arc::new(Shared {
            policy: parts.policy,
            data_dir: parts.data_dir,
            blobs: parts.blobs,
            consensus: parts.consensus,
            transfer: parts.transfer,
            local,
            self_id: parts.self_id,
            min_copies: parts.min_copies,
            level: AtomicU8::new(0),
        });
        shared
            .blobs
            .access_times()
            .set_enabled(shared.policy.track_access);
        let budget = shared.policy.blob_budget_bytes;
        let mark = |w: &settings::Watermark| budget.map_or(u64::MAX, |b| w.threshold(b));
        shared
            .blobs
            .set_marks(mark(&shared.policy.high), mark(&shared.policy.flood));
        ::metrics::gauge!(metrics::BLOB_BUDGET_BYTES).set(budget.unwrap_or(0) as f64);
        let restore = shared.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || restore.restore()).await {
            tracing::warn!(error = %e, "cannot restore the disk bookkeeping");
        }
        shared.measure_and_publish();
        tracing::info!(
            low = ?shared.policy.low,
            high = ?shared.policy.high,
            flood = ?shared.policy.flood,
            budget,
            level = shared.level().name(),
            "disk worker started"
        );
        tokio::spawn(worker::run(shared.clone(), shutdown));
        Disk { shared }
    }

    /// The last measured watermark state.
    pub fn level(&self) -> Level {
        self.shared.level()
    }
}

impl Shared {
    fn level(&self) -> Level {
        Level::from_u8(self.level.load(Ordering::Relaxed))
    }
}
