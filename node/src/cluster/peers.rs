//! Peer liveness: which members of the Raft membership answer, their cluster addresses, shared
//! gRPC channels to them, and the leader's replication-lag gauges.
//!
//! [`Peers::spawn`] starts one prober task. Every `cluster.liveness_interval_ms` it calls
//! `Admin.Status` on every member of the current membership (concurrently, with a short
//! timeout). A peer counts as down after `cluster.liveness_failures` consecutive failures and as
//! up again after one success; a member never probed yet counts as up (optimistic, so a fresh
//! node does not route everything to itself). This node is always live.
//!
//! Metrics (names below, described by [`describe`]): `cairn_peer_up{peer}`,
//! `cairn_cluster_members`, and on the leader `cairn_raft_replication_lag_entries{peer}` (its last
//! log index minus the peer's matched index) and `cairn_raft_replication_lag_seconds{peer}` (time
//! since the peer last held everything the leader had one probe interval earlier; 0 while it
//! keeps up), both also labelled with the peer's `region`. Followers report 0 lag. `peer` is a
//! node id, bounded by the membership.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_proto::v1::admin_client::AdminClient;
use cairn_proto::v1::StatusRequest;
use futures_util::future::join_all;
use metrics::{describe_gauge, Unit};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use crate::config::ClusterSettings;
use crate::raft::{Consensus, RaftRole, RaftStatus};

/// Gauge: 1 if the peer answers liveness probes, else 0 (label `peer`: node id).
pub const PEER_UP: &str = "cairn_peer_up";
/// Gauge: members in the Raft membership (voters and learners).
pub const CLUSTER_MEMBERS: &str = "cairn_cluster_members";
/// Gauge (leader only): log entries the peer lacks (label `peer`).
pub const REPLICATION_LAG_ENTRIES: &str = "cairn_raft_replication_lag_entries";
/// Gauge (leader only): seconds the peer has been behind (label `peer`).
pub const REPLICATION_LAG_SECONDS: &str = "cairn_raft_replication_lag_seconds";

/// Connect timeout of a cached peer channel. Short: a peer whose address stopped answering
/// (a vanished pod IP drops SYNs) must not hold an owner-routed fill longer than a failover
/// takes; the caller falls back to filling locally.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Describes the peer metrics (call once at startup).
pub fn describe() {
    describe_gauge!(
        PEER_UP,
        Unit::Count,
        "1 if the cluster member answers liveness probes from this node, else 0."
    );
    describe_gauge!(
        CLUSTER_MEMBERS,
        Unit::Count,
        "Members (voters and learners) in the Raft membership as this node sees it."
    );
    describe_gauge!(
        REPLICATION_LAG_ENTRIES,
        Unit::Count,
        "On the leader: Raft log entries a member has not yet acknowledged (0 on followers)."
    );
    describe_gauge!(
        REPLICATION_LAG_SECONDS,
        Unit::Seconds,
        "On the leader: seconds since a member last held everything the leader had one probe interval earlier (0 on followers)."
    );
}

/// A cluster address could not be turned into a gRPC endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeersError {
    /// The address is not a valid `host:port`.
    #[error("invalid cluster address {addr:?}: {source}")]
    BadAddr {
        /// The address as given.
        addr: String,
        /// The parse error.
        #[source]
        source: tonic::transport::Error,
    },
}

/// One member of the cluster as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Node id.
    pub id: u64,
    /// Cluster (gRPC) address from the membership.
    pub addr: String,
    /// Voter (true) or learner (false).
    pub voter: bool,
    /// Answers liveness probes (always true for this node).
    pub live: bool,
    /// The region recorded in the membership (empty = none, or not reported yet).
    pub region: String,
}

/// Peer liveness and shared channels (cheap to clone).
#[derive(Clone)]
pub struct Peers {
    inner: Arc<Shared>,
}

struct Shared {
    consensus: Consensus,
    self_id: u64,
    liveness: Mutex<HashMap<u64, Liveness>>,
    channels: Mutex<HashMap<String, Channel>>,
}

/// The probe record of one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Liveness {
    down: bool,
    failures: u32,
}

impl Liveness {
    /// Records one probe; returns `Some(live)` when the peer changed state.
    fn record(&mut self, ok: bool, failures_to_down: u32) -> Option<bool> {
        if ok {
            self.failures = 0;
            return std::mem::replace(&mut self.down, false).then_some(true);
        }
        self.failures = self.failures.saturating_add(1);
        if !self.down && self.failures >= failures_to_down.max(1) {
            self.down = true;
            return Some(false);
        }
        None
    }
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("self_id", &self.inner.self_id)
            .field("members", &self.members())
            .finish()
    }
}

