//! The `cairn.v1.Blob` service (cluster port, internal: spoken only between nodes).
//!
//! `FetchBlob` streams a local blob from an offset in fixed-size chunks: a spawned reader fills
//! a bounded channel, so memory per transfer is about `chunk × SEND_QUEUE` and a slow receiver
//! slows the reads. The sender does not verify (the receiver hashes everything it gets).
//! `PullBlob` fetches a blob from a named peer into this node and answers once it is fsynced.

use std::io::SeekFrom;

use bytes::Bytes;
use cairn_proto::v1::blob_server::Blob;
use cairn_proto::v1::{
    BlobChunk, FetchBlobRequest, HasBlobsReply, HasBlobsRequest, PullBlobReply, PullBlobRequest,
    PutBlobRequest,
};
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{check_addr, check_sha, metrics, BlobTransfer, SEND_QUEUE};

/// The `cairn.v1.Blob` service of one node (see [`BlobTransfer::service`]).
#[derive(Clone, Debug)]
pub struct BlobGrpc {
    transfer: BlobTransfer,
}

impl BlobGrpc {
    /// The service answering from `transfer`'s blob store.
    pub(super) fn new(transfer: BlobTransfer) -> BlobGrpc {
        BlobGrpc { transfer }
    }

    /// The region of a requesting node when it is not this node's (from the region it names
    /// on the request; a request naming none comes from a node without a region).
    fn cross_region_peer<T>(&self, request: &Request<T>) -> Option<String> {
        let locality = self.transfer.locality();
        let named = request
            .metadata()
            .get(crate::cluster::region::REGION_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|r| crate::config::valid_location(r))
            .unwrap_or_default();
        (locality.scope(named) == crate::cluster::region::Scope::CrossRegion)
            .then(|| named.to_string())
    }

    /// Opens the blob positioned at `offset`, with its total length.
    async fn open_at(&self, sha256: &str, offset: u64) -> Result<(File, u64), Status> {
        let (mut file, len) = match self.open_any(sha256).await? {
            Some(found) => found,
            None => return Err(Status::not_found(format!("blob {sha256} not held here"))),
        };
        if offset > len {
            return Err(Status::out_of_range(format!(
                "offset {offset} beyond blob size {len}"
            )));
        }
        file.seek(SeekFrom::Start(offset))
            .await
            .map_err(|e| Status::internal(format!("seek in blob {sha256}: {e}")))?;
        Ok((file, len))
    }
}

