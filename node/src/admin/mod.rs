//! The operator API (gRPC on `--cluster-listen`), spoken by the `cairn` CLI.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cairn_proto::v1::admin_server::{Admin, AdminServer};
use cairn_proto::v1::{
    AddMemberRequest, Member, MembershipReply, RemoveMemberRequest, StatusReply, StatusRequest,
};

use crate::raft::Consensus;
use crate::store::blob::BlobStore;

/// What the admin service reports about this node.
pub struct AdminService {
    /// This node's id.
    pub node_id: u64,
    /// Bound GOPROXY address.
    pub listen_addr: String,
    /// Bound cluster address.
    pub cluster_addr: String,
    /// Raft state.
    pub consensus: Consensus,
    /// Blob counts.
    pub blobs: BlobStore,
    /// Startup finished.
    pub started: Arc<AtomicBool>,
    /// When the process started.
    pub since: Instant,
}

impl AdminService {
    /// Wraps the service for tonic.
    pub fn into_server(self) -> AdminServer<AdminService> {
        AdminServer::new(self)
    }

    fn status_reply(&self) -> StatusReply {
        let st = self.consensus.status();
        let ready = self.started.load(Ordering::Acquire)
            && self.consensus.is_caught_up()
            && self.blobs.check_writable().is_ok();
        let health = match (ready, st.leader_id) {
            (false, _) => "unavailable: starting or storage not writable".to_string(),
            (true, None) => "degraded: no quorum".to_string(),
            (true, Some(_)) => "healthy".to_string(),
        };
        StatusReply {
            node_id: self.node_id,
            version: env!("CARGO_PKG_VERSION").to_string(),
            health,
            ready,
            raft_state: st.state.to_string(),
            current_term: st.term,
            leader_id: st.leader_id.unwrap_or(0),
            last_log_index: st.last_log_index.unwrap_or(0),
            last_applied_index: st.applied_index.unwrap_or(0),
            members: st
                .members
                .iter()
                .map(|m| Member {
                    id: m.id,
                    addr: m.addr.clone(),
                    voter: m.voter,
                    matched_index: m.matched_index.unwrap_or(0),
                })
                .collect(),
            blob_count: self.blobs.objects(),
            blob_bytes: self.blobs.bytes(),
            version_records: self.consensus.reader().version_count(),
            listen_addr: self.listen_addr.clone(),
            cluster_addr: self.cluster_addr.clone(),
            uptime_seconds: self.since.elapsed().as_secs(),
            initialized: true,
            blobs_missing: 0,
            repair_queue: 0,
        }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(
        &self,
        _req: tonic::Request<StatusRequest>,
    ) -> Result<tonic::Response<StatusReply>, tonic::Status> {
        Ok(tonic::Response::new(self.status_reply()))
    }

    async fn add_member(
        &self,
        _req: tonic::Request<AddMemberRequest>,
    ) -> Result<tonic::Response<MembershipReply>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "membership changes are not implemented yet",
        ))
    }

    async fn remove_member(
        &self,
        _req: tonic::Request<RemoveMemberRequest>,
    ) -> Result<tonic::Response<MembershipReply>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "membership changes are not implemented yet",
        ))
    }
}
