//! The operator API (`cairn.v1.Admin`, gRPC on `--cluster-listen`), spoken by the `cairn` CLI
//! and by peers (the bootstrap probe and liveness checks call `Status`).
//!
//! - `Status`: this node's health, Raft state, membership and blob counters. Peers' machine
//!   probes mark themselves with [`PROBE_HEADER`] and skip the storage write check.
//! - `Verify`: `cairn verify`, an audit of the stored versions against the checksum database.
//! - `AddMember` / `RemoveMember`: membership changes with Raft's semantics (learner first, then
//!   joint-consensus promotion; see `crate::raft` `membership.rs`). They run on the leader; a
//!   follower forwards the call there (one hop). No hidden retries: failures come back to the
//!   operator with a message that says what to do.
//!
//! gRPC status codes for membership errors are decided in one place: [`membership`].

mod backup;
pub mod membership;
mod pins;
mod policy;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
mod verify;

pub use backup::{BackupBlobStream, BackupStateStream};
pub use verify::VerifyStream;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cairn_proto::v1::admin_server::{Admin, AdminServer};
use cairn_proto::v1::{
    AddMemberRequest, Member, MembershipReply, RemoveMemberRequest, RouteReply, RouteRequest,
    StatusReply, StatusRequest, VerifyRequest,
};
use cairn_proto::v1::{DenyRequest, ListPolicyReply, ListPolicyRequest, PolicyReply, PurgeRequest};
use cairn_proto::v1::{PinListReply, PinListRequest, PinReply, PinRequest};

use crate::raft::{BootstrapState, Consensus, RaftMember, RaftRole, RaftStatus};
use crate::routing::Router;
use crate::store::blob::BlobStore;

/// Request metadata marking a machine probe of `Status` (peer liveness, the bootstrap probe):
/// the reply skips the storage write check, so frequent probes cost no disk writes (`ready` then
/// reflects startup and catch-up only).
pub const PROBE_HEADER: &str = "x-cairn-probe";

/// Where `Status` reads the blob repair counters from (`StatusReply.blobs_missing` and
/// `repair_queue`). Implemented for the repair worker handle
/// ([`Repair`](crate::cluster::repair::Repair)).
pub trait RepairCounters: Send + Sync {
    /// Blobs referenced by the replicated state but not (yet) on this node.
    fn blobs_missing(&self) -> u64;
    /// Entries in this node's blob repair queue.
    fn repair_queue(&self) -> u64;
}

impl RepairCounters for crate::cluster::repair::Repair {
    fn blobs_missing(&self) -> u64 {
        self.missing()
    }

    fn repair_queue(&self) -> u64 {
        self.queue_len()
    }
}

/// What the admin service reports about this node, and the handle membership changes run on.
pub struct AdminService {
    /// This node's id.
    pub node_id: u64,
    /// Bound GOPROXY address.
    pub listen_addr: String,
    /// Bound cluster address.
    pub cluster_addr: String,
    /// Raft state; membership changes.
    pub consensus: Consensus,
    /// Blob counts.
    pub blobs: BlobStore,
    /// Startup finished.
    pub started: Arc<AtomicBool>,
    /// When the process started.
    pub since: Instant,
    /// The blob repair counters (`None`: reported as 0), e.g. `Some(Arc::new(repair.clone()))`.
    pub repair: Option<Arc<dyn RepairCounters>>,
    /// The routing rules, for `cairn route` (`None`: the RPC answers "unavailable").
    pub router: Option<Arc<Router>>,
    /// Re-checks stored versions for `cairn verify` (`None`: the RPC fails, saying why).
    pub audit: Option<Arc<crate::sumdb::Audit>>,
    /// Membership may change over a plain-text cluster port (`cluster.insecure`).
    pub allow_insecure_membership: bool,
    /// The audit trail of administrative actions.
    pub trail: crate::auditlog::AuditLog,
    /// Where `BackupBlob` fetches blobs this node lacks (`None`: only local blobs are sent).
    pub backup_peers: Option<Arc<dyn crate::mirror::cluster::ClusterOps>>,
}

/// Who called an administrative RPC, for the audit trail.
struct Caller {
    operator: String,
    client: Option<std::net::SocketAddr>,
    /// Forwarded by a follower, which records the action itself.
    forwarded: bool,
}

