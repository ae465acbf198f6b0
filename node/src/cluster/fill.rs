//! The owner's side of owner routing: the internal `cairn.v1.Mirror` service. A node that gets
//! a miss for a version another node owns calls `Fill` there; the owner fills it through its own
//! single flight (never routing again, so there are no loops) and returns the committed record.
//! A node serving a stale list or `@latest` whose refresh this node owns calls `Refresh`: this
//! node fetches it (unless its own copy is fresh) and commits it for the whole cluster.

use cairn_proto::v1::fill_reply::Outcome;
use cairn_proto::v1::mirror_server::{Mirror as MirrorRpc, MirrorServer};
use cairn_proto::v1::{FillReply, FillRequest, RefreshReply, RefreshRequest};

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

    async fn refresh(
        &self,
        req: tonic::Request<RefreshRequest>,
    ) -> Result<tonic::Response<RefreshReply>, tonic::Status> {
        let r = req.into_inner();
        if crate::module::check_path(&r.module).is_err() {
            return Err(tonic::Status::invalid_argument(format!(
                "invalid module path {:?}",
                r.module
            )));
        }
        let mut reply = RefreshReply::default();
        match self.mirror.refresh_here(&r.module, r.latest).await {
            Ok(()) => {}
            Err(MirrorError::NotFound(m)) => reply.not_found = m,
            Err(e @ (MirrorError::Upstream(_) | MirrorError::Rejected { .. })) => {
                reply.upstream_error = e.to_string()
            }
            Err(e) => return Err(tonic::Status::internal(e.to_string())),
        }
        Ok(tonic::Response::new(reply))
    }
}
