//! openraft's client side over tonic: each Raft RPC is one unary call of `cairn.v1.Raft` carrying
//! the openraft request as JSON (`RaftRequest.data`), answered with JSON data or a JSON error.
//!
//! One lazily connected `Channel` per target is cached in the factory and shared by every
//! connection to that target (channels multiplex HTTP/2 streams). Every call is bounded by
//! openraft's `hard_ttl`; connect failures map to `Unreachable` so openraft backs off instead of
//! retrying hot (RAFT-NOTES §1.4, openraft#525). The same channels carry `Forward` calls.

// openraft's network traits fix the error type (`RPCError`).
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_proto::v1::raft_client::RaftClient;
use cairn_proto::v1::{ForwardRequest, RaftReply, RaftRequest};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{RPCTypes, RaftNetwork, RaftNetworkFactory};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

use super::error::ProposeError;
use super::service::WireProposeError;
use super::{NodeAddr, NodeId, RaftSettings, TypeConfig};
use crate::store::meta::{MetaCmd, MetaResp};

type RpcResult<T, E> = Result<T, RPCError<NodeId, NodeAddr, E>>;

/// Connect timeout of a peer channel.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The network factory handed to openraft (also used for forwarding proposals).
#[derive(Clone, Debug)]
pub struct Network {
    id: NodeId,
    max_message: usize,
    channels: Arc<Mutex<HashMap<NodeId, (String, Channel)>>>,
}

/// A connection to one peer, created by [`Network`] for openraft's replication tasks.
#[derive(Debug)]
pub struct NetworkConnection {
    net: Network,
    target: NodeId,
    addr: String,
}

/// The peer address could not be turned into a gRPC endpoint.
#[derive(Debug, thiserror::Error)]
#[error("invalid cluster address {addr:?} of node {target}: {source}")]
struct BadAddr {
    target: NodeId,
    addr: String,
    #[source]
    source: tonic::transport::Error,
}

/// A call failed with a gRPC status.
#[derive(Debug, thiserror::Error)]
#[error("grpc call to node {target} failed: {status}")]
struct CallFailed {
    target: NodeId,
    status: tonic::Status,
}

impl Network {
    /// A factory for node `id` with the message limits of `settings`.
    pub fn new(id: NodeId, settings: &RaftSettings) -> Network {
        Network {
            id,
            max_message: settings.max_message_size(),
            channels: Arc::default(),
        }
    }

    /// The cached client for `target` at `addr` (a new lazy channel if the address changed).
    fn client(&self, target: NodeId, addr: &str) -> Result<RaftClient<Channel>, BadAddr> {
        let mut map = self
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let channel = match map.get(&target) {
            Some((cached, ch)) if cached == addr => ch.clone(),
            _ => {
                let bad = |source| BadAddr {
                    target,
                    addr: addr.to_string(),
                    source,
                };
                let channel = Endpoint::from_shared(format!("http://{addr}"))
                    .map_err(bad)?
                    .connect_timeout(CONNECT_TIMEOUT)
                    .tcp_nodelay(true)
                    .connect_lazy();
                map.insert(target, (addr.to_string(), channel.clone()));
                channel
            }
        };
        Ok(RaftClient::new(channel)
            .max_decoding_message_size(self.max_message)
            .max_encoding_message_size(self.max_message))
    }

    /// Sends `cmd` to the leader `target` at `addr` with forwarding budget `hops`, waiting at
    /// most `timeout`, and returns the leader's applied result.
    pub async fn forward(
        &self,
        target: NodeId,
        addr: &str,
        cmd: &MetaCmd,
        hops: u32,
        timeout: Duration,
    ) -> Result<MetaResp, ProposeError> {
        let failed = |reason: String| ProposeError::Forward {
            leader_id: target,
            reason,
        };
        let mut client = self
            .client(target, addr)
            .map_err(|e| failed(e.to_string()))?;
        let mut req = tonic::Request::new(ForwardRequest {
            data: serde_json::to_string(cmd)?,
            hops,
        });
        req.set_timeout(timeout);
        let reply = match tokio::time::timeout(timeout, client.forward(req)).await {
            Err(_) => {
                return Err(failed(format!(
                    "no answer within {} ms",
                    timeout.as_millis()
                )))
            }
            Ok(Err(status)) => return Err(failed(status.to_string())),
            Ok(Ok(r)) => r.into_inner(),
        };
        if !reply.error.is_empty() {
            let wire: WireProposeError = serde_json::from_str(&reply.error)?;
            return Err(wire.into_propose_error(target));
        }
        Ok(serde_json::from_str(&reply.data)?)
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = NetworkConnection;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> NetworkConnection {
        NetworkConnection {
            net: self.clone(),
            target,
            addr: node.cluster_addr.clone(),
        }
    }
}

impl NetworkConnection {
    /// One unary Raft call: JSON request out, JSON response or JSON remote error back.
    async fn call<Req, Resp, E>(
        &self,
        kind: RPCTypes,
        req: &Req,
        ttl: Duration,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let mut client = self
            .net
            .client(self.target, &self.addr)
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let data = serde_json::to_string(req).map_err(|e| network(&e))?;
        let mut request = tonic::Request::new(RaftRequest { data });
        request.set_timeout(ttl);
        let fut = async move {
            match kind {
                RPCTypes::AppendEntries => client.append_entries(request).await,
                RPCTypes::Vote => client.vote(request).await,
                RPCTypes::InstallSnapshot => client.install_snapshot(request).await,
            }
        };
        let reply = match tokio::time::timeout(ttl, fut).await {
            Err(_) => return Err(self.timeout(kind, ttl)),
            Ok(Err(status)) => return Err(self.status_error(kind, ttl, status)),
            Ok(Ok(reply)) => reply.into_inner(),
        };
        self.decode_reply(reply)
    }

    fn decode_reply<Resp, E>(&self, reply: RaftReply) -> RpcResult<Resp, E>
    where
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        if !reply.error.is_empty() {
            let remote: E = serde_json::from_str(&reply.error).map_err(|e| network(&e))?;
            return Err(RPCError::RemoteError(RemoteError::new(self.target, remote)));
        }
        serde_json::from_str(&reply.data).map_err(|e| network(&e))
    }

    fn timeout<E: Error>(
        &self,
        action: RPCTypes,
        timeout: Duration,
    ) -> RPCError<NodeId, NodeAddr, E> {
        RPCError::Timeout(Timeout {
            action,
            id: self.net.id,
            target: self.target,
            timeout,
        })
    }

    /// Connection-level failures mean "unreachable" (back off); others are plain network errors.
    fn status_error<E: Error>(
        &self,
        kind: RPCTypes,
        ttl: Duration,
        status: tonic::Status,
    ) -> RPCError<NodeId, NodeAddr, E> {
        let code = status.code();
        let err = CallFailed {
            target: self.target,
            status,
        };
        match code {
            tonic::Code::DeadlineExceeded => self.timeout(kind, ttl),
            tonic::Code::Unavailable | tonic::Code::Unknown => {
                RPCError::Unreachable(Unreachable::new(&err))
            }
            _ => network(&err),
        }
    }
}

fn network<E: Error + 'static, RE: Error>(e: &E) -> RPCError<NodeId, NodeAddr, RE> {
    RPCError::Network(NetworkError::new(e))
}

impl RaftNetwork<TypeConfig> for NetworkConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        self.call(RPCTypes::AppendEntries, &rpc, option.hard_ttl())
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.call(RPCTypes::InstallSnapshot, &rpc, option.hard_ttl())
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        self.call(RPCTypes::Vote, &rpc, option.hard_ttl()).await
    }
}
