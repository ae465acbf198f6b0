//! The receiving side of blob transfers: cached peer channels, the chunk loop that streams a
//! blob into a temp file (resuming a broken stream from its offset), and `PullBlob` calls.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cairn_proto::v1::blob_client::BlobClient;
use cairn_proto::v1::{BlobChunk, FetchBlobRequest, PullBlobRequest, PutBlobRequest};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::OwnedMutexGuard;
use tonic::transport::{Channel, Endpoint};
use tonic::Streaming;

use super::{metrics, BlobTransfer, TransferError, CONNECT_TIMEOUT};
use crate::cluster::region::metrics::{self as region_metrics, RequestKind};
use crate::cluster::region::{Scope, REGION_HEADER};
use crate::store::blob::{BlobError, BlobInfo};

/// A stream that broke after delivering data is resumed from its offset; this many attempts in
/// a row that deliver nothing end the receive.
const MAX_STALLS: u32 = 3;
/// Pause before resuming (times the attempts in a row that delivered nothing, plus one).
const RESUME_PAUSE: Duration = Duration::from_millis(100);
/// TCP and HTTP/2 keep-alive of peer channels: a dead peer is noticed within about a minute
/// even while a stream waits for flow-control credit.
const KEEPALIVE: Duration = Duration::from_secs(20);

// === impl BlobTransfer (client side) ===

impl BlobTransfer {
    /// [`BlobTransfer::fetch_from`] after argument checks: one download per blob at a time,
    /// within the receive permits.
    pub(super) async fn fetch_checked(
        &self,
        peer: &str,
        sha256: &str,
        size: u64,
    ) -> Result<BlobInfo, TransferError> {
        if let Some(info) = self.present(sha256) {
            return Ok(info);
        }
        let _flight = self.inner.flights.enter(sha256).await;
        if let Some(info) = self.present(sha256) {
            return Ok(info);
        }
        // The semaphore is never closed, so `acquire` cannot fail; proceed regardless.
        let _permit = self.inner.recv_permits.acquire().await.ok();
        let started = tokio::time::Instant::now();
        let res = self.receive(peer, sha256, size).await;
        metrics::record_fetch(&res, started.elapsed());
        if let Ok(info) = &res {
            tracing::debug!(peer, sha256, size = info.size, "blob fetched from peer");
        }
        res
    }

    /// Streams the blob into a temp file, then commits it (hash check, fsync, rename).
    async fn receive(
        &self,
        peer: &str,
        sha256: &str,
        size: u64,
    ) -> Result<BlobInfo, TransferError> {
        let fresh = self.inner.blobs.temp_path();
        let partial = partial_path(&fresh, sha256);
        let mut tmp = TempFile::resume_or_create(fresh, &partial, size).await?;
        if tmp.written > 0 {
            tracing::info!(
                peer,
                sha256,
                offset = tmp.written,
                "resuming a partial blob transfer"
            );
        }
        let mut stalls = 0;
        loop {
            let before = tmp.written;
            let Err(e) = self.stream_into(peer, sha256, size, &mut tmp).await else {
                break;
            };
            stalls = if tmp.written > before { 0 } else { stalls + 1 };
            if !resumable(&e) || tmp.written == 0 || stalls > MAX_STALLS {
                if resumable(&e) && tmp.written > 0 {
                    tmp.keep_as(&partial).await;
                }
                return Err(e);
            }
            tracing::info!(peer, sha256, offset = tmp.written, error = %e, "blob stream broke; resuming");
            // The first call on a channel whose connection just died may fail before it
            // reconnects; pause a little longer after each attempt that got nothing.
            tokio::time::sleep(RESUME_PAUSE * (stalls + 1)).await;
        }
        if tmp.written != size {
            return Err(size_error(peer, sha256, size, tmp.written));
        }
        // Hashed while written: the file is not read again before it is installed.
        let (path, actual) = tmp.finish().await?;
        if actual != sha256 {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(TransferError::Mismatch {
                peer: peer.to_string(),
                expected: sha256.to_string(),
                actual,
            });
        }
        let committed = self.inner.blobs.commit_hashed(path, actual, size);
        committed.await.map_err(TransferError::Storage)
    }

