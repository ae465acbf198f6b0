//! `BackupState` and `BackupBlob`: what `cairn backup` streams from a node.
//!
//! A follower first applies as far as the leader has (`Consensus::catch_up_with_leader`); the
//! state is then exported under the state machine's read lock (see
//! [`Consensus::export_state`]) and sent as a header and 1 MiB chunks. A blob is read from
//! this node's store; one this node lacks is first fetched from a peer through the same path a
//! cache hit uses ([`ClusterOps::fetch_blob`]), so a backup of a node that evicted or never
//! pulled a blob still gets it. No live node holding it: `NOT_FOUND`.

use std::sync::Arc;

use cairn_proto::v1::{
    BackupBlobChunk, BackupBlobRequest, BackupStateChunk, BackupStateHeader, Member,
};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::mirror::cluster::ClusterOps;
use crate::raft::Consensus;
use crate::store::blob::{is_sha256_hex, BlobStore};

/// The stream type of `BackupState`.
pub type BackupStateStream =
    tokio_stream::Iter<std::vec::IntoIter<Result<BackupStateChunk, tonic::Status>>>;

/// The stream type of `BackupBlob`.
pub type BackupBlobStream = ReceiverStream<Result<BackupBlobChunk, tonic::Status>>;

/// State bytes per message.
const STATE_CHUNK: usize = 1 << 20;
/// How long a follower may take to apply up to the leader's index before its state is exported.
const CATCH_UP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Blob bytes per message.
const BLOB_CHUNK: usize = 256 << 10;

/// Exports the state machine and returns it as a stream of chunks, the header first.
pub(super) async fn state(
    consensus: &Consensus,
    node_id: u64,
) -> Result<BackupStateStream, tonic::Status> {
    consensus
        .catch_up_with_leader(CATCH_UP_TIMEOUT)
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let export = consensus
        .export_state()
        .await
        .map_err(|e| tonic::Status::internal(e.to_string()))?;
    let applied = export.applied.ok_or_else(|| {
        tonic::Status::failed_precondition("this node has applied nothing yet: nothing to back up")
    })?;
    let st = consensus.status();
    let header = BackupStateHeader {
        node_id,
        applied_index: applied.index,
        applied_term: applied.term,
        applied_leader: applied.leader,
        leader_id: st.leader_id.unwrap_or(0),
        members: export
            .members
            .iter()
            .map(|(id, addr, voter)| Member {
                id: *id,
                addr: addr.clone(),
                voter: *voter,
                matched_index: 0,
                region: String::new(),
                zone: String::new(),
            })
            .collect(),
        size: export.data.len() as u64,
        sha256: hex::encode(Sha256::digest(&export.data)),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    tracing::info!(
        index = applied.index,
        bytes = export.data.len(),
        "state exported for a backup"
    );
    let mut chunks: Vec<Result<BackupStateChunk, tonic::Status>> = Vec::new();
    let mut header = Some(header);
    for data in export.data.chunks(STATE_CHUNK) {
        chunks.push(Ok(BackupStateChunk {
            header: header.take(),
            data: data.to_vec(),
        }));
    }
    if let Some(h) = header {
        chunks.push(Ok(BackupStateChunk {
            header: Some(h),
            data: Vec::new(),
        }));
    }
    Ok(tokio_stream::iter(chunks))
}

/// Streams blob `req.sha256`, fetching it from a peer first when this node lacks it.
pub(super) async fn blob(
    blobs: &BlobStore,
    peers: Option<&Arc<dyn ClusterOps>>,
    req: BackupBlobRequest,
) -> Result<BackupBlobStream, tonic::Status> {
    if !is_sha256_hex(&req.sha256) {
        return Err(tonic::Status::invalid_argument(format!(
            "{:?} is not a sha256",
            req.sha256
        )));
    }
    if !blobs.contains(&req.sha256) {
        match peers {
            Some(p) => p.fetch_blob(&req.sha256, req.size).await.map_err(|e| {
                tonic::Status::not_found(format!(
                    "blob {} is not on this node and no live peer could send it: {e}",
                    req.sha256
                ))
            })?,
            None => {
                return Err(tonic::Status::not_found(format!(
                    "blob {} is not on this node",
                    req.sha256
                )))
            }
        }
    }
    let opened = blobs
        .open_blob(&req.sha256)
        .await
        .map_err(|e| tonic::Status::internal(e.to_string()))?;
    let Some((mut file, _len)) = opened else {
        return Err(tonic::Status::not_found(format!(
            "blob {} vanished from this node while being backed up",
            req.sha256
        )));
    };
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut buf = vec![0u8; BLOB_CHUNK];
        loop {
            let msg = match file.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => Ok(BackupBlobChunk {
                    data: buf[..n].to_vec(),
                }),
                Err(e) => Err(tonic::Status::internal(format!("reading the blob: {e}"))),
            };
            let failed = msg.is_err();
            if tx.send(msg).await.is_err() || failed {
                return;
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}