impl Peers {
    /// Probes every member of the current membership (from `consensus.status().members`) every
    /// `liveness_interval_ms` with a short `Admin.Status` call; a peer is down after
    /// `liveness_failures` consecutive failures, up again after one success. Self is always
    /// live. The prober stops when `shutdown` is cancelled.
    pub fn spawn(
        consensus: Consensus,
        self_id: u64,
        settings: &ClusterSettings,
        shutdown: CancellationToken,
    ) -> Peers {
        let peers = Peers {
            inner: Arc::new(Shared {
                consensus,
                self_id,
                liveness: Mutex::default(),
                channels: Mutex::default(),
            }),
        };
        let interval = Duration::from_millis(settings.liveness_interval_ms.max(10));
        let prober = Prober {
            peers: peers.clone(),
            interval,
            timeout: interval.clamp(Duration::from_millis(100), Duration::from_secs(2)),
            failures_to_down: settings.liveness_failures,
            lag: LagTracker::default(),
        };
        tokio::spawn(prober.run(shutdown));
        peers
    }

    /// All members of the membership (this node included when it is a member), sorted by id.
    pub fn members(&self) -> Vec<PeerInfo> {
        let st = self.inner.consensus.status();
        let liveness = self.lock_liveness();
        let mut out: Vec<PeerInfo> = st
            .members
            .iter()
            .map(|m| PeerInfo {
                id: m.id,
                addr: m.addr.clone(),
                voter: m.voter,
                live: m.id == self.inner.self_id || liveness.get(&m.id).is_none_or(|l| !l.down),
                region: m.region.clone(),
            })
            .collect();
        out.sort_by_key(|p| p.id);
        out
    }

    /// This node's id.
    pub fn self_id(&self) -> u64 {
        self.inner.self_id
    }

    /// This node's configured region (`cluster.region`; empty = none). Used rather than the
    /// membership's record, which lags until the node's location report is committed.
    pub fn self_region(&self) -> &str {
        &self.inner.consensus.settings().region
    }

    /// The live members, sorted by id.
    pub fn live(&self) -> Vec<PeerInfo> {
        self.members().into_iter().filter(|p| p.live).collect()
    }

    /// Whether `id` is this node or a live member.
    pub fn is_live(&self, id: u64) -> bool {
        id == self.inner.self_id || self.members().iter().any(|p| p.id == id && p.live)
    }

    /// The cluster address of member `id` from the membership.
    pub fn addr_of(&self, id: u64) -> Option<String> {
        self.inner
            .consensus
            .status()
            .member(id)
            .map(|m| m.addr.clone())
    }

    /// A cached, lazily connected tonic `Channel` to a cluster address (shared by all callers;
    /// HTTP/2 multiplexes their calls). Callers set their own per-call deadlines and message
    /// limits on the clients they build from it.
    pub fn channel(&self, addr: &str) -> Result<Channel, PeersError> {
        let mut channels = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(ch) = channels.get(addr) {
            return Ok(ch.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}")).map_err(|source| {
            PeersError::BadAddr {
                addr: addr.to_string(),
                source,
            }
        })?;
        let endpoint = endpoint
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_adaptive_window(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        let channel = self
            .inner
            .consensus
            .network()
            .tls()
            .connect_lazy(endpoint, crate::tls::Expect::AnyNode);
        channels.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }

    fn lock_liveness(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Liveness>> {
        self.inner
            .liveness
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

// === prober ===

struct Prober {
    peers: Peers,
    interval: Duration,
    timeout: Duration,
    failures_to_down: u32,
    lag: LagTracker,
}

impl Prober {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let st = self.peers.inner.consensus.status();
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.probe_round(&st) => {}
            }
            self.lag
                .observe(&st, self.peers.inner.self_id, Instant::now());
        }
        tracing::debug!("peer prober stopped");
    }

