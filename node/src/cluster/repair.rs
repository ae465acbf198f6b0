//! The blob repair worker: keeps every blob referenced by the replicated state present and
//! intact on this node (anti-entropy for module zips; garage's resync + scrub, RAFT-NOTES §5.1).
//!
//! Three loops share one persistent queue ([`BlobQueue`], a sled tree next to the state
//! machine, so it survives restarts):
//!
//! - **queue**: every `repair_interval_secs`, whenever something is enqueued, and whenever the
//!   applied index moves (apply queues each newly recorded zip), fetch each due blob from a
//!   peer (a few blobs in parallel). Present → dropped; fetched → dropped; failed → retried
//!   after `min(repair_backoff_max_secs, 2^attempts s)`, jittered.
//!
//!   Regions (issue 14): a blob crosses each region boundary once. The worker asks the
//!   members of its own region first (in random order); when none holds the blob, only the
//!   region's cross-region puller ([`super::region::cross_region_puller`]: first by rendezvous
//!   of the sha256 among the region's live members) fetches it from another region; the
//!   others wait (re-checking their region every few seconds) and copy it inside the region
//!   once it landed. When the puller goes down, liveness moves the role to the next node; a
//!   node that has waited [`wait::TAKEOVER_AFTER`] while another region was reachable pulls
//!   across regions itself (a live but stuck puller). Time cut off from every other region
//!   does not count, so after a cut only the pullers cross.
//! - **scan**: at start and [`SCAN_INTERVAL`] after each scan (or [`SCAN_DUTY`] times its
//!   duration, when longer: large states), walk all version records and queue the
//!   blobs absent here (a node that joined by snapshot install never applied the old entries;
//!   a crash may have lost a blob). Sets the `missing` gauge.
//! - **scrub**: every `scrub_interval_secs` (0 = never; the last run is persisted), re-hash
//!   each local blob the state references, one at a time and pausing as long as each hash
//!   took; a mismatch is quarantined and queued, so a good copy is fetched from a peer.
//!
//! Files: `repair_worker.rs` (the loops and the queue pass), `repair_scan.rs` (scan and
//! scrub), `repair_metrics.rs`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::peers::{PeerInfo, Peers};
use super::transfer::BlobTransfer;
use crate::config::ClusterSettings;
use crate::raft::{BlobQueue, Consensus, MetaReader, NodeId};
use crate::store::blob::BlobStore;

#[path = "repair_metrics.rs"]
pub mod metrics;
#[path = "repair_scan.rs"]
mod scan;
#[cfg(test)]
#[path = "repair_tests.rs"]
mod tests;
#[path = "repair_wait.rs"]
pub mod wait;
#[path = "repair_worker.rs"]
mod worker;

pub use metrics::describe;

/// The pause between two scans of the version records for blobs missing here (at least).
pub const SCAN_INTERVAL: Duration = Duration::from_secs(30);
/// A scan is followed by a pause of at least this many times its duration (see
/// `repair_worker::scan_loop`).
pub const SCAN_DUTY: u32 = 20;

/// Where the worker looks for blobs: returns the cluster addresses (`HOST:PORT`) of the other
/// nodes, all taken as members of this node's region. Tests pass their own to
/// [`Repair::spawn_with_peers`].
pub type PeerAddrs = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// Where the worker looks for blobs, read before each fetch: this node's id and region and
/// every member with its region and liveness. [`Repair::spawn`] reads them from [`Peers`].
pub type PeerSource = Arc<dyn Fn() -> Sources + Send + Sync>;

/// The members a repair may fetch from, as seen at one moment.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// This node's id.
    pub self_id: NodeId,
    /// This node's region (empty = none).
    pub region: String,
    /// The members (this node may be among them; it is skipped).
    pub members: Vec<PeerInfo>,
}

/// Handle to the running repair worker (cheap to clone).
#[derive(Clone)]
pub struct Repair {
    shared: Arc<Shared>,
}

/// A plain view of the worker, for status pages and the CLI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RepairStatus {
    /// Blobs queued for fetching now.
    pub queue_len: u64,
    /// Blobs referenced by the state but absent here, as of the last scan.
    pub missing: u64,
    /// When the last scan finished (unix ms).
    pub last_scan_ms: Option<u64>,
    /// When the last scrub finished (unix ms).
    pub last_scrub_ms: Option<u64>,
    /// Whether a scrub is running.
    pub scrubbing: bool,
}

/// The timing knobs the worker uses (from [`ClusterSettings`]).
#[derive(Clone, Copy, Debug)]
struct Timing {
    interval: Duration,
    backoff_max: Duration,
    scrub_interval: Option<Duration>,
}

