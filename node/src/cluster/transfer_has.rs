//! `HasBlobs`: which of a list of blobs a peer holds (issue 12). The disk worker asks the nodes
//! that keep a non-refetchable blob before it drops its own copy.

use cairn_proto::v1::HasBlobsRequest;

use super::{BlobTransfer, TransferError};

/// Most addresses in one `HasBlobs` call (a request stays well under a megabyte).
pub const MAX_HAS_BLOBS: usize = 4096;

impl BlobTransfer {
    /// Asks the peer at `peer` (its cluster address) which of `shas` it holds, in order.
    pub async fn has_blobs(&self, peer: &str, shas: &[String]) -> Result<Vec<bool>, TransferError> {
        let mut out = Vec::with_capacity(shas.len());
        for chunk in shas.chunks(MAX_HAS_BLOBS) {
            let mut client = self.client(peer)?;
            let kind = crate::cluster::region::metrics::RequestKind::HasBlobs;
            self.locality().count_request(kind, peer);
            let req = tonic::Request::new(HasBlobsRequest {
                sha256: chunk.to_vec(),
            });
            let deadline = std::time::Duration::from_secs(10);
            let reply = match tokio::time::timeout(deadline, client.has_blobs(req)).await {
                Err(_) => {
                    return Err(TransferError::Timeout {
                        peer: peer.to_string(),
                        secs: deadline.as_secs(),
                    })
                }
                Ok(Err(status)) => {
                    return Err(TransferError::Remote {
                        peer: peer.to_string(),
                        code: status.code(),
                        message: status.message().to_string(),
                    })
                }
                Ok(Ok(r)) => r.into_inner().present,
            };
            if reply.len() != chunk.len() {
                return Err(TransferError::InvalidArgument(format!(
                    "peer {peer} answered {} flags for {} blobs",
                    reply.len(),
                    chunk.len()
                )));
            }
            out.extend(reply);
        }
        Ok(out)
    }
}