    /// Probes every other member once, then updates the liveness records and gauges.
    async fn probe_round(&self, st: &RaftStatus) {
        let self_id = self.peers.inner.self_id;
        let probes = st
            .members
            .iter()
            .filter(|m| m.id != self_id)
            .map(|m| async move { (m.id, self.probe(m.id, &m.addr).await) });
        let results = join_all(probes).await;
        let mut liveness = self.peers.lock_liveness();
        liveness.retain(|id, _| {
            let keep = st.member(*id).is_some();
            if !keep {
                metrics::gauge!(PEER_UP, "peer" => id.to_string()).set(0.0);
            }
            keep
        });
        for (id, ok) in results {
            let entry = liveness.entry(id).or_default();
            match entry.record(ok, self.failures_to_down) {
                Some(true) => tracing::info!(peer = id, "peer is up again"),
                Some(false) => tracing::warn!(peer = id, failures = entry.failures, "peer is down"),
                None => {}
            }
            let up = if entry.down { 0.0 } else { 1.0 };
            metrics::gauge!(PEER_UP, "peer" => id.to_string()).set(up);
        }
        if st.member(self_id).is_some() {
            metrics::gauge!(PEER_UP, "peer" => self_id.to_string()).set(1.0);
        }
        metrics::gauge!(CLUSTER_MEMBERS).set(st.members.len() as f64);
    }

    /// One `Admin.Status` call; true if `id` answered as itself in time.
    async fn probe(&self, id: u64, addr: &str) -> bool {
        let Ok(channel) = self.peers.channel(addr) else {
            return false;
        };
        let mut req = tonic::Request::new(StatusRequest {});
        req.metadata_mut().insert(
            crate::admin::PROBE_HEADER,
            tonic::metadata::MetadataValue::from_static("1"),
        );
        req.set_timeout(self.timeout);
        let mut client = AdminClient::new(channel);
        let call = client.status(req);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(reply)) => reply.get_ref().node_id == id,
            Ok(Err(status)) => {
                tracing::debug!(peer = id, %addr, error = %status, "liveness probe failed");
                false
            }
            Err(_) => false,
        }
    }
}

// === replication lag ===

/// Per-peer replication lag as the leader sees it.
#[derive(Debug, Default)]
struct LagTracker {
    /// The leader's last log index at the previous observation.
    prev_last: Option<u64>,
    /// When each peer last held everything the leader had at the previous observation.
    caught_up_at: HashMap<u64, Instant>,
    /// The `region` label each peer's lag gauges were last exported with.
    regions: HashMap<u64, String>,
}

/// One peer's lag.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Lag {
    entries: u64,
    seconds: f64,
}

impl LagTracker {
    /// Updates the lag of every member but `self_id` from `st` and sets the gauges.
    fn observe(&mut self, st: &RaftStatus, self_id: u64, now: Instant) {
        for (id, lag) in self.update(st, self_id, now) {
            let peer = id.to_string();
            let region = st.member(id).map(|m| m.region.clone()).unwrap_or_default();
            // A member that reported its region after its first export: zero the series under
            // the old label rather than leave it frozen.
            if let Some(old) = self.regions.insert(id, region.clone()) {
                if old != region {
                    let labels = [("peer", peer.clone()), ("region", old)];
                    metrics::gauge!(REPLICATION_LAG_ENTRIES, &labels).set(0.0);
                    metrics::gauge!(REPLICATION_LAG_SECONDS, &labels).set(0.0);
                }
            }
            let labels = [("peer", peer), ("region", region)];
            metrics::gauge!(REPLICATION_LAG_ENTRIES, &labels).set(lag.entries as f64);
            metrics::gauge!(REPLICATION_LAG_SECONDS, &labels).set(lag.seconds);
        }
    }

