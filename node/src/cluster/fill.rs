//! The owner's side of owner routing: the internal `cairn.v1.Mirror` service. A node that gets
//! a miss for a version another node owns calls `Fill` there; the owner fills it through its own
//! single flight (never routing again, so there are no loops) and returns the committed record.

use cairn_proto::v1::fill_reply::Outcome;
use cairn_proto::v1::mirror_server::{Mirror as MirrorRpc, MirrorServer};
use cairn_proto::v1::{FillReply, FillRequest};

use crate::mirror::{Mirror, MirrorError};

/// The `Fill` metadata entry naming the asking node's id: the owner puts one of the zip's
/// `min_copies` copies there first, since that node must serve the client anyway.
pub const REQUESTER_KEY: &str = "cairn-requester";

/// Serves `Fill` from this node's mirror.
pub struct FillService {
    mirror: Mirror,
}

impl FillService {
    /// The service over `mirror`, ready to mount on the cluster listener.
    pub fn server(mirror: Mirror) -> MirrorServer<FillService> {
        MirrorServer::new(FillService { mirror })
    }
}

#[tonic::async_trait]
impl MirrorRpc for FillService {
    async fn fill(
        &self,
        req: tonic::Request<FillRequest>,
    ) -> Result<tonic::Response<FillReply>, tonic::Status> {
        let requester = req
            .metadata()
            .get(REQUESTER_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&id| id != 0);
        let r = req.into_inner();
        if crate::module::check(&r.module, &r.version).is_err() {
            return Err(tonic::Status::invalid_argument(format!(
                "invalid module version {}@{}",
                r.module, r.version
            )));
        }
        let outcome = match self
            .mirror
            .fill_here(&r.module, &r.version, r.zip, requester)
            .await
        {
            Ok(rec) => Outcome::RecordJson(
                serde_json::to_string(&rec).map_err(|e| tonic::Status::internal(e.to_string()))?,
            ),
            Err(MirrorError::NotFound(m)) => Outcome::NotFound(m),
            Err(e @ (MirrorError::Upstream(_) | MirrorError::Rejected { .. })) => {
                Outcome::UpstreamError(e.to_string())
            }
            Err(e) => return Err(tonic::Status::internal(e.to_string())),
        };
        Ok(tonic::Response::new(FillReply {
            outcome: Some(outcome),
        }))
    }
}
