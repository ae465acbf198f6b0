//! Safe static bootstrap: which node forms the cluster from `--peers`, and when.
//!
//! `openraft::Raft::initialize` must run exactly once per cluster, and never on a node that lost
//! its data while the cluster exists: that node would form a second cluster with the same ids
//! (RAFT-NOTES §2.3). The rule, after rqlite's "bootstrap-expect" and hiqlite's init:
//!
//! - A node with Raft state (a log or a vote) never initializes: it is restarting.
//! - Only the pristine node with the lowest id in `--peers` may initialize. Alone (`--peers`
//!   empty or only itself) it does so at once.
//! - With peers, it first reaches **every** configured peer (`Admin.Status`, short timeout,
//!   retried with backoff) and initializes only when all of them report `initialized == false`.
//!   If any reports `initialized == true`, a cluster exists and this node lost its data: it never
//!   initializes and must be added back under a new id (`cairn members add`).
//! - Every other pristine node waits to be added by the leader (it is in the initial membership)
//!   or by an operator.
//!
//! The probe runs in the background, so `Consensus::start` returns and the node can serve its
//! own `Admin.Status` to peers that are probing at the same time.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;
use openraft::error::{InitializeError, RaftError};
use serde::Serialize;

use super::error::ConsensusError;
use super::{Consensus, NodeAddr, NodeId};

/// How long one `Admin.Status` probe of a peer may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// First pause between probe rounds (doubles up to [`PROBE_BACKOFF_MAX`]).
const PROBE_BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest pause between probe rounds.
const PROBE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Where this node stands in forming the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum BootstrapState {
    /// `Consensus::start` has not decided yet.
    Starting,
    /// The node held Raft state when it started (a restart): nothing to form.
    Existing,
    /// Pristine and not the lowest peer id: waits to be added by the cluster's leader.
    AwaitingMembership,
    /// Pristine with the lowest peer id: probing every peer before initializing.
    Probing,
    /// This node initialized the cluster.
    Initialized,
    /// Pristine, but a peer already belongs to a cluster: this node lost its data and never
    /// initializes; add it back under a new id.
    Refused,
}

/// What one probed peer said.
#[derive(Debug)]
enum Answer {
    /// It holds no Raft state.
    Pristine,
    /// It holds Raft state: a cluster exists.
    Initialized,
    /// No usable answer (with the reason).
    Unreachable(String),
}

impl Consensus {
    /// Where cluster formation stands on this node.
    pub fn bootstrap_state(&self) -> BootstrapState {
        *self.inner.bootstrap.borrow()
    }

    /// A receiver that sees every change of [`Consensus::bootstrap_state`].
    pub fn watch_bootstrap(&self) -> tokio::sync::watch::Receiver<BootstrapState> {
        self.inner.bootstrap.subscribe()
    }

    fn set_bootstrap(&self, state: BootstrapState) {
        self.inner.bootstrap.send_replace(state);
    }

    /// Applies the bootstrap rule (see the module docs) once at start.
    pub(super) async fn bootstrap(
        &self,
        peers: BTreeMap<NodeId, NodeAddr>,
    ) -> Result<(), ConsensusError> {
        let id = self.inner.id;
        if self.is_initialized_now().await? {
            tracing::info!(node_id = id, "raft state found; not initializing");
            self.set_bootstrap(BootstrapState::Existing);
            return Ok(());
        }
        let members = if peers.is_empty() {
            BTreeMap::from([(id, NodeAddr::default())])
        } else {
            peers
        };
        if members.keys().next() != Some(&id) {
            tracing::info!(
                node_id = id,
                "pristine and not the lowest peer id; waiting to be added to the cluster"
            );
            self.set_bootstrap(BootstrapState::AwaitingMembership);
            return Ok(());
        }
        if members.len() == 1 {
            return self.initialize(members).await;
        }
        self.set_bootstrap(BootstrapState::Probing);
        let this = self.clone();
        tokio::spawn(async move { this.probe_then_initialize(members).await });
        Ok(())
    }

    async fn is_initialized_now(&self) -> Result<bool, ConsensusError> {
        self.inner
            .raft
            .is_initialized()
            .await
            .map_err(|e| ConsensusError::Start(Box::new(e)))
    }