impl Caller {
    fn of<T>(req: &tonic::Request<T>) -> Caller {
        let peer = req.extensions().get::<crate::tls::cluster::ClusterPeer>();
        Caller {
            operator: membership::acting_operator(req)
                .unwrap_or_else(|| "anonymous (insecure cluster port)".into()),
            client: peer.and_then(|p| p.remote),
            // Only a node forwards; from anyone else the header must not suppress the record.
            forwarded: req.metadata().contains_key(membership::FORWARDED_HEADER)
                && req
                    .extensions()
                    .get::<crate::tls::authz::Acting>()
                    .is_some_and(|a| {
                        matches!(a.caller, Some(crate::tls::Identity::Node(_)) | None)
                    }),
        }
    }
}

impl AdminService {
    /// Records an administrative action in the audit trail (once: not on the leader a
    /// follower forwarded it to).
    fn record<T>(
        &self,
        who: &Caller,
        action: &str,
        target: &str,
        result: &Result<T, tonic::Status>,
    ) {
        if who.forwarded {
            return;
        }
        let outcome = match result {
            Ok(_) => "ok".to_string(),
            Err(s) => format!("{:?}: {}", s.code(), s.message()),
        };
        self.trail.admin(crate::auditlog::AdminEvent {
            identity: &who.operator,
            client: who.client,
            action,
            target,
            result: &outcome,
            node: self.node_id,
        });
    }

    /// Wraps the service for tonic.
    pub fn into_server(self) -> AdminServer<AdminService> {
        AdminServer::new(self)
    }

    fn quorum_limit_ms(&self) -> u64 {
        let limit = self.consensus.settings().degraded_after();
        u64::try_from(limit.as_millis()).unwrap_or(u64::MAX)
    }

    fn status_reply(&self, probe: bool) -> StatusReply {
        let st = self.consensus.status();
        let ready = self.started.load(Ordering::Acquire)
            && self.consensus.is_caught_up()
            && (probe || self.blobs.check_writable().is_ok());
        StatusReply {
            node_id: self.node_id,
            version: env!("CARGO_PKG_VERSION").to_string(),
            health: disk_health(
                health(
                    ready,
                    &st,
                    self.consensus.bootstrap_state(),
                    self.quorum_limit_ms(),
                ),
                self.blobs.is_flooded(),
            ),
            ready,
            raft_state: st.state.to_string(),
            current_term: st.term,
            leader_id: st.leader_id.unwrap_or(0),
            last_log_index: st.last_log_index.unwrap_or(0),
            last_applied_index: st.applied_index.unwrap_or(0),
            members: to_wire(&st.members),
            blob_count: self.blobs.objects(),
            blob_bytes: self.blobs.bytes(),
            version_records: self.consensus.reader().version_count(),
            listen_addr: self.listen_addr.clone(),
            cluster_addr: self.cluster_addr.clone(),
            uptime_seconds: self.since.elapsed().as_secs(),
            initialized: st.initialized,
            blobs_missing: self.repair.as_ref().map_or(0, |r| r.blobs_missing()),
            repair_queue: self.repair.as_ref().map_or(0, |r| r.repair_queue()),
            region: self.consensus.settings().region.clone(),
            zone: self.consensus.settings().zone.clone(),
        }
    }
}

/// The node's health line: `healthy`, `degraded: <why>` (serving, but without a leader or a
/// quorum, or not yet a member), or `unavailable: <why>`. A leader counts as without quorum when
/// no quorum acknowledged it for `quorum_limit_ms`.
fn health(ready: bool, st: &RaftStatus, bootstrap: BootstrapState, quorum_limit_ms: u64) -> String {
    if !ready {
        return "unavailable: starting or storage not writable".to_string();
    }
    if bootstrap == BootstrapState::Refused {
        return "unavailable: this node has no data but the cluster exists; add it under a new id with `cairn members add`".to_string();
    }
    if !st.initialized {
        let why = match bootstrap {
            BootstrapState::Probing => "forming the cluster: waiting for every peer to answer",
            _ => "not a cluster member yet (waiting to be added)",
        };
        return format!("degraded: {why}");
    }
    let quorum_lost = st.state == RaftRole::Leader
        && st
            .millis_since_quorum_ack
            .is_some_and(|ms| ms > quorum_limit_ms);
    match (st.leader_id, st.leader_silent_ms) {
        (None, _) => "degraded: no leader (election running or quorum lost)".to_string(),
        (Some(id), Some(ms)) => {
            format!("degraded: leader {id} unreachable for {ms} ms (link down or quorum lost)")
        }
        (Some(_), None) if quorum_lost => "degraded: leader without a quorum of voters".to_string(),
        (Some(_), None) => "healthy".to_string(),
    }
}

