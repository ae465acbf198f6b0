//! `AddMember` / `RemoveMember`: run on the leader, or forwarded once from a follower to the
//! leader's Admin service (its cluster address from the membership); and the one table that maps
//! [`MembershipError`] to gRPC statuses.

use std::time::Duration;

use cairn_proto::v1::admin_client::AdminClient;
use cairn_proto::v1::{AddMemberRequest, MembershipReply, RemoveMemberRequest};
use tonic::metadata::MetadataValue;
use tonic::transport::Endpoint;
use tonic::{Code, Request, Response, Status};

use crate::raft::{Consensus, MembershipError, NodeAddr, RaftMember, LEARNER_CATCH_UP};

/// Request metadata set on a call a follower forwarded (the leader never forwards it again).
pub const FORWARDED_HEADER: &str = "x-cairn-forwarded";
/// Metadata on an `UNAVAILABLE` "not the leader" status: `<id>=<cluster addr>` of the leader.
pub const LEADER_HEADER: &str = "x-cairn-leader";
/// Deadline of a forwarded `AddMember` (the leader may wait for the learner to catch up).
const FORWARD_ADD_TIMEOUT: Duration = Duration::from_secs(LEARNER_CATCH_UP.as_secs() + 120);
/// Deadline of a forwarded `RemoveMember`.
const FORWARD_REMOVE_TIMEOUT: Duration = Duration::from_secs(180);
/// Connect timeout to the leader.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Membership may change over a plain-text cluster port only if the operator said so
/// (`cluster.insecure`): otherwise anyone reaching the port could add a node of their own.
pub(crate) fn check_secure(consensus: &Consensus, allow_insecure: bool) -> Result<(), Status> {
    if consensus.network().tls().is_secure() || allow_insecure {
        return Ok(());
    }
    Err(Status::failed_precondition(
        "membership changes need mutual TLS on the cluster port (set cluster.ca_file, cluster.cert_file and cluster.key_file; `cairn certs` makes them), or cluster.insecure = true to allow them without",
    ))
}

