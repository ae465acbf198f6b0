//! An in-process cluster for unit tests: each node runs `Consensus` with the Raft and Admin gRPC
//! services on its own `127.0.0.1:0` listener (no mirror, no HTTP).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::AdminService;
use crate::raft::{Consensus, NodeAddr, RaftSettings};
use crate::store::blob::BlobStore;

/// How long test waits may take before failing (generous: loaded 2-core CI machines).
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// Short Raft timings for tests, still tolerant of a loaded machine.
pub(crate) fn settings() -> RaftSettings {
    RaftSettings {
        heartbeat_ms: 100,
        election_min_ms: 500,
        election_max_ms: 1000,
        propose_timeout_ms: 8000,
        sled_cache_bytes: 8 << 20,
        ..RaftSettings::default()
    }
}

/// A bound listener and its address.
pub(crate) async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

/// `--peers` from `(id, addr)` pairs.
pub(crate) fn peers(pairs: &[(u64, &str)]) -> BTreeMap<u64, NodeAddr> {
    pairs
        .iter()
        .map(|(id, addr)| (*id, NodeAddr::at(*addr)))
        .collect()
}

/// Fixed repair counters, so tests see them travel through `Status`.
struct Counters;

impl super::RepairCounters for Counters {
    fn blobs_missing(&self) -> u64 {
        7
    }

    fn repair_queue(&self) -> u64 {
        2
    }
}

/// One in-process node.
pub(crate) struct TestNode {
    pub(crate) id: u64,
    pub(crate) addr: String,
    pub(crate) consensus: Consensus,
    server: CancellationToken,
    handle: JoinHandle<()>,
    _dir: TempDir,
}

impl TestNode {
    /// Starts node `id` on `listener` with `--peers` = `peers` and serves Raft + Admin.
    pub(crate) async fn start(
        id: u64,
        listener: TcpListener,
        peers: BTreeMap<u64, NodeAddr>,
        settings: &RaftSettings,
    ) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let consensus = Consensus::start(id, peers, &dir.path().join("meta"), settings)
            .await
            .unwrap();
        let admin = AdminService {
            node_id: id,
            listen_addr: "127.0.0.1:0".to_string(),
            cluster_addr: addr.clone(),
            consensus: consensus.clone(),
            blobs: BlobStore::open(&dir.path().join("blobs")).unwrap(),
            started: Arc::new(AtomicBool::new(true)),
            since: Instant::now(),
            repair: Some(Arc::new(Counters)),
            router: None,
            audit: None,
            allow_insecure_membership: true,
            trail: crate::auditlog::AuditLog::off(),
            backup_peers: None,
        };
        let server = CancellationToken::new();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let serve = tonic::transport::Server::builder()
            .add_service(admin.into_server())
            .add_service(consensus.raft_service())
            .serve_with_incoming_shutdown(incoming, server.clone().cancelled_owned());
        let handle = tokio::spawn(async move {
            let _ = serve.await;
        });
        TestNode {
            id,
            addr,
            consensus,
            server,
            handle,
            _dir: dir,
        }
    }

    /// Stops serving and shuts Raft down (as if the process stopped).
    pub(crate) async fn stop(self) {
        self.server.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.handle).await;
        self.consensus.shutdown().await.unwrap();
    }
}

/// Starts nodes `1..=n`, all with the same `--peers`.
pub(crate) async fn start_cluster(n: u64, settings: &RaftSettings) -> Vec<TestNode> {
    let mut listeners = Vec::new();
    for id in 1..=n {
        let (l, addr) = listen().await;
        listeners.push((id, l, addr));
    }
    let pairs: Vec<(u64, &str)> = listeners
        .iter()
        .map(|(id, _, a)| (*id, a.as_str()))
        .collect();
    let peers = peers(&pairs);
    let mut nodes = Vec::new();
    for (id, l, _) in listeners {
        nodes.push(TestNode::start(id, l, peers.clone(), settings).await);
    }
    nodes
}

/// Polls `cond` every 20 ms until it holds, failing after [`PATIENCE`].
pub(crate) async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reached within {PATIENCE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every node in `nodes` knows the same leader, and returns its id.
pub(crate) async fn wait_for_leader(nodes: &[TestNode]) -> u64 {
    let mut leader = None;
    wait_until("all nodes agree on a leader", || {
        let ids: Vec<Option<u64>> = nodes
            .iter()
            .map(|n| n.consensus.status().leader_id)
            .collect();
        leader = ids[0];
        leader.is_some() && ids.iter().all(|l| *l == leader)
    })
    .await;
    leader.unwrap()
}
