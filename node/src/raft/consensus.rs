//! [`Consensus`]: starting openraft on the node's sled store, forming the cluster once, proposing
//! commands and reporting status.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, Fatal, InitializeError, RaftError};
use openraft::storage::RaftLogStorage;
use openraft::ServerState;
use tokio::time::Instant;

use super::db::MetaDb;
use super::error::{ConsensusError, ProposeError};
use super::flusher::Flusher;
use super::log_store::LogStore;
use super::metrics as m;
use super::network::Network;
use super::service::RaftGrpc;
use super::state_machine::StateMachine;
use super::{MetaReader, NodeAddr, NodeId, RaftHandle, RaftSettings, RaftStatus};
use crate::store::meta::{MetaCmd, MetaResp};

/// Pause before re-proposing after a leader appeared, so a flapping election cannot spin.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// What "caught up" means for a starting node.
///
/// Everything committed before the start must be applied (openraft re-applies it from the log
/// while starting). A node that is the only voter will also commit the rest of its log as soon
/// as it leads again, and entries it acknowledged before a crash may be among them (the
/// committed index is persisted lazily), so it waits for its whole log. A node with peers
/// cannot know whether its log tail will survive, and must not wait for a quorum to serve.
#[derive(Clone, Copy, Debug)]
struct CatchUp {
    committed: Option<u64>,
    last_log: Option<u64>,
}

impl CatchUp {
    fn reached(&self, metrics: &openraft::RaftMetrics<NodeId, NodeAddr>) -> bool {
        let applied = metrics.last_applied.map(|l| l.index);
        let mut voters = metrics.membership_config.membership().voter_ids();
        let sole_voter = voters.next() == Some(metrics.id) && voters.next().is_none();
        let target = if sole_voter {
            self.committed.max(self.last_log)
        } else {
            self.committed
        };
        applied >= target
    }
}

/// The consensus handle of a node: cheap to clone, shared by the HTTP, mirror and gRPC planes.
#[derive(Clone)]
pub struct Consensus {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    raft: RaftHandle,
    reader: MetaReader,
    settings: RaftSettings,
    flusher: Flusher,
    network: Network,
    caught_up: Arc<AtomicBool>,
}

impl std::fmt::Debug for Consensus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consensus")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

impl Consensus {
    /// Opens (or creates) sled at `dir` (`<data-dir>/meta`), starts openraft, and — only if this
    /// node has never been initialized and has the lowest id in `peers` (or `peers` is empty or
    /// only this node) — initializes the cluster with `peers` once. Restarts never re-initialize.
    #[tracing::instrument(skip_all, fields(node_id = node_id))]
    pub async fn start(
        node_id: NodeId,
        peers: BTreeMap<NodeId, NodeAddr>,
        dir: &Path,
        settings: &RaftSettings,
    ) -> Result<Consensus, ConsensusError> {
        let config = Arc::new(settings.to_openraft_config()?);
        let db = MetaDb::open(dir, settings.sled_cache_bytes).await?;
        db.check_identity(node_id)?;
        let flusher = Flusher::spawn(db.db.clone());
        let mut log_store = LogStore::new(db.clone(), flusher.clone());
        let mut sm = StateMachine::new(db.clone(), flusher.clone());
        let log_state = log_store.get_log_state().await?;
        sm.recover(log_state.last_purged_log_id).await?;
        let committed = log_store.read_committed().await?;
        let network = Network::new(node_id, settings);
        let raft = openraft::Raft::new(node_id, config, network.clone(), log_store, sm)
            .await
            .map_err(|e| ConsensusError::Start(Box::new(e)))?;
        let consensus = Consensus {
            inner: Arc::new(Inner {
                id: node_id,
                raft,
                reader: MetaReader::new(db.sm.clone()),
                settings: settings.clone(),
                flusher,
                network,
                caught_up: Arc::new(AtomicBool::new(false)),
            }),
        };
        consensus.spawn_watcher(CatchUp {
            committed: committed.map(|l| l.index),
            last_log: log_state.last_log_id.map(|l| l.index),
        });
        consensus.initialize_once(peers).await?;
        tracing::info!(node_id, dir = %dir.display(), last_log = ?log_state.last_log_id, "consensus started");
        Ok(consensus)
    }