    /// One `FetchBlob` stream from the temp file's current length to its end.
    async fn stream_into(
        &self,
        peer: &str,
        sha256: &str,
        size: u64,
        tmp: &mut TempFile,
    ) -> Result<(), TransferError> {
        let locality = self.locality();
        let peer_region = locality.count_request(RequestKind::FetchBlob, peer);
        let crossing = locality.scope(&peer_region) == Scope::CrossRegion;
        let mut stream = self.open_stream(peer, sha256, tmp.written).await?;
        let mut first = true;
        while let Some(chunk) = self.next_chunk(peer, sha256, &mut stream).await? {
            check_chunk(peer, sha256, size, &chunk, first, tmp.written)?;
            tmp.write(&chunk.data).await?;
            metrics::add_fetched_bytes(chunk.data.len());
            if crossing {
                region_metrics::add_received(&peer_region, chunk.data.len() as u64);
            }
            first = false;
        }
        Ok(())
    }

    async fn open_stream(
        &self,
        peer: &str,
        sha256: &str,
        offset: u64,
    ) -> Result<Streaming<BlobChunk>, TransferError> {
        let mut client = self.client(peer)?;
        let mut req = tonic::Request::new(FetchBlobRequest {
            sha256: sha256.to_string(),
            offset,
        });
        name_region(&mut req, self.locality().region());
        let idle = self.inner.idle_timeout;
        match tokio::time::timeout(idle, client.fetch_blob(req)).await {
            Err(_) => Err(timeout(peer, idle)),
            Ok(Err(status)) => Err(from_status(peer, sha256, status)),
            Ok(Ok(resp)) => Ok(resp.into_inner()),
        }
    }

    /// The next chunk, `None` at the end, or an error if none arrives within the idle timeout.
    async fn next_chunk(
        &self,
        peer: &str,
        sha256: &str,
        stream: &mut Streaming<BlobChunk>,
    ) -> Result<Option<BlobChunk>, TransferError> {
        let idle = self.inner.idle_timeout;
        match tokio::time::timeout(idle, stream.message()).await {
            Err(_) => Err(timeout(peer, idle)),
            Ok(Err(status)) => Err(from_status(peer, sha256, status)),
            Ok(Ok(chunk)) => Ok(chunk),
        }
    }

    /// Calls `PullBlob` on `peer`; `Ok(already_present)` once the peer holds the blob.
    pub(super) async fn pull_remote(
        &self,
        peer: &str,
        sha256: &str,
        size: u64,
        source_addr: &str,
    ) -> Result<bool, TransferError> {
        let mut client = self.client(peer)?;
        self.locality().count_request(RequestKind::PullBlob, peer);
        let req = PullBlobRequest {
            sha256: sha256.to_string(),
            size,
            source_addr: source_addr.to_string(),
        };
        let deadline = self.inner.replicate_timeout;
        match tokio::time::timeout(deadline, client.pull_blob(req)).await {
            Err(_) => Err(timeout(peer, deadline)),
            Ok(Err(status)) => Err(from_status(peer, sha256, status)),
            Ok(Ok(reply)) => Ok(reply.into_inner().already_present),
        }
    }

    /// Calls `PutBlob` on `peer`; `Ok(already_present)` once the peer holds the blob.
    pub(super) async fn put_remote(
        &self,
        peer: &str,
        sha256: &str,
        data: bytes::Bytes,
    ) -> Result<bool, TransferError> {
        let mut client = self.client(peer)?;
        let locality = self.locality();
        let peer_region = locality.count_request(RequestKind::PushBlob, peer);
        if locality.scope(&peer_region) == Scope::CrossRegion {
            region_metrics::add_sent(&peer_region, data.len() as u64);
        }
        let mut req = tonic::Request::new(PutBlobRequest {
            sha256: sha256.to_string(),
            data,
        });
        name_region(&mut req, locality.region());
        let deadline = self.inner.replicate_timeout;
        match tokio::time::timeout(deadline, client.put_blob(req)).await {
            Err(_) => Err(timeout(peer, deadline)),
            Ok(Err(status)) => Err(from_status(peer, sha256, status)),
            Ok(Ok(reply)) => Ok(reply.into_inner().already_present),
        }
    }

