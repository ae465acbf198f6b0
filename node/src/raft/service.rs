//! The internal `cairn.v1.Raft` gRPC service (cluster port only): openraft's RPCs, received as
//! JSON and handed to the local Raft, and `Forward`, which applies a follower's proposal on the
//! leader.
//!
//! Errors produced by Raft travel as JSON in `RaftReply.error` (so the caller gets the typed
//! openraft error back); a malformed request is `INVALID_ARGUMENT`.

use std::time::Duration;

use cairn_proto::v1::raft_server::Raft;
use cairn_proto::v1::{
    ForwardRequest, RaftReply, RaftRequest, SetLocationReply, SetLocationRequest,
};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use super::error::ProposeError;
use super::{Consensus, NodeId, TypeConfig};
use crate::store::meta::{MetaCmd, MetaResp};

/// The `cairn.v1.Raft` service of one node (see [`Consensus::raft_service`]).
#[derive(Clone, Debug)]
pub struct RaftGrpc {
    consensus: Consensus,
}

impl RaftGrpc {
    /// The service answering for `consensus`.
    pub fn new(consensus: Consensus) -> RaftGrpc {
        RaftGrpc { consensus }
    }

    /// Applies a forwarded command here if this node leads, else passes it on to the leader
    /// with one hop less (failing with `HopsExhausted` when the budget is spent). Finishes
    /// before the caller's deadline (`grpc-timeout`), capped by this node's propose timeout.
    async fn forward_cmd(
        &self,
        cmd: MetaCmd,
        hops: u32,
        caller_timeout: Option<Duration>,
    ) -> Result<MetaResp, ProposeError> {
        if hops == 0 {
            return Err(ProposeError::HopsExhausted);
        }
        let own = self.consensus.settings().propose_timeout();
        let budget = caller_timeout.map_or(own, |t| t.saturating_sub(answer_margin(t)).min(own));
        let deadline = Instant::now() + budget;
        match self
            .consensus
            .propose_relayed(cmd, hops - 1, deadline)
            .await
        {
            Err(ProposeError::ForwardToLeader { .. }) => Err(ProposeError::HopsExhausted),
            other => other,
        }
    }
}

/// Time kept back from the caller's deadline so the answer reaches it before it gives up.
fn answer_margin(caller_timeout: Duration) -> Duration {
    (caller_timeout / 10).min(Duration::from_millis(250))
}

/// Parses a `grpc-timeout` header value (`<digits><unit>`, unit one of `H M S m u n`).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[tonic::async_trait]
impl Raft for RaftGrpc {
    async fn append_entries(
        &self,
        request: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&request.get_ref().data)?;
        let res = self.consensus.raft().append_entries(rpc).await;
        // Anything but a higher vote means this node accepted the sender as its leader.
        if matches!(&res, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_))) {
            self.consensus.leader_heard();
        }
        reply(res)
    }

    async fn vote(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let rpc: VoteRequest<NodeId> = decode(&request.get_ref().data)?;
        reply(self.consensus.raft().vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(&request.get_ref().data)?;
        reply(self.consensus.raft().install_snapshot(rpc).await)
    }

    async fn install_snapshot_chunk(
        &self,
        request: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let req = request.into_inner();
        let mut rpc: InstallSnapshotRequest<TypeConfig> = decode(&req.data)?;
        if !rpc.data.is_empty() {
            return Err(Status::invalid_argument(
                "InstallSnapshotChunk carries the chunk in payload, not in the JSON",
            ));
        }
        rpc.data = req.payload;
        reply(self.consensus.raft().install_snapshot(rpc).await)
    }

    async fn set_location(
        &self,
        request: Request<SetLocationRequest>,
    ) -> Result<Response<SetLocationReply>, Status> {
        super::location::handle(&self.consensus, request).await
    }

    async fn forward(
        &self,
        request: Request<ForwardRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let caller_timeout = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        let req = request.into_inner();
        let cmd: MetaCmd = decode(&req.data)?;
        let res = self
            .forward_cmd(cmd, req.hops, caller_timeout)
            .await
            .map_err(|e| WireProposeError::from(&e));
        reply(res)
    }
}

