//! [`Consensus`]: starting openraft on the node's sled store, forming the cluster once, proposing
//! commands and reporting status.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{ClientWriteError, Fatal, RaftError};
use openraft::storage::RaftLogStorage;
use openraft::ServerState;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::bootstrap::BootstrapState;
use super::db::MetaDb;
use super::error::{ConsensusError, ProposeError};
use super::flusher::Flusher;
use super::log_store::LogStore;
use super::metrics as m;
use super::network::{Network, FORWARDED_TOTAL};
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
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) id: NodeId,
    pub(super) raft: RaftHandle,
    reader: MetaReader,
    pub(super) settings: RaftSettings,
    flusher: Flusher,
    pub(super) network: Network,
    caught_up: Arc<AtomicBool>,
    /// Since when no leader is known (kept by the metrics watcher).
    leaderless: Arc<Leaderless>,
    /// Serializes membership changes on this node (see `membership.rs`).
    pub(super) membership_lock: tokio::sync::Mutex<()>,
    /// Where cluster formation stands (see `bootstrap.rs`).
    pub(super) bootstrap: watch::Sender<BootstrapState>,
    /// Cancelled by [`Consensus::shutdown`]: stops background tasks (the bootstrap probe).
    pub(super) stop: CancellationToken,
    /// A handle on the state machine openraft owns, for backups (`backup.rs`).
    pub(super) sm: StateMachine,
}

/// Since when this node has had no leader: openraft knows none, or the one it knows has been
/// silent (no AppendEntries accepted) for longer than `silence`. A follower cut off from the
/// leader keeps knowing it (its election timer may be held back, see `election_gate.rs`), so
/// silence counts as well, from the last time it was heard.
#[derive(Debug)]
struct Leaderless {
    view: Mutex<LeaderView>,
    /// How long a known leader may be silent before it counts as lost.
    silence: Duration,
}

/// What [`Leaderless`] tracks.
#[derive(Debug)]
struct LeaderView {
    /// When openraft stopped knowing a leader; `None` while it knows one.
    lost: Option<Instant>,
    /// When the known leader was last heard from: an AppendEntries accepted, or the moment it
    /// became the known leader (a new leader gets a full `silence` to reach this node).
    contact: Instant,
    /// The leader openraft knows.
    leader: Option<NodeId>,
    /// Whether this node leads (its quorum acknowledgements count instead).
    leading: bool,
}

impl Leaderless {
    fn new(silence: Duration) -> Leaderless {
        let now = Instant::now();
        Leaderless {
            view: Mutex::new(LeaderView {
                lost: Some(now),
                contact: now,
                leader: None,
                leading: false,
            }),
            silence,
        }
    }

    fn view(&self) -> std::sync::MutexGuard<'_, LeaderView> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn observe(&self, leader: Option<NodeId>, leading: bool) {
        let mut v = self.view();
        let now = Instant::now();
        if leader != v.leader || (v.leading && !leading) {
            v.contact = now;
        }
        v.leader = leader;
        v.leading = leading;
        match (leader.is_some(), v.lost) {
            (true, _) => v.lost = None,
            (false, None) => v.lost = Some(now),
            (false, Some(_)) => {}
        }
    }

    /// Records that the leader was heard from (an AppendEntries was accepted).
    fn heard(&self) {
        self.view().contact = Instant::now();
    }

    fn last_contact(&self) -> Instant {
        self.view().contact
    }

    /// When this node counts as degraded (no leader for `limit`) unless a leader turns up or
    /// is heard from first; `None` while it leads.
    fn degraded_at(&self, limit: Duration) -> Option<Instant> {
        let v = self.view();
        if let Some(lost) = v.lost {
            return Some(lost + limit);
        }
        if v.leading {
            return None;
        }
        // `limit` is longer than `silence`: by then `since` is the last contact.
        Some(v.contact + limit.max(self.silence))
    }

    fn since(&self) -> Option<Instant> {
        let v = self.view();
        if let Some(lost) = v.lost {
            return Some(lost);
        }
        if v.leading {
            return None;
        }
        (v.contact.elapsed() > self.silence).then_some(v.contact)
    }
}

impl std::fmt::Debug for Consensus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consensus")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