    fn update(&mut self, st: &RaftStatus, self_id: u64, now: Instant) -> Vec<(u64, Lag)> {
        let peers = st.members.iter().filter(|m| m.id != self_id);
        if st.state != RaftRole::Leader {
            self.prev_last = None;
            self.caught_up_at.clear();
            let zero = Lag {
                entries: 0,
                seconds: 0.0,
            };
            return peers.map(|m| (m.id, zero)).collect();
        }
        let last = st.last_log_index.unwrap_or(0);
        let target = self.prev_last.unwrap_or(last).min(last);
        self.caught_up_at.retain(|id, _| st.member(*id).is_some());
        let mut out = Vec::new();
        for m in peers {
            let matched = m.matched_index;
            let since = self.caught_up_at.entry(m.id).or_insert(now);
            if matched.is_some_and(|i| i >= target) {
                *since = now;
            }
            let entries = last.saturating_sub(matched.unwrap_or(0));
            let seconds = now.saturating_duration_since(*since).as_secs_f64();
            out.push((m.id, Lag { entries, seconds }));
        }
        self.prev_last = Some(last);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::RaftMember;

    #[test]
    fn liveness_needs_consecutive_failures_and_one_success() {
        let mut l = Liveness::default();
        assert_eq!(l.record(false, 3), None);
        assert_eq!(l.record(false, 3), None);
        assert_eq!(l.record(true, 3), None, "a success resets the count");
        assert_eq!(l.record(false, 3), None);
        assert_eq!(l.record(false, 3), None);
        assert_eq!(l.record(false, 3), Some(false));
        assert!(l.down);
        assert_eq!(l.record(false, 3), None, "already down");
        assert_eq!(l.record(true, 3), Some(true));
        assert!(!l.down);
        assert_eq!(
            Liveness::default().record(false, 0),
            Some(false),
            "0 acts as 1"
        );
    }

    fn leader_status(last: u64, matched: &[(u64, Option<u64>)]) -> RaftStatus {
        let mut members = vec![RaftMember {
            id: 1,
            addr: "a:1".into(),
            voter: true,
            matched_index: Some(last),
            region: String::new(),
            zone: String::new(),
        }];
        members.extend(matched.iter().map(|(id, m)| RaftMember {
            id: *id,
            addr: format!("n{id}:1"),
            voter: true,
            matched_index: *m,
            region: String::new(),
            zone: String::new(),
        }));
        RaftStatus {
            node_id: 1,
            state: RaftRole::Leader,
            term: 1,
            leader_id: Some(1),
            last_log_index: Some(last),
            applied_index: Some(last),
            snapshot_index: None,
            millis_since_quorum_ack: Some(0),
            leader_silent_ms: None,
            running: true,
            initialized: true,
            members,
        }
    }

    #[test]
    fn lag_counts_entries_and_time_behind() {
        let mut t = LagTracker::default();
        let t0 = Instant::now();
        let lag = t.update(&leader_status(10, &[(2, Some(10)), (3, Some(4))]), 1, t0);
        assert_eq!(
            lag[0],
            (
                2,
                Lag {
                    entries: 0,
                    seconds: 0.0
                }
            )
        );
        assert_eq!(
            lag[1],
            (
                3,
                Lag {
                    entries: 6,
                    seconds: 0.0
                }
            )
        );
        // 5 s later: node 2 has what the leader had before; node 3 still does not.
        let t1 = t0 + Duration::from_secs(5);
        let lag = t.update(&leader_status(20, &[(2, Some(12)), (3, Some(5))]), 1, t1);
        assert_eq!(
            lag[0],
            (
                2,
                Lag {
                    entries: 8,
                    seconds: 0.0
                }
            )
        );
        assert_eq!(
            lag[1],
            (
                3,
                Lag {
                    entries: 15,
                    seconds: 5.0
                }
            )
        );
        let mut follower = leader_status(20, &[(2, Some(1))]);
        follower.state = RaftRole::Follower;
        let lag = t.update(&follower, 1, t1);
        assert_eq!(
            lag,
            vec![(
                2,
                Lag {
                    entries: 0,
                    seconds: 0.0
                }
            )]
        );
        assert!(t.caught_up_at.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_member_goes_down() {
        use crate::admin::testing::{self, start_cluster, wait_for_leader, wait_until};
        let mut nodes = start_cluster(3, &testing::settings()).await;
        wait_for_leader(&nodes).await;
        let settings = ClusterSettings {
            liveness_interval_ms: 100,
            liveness_failures: 2,
            ..ClusterSettings::default()
        };
        let stop = CancellationToken::new();
        let peers = Peers::spawn(nodes[0].consensus.clone(), 1, &settings, stop.clone());
        let ids = |v: Vec<PeerInfo>| v.into_iter().map(|p| p.id).collect::<Vec<_>>();
        wait_until("3 members", || peers.members().len() == 3).await;
        assert_eq!(ids(peers.live()), [1, 2, 3]);
        assert_eq!(peers.addr_of(2), Some(nodes[1].addr.clone()));
        assert_eq!(peers.addr_of(9), None);
        assert!(peers.channel(&nodes[1].addr).is_ok());
        assert!(peers.channel("bad addr").is_err());
        nodes.pop().unwrap().stop().await;
        wait_until("node 3 down", || !peers.is_live(3)).await;
        assert_eq!(ids(peers.live()), [1, 2]);
        assert!(peers.is_live(1) && peers.is_live(2));
        assert!(!peers.members()[2].live);
        stop.cancel();
        for n in nodes {
            n.stop().await;
        }
    }
}