impl BlobGrpc {
    /// The installed blob, else its staged temp file (a fill installing it while its peers
    /// copy it), else `None`.
    async fn open_any(&self, sha256: &str) -> Result<Option<(File, u64)>, Status> {
        let blobs = self.transfer.blobs();
        if let Some(found) = blobs.open_blob(sha256).await.map_err(internal)? {
            return Ok(Some(found));
        }
        let Some(path) = self.transfer.staged_path(sha256) else {
            return Ok(None);
        };
        match File::open(&path).await {
            Ok(f) => {
                let len = f.metadata().await.map_err(internal)?.len();
                Ok(Some((f, len)))
            }
            // Renamed into the store between the two looks.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                blobs.open_blob(sha256).await.map_err(internal)
            }
            Err(e) => Err(internal(e)),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

#[tonic::async_trait]
impl Blob for BlobGrpc {
    type FetchBlobStream = ReceiverStream<Result<BlobChunk, Status>>;

    async fn fetch_blob(
        &self,
        request: Request<FetchBlobRequest>,
    ) -> Result<Response<Self::FetchBlobStream>, Status> {
        let cross_region = self.cross_region_peer(&request);
        let FetchBlobRequest { sha256, offset } = request.into_inner();
        check_sha(&sha256).map_err(|e| e.to_status())?;
        let (file, len) = self.open_at(&sha256, offset).await?;
        let permit = self
            .transfer
            .inner
            .send_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("blob transfers are shutting down"))?;
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        let send = Outgoing {
            sha256,
            file,
            offset,
            len,
            chunk: self.transfer.inner.chunk_bytes,
            tx,
            cross_region,
        };
        tokio::spawn(send.run(permit));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn pull_blob(
        &self,
        request: Request<PullBlobRequest>,
    ) -> Result<Response<PullBlobReply>, Status> {
        let PullBlobRequest {
            sha256,
            size,
            source_addr,
        } = request.into_inner();
        check_sha(&sha256)
            .and_then(|()| check_addr(&source_addr))
            .map_err(|e| e.to_status())?;
        if self.transfer.present(&sha256).is_some() {
            return Ok(Response::new(PullBlobReply {
                already_present: true,
            }));
        }
        // Spawned so the pull finishes (and is not wasted) even if the caller gives up.
        let transfer = self.transfer.clone();
        let task = tokio::spawn(async move {
            let res = transfer.fetch_checked(&source_addr, &sha256, size).await;
            if let Err(e) = &res {
                tracing::warn!(peer = %source_addr, sha256, error = %e, "pull requested by a peer failed");
            }
            res
        });
        match task.await {
            Ok(Ok(_)) => Ok(Response::new(PullBlobReply {
                already_present: false,
            })),
            Ok(Err(e)) => Err(e.to_status()),
            Err(e) => Err(Status::internal(format!("pull task failed: {e}"))),
        }
    }

    async fn put_blob(
        &self,
        request: Request<PutBlobRequest>,
    ) -> Result<Response<PullBlobReply>, Status> {
        let peer = request
            .remote_addr()
            .map_or_else(|| "a peer".to_owned(), |a| a.to_string());
        let cross_region = self.cross_region_peer(&request);
        let PutBlobRequest { sha256, data } = request.into_inner();
        if let Some(region) = &cross_region {
            crate::cluster::region::metrics::add_received(region, data.len() as u64);
        }
        // Spawned so the copy finishes (and is not wasted) even if the sender gives up.
        let transfer = self.transfer.clone();
        let task = tokio::spawn(async move {
            let res = transfer.store_whole(&peer, &sha256, data).await;
            if let Err(e) = &res {
                tracing::warn!(peer = %peer, sha256, error = %e, "blob pushed by a peer refused");
            }
            res
        });
        match task.await {
            Ok(Ok(already_present)) => Ok(Response::new(PullBlobReply { already_present })),
            Ok(Err(e)) => Err(e.to_status()),
            Err(e) => Err(Status::internal(format!("put task failed: {e}"))),
        }
    }

    async fn has_blobs(
        &self,
        request: Request<HasBlobsRequest>,
    ) -> Result<Response<HasBlobsReply>, Status> {
        let shas = request.into_inner().sha256;
        if shas.len() > super::has::MAX_HAS_BLOBS {
            return Err(Status::invalid_argument(format!(
                "at most {} blobs per HasBlobs call",
                super::has::MAX_HAS_BLOBS
            )));
        }
        let blobs = self.transfer.blobs();
        let present = shas.iter().map(|s| blobs.contains(s)).collect();
        Ok(Response::new(HasBlobsReply { present }))
    }
}

/// One outgoing blob stream.
struct Outgoing {
    sha256: String,
    file: File,
    offset: u64,
    len: u64,
    chunk: usize,
    tx: mpsc::Sender<Result<BlobChunk, Status>>,
    /// The receiver's region when it is another region than this node's.
    cross_region: Option<String>,
}

impl Outgoing {
    /// Reads and sends chunks until the end (always at least one chunk, which carries the
    /// size), holding a send permit. Stops quietly when the receiver goes away.
    async fn run(mut self, _permit: OwnedSemaphorePermit) {
        let started = tokio::time::Instant::now();
        let mut first = true;
        loop {
            let want = (self.chunk as u64).min(self.len - self.offset);
            let data = match self.read(want).await {
                Ok(data) => data,
                Err(status) => {
                    let _ = self.tx.send(Err(status)).await;
                    return;
                }
            };
            let n = data.len() as u64;
            let msg = BlobChunk {
                data,
                offset: self.offset,
                size: if first { self.len } else { 0 },
            };
            if self.tx.send(Ok(msg)).await.is_err() {
                tracing::debug!(sha256 = %self.sha256, offset = self.offset, "blob receiver went away");
                return;
            }
            metrics::add_served_bytes(n);
            if let Some(region) = &self.cross_region {
                crate::cluster::region::metrics::add_sent(region, n);
            }
            self.offset += n;
            first = false;
            if self.offset >= self.len {
                break;
            }
        }
        metrics::record_send(started.elapsed());
    }

    /// Reads exactly `want` bytes (a shorter file means it changed under us: data loss).
    async fn read(&mut self, want: u64) -> Result<Bytes, Status> {
        let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(self.chunk));
        let read = (&mut self.file).take(want).read_to_end(&mut buf).await;
        match read {
            Ok(n) if n as u64 == want => Ok(Bytes::from(buf)),
            Ok(n) => {
                tracing::warn!(sha256 = %self.sha256, offset = self.offset, want, got = n, "blob shorter than its size while sending");
                Err(Status::data_loss("blob ended early while sending"))
            }
            Err(e) => {
                tracing::warn!(sha256 = %self.sha256, offset = self.offset, error = %e, "blob read failed while sending");
                Err(Status::data_loss(format!("blob read failed: {e}")))
            }
        }
    }
}