impl Consensus {
    /// Opens (or creates) sled at `dir` (`<data-dir>/meta`), starts openraft, and forms the
    /// cluster if this node is pristine and has the lowest id in `peers` (see `bootstrap.rs`):
    /// alone (`peers` empty or only this node) it initializes at once; with peers it initializes
    /// in the background only after every peer answered that it holds no Raft state either.
    /// Restarts never re-initialize.
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
        let sm_view = sm.clone();
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
                leaderless: Arc::new(Leaderless::new(Duration::from_millis(
                    settings.election_max_ms,
                ))),
                membership_lock: tokio::sync::Mutex::new(()),
                bootstrap: watch::Sender::new(BootstrapState::Starting),
                stop: CancellationToken::new(),
                sm: sm_view,
            }),
        };
        super::compaction::spawn_trigger(
            consensus.inner.raft.clone(),
            consensus.inner.reader.clone(),
            settings.snapshot_every_logs,
            settings.snapshot_state_percent,
            consensus.inner.stop.clone(),
        );
        super::election_gate::spawn(consensus.clone(), consensus.inner.stop.clone());
        consensus.spawn_watcher(CatchUp {
            committed: committed.map(|l| l.index),
            last_log: log_state.last_log_id.map(|l| l.index),
        });
        consensus.bootstrap(peers).await?;
        tracing::info!(node_id, dir = %dir.display(), last_log = ?log_state.last_log_id, "consensus started");
        Ok(consensus)
    }

    /// Spawns the task that mirrors openraft's metrics into gauges and flips the caught-up latch
    /// (see [`CatchUp`]).
    fn spawn_watcher(&self, target: CatchUp) {
        let mut rx = self.inner.raft.metrics();
        let caught_up = self.inner.caught_up.clone();
        let leaderless = self.inner.leaderless.clone();
        tokio::spawn(async move {
            let mut prev_leader = None;
            loop {
                {
                    let metrics = rx.borrow_and_update();
                    m::observe(&metrics, &mut prev_leader);
                    leaderless
                        .observe(metrics.current_leader, metrics.state == ServerState::Leader);
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

    /// Proposes a command and returns the applied result. On a follower the command is
    /// forwarded to the leader (`Forward` RPC, at most `settings.forward_hops` nodes deep); during
    /// an election it waits for a leader; a leader that changes mid-way gets the command again.
    /// Everything happens within `settings.propose_timeout_ms`, except that a node that has known
    /// no leader (or, leading, no quorum) for longer than [`RaftSettings::degraded_after`] fails
    /// at once with [`ProposeError::NoLeader`]/[`ProposeError::NoQuorum`].
    pub async fn propose(&self, cmd: MetaCmd) -> Result<MetaResp, ProposeError> {
        let started = Instant::now();
        let deadline = started + self.inner.settings.propose_timeout();
        let hops = self.inner.settings.forward_hops;
        self.propose_recorded(&cmd, hops, started, deadline).await
    }

    /// Proposes a command received through `Forward`: like [`Consensus::propose`], with the
    /// caller's remaining hop budget and deadline.
    pub(crate) async fn propose_relayed(
        &self,
        cmd: MetaCmd,
        hops: u32,
        deadline: Instant,
    ) -> Result<MetaResp, ProposeError> {
        self.propose_recorded(&cmd, hops, Instant::now(), deadline)
            .await
    }

    async fn propose_recorded(
        &self,
        cmd: &MetaCmd,
        hops: u32,
        started: Instant,
        deadline: Instant,
    ) -> Result<MetaResp, ProposeError> {
        let res = self.propose_until(cmd, hops, started, deadline).await;
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

    /// The proposal loop: write locally, or forward to the leader, or wait for one.
    async fn propose_until(
        &self,
        cmd: &MetaCmd,
        hops: u32,
        started: Instant,
        deadline: Instant,
    ) -> Result<MetaResp, ProposeError> {
        loop {
            self.check_degraded(started)?;
            let write = self.inner.raft.client_write(cmd.clone());
            let res = tokio::select! {
                res = tokio::time::timeout_at(deadline, write) => res,
                e = self.degraded(started) => return Err(e),
            };
            let err = match res {
                Err(_) => return Err(self.timeout_error(started)),
                Ok(Ok(resp)) => return Ok(resp.data),
                Ok(Err(e)) => e,
            };
            match self.on_write_error(err)? {
                None => self.wait_for_leader(started, deadline).await?,
                Some((leader_id, leader_addr)) if hops == 0 => {
                    return Err(ProposeError::ForwardToLeader {
                        leader_id,
                        leader_addr,
                    })
                }
                Some(leader) => {
                    let sent = self.forward_to(cmd, leader, hops, started, deadline);
                    if let Some(resp) = sent.await? {
                        return Ok(resp);
                    }
                }
            }
        }
    }

    /// Turns a write error into a final error, the leader to forward to (`Some((id, addr))`),
    /// or `None`: no usable leader is known, wait for one.
    fn on_write_error(
        &self,
        e: RaftError<NodeId, ClientWriteError<NodeId, NodeAddr>>,
    ) -> Result<Option<(NodeId, String)>, ProposeError> {
        match e {
            RaftError::Fatal(f) => Err(fatal(f)),
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                Err(ProposeError::Membership(e))
            }
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                let Some(leader_id) = f.leader_id.filter(|l| *l != self.inner.id) else {
                    return Ok(None);
                };
                let addr = f
                    .leader_node
                    .map(|n| n.cluster_addr)
                    .filter(|a| !a.is_empty())
                    .or_else(|| self.status().member(leader_id).map(|m| m.addr.clone()));
                Ok(addr.filter(|a| !a.is_empty()).map(|a| (leader_id, a)))
            }
        }
    }

    /// Forwards `cmd` to `leader` once. `Ok(Some(resp))`: applied there; `Ok(None)`: try again
    /// (leadership moved while the call was in flight, or it failed in a way a retry may fix).
    async fn forward_to(
        &self,
        cmd: &MetaCmd,
        (leader_id, addr): (NodeId, String),
        hops: u32,
        started: Instant,
        deadline: Instant,
    ) -> Result<Option<MetaResp>, ProposeError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(self.timeout_error(started));
        }
        let net = &self.inner.network;
        let res = tokio::select! {
            res = net.forward(leader_id, &addr, cmd, hops, remaining) => res,
            e = self.degraded(started) => return Err(e),
            () = self.leader_moved_from(leader_id) => {
                metrics::counter!(FORWARDED_TOTAL, "result" => "abandoned").increment(1);
                tracing::debug!(leader_id, "leader changed while forwarding; sending again");
                return Ok(None);
            }
        };
        match res {
            Ok(resp) => Ok(Some(resp)),
            Err(e) if forward_retryable(&e) => {
                tracing::debug!(leader_id, error = %e, "forwarding failed; retrying");
                self.pause_after_forward(leader_id, e, deadline).await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Resolves once a leader other than `from` is known (or Raft stopped).
    async fn leader_moved_from(&self, from: NodeId) {
        let mut rx = self.inner.raft.metrics();
        loop {
            if rx
                .borrow_and_update()
                .current_leader
                .is_some_and(|l| l != from)
            {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// After a failed forward to `leader_id`: waits for another leader or a short pause, or
    /// returns `failure` if the deadline would pass first.
    async fn pause_after_forward(
        &self,
        leader_id: NodeId,
        failure: ProposeError,
        deadline: Instant,
    ) -> Result<(), ProposeError> {
        let pause = Duration::from_millis(self.inner.settings.heartbeat_ms.max(20));
        let until = Instant::now() + pause;
        if until >= deadline {
            return Err(failure);
        }
        let _ = tokio::time::timeout_at(until, self.leader_moved_from(leader_id)).await;
        Ok(())
    }

    /// Fails at once when this node has been without a leader (or, leading, without a quorum)
    /// for longer than [`RaftSettings::degraded_after`]: the quorum is lost, not just electing.
    fn check_degraded(&self, started: Instant) -> Result<(), ProposeError> {
        let limit = self.inner.settings.degraded_after();
        let waited_ms = millis_since(started);
        if self.leaderless_for().is_some_and(|d| d > limit) {
            return Err(ProposeError::NoLeader { waited_ms });
        }
        let metrics = self.inner.raft.metrics();
        let metrics = metrics.borrow();
        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        if metrics.state == ServerState::Leader
            && metrics
                .millis_since_quorum_ack
                .is_some_and(|ms| ms > limit_ms)
        {
            return Err(ProposeError::NoQuorum { waited_ms });
        }
        Ok(())
    }

    /// Resolves, with the error to fail with, once [`Consensus::check_degraded`] fails (never
    /// if Raft stops first: the pending write then fails on its own).
    async fn degraded(&self, started: Instant) -> ProposeError {
        let limit = self.inner.settings.degraded_after();
        let mut rx = self.inner.raft.metrics();
        loop {
            if let Err(e) = self.check_degraded(started) {
                return e;
            }
            let wake = self
                .inner
                .leaderless
                .degraded_at(limit)
                .map(|t| t + RETRY_PAUSE);
            let changed = match wake {
                Some(at) => tokio::select! {
                    () = tokio::time::sleep_until(at) => true,
                    r = rx.changed() => r.is_ok(),
                },
                None => rx.changed().await.is_ok(),
            };
            if !changed {
                return std::future::pending().await;
            }
        }
    }

    /// Records that this node accepted an AppendEntries from the leader (the Raft service
    /// calls it): the leader is alive and reachable from here.
    pub(super) fn leader_heard(&self) {
        self.inner.leaderless.heard();
    }

    /// Whether this node accepted an AppendEntries within `within`.
    pub(super) fn leader_heard_within(&self, within: Duration) -> bool {
        self.inner.leaderless.last_contact().elapsed() <= within
    }

    /// How long this node has known no leader, or not heard from the one it knows for longer
    /// than an election timeout (`None` otherwise).
    fn leaderless_for(&self) -> Option<Duration> {
        self.inner.leaderless.since().map(|t| t.elapsed())
    }

    /// Waits until some leader is known (then pauses briefly), or fails at `deadline` or when
    /// the leaderless time passes [`RaftSettings::degraded_after`].
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
            let degraded_at = self
                .inner
                .leaderless
                .degraded_at(self.inner.settings.degraded_after());
            let until = degraded_at.map_or(deadline, |d| d.min(deadline));
            match tokio::time::timeout_at(until, rx.changed()).await {
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
        let mut st = RaftStatus::from_metrics(&self.inner.raft.metrics().borrow());
        if st.leader_id.is_some() && st.leader_id != Some(self.inner.id) {
            // A known leader counts as lost only once silent (see `Leaderless::since`).
            st.leader_silent_ms = self.inner.leaderless.since().map(millis_since);
        }
        st
    }

    /// Whether node `id` belongs to the membership this node knows (a learner counts), or this
    /// node knows no membership yet (pristine: it must accept the cluster that adds it).
    pub fn knows_node(&self, id: NodeId) -> bool {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        membership.nodes().next().is_none() || membership.get_node(&id).is_some()
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
        self.inner.stop.cancel();
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

pub(super) fn fatal(f: Fatal<NodeId>) -> ProposeError {
    match f {
        Fatal::Stopped => ProposeError::ShuttingDown,
        other => ProposeError::Fatal(Box::new(other)),
    }
}

/// Whether a failed forward may succeed when sent again (to the same or a new leader). A leader
/// that timed out or lacks a quorum has used up the time; retrying would only repeat that.
fn forward_retryable(e: &ProposeError) -> bool {
    matches!(
        e,
        ProposeError::Forward { .. }
            | ProposeError::ForwardToLeader { .. }
            | ProposeError::HopsExhausted
            | ProposeError::NoLeader { .. }
    )
}

pub(super) fn millis_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod leaderless_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_known_leader_counts_as_lost_only_after_its_silence() {
        let silence = Duration::from_millis(900);
        let l = Leaderless::new(silence);
        assert!(l.since().is_some(), "no leader known at start");
        l.observe(Some(1), true);
        assert!(l.since().is_none(), "leading");
        assert!(l.degraded_at(Duration::from_secs(4)).is_none());

        // A leader of an hour steps down to follow node 2: node 2 gets a full silence to reach
        // this node, not the hour since the last AppendEntries it accepted.
        tokio::time::advance(Duration::from_secs(3600)).await;
        l.observe(Some(2), false);
        assert!(l.since().is_none());
        tokio::time::advance(Duration::from_millis(800)).await;
        l.heard();
        tokio::time::advance(Duration::from_millis(800)).await;
        assert!(l.since().is_none(), "heard 800 ms ago");

        // Silent for longer than `silence`: lost since the last contact.
        tokio::time::advance(Duration::from_millis(200)).await;
        let since = l.since().expect("silent for 1 s");
        assert_eq!(since.elapsed(), Duration::from_millis(1000));
        assert_eq!(
            l.degraded_at(Duration::from_secs(4)),
            Some(since + Duration::from_secs(4))
        );

        // Heard again: not lost; no leader known at all: lost from that moment.
        l.heard();
        assert!(l.since().is_none());
        l.observe(None, false);
        assert_eq!(l.since().map(|t| t.elapsed()), Some(Duration::ZERO));
    }
}