/// A healthy node at its flood watermark reports `degraded: disk full` (issue 12).
fn disk_health(health: String, flooded: bool) -> String {
    if flooded && health == "healthy" {
        "degraded: disk full".to_string()
    } else {
        health
    }
}

/// Members as the wire carries them (`matched_index` 0 when unknown).
pub(crate) fn to_wire(members: &[RaftMember]) -> Vec<Member> {
    members
        .iter()
        .map(|m| Member {
            id: m.id,
            addr: m.addr.clone(),
            voter: m.voter,
            matched_index: m.matched_index.unwrap_or(0),
            region: m.region.clone(),
            zone: m.zone.clone(),
        })
        .collect()
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn status(
        &self,
        req: tonic::Request<StatusRequest>,
    ) -> Result<tonic::Response<StatusReply>, tonic::Status> {
        let probe = req.metadata().contains_key(PROBE_HEADER);
        Ok(tonic::Response::new(self.status_reply(probe)))
    }

    /// Raft semantics: `add_learner(id, addr, blocking)` on the leader (waits up to
    /// [`crate::raft::LEARNER_CATCH_UP`] for the learner to catch up), then, unless
    /// `learner_only`, `change_membership(AddVoterIds{id})` (joint consensus; returns once the
    /// final configuration is committed). Forwarded to the leader from a follower.
    #[tracing::instrument(skip_all, fields(id = req.get_ref().id, addr = %req.get_ref().addr))]
    async fn add_member(
        &self,
        req: tonic::Request<AddMemberRequest>,
    ) -> Result<tonic::Response<MembershipReply>, tonic::Status> {
        let who = Caller::of(&req);
        let r = req.get_ref();
        // A forced placement is an operator accepting a risk: the audit line says so.
        let forced = if r.force_placement && !r.learner_only {
            " (placement forced)"
        } else {
            ""
        };
        let target = format!("node {} at {}{forced}", r.id, r.addr);
        let result = membership::add(&self.consensus, self.allow_insecure_membership, req).await;
        self.record(&who, "members.add", &target, &result);
        result
    }

    /// Raft semantics: `change_membership(RemoveVoters{id}, retain = false)` for a voter (joint
    /// consensus), `RemoveNodes{id}` for a learner; the last voter is never removed. The removed
    /// node is not told: stop it afterwards. Forwarded to the leader from a follower.
    #[tracing::instrument(skip_all, fields(id = req.get_ref().id))]
    async fn remove_member(
        &self,
        req: tonic::Request<RemoveMemberRequest>,
    ) -> Result<tonic::Response<MembershipReply>, tonic::Status> {
        let who = Caller::of(&req);
        let target = format!("node {}", req.get_ref().id);
        let result = membership::remove(&self.consensus, self.allow_insecure_membership, req).await;
        self.record(&who, "members.remove", &target, &result);
        result
    }

    type VerifyStream = VerifyStream;

    /// Re-checks every stored public version against the checksum database, streaming
    /// progress and problems. Read-only: nothing is changed.
    async fn verify(
        &self,
        req: tonic::Request<VerifyRequest>,
    ) -> Result<tonic::Response<Self::VerifyStream>, tonic::Status> {
        let who = Caller::of(&req);
        let result = verify::start(self.audit.clone()).map(tonic::Response::new);
        self.record(&who, "verify", "every stored version", &result);
        result
    }

    type BackupStateStream = BackupStateStream;

    /// `cairn backup`: this node's state machine at its applied index (read lock held while
    /// serializing: applies wait, serving does not). Audited as `backup`.
    async fn backup_state(
        &self,
        req: tonic::Request<cairn_proto::v1::BackupStateRequest>,
    ) -> Result<tonic::Response<Self::BackupStateStream>, tonic::Status> {
        let who = Caller::of(&req);
        let result = backup::state(&self.consensus, self.node_id)
            .await
            .map(tonic::Response::new);
        self.record(&who, "backup", "replicated state", &result);
        result
    }

    type BackupBlobStream = BackupBlobStream;

    /// `cairn backup`: one blob's bytes (fetched from a peer first if this node lacks it). Not
    /// audited one by one: the backup's `BackupState` call is.
    async fn backup_blob(
        &self,
        req: tonic::Request<cairn_proto::v1::BackupBlobRequest>,
    ) -> Result<tonic::Response<Self::BackupBlobStream>, tonic::Status> {
        backup::blob(&self.blobs, self.backup_peers.as_ref(), req.into_inner())
            .await
            .map(tonic::Response::new)
    }

    /// Which routing rule a module path matches; nothing is fetched.
    async fn route(
        &self,
        req: tonic::Request<RouteRequest>,
    ) -> Result<tonic::Response<RouteReply>, tonic::Status> {
        let router = self
            .router
            .as_ref()
            .ok_or_else(|| tonic::Status::unavailable("this node has no routing rules loaded"))?;
        let mut reply = route_reply(router, &req.get_ref().module)?;
        reply.deny_rules = policy::rules_for(&self.consensus, &req.get_ref().module);
        Ok(tonic::Response::new(reply))
    }

    // === operator policy (issue 12) ===

    /// Adds or lifts a deny rule (replicated, audited).
    async fn deny(
        &self,
        req: tonic::Request<DenyRequest>,
    ) -> Result<tonic::Response<PolicyReply>, tonic::Status> {
        let who = Caller::of(&req);
        let r = req.get_ref();
        let target = match r.version.as_str() {
            "" => r.pattern.clone(),
            v => format!("{}@{v}", r.pattern),
        };
        let action = if r.lift { "deny.lift" } else { "deny" };
        let target = format!("{target} reason={:?}", r.reason);
        let result = policy::deny(&self.consensus, &who.operator, r).await;
        self.record(&who, action, &target, &result);
        result.map(tonic::Response::new)
    }

    /// Purges a version or lifts its tombstone (replicated, audited).
    async fn purge(
        &self,
        req: tonic::Request<PurgeRequest>,
    ) -> Result<tonic::Response<PolicyReply>, tonic::Status> {
        let who = Caller::of(&req);
        let r = req.get_ref();
        let action = if r.lift { "purge.lift" } else { "purge" };
        let target = format!("{}@{} reason={:?}", r.module, r.version, r.reason);
        let result = policy::purge(&self.consensus, &who.operator, r).await;
        self.record(&who, action, &target, &result);
        result.map(tonic::Response::new)
    }

    /// Every deny rule and tombstone (read locally).
    async fn list_policy(
        &self,
        _req: tonic::Request<ListPolicyRequest>,
    ) -> Result<tonic::Response<ListPolicyReply>, tonic::Status> {
        policy::list(&self.consensus).map(tonic::Response::new)
    }

    // === disk: pins (issue 12) ===

    /// Pins a pattern (replicated; audited as `pin.add`).
    async fn pin_add(
        &self,
        req: tonic::Request<PinRequest>,
    ) -> Result<tonic::Response<PinReply>, tonic::Status> {
        let who = Caller::of(&req);
        let pattern = req.into_inner().pattern;
        let result = pins::add(&self.consensus, &pattern, &who.operator).await;
        self.record(&who, "pin.add", &pattern, &result);
        result.map(tonic::Response::new)
    }

    /// Removes a pin (replicated; audited as `pin.remove`).
    async fn pin_remove(
        &self,
        req: tonic::Request<PinRequest>,
    ) -> Result<tonic::Response<PinReply>, tonic::Status> {
        let who = Caller::of(&req);
        let pattern = req.into_inner().pattern;
        let result = pins::remove(&self.consensus, &pattern).await;
        self.record(&who, "pin.remove", &pattern, &result);
        result.map(tonic::Response::new)
    }

    /// Lists the pins this node has applied.
    async fn pin_list(
        &self,
        _req: tonic::Request<PinListRequest>,
    ) -> Result<tonic::Response<PinListReply>, tonic::Status> {
        pins::list(&self.consensus).map(tonic::Response::new)
    }
}

/// The wire form of `router.route(module)`; the path must be a valid module path.
fn route_reply(router: &Router, module: &str) -> Result<RouteReply, tonic::Status> {
    crate::module::check_path(module).map_err(|e| {
        tonic::Status::invalid_argument(format!("{module:?} is not a module path: {e}"))
    })?;
    let m = router.route(module);
    Ok(RouteReply {
        rule_index: m.index as u64,
        name: m.name,
        patterns: m.patterns,
        upstream: m.upstream,
        private: m.private,
        sumdb: m.sumdb,
        denied: m.denied,
        default_rule: m.default,
        deny_rules: Vec::new(),
    })
}