/// State shared by the handle and the loops.
struct Shared {
    queue: BlobQueue,
    blobs: BlobStore,
    transfer: BlobTransfer,
    reader: MetaReader,
    sources: PeerSource,
    timing: Timing,
    /// Wakes the queue loop (`notify_one` keeps a permit, so no wake-up is lost).
    wake: Notify,
    missing: AtomicU64,
    last_scan_ms: AtomicU64,
    scrubbing: AtomicBool,
    /// Blobs this node waits for its region's puller to bring across.
    waits: wait::Waits,
}

impl std::fmt::Debug for Repair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repair")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Repair {
    /// Starts the worker: it keeps every blob referenced by the replicated state present and
    /// intact on this node, fetching from the other members of the Raft membership (those of
    /// its region first, see the module doc). It stops when `shutdown` is cancelled.
    pub fn spawn(
        consensus: Consensus,
        blobs: BlobStore,
        transfer: BlobTransfer,
        peers: Peers,
        settings: &ClusterSettings,
        shutdown: CancellationToken,
    ) -> Repair {
        let sources: PeerSource = Arc::new(move || Sources {
            self_id: peers.self_id(),
            region: peers.self_region().to_string(),
            members: peers.members(),
        });
        Repair::spawn_with_sources(consensus, blobs, transfer, sources, settings, shutdown)
    }

    /// Like [`Repair::spawn`], with the peer addresses supplied by `peers` (no regions).
    pub fn spawn_with_peers(
        consensus: Consensus,
        blobs: BlobStore,
        transfer: BlobTransfer,
        peers: PeerAddrs,
        settings: &ClusterSettings,
        shutdown: CancellationToken,
    ) -> Repair {
        let sources: PeerSource = Arc::new(move || Sources {
            self_id: 0,
            region: String::new(),
            members: (peers)()
                .into_iter()
                .zip(1..)
                .map(|(addr, id)| PeerInfo {
                    id,
                    addr,
                    voter: true,
                    live: true,
                    region: String::new(),
                })
                .collect(),
        });
        Repair::spawn_with_sources(consensus, blobs, transfer, sources, settings, shutdown)
    }

    /// Like [`Repair::spawn`], with the members supplied by `sources`.
    pub fn spawn_with_sources(
        consensus: Consensus,
        blobs: BlobStore,
        transfer: BlobTransfer,
        sources: PeerSource,
        settings: &ClusterSettings,
        shutdown: CancellationToken,
    ) -> Repair {
        let shared = Arc::new(Shared {
            queue: consensus.blob_queue(),
            blobs,
            transfer,
            reader: consensus.reader(),
            sources,
            timing: Timing::from(settings),
            wake: Notify::new(),
            missing: AtomicU64::new(0),
            last_scan_ms: AtomicU64::new(0),
            scrubbing: AtomicBool::new(false),
            waits: wait::Waits::default(),
        });
        worker::start(shared.clone(), consensus.raft().metrics(), shutdown);
        tracing::info!(
            interval_s = shared.timing.interval.as_secs(),
            scrub_interval_s = shared.timing.scrub_interval.map(|d| d.as_secs()),
            "blob repair worker started"
        );
        Repair { shared }
    }

    /// Queues a blob for fetching at once (e.g. after a corrupt copy was quarantined while
    /// serving). An invalid address is logged and ignored.
    pub fn enqueue(&self, sha256: &str, size: u64) {
        match self.shared.queue.enqueue(sha256, size) {
            Ok(()) => self.shared.wake.notify_one(),
            Err(e) => tracing::warn!(sha256, error = %e, "cannot queue blob for repair"),
        }
    }

    /// Blobs queued now (walks the queue).
    pub fn queue_len(&self) -> u64 {
        self.shared.queue.len() as u64
    }

    /// Blobs referenced by the state but absent here, as of the last scan.
    pub fn missing(&self) -> u64 {
        self.shared.missing.load(Ordering::Relaxed)
    }

    /// The worker's state for status pages.
    pub fn status(&self) -> RepairStatus {
        let last_scan = self.shared.last_scan_ms.load(Ordering::Relaxed);
        RepairStatus {
            queue_len: self.queue_len(),
            missing: self.missing(),
            last_scan_ms: (last_scan > 0).then_some(last_scan),
            last_scrub_ms: self.shared.queue.last_scrub_ms().ok().flatten(),
            scrubbing: self.shared.scrubbing.load(Ordering::Relaxed),
        }
    }
}

impl From<&ClusterSettings> for Timing {
    fn from(s: &ClusterSettings) -> Timing {
        Timing {
            interval: Duration::from_secs(s.repair_interval_secs.max(1)),
            backoff_max: Duration::from_secs(s.repair_backoff_max_secs.max(1)),
            scrub_interval: (s.scrub_interval_secs > 0)
                .then(|| Duration::from_secs(s.scrub_interval_secs)),
        }
    }
}

/// Wall-clock unix milliseconds (queue times are persisted, so they cannot be monotonic).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
