//! Each node's region and zone in the membership. A node knows its own location
//! (`cluster.region`, `cluster.zone`); the membership learns it when the node is added (the
//! leader probes it) and, for nodes bootstrapped from static `--peers` or whose configuration
//! changed, from this worker: while the membership records another location for this node, it
//! asks the leader to record its own (`cairn.v1.Raft/SetLocation`), retrying until it sticks.

use std::time::Duration;

use cairn_proto::v1::raft_client::RaftClient;
use cairn_proto::v1::{SetLocationReply, SetLocationRequest};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::{Consensus, MembershipError, NodeId};
use crate::tls::authz::Acting;
use crate::tls::Identity;

/// How often the worker compares the membership with the configured location.
const CHECK: Duration = Duration::from_secs(2);
/// Deadline of one `SetLocation` call (a membership change commits within it).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why recording the location failed this time (the worker logs it and tries again).
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// No leader is known yet.
    #[error("no raft leader is known yet")]
    NoLeader,
    /// The leader's address is not usable.
    #[error("cannot reach the leader: {0}")]
    Connect(String),
    /// The leader refused or failed.
    #[error("the leader did not record it: {0}")]
    Refused(String),
    /// This node leads and the change failed.
    #[error(transparent)]
    Membership(#[from] MembershipError),
}

/// Starts the worker (ends on `shutdown`).
pub fn spawn(consensus: Consensus, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut warned = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(CHECK) => {}
            }
            match step(&consensus).await {
                Ok(true) => {
                    let s = consensus.settings();
                    tracing::info!(region = %s.region, zone = %s.zone, "this node's location is recorded in the membership");
                    warned = false;
                }
                Ok(false) => {}
                Err(e) if !warned => {
                    tracing::warn!(error = %e, "cannot record this node's region/zone in the membership yet; retrying");
                    warned = true;
                }
                Err(e) => tracing::debug!(error = %e, "location not recorded yet"),
            }
        }
    });
}

/// Records this node's location if the membership says otherwise. `Ok(true)` when it changed
/// the membership, `Ok(false)` when there was nothing to do (not a member yet, or recorded).
pub async fn step(consensus: &Consensus) -> Result<bool, LocationError> {
    let id = consensus.node_id();
    let (region, zone) = {
        let s = consensus.settings();
        (s.region.clone(), s.zone.clone())
    };
    let st = consensus.status();
    let Some(me) = st.member(id) else {
        return Ok(false);
    };
    if me.region == region && me.zone == zone {
        return Ok(false);
    }
    let leader = st.leader_id.ok_or(LocationError::NoLeader)?;
    if leader == id {
        consensus.set_location(id, &region, &zone).await?;
        return Ok(true);
    }
    let addr = st
        .member(leader)
        .map(|m| m.addr.clone())
        .ok_or(LocationError::NoLeader)?;
    let channel = consensus
        .network()
        .channel(leader, &addr)
        .map_err(|e| LocationError::Connect(e.to_string()))?;
    let mut req = Request::new(SetLocationRequest { id, region, zone });
    req.set_timeout(CALL_TIMEOUT);
    RaftClient::new(channel)
        .set_location(req)
        .await
        .map_err(|s| LocationError::Refused(format!("{}: {}", s.code(), s.message())))?;
    Ok(true)
}

/// Handles `SetLocation` on this node: only node `id` itself may report its location (checked
/// against its certificate on a secure port), and only the leader records it.
pub(crate) async fn handle(
    consensus: &Consensus,
    req: Request<SetLocationRequest>,
) -> Result<Response<SetLocationReply>, Status> {
    let caller = req
        .extensions()
        .get::<Acting>()
        .and_then(|a| a.caller.clone());
    let r = req.into_inner();
    if let Some(who) = caller {
        if who != Identity::Node(r.id as NodeId) {
            return Err(Status::permission_denied(format!(
                "{who} may not report the location of node {}",
                r.id
            )));
        }
    }
    if !crate::config::valid_location(&r.region) || !crate::config::valid_location(&r.zone) {
        return Err(Status::invalid_argument(format!(
            "{:?}/{:?} is not a valid region/zone",
            r.region, r.zone
        )));
    }
    match consensus.set_location(r.id, &r.region, &r.zone).await {
        Ok(_) => Ok(Response::new(SetLocationReply {})),
        Err(e) => Err(crate::admin::membership::to_status(&e, false)),
    }
}