    /// The background half of [`Consensus::bootstrap`] for a multi-node `--peers`.
    async fn probe_then_initialize(&self, members: BTreeMap<NodeId, NodeAddr>) {
        let id = self.inner.id;
        let stop = self.inner.stop.clone();
        let decided = tokio::select! {
            () = stop.cancelled() => return,
            d = self.probe_until_decided(&members) => d,
        };
        match decided {
            Ok(true) => {
                if let Err(e) = self.initialize(members).await {
                    tracing::error!(node_id = id, error = %e, "cluster initialization failed");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::error!(node_id = id, error = %e, "bootstrap probe failed"),
        }
    }

    /// Probes the peers until every one answered. `Ok(true)`: all are pristine, initialize.
    /// `Ok(false)`: do not initialize (a cluster exists, or this node joined one meanwhile).
    async fn probe_until_decided(
        &self,
        members: &BTreeMap<NodeId, NodeAddr>,
    ) -> Result<bool, ConsensusError> {
        let id = self.inner.id;
        let mut backoff = PROBE_BACKOFF_MIN;
        loop {
            if self.is_initialized_now().await? {
                tracing::info!(
                    node_id = id,
                    "received raft state from a leader; not initializing"
                );
                self.set_bootstrap(BootstrapState::Existing);
                return Ok(false);
            }
            let answers = self.probe_peers(members).await;
            if let Some((peer, _)) = answers
                .iter()
                .find(|(_, a)| matches!(a, Answer::Initialized))
            {
                tracing::warn!(node_id = id, peer = *peer, "this node has no data but the cluster exists: add it with `cairn members add` under a new id (see README runbook)");
                self.set_bootstrap(BootstrapState::Refused);
                return Ok(false);
            }
            let waiting: Vec<String> = answers
                .iter()
                .filter_map(|(peer, a)| match a {
                    Answer::Unreachable(why) => Some(format!("node {peer}: {why}")),
                    _ => None,
                })
                .collect();
            if waiting.is_empty() {
                return Ok(true);
            }
            tracing::info!(node_id = id, waiting_for = ?waiting, retry_in_ms = backoff.as_millis() as u64, "lowest peer id and pristine: waiting for every peer to answer before initializing the cluster");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(PROBE_BACKOFF_MAX);
        }
    }

    /// Asks every peer but this node whether it holds Raft state, concurrently.
    async fn probe_peers(&self, members: &BTreeMap<NodeId, NodeAddr>) -> Vec<(NodeId, Answer)> {
        let probes = members
            .iter()
            .filter(|(peer, _)| **peer != self.inner.id)
            .map(
                |(peer, addr)| async move { (*peer, self.probe(*peer, &addr.cluster_addr).await) },
            );
        join_all(probes).await
    }

    async fn probe(&self, peer: NodeId, addr: &str) -> Answer {
        match self
            .inner
            .network
            .probe_status(peer, addr, PROBE_TIMEOUT)
            .await
        {
            Err(why) => Answer::Unreachable(why),
            Ok(reply) if reply.node_id != peer => {
                Answer::Unreachable(format!("{addr} answers as node {}", reply.node_id))
            }
            Ok(reply) if reply.initialized => Answer::Initialized,
            Ok(_) => Answer::Pristine,
        }
    }

    /// Initializes the cluster with `members` (a `NotAllowed` answer means it already is).
    async fn initialize(&self, members: BTreeMap<NodeId, NodeAddr>) -> Result<(), ConsensusError> {
        let id = self.inner.id;
        let ids: Vec<NodeId> = members.keys().copied().collect();
        match self.inner.raft.initialize(members).await {
            Ok(()) => {
                tracing::info!(node_id = id, members = ?ids, "initialized new raft cluster");
                self.set_bootstrap(BootstrapState::Initialized);
                Ok(())
            }
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                tracing::info!(node_id = id, reason = %e, "raft cluster already initialized");
                self.set_bootstrap(BootstrapState::Existing);
                Ok(())
            }
            Err(e) => Err(ConsensusError::Initialize(Box::new(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use cairn_proto::v1::admin_server::{Admin, AdminServer};
    use cairn_proto::v1::{
        AddMemberRequest, MembershipReply, RemoveMemberRequest, RouteReply, RouteRequest,
        StatusReply, StatusRequest,
    };
    use tokio::net::TcpListener;

    use super::*;
    use crate::admin::testing::{self, listen, peers, start_cluster, wait_for_leader, wait_until};
    use crate::raft::ProposeError;
    use crate::store::meta::{MetaCmd, MetaResp};

    /// A peer that only answers `Status` with a fixed id and `initialized` flag.
    struct StubPeer {
        id: u64,
        initialized: Arc<AtomicBool>,
    }

    #[tonic::async_trait]
    impl Admin for StubPeer {
        async fn status(
            &self,
            _: tonic::Request<StatusRequest>,
        ) -> Result<tonic::Response<StatusReply>, tonic::Status> {
            Ok(tonic::Response::new(StatusReply {
                node_id: self.id,
                initialized: self.initialized.load(Ordering::Relaxed),
                ..StatusReply::default()
            }))
        }

        async fn add_member(
            &self,
            _: tonic::Request<AddMemberRequest>,
        ) -> Result<tonic::Response<MembershipReply>, tonic::Status> {
            Err(tonic::Status::unimplemented("stub"))
        }

        async fn remove_member(
            &self,
            _: tonic::Request<RemoveMemberRequest>,
        ) -> Result<tonic::Response<MembershipReply>, tonic::Status> {
            Err(tonic::Status::unimplemented("stub"))
        }

        type VerifyStream = crate::admin::VerifyStream;

        async fn verify(
            &self,
            _: tonic::Request<cairn_proto::v1::VerifyRequest>,
        ) -> Result<tonic::Response<Self::VerifyStream>, tonic::Status> {
            Err(tonic::Status::unimplemented("stub"))
        }

        async fn route(
            &self,
            _: tonic::Request<RouteRequest>,
        ) -> Result<tonic::Response<RouteReply>, tonic::Status> {
            Err(tonic::Status::unimplemented("stub"))
        }

        // === disk: pins (issue 12) ===
        async fn pin_add(
            &self,
            _: tonic::Request<cairn_proto::v1::PinRequest>,
        ) -> Result<tonic::Response<cairn_proto::v1::PinReply>, tonic::Status> {
            Err(tonic::Status::unimplemented("stub"))
        }

        async fn pin_remove(
            &self,
            _: tonic::Request<cairn_proto::v1::PinRequest>,
        ) -> Result<tonic::Response<cairn_proto::v1::PinReply>, tonic::Status> {
            Err(tonic::Status::unimplemented("stub"))
        }

        async fn pin_list(
            &self,
            _: tonic::Request<cairn_proto::v1::PinListRequest>,
        ) -> Result<tonic::Response<cairn_proto::v1::PinListReply>, tonic::Status> {
            Err(tonic::Status::unimplemented("stub"))
        }

        async fn deny(
            &self,
            _: tonic::Request<cairn_proto::v1::DenyRequest>,
        ) -> Result<tonic::Response<cairn_proto::v1::PolicyReply>, tonic::Status> {
            Err(tonic::Status::unimplemented("stub"))
        }

        async fn purge(
            &self,
            _: tonic::Request<cairn_proto::v1::PurgeRequest>,
        ) -> Result<tonic::Response<cairn_proto::v1::PolicyReply>, tonic::Status> {
            Err(tonic::Status::unimplemented("stub"))
        }

        async fn list_policy(
            &self,
            _: tonic::Request<cairn_proto::v1::ListPolicyRequest>,
        ) -> Result<tonic::Response<cairn_proto::v1::ListPolicyReply>, tonic::Status> {
            Err(tonic::Status::unimplemented("stub"))
        }

        type BackupStateStream = crate::admin::BackupStateStream;

        async fn backup_state(
            &self,
            _: tonic::Request<cairn_proto::v1::BackupStateRequest>,
        ) -> Result<tonic::Response<Self::BackupStateStream>, tonic::Status> {
            Err(tonic::Status::unimplemented("stub"))
        }

        type BackupBlobStream = crate::admin::BackupBlobStream;

        async fn backup_blob(
            &self,
            _: tonic::Request<cairn_proto::v1::BackupBlobRequest>,
        ) -> Result<tonic::Response<Self::BackupBlobStream>, tonic::Status> {
            Err(tonic::Status::unimplemented("stub"))
        }
    }

    fn serve_stub(listener: TcpListener, id: u64, initialized: bool) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(initialized));
        let stub = StubPeer {
            id,
            initialized: flag.clone(),
        };
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let serve = tonic::transport::Server::builder()
            .add_service(AdminServer::new(stub))
            .serve_with_incoming(incoming);
        tokio::spawn(serve);
        flag
    }

    fn list(module: &str, at: i64) -> MetaCmd {
        MetaCmd::PutList {
            module: module.to_string(),
            versions: vec!["v1.0.0".to_string()],
            fetched_at_ms: at,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pristine_lowest_node_refuses_when_the_cluster_exists() {
        let (own, own_addr) = listen().await;
        let (stub, stub_addr) = listen().await;
        serve_stub(stub, 2, true);
        let peers = peers(&[(1, &own_addr), (2, &stub_addr)]);
        let node = testing::TestNode::start(1, own, peers, &testing::settings()).await;
        let mut rx = node.consensus.watch_bootstrap();
        tokio::time::timeout(
            testing::PATIENCE,
            rx.wait_for(|s| *s == BootstrapState::Refused),
        )
        .await
        .expect("refused in time")
        .unwrap();
        assert!(!node.consensus.status().initialized);
        assert!(!node.consensus.raft().is_initialized().await.unwrap());
        node.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pristine_lowest_node_waits_for_every_peer_then_initializes() {
        let (own, own_addr) = listen().await;
        let (stub, stub_addr) = listen().await;
        let peers = peers(&[(1, &own_addr), (2, &stub_addr)]);
        let node = testing::TestNode::start(1, own, peers, &testing::settings()).await;
        // The peer's port is bound but nothing answers: node 1 must keep waiting.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(node.consensus.bootstrap_state(), BootstrapState::Probing);
        assert!(!node.consensus.status().initialized);
        serve_stub(stub, 2, false);
        let mut rx = node.consensus.watch_bootstrap();
        tokio::time::timeout(
            testing::PATIENCE,
            rx.wait_for(|s| *s == BootstrapState::Initialized),
        )
        .await
        .expect("initialized in time")
        .unwrap();
        wait_until("metrics show the new membership", || {
            let st = node.consensus.status();
            st.initialized && st.members.iter().map(|m| m.id).eq([1, 2])
        })
        .await;
        node.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_nodes_form_one_cluster_and_followers_forward() {
        let nodes = start_cluster(3, &testing::settings()).await;
        let leader = wait_for_leader(&nodes).await;
        assert_eq!(
            nodes[0].consensus.bootstrap_state(),
            BootstrapState::Initialized
        );
        wait_until("every node holds the 3-node membership", || {
            nodes.iter().all(|n| {
                let st = n.consensus.status();
                st.initialized && st.members.len() == 3
            })
        })
        .await;
        let follower = nodes.iter().find(|n| n.id != leader).unwrap();
        let resp = follower.consensus.propose(list("example.com/fwd", 1)).await;
        assert_eq!(resp.unwrap(), MetaResp::Applied);
        let resp = follower.consensus.propose(list("example.com/fwd", 1)).await;
        assert_eq!(resp.unwrap(), MetaResp::Unchanged);
        let target = nodes[(leader - 1) as usize]
            .consensus
            .status()
            .applied_index;
        wait_until("every node applied the forwarded write", || {
            nodes
                .iter()
                .all(|n| n.consensus.status().applied_index >= target)
        })
        .await;
        for n in nodes {
            n.stop().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_quorum_proposals_fail_fast() {
        let settings = testing::settings();
        let mut nodes = start_cluster(3, &settings).await;
        wait_for_leader(&nodes).await;
        let survivor = nodes.remove(0);
        for n in nodes {
            n.stop().await;
        }
        let started = tokio::time::Instant::now();
        let err = survivor.consensus.propose(list("m", 2)).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(
            started.elapsed() < settings.propose_timeout() - Duration::from_secs(1),
            "first proposal after the quorum loss took {:?}: {err}",
            started.elapsed()
        );
        let started = tokio::time::Instant::now();
        let err = survivor.consensus.propose(list("m", 3)).await.unwrap_err();
        assert!(
            matches!(
                err,
                ProposeError::NoLeader { .. } | ProposeError::NoQuorum { .. }
            ),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "degraded node still waited {:?}",
            started.elapsed()
        );
        survivor.stop().await;
    }

    /// A node that lost its data and comes back under its old id must not crash the leader
    /// (openraft 0.9 asserts that a follower's log never goes backwards); the leader treats it
    /// as unreachable until an operator removes it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wiped_node_under_its_old_id_is_fenced_off() {
        let settings = testing::settings();
        let mut nodes = start_cluster(3, &settings).await;
        let leader = wait_for_leader(&nodes).await;
        let pairs: Vec<(u64, String)> = nodes.iter().map(|n| (n.id, n.addr.clone())).collect();
        let pairs: Vec<(u64, &str)> = pairs.iter().map(|(id, a)| (*id, a.as_str())).collect();
        let all = peers(&pairs);
        let victim = nodes.iter().position(|n| n.id != leader).unwrap();
        let victim = nodes.remove(victim);
        let (id, addr) = (victim.id, victim.addr.clone());
        victim.stop().await;
        let listener = TcpListener::bind(&addr).await.unwrap();
        let wiped = testing::TestNode::start(id, listener, all, &settings).await;
        wait_until("the leader reached the wiped node", || {
            wiped.consensus.status().leader_id == Some(leader)
        })
        .await;
        for at in 1..=3 {
            let resp = nodes[0].consensus.propose(list("after-wipe", at)).await;
            assert_eq!(resp.unwrap(), MetaResp::Applied);
        }
        for n in &nodes {
            assert!(n.consensus.status().running, "node {} stopped", n.id);
        }
        assert_eq!(wiped.consensus.status().last_log_index, None);
        wiped.stop().await;
        for n in nodes {
            n.stop().await;
        }
    }
}
