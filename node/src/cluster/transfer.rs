//! Blob transfer between nodes: the `cairn.v1.Blob` gRPC service and its client.
//!
//! Pull-based and content-addressed (RAFT-NOTES §4.3): a receiver asks a peer for a blob by
//! sha256 (`FetchBlob`, server streaming), writes the chunks to a temp file of its blob store,
//! and commits it only if the bytes hash to the name and the size matches (the store fsyncs the
//! file, renames it and fsyncs the directory). Any failure, or a dropped future, removes the
//! temp file. `PullBlob` asks a peer to pull a blob from a third node and answers once it is
//! fsynced there; that is how a fill makes a new zip durable on `min_copies` nodes.
//!
//! Bounded memory: the sender reads one chunk at a time into a bounded channel (capacity
//! [`SEND_QUEUE`]), so a slow receiver backpressures the disk reads through HTTP/2 flow control,
//! and concurrent transfers are limited by semaphores (see [`BlobTransfer::new`]). Large blobs
//! (500 MB) have no whole-transfer deadline: each chunk must arrive within an idle timeout, and
//! a stream broken by the network is resumed from the received offset.
//!
//! Files: `transfer_client.rs` (channels, the receive loop), `transfer_server.rs` (the service),
//! `transfer_metrics.rs` (metric names and descriptions).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Semaphore;
use tonic::transport::Channel;

use crate::config::ClusterSettings;
use crate::store::blob::{is_sha256_hex, BlobError, BlobInfo, BlobStore};

#[path = "transfer_client.rs"]
mod client;
#[path = "transfer_has.rs"]
mod has;
#[path = "transfer_metrics.rs"]
pub mod metrics;
#[path = "transfer_server.rs"]
mod server;
#[cfg(test)]
#[path = "transfer_tests.rs"]
pub(crate) mod tests;

pub use metrics::describe;
pub use server::BlobGrpc;

/// Chunks buffered between the disk reader and the gRPC stream of one send.
pub const SEND_QUEUE: usize = 4;
/// A stream that delivers no chunk for this long is abandoned (per chunk, not per transfer).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connect timeout of a peer channel.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Smallest and largest chunk size used, whatever the configuration says (the upper bound
/// stays under tonic's default 4 MiB decode limit of older peers).
const CHUNK_BOUNDS: (usize, usize) = (16 * 1024, 4 * 1024 * 1024 - 64 * 1024);
/// Room for protobuf framing above the chunk size in the message size limits.
const FRAME_SLACK: usize = 64 * 1024;

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The peer does not hold the blob.
    #[error("peer {peer} does not hold blob {sha256}")]
    NotFound {
        /// The peer asked.
        peer: String,
        /// The blob.
        sha256: String,
    },
    /// The peer could not be reached, or the connection broke.
    #[error("peer {peer} unreachable: {reason}")]
    Unreachable {
        /// The peer.
        peer: String,
        /// What the transport reported.
        reason: String,
    },
    /// The peer answered with an error status.
    #[error("peer {peer} failed: {code:?}: {message}")]
    Remote {
        /// The peer.
        peer: String,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
    /// The bytes received do not hash to the blob's address (nothing was stored).
    #[error("blob {expected} from {peer} has wrong content (sha256 {actual})")]
    Mismatch {
        /// The peer that sent them.
        peer: String,
        /// The requested sha256.
        expected: String,
        /// What the received bytes hash to.
        actual: String,
    },
    /// The peer sent more or fewer bytes than the blob's size, or announced another size.
    #[error("blob {sha256} from {peer}: expected {expected} bytes, got {got}")]
    Size {
        /// The peer that sent them.
        peer: String,
        /// The blob.
        sha256: String,
        /// The size recorded in the metadata.
        expected: u64,
        /// What the peer sent or announced.
        got: u64,
    },
    /// The peer broke the stream protocol (a chunk at the wrong offset).
    #[error("peer {peer} sent a chunk at offset {got}, expected {expected}")]
    Protocol {
        /// The peer.
        peer: String,
        /// The offset expected next.
        expected: u64,
        /// The offset the chunk claimed.
        got: u64,
    },
    /// Nothing arrived within the idle timeout, or a replication exceeded its deadline.
    #[error("peer {peer} did not answer within {secs} s")]
    Timeout {
        /// The peer.
        peer: String,
        /// The timeout that expired.
        secs: u64,
    },
    /// The local blob store failed.
    #[error(transparent)]
    Storage(#[from] BlobError),
    /// A sha256 or peer address is malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No peer was given to fetch from.
    #[error("no peer to fetch blob {sha256} from")]
    NoPeers {
        /// The blob.
        sha256: String,
    },
}

impl TransferError {
    /// Whether the peer simply does not hold the blob.
    pub fn is_not_found(&self) -> bool {
        matches!(self, TransferError::NotFound { .. })
    }

    /// Whether the peer does not know the RPC (an older version during a rolling upgrade).
    pub fn is_unimplemented(&self) -> bool {
        matches!(
            self,
            TransferError::Remote {
                code: tonic::Code::Unimplemented,
                ..
            }
        )
    }

    /// The gRPC status that reports this error to a `PullBlob` caller.
    pub fn to_status(&self) -> tonic::Status {
        let msg = self.to_string();
        match self {
            TransferError::NotFound { .. } | TransferError::NoPeers { .. } => {
                tonic::Status::not_found(msg)
            }
            TransferError::Unreachable { .. } => tonic::Status::unavailable(msg),
            TransferError::Timeout { .. } => tonic::Status::deadline_exceeded(msg),
            TransferError::InvalidArgument(_) => tonic::Status::invalid_argument(msg),
            TransferError::Mismatch { .. }
            | TransferError::Size { .. }
            | TransferError::Protocol { .. } => tonic::Status::data_loss(msg),
            TransferError::Remote { code, .. } => tonic::Status::new(*code, msg),
            TransferError::Storage(_) => tonic::Status::internal(msg),
        }
    }
}

/// Blob transfer between this node and its peers: the `cairn.v1.Blob` service and the client
/// calls. Cheap to clone (one shared state).
#[derive(Clone, Debug)]
pub struct BlobTransfer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    blobs: BlobStore,
    chunk_bytes: usize,
    /// Sends running at once. Separate from receives so that two nodes pulling from each other
    /// with every receive permit taken cannot deadlock waiting for each other's send permits.
    send_permits: Arc<Semaphore>,
    /// Receives running at once.
    recv_permits: Arc<Semaphore>,
    /// How many receives may run at once (`recv_permits`' size).
    recv_slots: usize,
    /// One lazily connected channel per peer address (HTTP/2 multiplexes every transfer).
    channels: Mutex<HashMap<String, Channel>>,
    /// Receives in flight per sha256, so concurrent requests for one blob download it once.
    flights: client::Flights,
    /// Checked temp files being installed, served to peers by sha256 before they are in the
    /// store (see [`BlobTransfer::stage`]).
    staged: Mutex<HashMap<String, PathBuf>>,
    idle_timeout: Duration,
    replicate_timeout: Duration,
    /// TLS for connections to peers.
    tls: crate::tls::ClusterTls,
    /// Regions of this node and its peers, for the cross-region metrics (set once by the node;
    /// unset = no regions).
    locality: std::sync::OnceLock<super::region::Locality>,
}