fn decode<T: DeserializeOwned>(data: &str) -> Result<T, Status> {
    serde_json::from_str(data)
        .map_err(|e| Status::invalid_argument(format!("malformed request: {e}")))
}

fn reply<T: Serialize, E: Serialize>(res: Result<T, E>) -> Result<Response<RaftReply>, Status> {
    let encode = |e: serde_json::Error| Status::internal(format!("cannot encode reply: {e}"));
    let reply = match res {
        Ok(v) => RaftReply {
            data: serde_json::to_string(&v).map_err(encode)?,
            error: String::new(),
        },
        Err(e) => RaftReply {
            data: String::new(),
            error: serde_json::to_string(&e).map_err(encode)?,
        },
    };
    Ok(Response::new(reply))
}

/// A [`ProposeError`] as it travels in a `Forward` reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum WireProposeError {
    /// See [`ProposeError::NoLeader`].
    NoLeader { waited_ms: u64 },
    /// See [`ProposeError::NoQuorum`].
    NoQuorum { waited_ms: u64 },
    /// See [`ProposeError::Timeout`].
    Timeout { waited_ms: u64 },
    /// See [`ProposeError::ForwardToLeader`].
    ForwardToLeader {
        leader_id: NodeId,
        leader_addr: String,
    },
    /// See [`ProposeError::HopsExhausted`].
    HopsExhausted,
    /// See [`ProposeError::ShuttingDown`].
    ShuttingDown,
    /// Any other failure on the remote node, as text.
    Failed { message: String },
}

impl From<&ProposeError> for WireProposeError {
    fn from(e: &ProposeError) -> Self {
        match e {
            ProposeError::NoLeader { waited_ms } => WireProposeError::NoLeader {
                waited_ms: *waited_ms,
            },
            ProposeError::NoQuorum { waited_ms } => WireProposeError::NoQuorum {
                waited_ms: *waited_ms,
            },
            ProposeError::Timeout { waited_ms } => WireProposeError::Timeout {
                waited_ms: *waited_ms,
            },
            ProposeError::ForwardToLeader {
                leader_id,
                leader_addr,
            } => WireProposeError::ForwardToLeader {
                leader_id: *leader_id,
                leader_addr: leader_addr.clone(),
            },
            ProposeError::HopsExhausted => WireProposeError::HopsExhausted,
            ProposeError::ShuttingDown => WireProposeError::ShuttingDown,
            other => WireProposeError::Failed {
                message: other.to_string(),
            },
        }
    }
}

impl WireProposeError {
    /// The error a proposer sees when `remote` answered a forward with this.
    pub(crate) fn into_propose_error(self, remote: NodeId) -> ProposeError {
        match self {
            WireProposeError::NoLeader { waited_ms } => ProposeError::NoLeader { waited_ms },
            WireProposeError::NoQuorum { waited_ms } => ProposeError::NoQuorum { waited_ms },
            WireProposeError::Timeout { waited_ms } => ProposeError::Timeout { waited_ms },
            WireProposeError::ForwardToLeader {
                leader_id,
                leader_addr,
            } => ProposeError::ForwardToLeader {
                leader_id,
                leader_addr,
            },
            WireProposeError::HopsExhausted => ProposeError::HopsExhausted,
            // The remote stopping is not this node stopping: report it as a forwarding failure.
            WireProposeError::ShuttingDown => ProposeError::Forward {
                leader_id: remote,
                reason: "leader is shutting down".into(),
            },
            WireProposeError::Failed { message } => ProposeError::Forward {
                leader_id: remote,
                reason: message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(parse_grpc_timeout("m"), None);
        assert_eq!(parse_grpc_timeout("10x"), None);
        assert!(answer_margin(Duration::from_secs(10)) <= Duration::from_millis(250));
        assert_eq!(
            answer_margin(Duration::from_secs(1)),
            Duration::from_millis(100)
        );
    }
}