    /// Initializes the cluster if this node is pristine and is the one that should.
    async fn initialize_once(
        &self,
        peers: BTreeMap<NodeId, NodeAddr>,
    ) -> Result<(), ConsensusError> {
        let id = self.inner.id;
        let members = if peers.is_empty() {
            BTreeMap::from([(id, NodeAddr::default())])
        } else {
            peers
        };
        if members.keys().next() != Some(&id) {
            tracing::info!(
                node_id = id,
                "not the lowest peer id; waiting to be added to the cluster"
            );
            return Ok(());
        }
        if self
            .inner
            .raft
            .is_initialized()
            .await
            .map_err(|e| ConsensusError::Start(Box::new(e)))?
        {
            tracing::info!(node_id = id, "raft state found; not initializing");
            return Ok(());
        }
        let ids: Vec<NodeId> = members.keys().copied().collect();
        match self.inner.raft.initialize(members).await {
            Ok(()) => {
                tracing::info!(node_id = id, members = ?ids, "initialized new raft cluster");
                Ok(())
            }
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                tracing::info!(node_id = id, reason = %e, "raft cluster already initialized");
                Ok(())
            }
            Err(e) => Err(ConsensusError::Initialize(Box::new(e))),
        }
    }

    /// Spawns the task that mirrors openraft's metrics into gauges and flips the caught-up latch
    /// (see [`CatchUp`]).
    fn spawn_watcher(&self, target: CatchUp) {
        let mut rx = self.inner.raft.metrics();
        let caught_up = self.inner.caught_up.clone();
        tokio::spawn(async move {
            let mut prev_leader = None;
            loop {
                {
                    let metrics = rx.borrow_and_update();
                    m::observe(&metrics, &mut prev_leader);
                    if target.reached(&metrics) && !caught_up.swap(true, Ordering::AcqRel) {
                        let applied = metrics.last_applied.map(|l| l.index);
                        tracing::info!(applied = ?applied, "state machine caught up");
                    }
                }
                if rx.changed().await.is_err() {
                    break;
                }
            }
        });
    }

    /// Proposes a command and returns the applied result. Waits (up to
    /// `settings.propose_timeout_ms`) for a leader during an election; fails with
    /// [`ProposeError::ForwardToLeader`] when another node leads.
    pub async fn propose(&self, cmd: MetaCmd) -> Result<MetaResp, ProposeError> {
        let started = Instant::now();
        let res = self
            .propose_until(
                cmd,
                started,
                started + self.inner.settings.propose_timeout(),
            )
            .await;
        let label = match &res {
            Ok(MetaResp::Applied) => "applied",
            Ok(MetaResp::Unchanged) => "unchanged",
            Ok(MetaResp::Conflict { .. }) => "conflict",
            Err(_) => "error",
        };
        m::record_proposal(label, started.elapsed().as_secs_f64());
        if let Err(e) = &res {
            tracing::debug!(error = %e, "proposal failed");
        }
        res
    }

    async fn propose_until(
        &self,
        cmd: MetaCmd,
        started: Instant,
        deadline: Instant,
    ) -> Result<MetaResp, ProposeError> {
        loop {
            let write = self.inner.raft.client_write(cmd.clone());
            match tokio::time::timeout_at(deadline, write).await {
                Err(_) => return Err(self.timeout_error(started)),
                Ok(Ok(resp)) => return Ok(resp.data),
                Ok(Err(e)) => self.on_write_error(e, started, deadline).await?,
            }
        }
    }

    /// Turns a write error into a final error, or waits for a leader and returns `Ok` to retry.
    async fn on_write_error(
        &self,
        e: RaftError<NodeId, ClientWriteError<NodeId, NodeAddr>>,
        started: Instant,
        deadline: Instant,
    ) -> Result<(), ProposeError> {
        match e {
            RaftError::Fatal(f) => Err(fatal(f)),
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                Err(ProposeError::Membership(e))
            }
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => match f.leader_id {
                Some(leader_id) if leader_id != self.inner.id => {
                    Err(ProposeError::ForwardToLeader {
                        leader_id,
                        leader_addr: f.leader_node.map(|n| n.cluster_addr).unwrap_or_default(),
                    })
                }
                _ => self.wait_for_leader(started, deadline).await,
            },
        }
    }

    /// Waits until some leader is known (then pauses briefly), or fails at `deadline`.
    async fn wait_for_leader(
        &self,
        started: Instant,
        deadline: Instant,
    ) -> Result<(), ProposeError> {
        let mut rx = self.inner.raft.metrics();
        loop {
            {
                let metrics = rx.borrow_and_update();
                if let Err(f) = &metrics.running_state {
                    return Err(fatal(f.clone()));
                }
                if metrics.current_leader.is_some() {
                    break;
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Err(_) => {
                    return Err(ProposeError::NoLeader {
                        waited_ms: millis_since(started),
                    })
                }
                Ok(Err(_)) => return Err(ProposeError::ShuttingDown),
                Ok(Ok(())) => {}
            }
        }
        tokio::time::sleep_until(deadline.min(Instant::now() + RETRY_PAUSE)).await;
        Ok(())
    }

    /// Classifies a proposal that ran out of time.
    fn timeout_error(&self, started: Instant) -> ProposeError {
        let waited_ms = millis_since(started);
        let metrics = self.inner.raft.metrics();
        let metrics = metrics.borrow();
        let quorum_stale = metrics
            .millis_since_quorum_ack
            .is_none_or(|ms| ms > self.inner.settings.election_max_ms);
        if metrics.current_leader.is_none() {
            ProposeError::NoLeader { waited_ms }
        } else if metrics.state == ServerState::Leader && quorum_stale {
            ProposeError::NoQuorum { waited_ms }
        } else {
            ProposeError::Timeout { waited_ms }
        }
    }

    /// Local, leaderless read handle to this node's applied state (cheap clone, `Send + Sync`).
    pub fn reader(&self) -> MetaReader {
        self.inner.reader.clone()
    }

    /// A plain snapshot of this node's Raft state for status pages and metrics.
    pub fn status(&self) -> RaftStatus {
        RaftStatus::from_metrics(&self.inner.raft.metrics().borrow())
    }

    /// True once the state machine is loaded and has applied everything that was committed
    /// before this start (for a single-voter cluster: its whole log). A latch: it never flips
    /// back.
    pub fn is_caught_up(&self) -> bool {
        self.inner.caught_up.load(Ordering::Acquire)
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.id
    }

    /// The settings this node runs with.
    pub fn settings(&self) -> &RaftSettings {
        &self.inner.settings
    }

    /// The underlying openraft handle (membership changes, metrics, linearizable reads).
    pub fn raft(&self) -> &RaftHandle {
        &self.inner.raft
    }

    /// The cluster network client (shared channels to peers; also forwards proposals).
    pub fn network(&self) -> &Network {
        &self.inner.network
    }

    /// The internal `cairn.v1.Raft` gRPC service of this node, to mount on the cluster listener.
    pub fn raft_service(&self) -> cairn_proto::v1::raft_server::RaftServer<RaftGrpc> {
        let limit = self.inner.settings.max_message_size();
        cairn_proto::v1::raft_server::RaftServer::new(RaftGrpc::new(self.clone()))
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit)
    }

    /// Waits up to `timeout` until a leader is known and returns its id.
    pub async fn wait_for_leader_id(&self, timeout: Duration) -> Option<NodeId> {
        let waited = self
            .inner
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "leader known")
            .await;
        waited.ok().and_then(|m| m.current_leader)
    }

    /// Stops Raft and makes every write durable. Drop all clones and readers afterwards before
    /// starting again on the same directory (sled holds an exclusive lock while open).
    pub async fn shutdown(&self) -> Result<(), ConsensusError> {
        self.inner
            .raft
            .shutdown()
            .await
            .map_err(ConsensusError::Shutdown)?;
        self.inner
            .flusher
            .flush()
            .await
            .map_err(ConsensusError::Flush)?;
        tracing::info!(node_id = self.inner.id, "consensus stopped");
        Ok(())
    }
}

fn fatal(f: Fatal<NodeId>) -> ProposeError {
    match f {
        Fatal::Stopped => ProposeError::ShuttingDown,
        other => ProposeError::Fatal(Box::new(other)),
    }
}

fn millis_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