impl BlobTransfer {
    /// Transfers for `blobs` with the chunk size, concurrency and replication deadline of
    /// `settings`. `max_concurrent_transfers` is split between sends (half, at least one) and
    /// receives (the rest, at least one): sends never wait for receives, so no cycle of nodes
    /// pulling from each other can deadlock on permits.
    pub fn new(blobs: BlobStore, settings: &ClusterSettings) -> BlobTransfer {
        BlobTransfer::with_idle_timeout(blobs, settings, DEFAULT_IDLE_TIMEOUT)
    }

    /// Like [`BlobTransfer::new`], with another per-chunk idle timeout (tests shorten it).
    pub(crate) fn with_idle_timeout(
        blobs: BlobStore,
        settings: &ClusterSettings,
        idle_timeout: Duration,
    ) -> BlobTransfer {
        let total = settings.max_concurrent_transfers.max(2);
        let sends = total / 2;
        let chunk = settings.transfer_chunk_bytes;
        BlobTransfer {
            inner: Arc::new(Inner {
                blobs,
                chunk_bytes: chunk.clamp(CHUNK_BOUNDS.0, CHUNK_BOUNDS.1),
                send_permits: Arc::new(Semaphore::new(sends)),
                recv_permits: Arc::new(Semaphore::new(total - sends)),
                recv_slots: total - sends,
                channels: Mutex::new(HashMap::new()),
                flights: client::Flights::default(),
                staged: Mutex::new(HashMap::new()),
                idle_timeout,
                replicate_timeout: Duration::from_secs(settings.replicate_timeout_secs.max(1)),
                tls: settings.tls.clone(),
                locality: std::sync::OnceLock::new(),
            }),
        }
    }

    /// How many blobs this node may receive at once (half of `cluster.max_concurrent_transfers`,
    /// rounded up); the repair worker fetches one fewer in parallel.
    pub fn receive_slots(&self) -> usize {
        self.inner.recv_slots
    }

