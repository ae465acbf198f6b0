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

use cairn_proto::v1::admin_client::AdminClient;
use cairn_proto::v1::raft_client::RaftClient;
use cairn_proto::v1::{ForwardRequest, RaftReply, RaftRequest, StatusReply, StatusRequest};
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
use super::heartbeat::{Heartbeats, Plan};
use super::service::WireProposeError;
use super::{NodeAddr, NodeId, RaftSettings, TypeConfig};
use crate::store::meta::{MetaCmd, MetaResp};

type RpcResult<T, E> = Result<T, RPCError<NodeId, NodeAddr, E>>;

/// Connect timeout of a peer channel.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Counter: proposals this node forwarded to the leader, by result (`ok`: the leader applied
/// it; `error`: the forward failed; `abandoned`: leadership moved while it was in flight and it
/// was re-sent). Whether a retry then succeeded shows in `cairn_raft_proposals_total`.
/// Describe it with [`describe_forwarding`].
pub const FORWARDED_TOTAL: &str = "cairn_raft_forwarded_total";

/// Describes [`FORWARDED_TOTAL`] (call once at startup, next to `raft::metrics::describe`).
pub fn describe_forwarding() {
    metrics::describe_counter!(
        FORWARDED_TOTAL,
        metrics::Unit::Count,
        "Proposals this node forwarded to the Raft leader, by result (ok, error, abandoned)."
    );
}

/// The network factory handed to openraft (also used for forwarding proposals).
#[derive(Clone, Debug)]
pub struct Network {
    id: NodeId,
    max_message: usize,
    /// HTTP/2 keep-alive of every channel: (PING interval, time to wait for its answer).
    keepalive: (Duration, Duration),
    channels: Arc<Mutex<HashMap<NodeId, (String, Channel)>>>,
    /// TLS for every connection to a peer (checks the peer is the node it dials).
    tls: crate::tls::ClusterTls,
}

/// A connection to one peer, created by [`Network`] for openraft's replication tasks.
///
/// openraft creates one per replication session (one leadership term), so `matched` is the
/// highest index this leader has seen the peer accept in this session.
#[derive(Debug)]
pub struct NetworkConnection {
    net: Network,
    target: NodeId,
    addr: String,
    matched: Option<u64>,
    reverted_logged: bool,
    /// Heartbeats sent without holding up the replication stream ([`super::heartbeat`]).
    heartbeats: Heartbeats,
    /// The peer answered UNIMPLEMENTED to `InstallSnapshotChunk`: send chunks as JSON.
    json_snapshots: bool,
}

/// A peer answered as if its log went backwards: it lost its data (or was replaced) but still
/// uses its old id. openraft 0.9 treats this as a bug on the leader (a panic in debug builds,
/// a confused replication state otherwise), so the connection reports the peer unreachable.
#[derive(Debug, thiserror::Error)]
#[error("node {target} no longer has log index {matched} it had accepted (conflict at {conflict}): its data was lost or replaced; remove it (`cairn members remove {target}`) and add it back under a new id")]
pub(crate) struct LogReverted {
    target: NodeId,
    matched: u64,
    conflict: u64,
}