/// Checks that node `id` answers at `addr` (and, with TLS, proves it is node `id`) before it
/// becomes a member: a typo'd or dead address must not become a voter the cluster then waits for.
/// Returns the node as it describes itself (address plus its configured region and zone).
async fn probe_new_node(consensus: &Consensus, id: u64, addr: &str) -> Result<NodeAddr, Status> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| Status::invalid_argument(format!("{addr:?} is not a HOST:PORT address: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT);
    let channel = consensus
        .network()
        .tls()
        .connect_lazy(endpoint, crate::tls::Expect::Node(id));
    let mut req = Request::new(cairn_proto::v1::StatusRequest {});
    req.set_timeout(CONNECT_TIMEOUT);
    match AdminClient::new(channel).status(req).await {
        Ok(r) if r.get_ref().node_id == id => {
            let r = r.into_inner();
            Ok(NodeAddr {
                cluster_addr: addr.to_string(),
                region: r.region,
                zone: r.zone,
            })
        }
        Ok(r) => Err(Status::failed_precondition(format!(
            "{addr} is node {}, not node {id}: check the id and the address",
            r.get_ref().node_id
        ))),
        Err(s) => Err(Status::failed_precondition(format!(
            "node {id} does not answer at {addr} ({}): start it first, with --node-id {id} and its certificate, and check the address",
            s.message()
        ))),
    }
}

/// Handles `AddMember` on this node (see [`Consensus::add_member`]).
pub(crate) async fn add(
    consensus: &Consensus,
    allow_insecure: bool,
    req: Request<AddMemberRequest>,
) -> Result<Response<MembershipReply>, Status> {
    check_secure(consensus, allow_insecure)?;
    let forwarded = req.metadata().contains_key(FORWARDED_HEADER);
    let operator = acting_operator(&req);
    let r = req.into_inner();
    let node = if consensus.precheck_add(r.id, &r.addr).is_ok() {
        probe_new_node(consensus, r.id, &r.addr).await?
    } else {
        NodeAddr::at(r.addr.clone())
    };
    match consensus
        .add_member(r.id, node, r.learner_only, r.force_placement)
        .await
    {
        Ok(members) => Ok(reply(consensus, &members)),
        Err(MembershipError::NotLeader {
            leader_id: Some(leader),
            leader_addr,
        }) if !forwarded && !leader_addr.is_empty() => {
            tracing::info!(leader, %leader_addr, "forwarding AddMember to the leader");
            let mut client = leader_client(consensus, leader, &leader_addr)?;
            client
                .add_member(forwarded_request(r, FORWARD_ADD_TIMEOUT, operator))
                .await
        }
        Err(e) => Err(to_status(&e, forwarded)),
    }
}

/// Handles `RemoveMember` on this node (see [`Consensus::remove_member`]).
pub(crate) async fn remove(
    consensus: &Consensus,
    allow_insecure: bool,
    req: Request<RemoveMemberRequest>,
) -> Result<Response<MembershipReply>, Status> {
    check_secure(consensus, allow_insecure)?;
    let forwarded = req.metadata().contains_key(FORWARDED_HEADER);
    let operator = acting_operator(&req);
    let r = req.into_inner();
    match consensus.remove_member(r.id).await {
        Ok(members) => Ok(reply(consensus, &members)),
        Err(MembershipError::NotLeader {
            leader_id: Some(leader),
            leader_addr,
        }) if !forwarded && !leader_addr.is_empty() => {
            tracing::info!(leader, %leader_addr, "forwarding RemoveMember to the leader");
            let mut client = leader_client(consensus, leader, &leader_addr)?;
            client
                .remove_member(forwarded_request(r, FORWARD_REMOVE_TIMEOUT, operator))
                .await
        }
        Err(e) => Err(to_status(&e, forwarded)),
    }
}

fn reply(consensus: &Consensus, members: &[RaftMember]) -> Response<MembershipReply> {
    Response::new(MembershipReply {
        members: super::to_wire(members),
        leader_id: consensus.status().leader_id.unwrap_or(0),
    })
}

/// The operator a request acts for (set by the cluster port's access layer).
pub(crate) fn acting_operator<T>(req: &Request<T>) -> Option<String> {
    req.extensions()
        .get::<crate::tls::authz::Acting>()
        .and_then(|a| a.operator.clone())
}

fn forwarded_request<T>(msg: T, timeout: Duration, operator: Option<String>) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert(FORWARDED_HEADER, MetadataValue::from_static("1"));
    if let Some(v) = operator.and_then(|o| MetadataValue::try_from(o).ok()) {
        req.metadata_mut()
            .insert(crate::tls::authz::OPERATOR_HEADER, v);
    }
    req.set_timeout(timeout);
    req
}

fn leader_client(
    consensus: &Consensus,
    leader: u64,
    addr: &str,
) -> Result<AdminClient<tonic::transport::Channel>, Status> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).map_err(|e| {
        Status::internal(format!(
            "leader node {leader} has an invalid address {addr:?} in the membership: {e}"
        ))
    })?;
    Ok(AdminClient::new(consensus.network().tls().connect_lazy(
        endpoint.connect_timeout(CONNECT_TIMEOUT),
        crate::tls::Expect::Node(leader),
    )))
}

/// The gRPC status of a membership error (the one place these codes are decided).
pub fn to_status(e: &MembershipError, forwarded: bool) -> Status {
    let code = match e {
        MembershipError::ZeroId | MembershipError::BadAddr { .. } => Code::InvalidArgument,
        MembershipError::IdConflict { .. }
        | MembershipError::AddrConflict { .. }
        | MembershipError::LastVoter { .. }
        | MembershipError::Placement { .. } => Code::FailedPrecondition,
        MembershipError::NotMember { .. } => Code::NotFound,
        MembershipError::NotLeader { .. } => Code::Unavailable,
        MembershipError::CatchUpTimeout { .. } | MembershipError::Timeout { .. } => {
            Code::DeadlineExceeded
        }
        MembershipError::InProgress(_) => Code::Aborted,
        MembershipError::Fatal(_) => Code::Internal,
    };
    let message = match e {
        MembershipError::NotLeader { .. } if forwarded => {
            format!("leadership moved while the call was forwarded ({e}); run the command again")
        }
        _ => e.to_string(),
    };
    let mut status = Status::new(code, message);
    if let MembershipError::NotLeader {
        leader_id: Some(id),
        leader_addr,
    } = e
    {
        if let Ok(v) = format!("{id}={leader_addr}").parse() {
            status.metadata_mut().insert(LEADER_HEADER, v);
        }
    }
    status
}