    pub(super) fn client(&self, peer: &str) -> Result<BlobClient<Channel>, TransferError> {
        let limit = self.message_limit();
        Ok(BlobClient::new(self.channel(peer)?)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit))
    }

    /// The cached channel to `peer`, created lazily (it connects on first use and reconnects
    /// by itself after failures).
    fn channel(&self, peer: &str) -> Result<Channel, TransferError> {
        let mut channels = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(channel) = channels.get(peer) {
            return Ok(channel.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{peer}"))
            .map_err(|e| TransferError::InvalidArgument(format!("peer address {peer:?}: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_adaptive_window(true)
            .tcp_nodelay(true)
            .tcp_keepalive(Some(KEEPALIVE))
            .http2_keep_alive_interval(KEEPALIVE)
            .keep_alive_while_idle(false);
        let channel = self
            .inner
            .tls
            .connect_lazy(endpoint, crate::tls::Expect::AnyNode);
        channels.insert(peer.to_string(), channel.clone());
        Ok(channel)
    }
}

/// Names this node's region on a request (see [`REGION_HEADER`]), so that the sender counts
/// the bytes it sends across regions.
fn name_region<T>(req: &mut tonic::Request<T>, region: &str) {
    if let Ok(v) = tonic::metadata::MetadataValue::try_from(region) {
        if !region.is_empty() {
            req.metadata_mut().insert(REGION_HEADER, v);
        }
    }
}

/// Checks a chunk against the blob's size and the bytes received so far.
fn check_chunk(
    peer: &str,
    sha256: &str,
    size: u64,
    chunk: &BlobChunk,
    first: bool,
    received: u64,
) -> Result<(), TransferError> {
    if first && chunk.size != size {
        return Err(size_error(peer, sha256, size, chunk.size));
    }
    if chunk.offset != received {
        return Err(TransferError::Protocol {
            peer: peer.to_string(),
            expected: received,
            got: chunk.offset,
        });
    }
    let total = received.saturating_add(chunk.data.len() as u64);
    if total > size {
        return Err(size_error(peer, sha256, size, total));
    }
    Ok(())
}

/// Whether a failed stream may be resumed from its offset (the network broke, not the peer).
fn resumable(e: &TransferError) -> bool {
    matches!(
        e,
        TransferError::Unreachable { .. } | TransferError::Timeout { .. }
    )
}

/// Classifies a gRPC status: transport-level failures are `Unreachable` (worth retrying or
/// resuming elsewhere), statuses the peer chose are `NotFound` or `Remote`.
fn from_status(peer: &str, sha256: &str, status: tonic::Status) -> TransferError {
    use tonic::Code;
    match status.code() {
        Code::NotFound => TransferError::NotFound {
            peer: peer.to_string(),
            sha256: sha256.to_string(),
        },
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Aborted => {
            TransferError::Unreachable {
                peer: peer.to_string(),
                reason: status.message().to_string(),
            }
        }
        code => TransferError::Remote {
            peer: peer.to_string(),
            code,
            message: status.message().to_string(),
        },
    }
}

fn timeout(peer: &str, after: Duration) -> TransferError {
    TransferError::Timeout {
        peer: peer.to_string(),
        secs: after.as_secs(),
    }
}

fn size_error(peer: &str, sha256: &str, expected: u64, got: u64) -> TransferError {
    TransferError::Size {
        peer: peer.to_string(),
        sha256: sha256.to_string(),
        expected,
        got,
    }
}

// === TempFile ===

/// A temp file being received; removed on drop unless [`TempFile::finish`] handed it on (the
/// `DeleteOnDrop` pattern: also covers a transfer future that is dropped mid-way).
struct TempFile {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    written: u64,
    /// sha256 of everything written so far (resumes continue the same byte sequence).
    hasher: Sha256,
}

impl TempFile {
    async fn create(path: PathBuf) -> Result<TempFile, BlobError> {
        match tokio::fs::File::create(&path).await {
            Ok(file) => Ok(TempFile {
                path,
                file: Some(file),
                written: 0,
                hasher: Sha256::new(),
            }),
            Err(source) => Err(BlobError::Io { path, source }),
        }
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), BlobError> {
        let Some(file) = self.file.as_mut() else {
            return Err(self.io_error(std::io::Error::other("temp file already closed")));
        };
        match file.write_all(data).await {
            Ok(()) => {
                self.written += data.len() as u64;
                self.hasher.update(data);
                Ok(())
            }
            Err(e) => Err(self.io_error(e)),
        }
    }

    /// Flushes and closes the file and returns its path and the hex sha256 of its content; the
    /// caller now owns its removal (`BlobStore::commit_hashed` removes it on failure).
    async fn finish(mut self) -> Result<(PathBuf, String), BlobError> {
        if let Some(mut file) = self.file.take() {
            // tokio's File finishes a pending write only when flushed.
            file.flush().await.map_err(|e| self.io_error(e))?;
        }
        let digest = hex::encode(std::mem::take(&mut self.hasher).finalize());
        Ok((std::mem::take(&mut self.path), digest))
    }

    fn io_error(&self, source: std::io::Error) -> BlobError {
        BlobError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

// === partial receives (issue 14) ===

/// Where the bytes of a receive cut off for good wait for the next attempt (any peer: blobs
/// are content-addressed, and the whole file is hashed before it is installed). The blob
/// store empties its temp directory at start, so partials live as long as the process.
pub(super) fn partial_path(temp: &std::path::Path, sha256: &str) -> PathBuf {
    temp.with_file_name(format!("{sha256}.partial"))
}

impl TempFile {
    /// Takes over the partial receive at `partial` (renamed to `fresh`, its bytes re-hashed)
    /// when there is one no longer than `size`; otherwise a new empty temp file at `fresh`.
    async fn resume_or_create(
        fresh: PathBuf,
        partial: &std::path::Path,
        size: u64,
    ) -> Result<TempFile, BlobError> {
        if tokio::fs::rename(partial, &fresh).await.is_ok() {
            match TempFile::reopen(fresh.clone(), size).await {
                Some(t) => return Ok(t),
                None => {
                    let _ = tokio::fs::remove_file(&fresh).await;
                }
            }
        }
        TempFile::create(fresh).await
    }

    /// Opens `path` for appending with the hash of what it holds (`None` if unreadable or
    /// longer than `size`).
    async fn reopen(path: PathBuf, size: u64) -> Option<TempFile> {
        let p = path.clone();
        let hashed = tokio::task::spawn_blocking(move || -> std::io::Result<(Sha256, u64)> {
            let mut hasher = Sha256::new();
            let n = std::io::copy(&mut std::fs::File::open(&p)?, &mut hasher)?;
            Ok((hasher, n))
        });
        let (hasher, written) = hashed.await.ok()?.ok()?;
        if written > size {
            return None;
        }
        let file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .await
            .ok()?;
        Some(TempFile {
            path,
            file: Some(file),
            written,
            hasher,
        })
    }

    /// Keeps the bytes received so far at `partial` for the next attempt (removed instead if
    /// that fails).
    async fn keep_as(mut self, partial: &std::path::Path) {
        if let Some(mut file) = self.file.take() {
            if file.flush().await.is_err() {
                return; // dropped: removed
            }
        }
        if tokio::fs::rename(&self.path, partial).await.is_ok() {
            self.path = PathBuf::new();
        }
    }
}

// === Flights ===

type FlightMap = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

/// One lock per blob being received, so that concurrent fetches of one blob (the repair
/// worker, a `PullBlob`, a client request) download it once: the later ones wait, then find it
/// present. Entries are removed when the last holder leaves.
#[derive(Debug, Default)]
pub(super) struct Flights {
    map: FlightMap,
}

/// Holds the receive slot of one blob.
pub(super) struct FlightGuard {
    key: String,
    map: FlightMap,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Flights {
    /// Waits until no other receive of `key` runs, then holds the slot.
    pub(super) async fn enter(&self, key: &str) -> FlightGuard {
        let lock = {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            map.entry(key.to_string()).or_default().clone()
        };
        FlightGuard {
            key: key.to_string(),
            map: self.map.clone(),
            guard: Some(lock.lock_owned().await),
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        // Release the lock (and its reference) first; every waiter holds another reference,
        // taken under the map lock, so a count of one means nobody else wants this entry.
        self.guard.take();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            map.remove(&self.key);
        }
    }
}
