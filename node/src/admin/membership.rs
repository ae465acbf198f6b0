//! `AddMember` / `RemoveMember`: run on the leader, or forwarded once from a follower to the
//! leader's Admin service (its cluster address from the membership); and the one table that maps
//! [`MembershipError`] to gRPC statuses.

use std::time::Duration;

use cairn_proto::v1::admin_client::AdminClient;
use cairn_proto::v1::{AddMemberRequest, MembershipReply, RemoveMemberRequest};
use tonic::metadata::MetadataValue;
use tonic::transport::Endpoint;
use tonic::{Code, Request, Response, Status};

use crate::raft::{Consensus, MembershipError, RaftMember, LEARNER_CATCH_UP};

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

/// Handles `AddMember` on this node (see [`Consensus::add_member`]).
pub(crate) async fn add(
    consensus: &Consensus,
    req: Request<AddMemberRequest>,
) -> Result<Response<MembershipReply>, Status> {
    let forwarded = req.metadata().contains_key(FORWARDED_HEADER);
    let r = req.into_inner();
    match consensus.add_member(r.id, &r.addr, r.learner_only).await {
        Ok(members) => Ok(reply(consensus, &members)),
        Err(MembershipError::NotLeader {
            leader_id: Some(leader),
            leader_addr,
        }) if !forwarded && !leader_addr.is_empty() => {
            tracing::info!(leader, %leader_addr, "forwarding AddMember to the leader");
            let mut client = leader_client(leader, &leader_addr)?;
            client
                .add_member(forwarded_request(r, FORWARD_ADD_TIMEOUT))
                .await
        }
        Err(e) => Err(to_status(&e, forwarded)),
    }
}

/// Handles `RemoveMember` on this node (see [`Consensus::remove_member`]).
pub(crate) async fn remove(
    consensus: &Consensus,
    req: Request<RemoveMemberRequest>,
) -> Result<Response<MembershipReply>, Status> {
    let forwarded = req.metadata().contains_key(FORWARDED_HEADER);
    let r = req.into_inner();
    match consensus.remove_member(r.id).await {
        Ok(members) => Ok(reply(consensus, &members)),
        Err(MembershipError::NotLeader {
            leader_id: Some(leader),
            leader_addr,
        }) if !forwarded && !leader_addr.is_empty() => {
            tracing::info!(leader, %leader_addr, "forwarding RemoveMember to the leader");
            let mut client = leader_client(leader, &leader_addr)?;
            client
                .remove_member(forwarded_request(r, FORWARD_REMOVE_TIMEOUT))
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

fn forwarded_request<T>(msg: T, timeout: Duration) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert(FORWARDED_HEADER, MetadataValue::from_static("1"));
    req.set_timeout(timeout);
    req
}

fn leader_client(
    leader: u64,
    addr: &str,
) -> Result<AdminClient<tonic::transport::Channel>, Status> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).map_err(|e| {
        Status::internal(format!(
            "leader node {leader} has an invalid address {addr:?} in the membership: {e}"
        ))
    })?;
    Ok(AdminClient::new(
        endpoint.connect_timeout(CONNECT_TIMEOUT).connect_lazy(),
    ))
}

/// The gRPC status of a membership error (the one place these codes are decided).
pub fn to_status(e: &MembershipError, forwarded: bool) -> Status {
    let code = match e {
        MembershipError::ZeroId | MembershipError::BadAddr { .. } => Code::InvalidArgument,
        MembershipError::IdConflict { .. }
        | MembershipError::AddrConflict { .. }
        | MembershipError::LastVoter { .. } => Code::FailedPrecondition,
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