/// The peer address could not be turned into a gRPC endpoint.
#[derive(Debug, thiserror::Error)]
#[error("invalid cluster address {addr:?} of node {target}: {source}")]
pub(crate) struct BadAddr {
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
            keepalive: (settings.keepalive_interval(), settings.keepalive_timeout()),
            channels: Arc::default(),
            tls: settings.cluster_tls.clone(),
        }
    }

    /// The cached lazy channel to `target` at `addr` (a new one if the address changed). Also
    /// used for `cairn.v1.Admin` calls to peers (the bootstrap probe).
    pub(crate) fn channel(&self, target: NodeId, addr: &str) -> Result<Channel, BadAddr> {
        let mut map = self
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((cached, ch)) = map.get(&target) {
            if cached == addr {
                return Ok(ch.clone());
            }
        }
        let bad = |source| BadAddr {
            target,
            addr: addr.to_string(),
            source,
        };
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(bad)?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(self.keepalive.0)
            .keep_alive_timeout(self.keepalive.1)
            .keep_alive_while_idle(true);
        let channel = self
            .tls
            .connect_lazy(endpoint, crate::tls::Expect::Node(target));
        map.insert(target, (addr.to_string(), channel.clone()));
        Ok(channel)
    }

    /// TLS for connections to peers (shared with the cluster's other clients).
    pub fn tls(&self) -> &crate::tls::ClusterTls {
        &self.tls
    }

    /// One `Admin.Status` call to `target` at `addr`, marked as a probe (no storage check),
    /// over the Raft channel and answered within `timeout`; the reply, or why there is none.
    pub(crate) async fn probe_status(
        &self,
        target: NodeId,
        addr: &str,
        timeout: Duration,
    ) -> Result<StatusReply, String> {
        let channel = self.channel(target, addr).map_err(|e| e.to_string())?;
        let mut req = tonic::Request::new(StatusRequest {});
        req.metadata_mut().insert(
            crate::admin::PROBE_HEADER,
            tonic::metadata::MetadataValue::from_static("1"),
        );
        req.set_timeout(timeout);
        let mut client = AdminClient::new(channel);
        match tokio::time::timeout(timeout, client.status(req)).await {
            Err(_) => Err(format!("no answer at {addr} within {timeout:?}")),
            Ok(Err(status)) => Err(format!("{addr}: {}", status.message())),
            Ok(Ok(reply)) => Ok(reply.into_inner()),
        }
    }

    /// The cached Raft client for `target` at `addr`.
    fn client(&self, target: NodeId, addr: &str) -> Result<RaftClient<Channel>, BadAddr> {
        Ok(RaftClient::new(self.channel(target, addr)?)
            .max_decoding_message_size(self.max_message)
            .max_encoding_message_size(self.max_message))
    }

    /// Sends `cmd` to the leader `target` at `addr` with forwarding budget `hops`, waiting at
    /// most `timeout` (also sent as the call's deadline, so the leader answers before it), and
    /// returns the leader's applied result. Counts [`FORWARDED_TOTAL`] (`ok` or `error`).
    pub async fn forward(
        &self,
        target: NodeId,
        addr: &str,
        cmd: &MetaCmd,
        hops: u32,
        timeout: Duration,
    ) -> Result<MetaResp, ProposeError> {
        let res = self.forward_call(target, addr, cmd, hops, timeout).await;
        let result = if res.is_ok() { "ok" } else { "error" };
        metrics::counter!(FORWARDED_TOTAL, "result" => result).increment(1);
        res
    }

    async fn forward_call(
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
            matched: None,
            reverted_logged: false,
            heartbeats: Heartbeats::default(),
            json_snapshots: false,
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
        let data = serde_json::to_string(req).map_err(|e| network(&e))?;
        let request = RaftRequest {
            data,
            payload: Vec::new(),
        };
        match self.send(kind, request, ttl, false).await? {
            Ok(reply) => self.decode_reply(reply),
            Err(status) => Err(self.status_error(kind, ttl, status)),
        }
    }

    /// Sends one request (`chunk`: by `InstallSnapshotChunk`); a gRPC error status comes back
    /// as it is, for the caller to interpret.
    async fn send<E: Error>(
        &self,
        kind: RPCTypes,
        request: RaftRequest,
        ttl: Duration,
        chunk: bool,
    ) -> RpcResult<Result<RaftReply, tonic::Status>, E> {
        let mut client = self
            .net
            .client(self.target, &self.addr)
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let mut request = tonic::Request::new(request);
        request.set_timeout(ttl);
        let fut = async move {
            match kind {
                RPCTypes::AppendEntries => client.append_entries(request).await,
                RPCTypes::Vote => client.vote(request).await,
                RPCTypes::InstallSnapshot if chunk => client.install_snapshot_chunk(request).await,
                RPCTypes::InstallSnapshot => client.install_snapshot(request).await,
            }
        };
        match tokio::time::timeout(ttl, fut).await {
            Err(_) => Err(self.timeout(kind, ttl)),
            Ok(res) => Ok(res.map(tonic::Response::into_inner)),
        }
    }

    /// Sends a snapshot chunk with its bytes raw (`InstallSnapshotChunk`), or as JSON to a peer
    /// that does not know that RPC yet (remembered for the rest of this session).
    async fn send_snapshot_chunk(
        &mut self,
        mut rpc: InstallSnapshotRequest<TypeConfig>,
        ttl: Duration,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        const KIND: RPCTypes = RPCTypes::InstallSnapshot;
        if !self.json_snapshots {
            let payload = std::mem::take(&mut rpc.data);
            let data = serde_json::to_string(&rpc).map_err(|e| network(&e))?;
            let request = RaftRequest { data, payload };
            match self.send(KIND, request, ttl, true).await? {
                Ok(reply) => return self.decode_reply(reply),
                Err(status) if status.code() == tonic::Code::Unimplemented => {
                    tracing::info!(
                        target = self.target,
                        "peer does not know InstallSnapshotChunk; sending snapshots as JSON"
                    );
                    self.json_snapshots = true;
                    return Err(RPCError::Network(NetworkError::new(
                        &std::io::Error::other(
                            "peer predates InstallSnapshotChunk; retrying as JSON",
                        ),
                    )));
                }
                Err(status) => return Err(self.status_error(KIND, ttl, status)),
            }
        }
        self.call(KIND, &rpc, ttl).await
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

impl NetworkConnection {
    /// Sends heartbeat `rpc` on a task of its own and records its answer in `heartbeats`.
    fn heartbeat_in_background(&self, rpc: AppendEntriesRequest<TypeConfig>, ttl: Duration) {
        let conn = NetworkConnection {
            net: self.net.clone(),
            target: self.target,
            addr: self.addr.clone(),
            matched: None,
            reverted_logged: true,
            heartbeats: self.heartbeats.clone(),
            json_snapshots: self.json_snapshots,
        };
        tokio::spawn(async move {
            let sent = std::time::Instant::now();
            let resp: RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> =
                conn.call(RPCTypes::AppendEntries, &rpc, ttl).await;
            let ok = matches!(resp, Ok(AppendEntriesResponse::Success));
            if !ok {
                tracing::debug!(peer = conn.target, answer = ?resp, "background heartbeat not accepted; the next one waits for its answer");
            }
            conn.heartbeats.background_done(sent, ok);
        });
    }

    /// A conflict at or below an index the peer already accepted in this session means its log
    /// went backwards: report it unreachable (openraft backs off) and log the fix once.
    fn check_not_reverted<E: Error>(
        &mut self,
        conflict: Option<u64>,
    ) -> Result<(), RPCError<NodeId, NodeAddr, E>> {
        let (Some(conflict), Some(matched)) = (conflict, self.matched) else {
            return Ok(());
        };
        if conflict > matched {
            return Ok(());
        }
        let err = LogReverted {
            target: self.target,
            matched,
            conflict,
        };
        if !std::mem::replace(&mut self.reverted_logged, true) {
            tracing::error!(peer = self.target, error = %err, "refusing to replicate to a node whose log went backwards");
        }
        Err(RPCError::Unreachable(Unreachable::new(&err)))
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
        let prev = rpc.prev_log_id.map(|l| l.index);
        let last = rpc.entries.last().map(|e| e.log_id.index).or(prev);
        let ttl = option.hard_ttl();
        if rpc.entries.is_empty() {
            // openraft's heartbeat interval is the ttl it gives an AppendEntries.
            let caught_up = prev.is_some() && prev <= self.matched;
            match self.heartbeats.plan(caught_up, ttl) {
                Plan::Wait => {}
                Plan::AlreadyOut => return Ok(AppendEntriesResponse::Success),
                Plan::SendInBackground => {
                    self.heartbeat_in_background(rpc, ttl);
                    return Ok(AppendEntriesResponse::Success);
                }
            }
        }
        let sent = std::time::Instant::now();
        let resp = self.call(RPCTypes::AppendEntries, &rpc, ttl).await;
        let ok = matches!(resp, Ok(AppendEntriesResponse::Success));
        self.heartbeats.answered(sent, ok);
        let resp: AppendEntriesResponse<NodeId> = resp?;
        match &resp {
            AppendEntriesResponse::Success => self.matched = self.matched.max(last),
            AppendEntriesResponse::PartialSuccess(m) => {
                self.matched = self.matched.max(m.map(|l| l.index));
            }
            AppendEntriesResponse::Conflict => self.check_not_reverted(prev)?,
            AppendEntriesResponse::HigherVote(_) => {}
        }
        Ok(resp)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        let installed = rpc
            .done
            .then(|| rpc.meta.last_log_id.map(|l| l.index))
            .flatten();
        let resp = self.send_snapshot_chunk(rpc, option.hard_ttl()).await?;
        self.matched = self.matched.max(installed);
        Ok(resp)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        self.call(RPCTypes::Vote, &rpc, option.hard_ttl()).await
    }
}