    /// The `cairn.v1.Blob` service to mount on the cluster listener (internal: nodes only).
    pub fn service(&self) -> cairn_proto::v1::blob_server::BlobServer<BlobGrpc> {
        let limit = self.message_limit();
        cairn_proto::v1::blob_server::BlobServer::new(BlobGrpc::new(self.clone()))
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit)
    }

    /// Tells the transfers where this node and its peers are, so that requests and bytes
    /// crossing regions are counted (`region_metrics.rs`). Only the first call counts.
    pub fn set_locality(&self, locality: super::region::Locality) {
        let _ = self.inner.locality.set(locality);
    }

    /// Where this node and its peers are ([`super::region::Locality::none`] until set).
    pub fn locality(&self) -> super::region::Locality {
        self.inner.locality.get().cloned().unwrap_or_default()
    }

    /// The blob store this node transfers from and into.
    pub fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }

    /// Pulls a blob from one peer (`peer_addr` = its cluster address `HOST:PORT`) into the local
    /// store, verifying its sha256 and size; `Ok` at once if it is already here. Crash-safe:
    /// temp file, fsync, rename, directory fsync; the temp file is removed on any failure.
    pub async fn fetch_from(
        &self,
        peer_addr: &str,
        sha256: &str,
        size: u64,
    ) -> Result<BlobInfo, TransferError> {
        check_sha(sha256)?;
        check_addr(peer_addr)?;
        self.fetch_checked(peer_addr, sha256, size).await
    }

    /// Tries `peer_addrs` in order until one delivers the blob; `Ok` at once if it is already
    /// here. Fails with the first error that was not a not-found (not-found if no peer had it,
    /// `NoPeers` if the list is empty).
    pub async fn fetch_from_any(
        &self,
        peer_addrs: &[String],
        sha256: &str,
        size: u64,
    ) -> Result<BlobInfo, TransferError> {
        check_sha(sha256)?;
        if let Some(info) = self.present(sha256) {
            return Ok(info);
        }
        let mut worst: Option<TransferError> = None;
        for peer in peer_addrs {
            match self.fetch_from(peer, sha256, size).await {
                Ok(info) => return Ok(info),
                Err(e) => {
                    tracing::debug!(peer = %peer, sha256, error = %e, "peer fetch failed; trying the next");
                    if worst.as_ref().is_none_or(|w| w.is_not_found()) {
                        worst = Some(e);
                    }
                }
            }
        }
        Err(worst.unwrap_or_else(|| TransferError::NoPeers {
            sha256: sha256.to_string(),
        }))
    }

    /// Asks `peer_addr` to pull the blob from `source_addr` and returns once the peer holds it
    /// fsynced, or fails after `replicate_timeout_secs` (the peer may still finish the pull).
    pub async fn replicate_to(
        &self,
        peer_addr: &str,
        sha256: &str,
        size: u64,
        source_addr: &str,
    ) -> Result<(), TransferError> {
        check_sha(sha256)?;
        check_addr(peer_addr)?;
        check_addr(source_addr)?;
        let started = tokio::time::Instant::now();
        let res = self.pull_remote(peer_addr, sha256, size, source_addr).await;
        metrics::record_replication(&res, started.elapsed());
        match &res {
            Ok(already) => {
                tracing::debug!(peer = %peer_addr, sha256, already_present = already, "blob replicated")
            }
            Err(e) => {
                tracing::warn!(peer = %peer_addr, sha256, error = %e, "blob replication failed")
            }
        }
        res.map(|_| ())
    }

    /// Sends a whole small blob to `peer_addr` (`PutBlob`) and returns once the peer holds it
    /// fsynced, or fails after `replicate_timeout_secs`. Unlike [`BlobTransfer::replicate_to`]
    /// this node need not hold the blob: a fill pushes while it installs its own copy.
    pub async fn push_to(
        &self,
        peer_addr: &str,
        sha256: &str,
        body: bytes::Bytes,
    ) -> Result<(), TransferError> {
        check_sha(sha256)?;
        check_addr(peer_addr)?;
        let started = tokio::time::Instant::now();
        let res = self.put_remote(peer_addr, sha256, body).await;
        metrics::record_replication(&res, started.elapsed());
        match &res {
            Ok(already) => {
                tracing::debug!(peer = %peer_addr, sha256, already_present = already, "blob pushed")
            }
            Err(e) => tracing::warn!(peer = %peer_addr, sha256, error = %e, "blob push failed"),
        }
        res.map(|_| ())
    }

    /// Like [`BlobTransfer::push_to`]; a peer too old for `PutBlob` is asked to pull the blob
    /// from `source_addr` (this node) instead, once this node holds it (within `wait`).
    pub async fn push_or_pull(
        &self,
        peer_addr: &str,
        sha256: &str,
        body: bytes::Bytes,
        source_addr: &str,
        wait: Duration,
    ) -> Result<(), TransferError> {
        let size = body.len() as u64;
        match self.push_to(peer_addr, sha256, body).await {
            Err(e) if e.is_unimplemented() => {
                let deadline = tokio::time::Instant::now() + wait;
                while self.present(sha256).is_none() && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                self.replicate_to(peer_addr, sha256, size, source_addr)
                    .await
            }
            other => other,
        }
    }

    /// Stores a whole blob received from `peer` (`PutBlob`): checks that it hashes to `sha256`,
    /// writes a temp file and commits it (fsync, rename, directory fsync). `Ok(true)` when it
    /// was already here.
    pub(crate) async fn store_whole(
        &self,
        peer: &str,
        sha256: &str,
        body: bytes::Bytes,
    ) -> Result<bool, TransferError> {
        check_sha(sha256)?;
        if self.present(sha256).is_some() {
            return Ok(true);
        }
        let _flight = self.inner.flights.enter(sha256).await;
        if self.present(sha256).is_some() {
            return Ok(true);
        }
        // The semaphore is never closed, so `acquire` cannot fail; proceed regardless.
        let _permit = self.inner.recv_permits.acquire().await.ok();
        let tmp = self.inner.blobs.temp_path();
        let size = body.len() as u64;
        let (path, data) = (tmp.clone(), body);
        let written = tokio::task::spawn_blocking(move || {
            use sha2::Digest;
            let actual = hex::encode(sha2::Sha256::digest(&data));
            std::fs::write(&path, &data).map(|()| actual)
        })
        .await;
        let actual = match written {
            Ok(Ok(actual)) => actual,
            Ok(Err(source)) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(TransferError::Storage(BlobError::Io { path: tmp, source }));
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(TransferError::Storage(BlobError::Io {
                    path: tmp,
                    source: std::io::Error::other(e.to_string()),
                }));
            }
        };
        if actual != sha256 {
            let _ = std::fs::remove_file(&tmp);
            return Err(TransferError::Mismatch {
                peer: peer.to_string(),
                expected: sha256.to_string(),
                actual,
            });
        }
        self.inner
            .blobs
            .commit_hashed(tmp, actual, size)
            .await
            .map_err(TransferError::Storage)?;
        Ok(false)
    }

    /// Serves `path` (a complete temp file whose content hashes to `sha256`, checked by the
    /// caller) as the blob to peers until the returned guard and all its clones are dropped,
    /// so that they can copy it while this node fsyncs and installs it.
    pub fn stage(&self, sha256: &str, path: PathBuf) -> Arc<Staged> {
        self.inner
            .staged
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sha256.to_owned(), path.clone());
        Arc::new(Staged {
            transfer: self.clone(),
            sha256: sha256.to_owned(),
            path,
        })
    }

    /// The staged temp file of `sha256`, if any.
    fn staged_path(&self, sha256: &str) -> Option<PathBuf> {
        let staged = self.inner.staged.lock();
        staged
            .unwrap_or_else(PoisonError::into_inner)
            .get(sha256)
            .cloned()
    }

    /// The blob's info if it is already stored here.
    fn present(&self, sha256: &str) -> Option<BlobInfo> {
        let path = self.inner.blobs.path_of(sha256).ok()?;
        let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
        Some(BlobInfo {
            sha256: sha256.to_string(),
            size: meta.len(),
        })
    }

    /// The gRPC message size limit: the largest chunk any peer may use, plus framing (peers
    /// may be configured with different chunk sizes).
    fn message_limit(&self) -> usize {
        CHUNK_BOUNDS.1 + FRAME_SLACK
    }
}

/// A staged blob (see [`BlobTransfer::stage`]); unstaged when dropped.
#[derive(Debug)]
pub struct Staged {
    transfer: BlobTransfer,
    sha256: String,
    path: PathBuf,
}

impl Drop for Staged {
    fn drop(&mut self) {
        let mut staged = self.transfer.inner.staged.lock();
        let staged = staged.as_mut().map_err(|_| ());
        // Another fill of the same bytes may have staged its own file since: leave that one.
        if let Ok(map) = staged {
            if map.get(&self.sha256) == Some(&self.path) {
                map.remove(&self.sha256);
            }
        }
    }
}

/// Refuses anything but 64 lowercase hex digits.
fn check_sha(sha256: &str) -> Result<(), TransferError> {
    if is_sha256_hex(sha256) {
        Ok(())
    } else {
        Err(TransferError::InvalidArgument(format!(
            "blob address {sha256:?} is not a lowercase hex sha256"
        )))
    }
}

/// Refuses anything that does not look like `HOST:PORT` (a name, IPv4 or `[IPv6]`, and a
/// non-zero port), so that a request cannot smuggle a scheme or path into the peer URI.
fn check_addr(addr: &str) -> Result<(), TransferError> {
    if looks_like_host_port(addr) {
        Ok(())
    } else {
        Err(TransferError::InvalidArgument(format!(
            "peer address {addr:?} is not HOST:PORT"
        )))
    }
}

fn looks_like_host_port(addr: &str) -> bool {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        }
    };
    port_ok && host_ok && addr.len() <= 300
}
