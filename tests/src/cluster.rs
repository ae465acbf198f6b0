//! A cluster of `cairn-node` processes under test ([`TestCluster`]), its configuration
//! ([`ClusterConfig`]) and the `cairn` operator CLI ([`cli_bin`], [`CliOutput`]).
//!
//! Nodes are numbered from 1 (their `--node-id`). Every node gets fixed loopback ports picked
//! before start (bind `127.0.0.1:0`, read the port, drop), because `--peers` must name every
//! cluster address up front; the HTTP port is fixed too, so a restarted node keeps its URL (and
//! its place behind a load balancer). When a node cannot bind its port (someone else took it in
//! between), the whole start is retried with new ports.
//!
//! The harness tracks whether each node is up, stopped (`SIGSTOP`) or down (`kill -9`), and asks
//! only running nodes anything, with short timeouts, so a paused node cannot stall a poll. The
//! Raft view comes from `/metrics` (`cairn_raft_is_leader`, `cairn_raft_leader_id`,
//! `cairn_raft_applied_index`); blob sets come straight from each data directory
//! (`blobs/<aa>/<sha256>`). Dropping the cluster kills every node.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{Display, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::future::join_all;
use tokio::process::Command;

use crate::metrics::Metrics;
use crate::node::{node_bin, CairnNode, NodeOptions};
use crate::pki::ClusterPki;
use crate::wait::{patience, wait_for, wait_until};

/// The configuration file of every node, as TOML sections of `key = value` lines.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    sections: BTreeMap<String, BTreeMap<String, String>>,
    /// Per-node overrides of `sections` (e.g. each node's `cluster.region`), by node id.
    per_node: BTreeMap<u64, BTreeMap<String, BTreeMap<String, String>>>,
    /// Mutual TLS on the cluster port (certificates from a [`ClusterPki`] made at start).
    secure: bool,
}

impl ClusterConfig {
    /// Settings that keep tests fast: 100 ms heartbeats, 0.6–1.2 s elections, 300 ms liveness
    /// probes, repair every second, upstream failures reported without long retries.
    pub fn fast() -> Self {
        ClusterConfig {
            sections: BTreeMap::new(),
            per_node: BTreeMap::new(),
            secure: true,
        }
        .set("raft", "heartbeat_ms", 100)
        .set("raft", "election_min_ms", 600)
        .set("raft", "election_max_ms", 1200)
        .set("raft", "propose_timeout_ms", 10_000)
        .set("cluster", "min_copies", 2)
        .set("cluster", "repair_interval_secs", 1)
        .set("cluster", "liveness_interval_ms", 300)
        .set("cluster", "liveness_failures", 3)
        .set("upstream_http", "retries", 1)
        .set("upstream_http", "backoff_base_ms", 20)
    }

    /// Removes `key` from `[section]` (the node then uses its default).
    pub fn unset(mut self, section: &str, key: &str) -> Self {
        if let Some(keys) = self.sections.get_mut(section) {
            keys.remove(key);
        }
        self
    }

    /// No TLS on the cluster port (`cluster.insecure = true`).
    pub fn insecure(mut self) -> Self {
        self.secure = false;
        self.set("cluster", "insecure", true)
    }

    /// Whether the cluster port uses mutual TLS.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Sets `key = value` in `[section]`; `value` is written as is (quote strings yourself).
    pub fn set(mut self, section: &str, key: &str, value: impl Display) -> Self {
        self.sections
            .entry(section.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
        self
    }

    /// Sets `key = value` in `[section]` of node `id` only (over [`ClusterConfig::set`]);
    /// `value` is written as is (quote strings yourself).
    pub fn set_for(mut self, id: u64, section: &str, key: &str, value: impl Display) -> Self {
        self.per_node
            .entry(id)
            .or_default()
            .entry(section.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
        self
    }

    /// The TOML text shared by every node (without per-node overrides).
    pub fn toml(&self) -> String {
        render_toml(&self.sections)
    }

    /// The TOML text of node `id`: the shared settings with its own overrides.
    pub fn toml_for(&self, id: u64) -> String {
        let mut sections = self.sections.clone();
        for (section, keys) in self.per_node.get(&id).into_iter().flatten() {
            sections
                .entry(section.clone())
                .or_default()
                .extend(keys.clone());
        }
        render_toml(&sections)
    }
}

fn render_toml(sections: &BTreeMap<String, BTreeMap<String, String>>) -> String {
    let mut out = String::new();
    for (section, keys) in sections {
        let _ = writeln!(out, "[{section}]");
        for (k, v) in keys {
            let _ = writeln!(out, "{k} = {v}");
        }
        out.push('\n');
    }
    out
}

/// Where and how one node of a placed cluster runs ([`TestCluster::start_placed`]): fixed
/// addresses (e.g. in a network namespace of [`crate::netns::Regions`]), a command prefix, and
/// its own configuration (e.g. the cluster config plus its `[cluster] region`).
#[derive(Clone, Debug)]
pub struct Placement {
    /// The GOPROXY HTTP address (`--listen`).
    pub http: SocketAddr,
    /// The cluster address (`--cluster-listen`, and what `--peers` names).
    pub grpc: SocketAddr,
    /// The command the node runs under (e.g. `ip netns exec <ns>`); empty: none.
    pub prefix: Vec<String>,
    /// This node's configuration file.
    pub config: ClusterConfig,
}

/// The HTTP client that probes members (`/readyz`, `/metrics`): loopback only, short timeouts.
fn probe_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(3))
        .build()
}

/// Whether a node's process is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Running.
    Up,
    /// Paused with `SIGSTOP`.
    Stopped,
    /// Killed (`kill -9`), not restarted yet.
    Down,
}

struct Member {
    node: CairnNode,
    http: SocketAddr,
    grpc: SocketAddr,
    state: RunState,
}

/// A running cluster. Nodes are addressed by id (1-based).
pub struct TestCluster {
    members: BTreeMap<u64, Member>,
    /// Cluster addresses of the founding members (their `--peers`).
    peers: BTreeMap<u64, SocketAddr>,
    upstream: String,
    config: ClusterConfig,
    probe: reqwest::Client,
    /// The cluster's certificates (`None`: insecure cluster port).
    pki: Option<Arc<ClusterPki>>,
}

/// The Raft view of one node, from its `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftView {
    /// `cairn_raft_is_leader == 1`.
    pub is_leader: bool,
    /// `cairn_raft_leader_id` (0 = none known).
    pub leader_id: u64,
    /// `cairn_raft_applied_index`.
    pub applied: u64,
    /// `cairn_raft_term` (0 when absent).
    pub term: u64,
}

impl RaftView {
    /// Reads the view from parsed metrics.
    pub fn from_metrics(m: &Metrics) -> RaftView {
        RaftView {
            is_leader: m.sum("cairn_raft_is_leader", &[]) == 1.0,
            leader_id: m.sum("cairn_raft_leader_id", &[]) as u64,
            applied: m.sum("cairn_raft_applied_index", &[]) as u64,
            term: m.sum("cairn_raft_term", &[]) as u64,
        }
    }
}

/// Picks `n` distinct free loopback ports (all bound at once, then released).
pub fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()?)
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn peers_arg(peers: &BTreeMap<u64, SocketAddr>) -> String {
    peers
        .iter()
        .map(|(id, a)| format!("{id}={a}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn is_bind_conflict(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}").to_ascii_lowercase();
    text.contains("address already in use")
        || text.contains("addrinuse")
        || text.contains("os error 98")
}

impl TestCluster {
    /// Starts `n` nodes (ids `1..=n`) in front of `upstream`, all with the same `--peers`, and
    /// waits until they formed one cluster: a single leader every node agrees on and equal
    /// applied indexes.
    pub async fn start(
        n: usize,
        upstream: &str,
        config: &ClusterConfig,
    ) -> anyhow::Result<TestCluster> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::try_start(n, upstream, config).await {
                Ok(c) => {
                    c.wait_for_leader().await?;
                    c.wait_converged().await?;
                    return Ok(c);
                }
                Err(e) if attempt < 3 && is_bind_conflict(&e) => {
                    eprintln!("cluster start: port conflict, retrying with new ports: {e:#}");
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn try_start(
        n: usize,
        upstream: &str,
        config: &ClusterConfig,
    ) -> anyhow::Result<TestCluster> {
        let ports = free_ports(2 * n)?;
        let ids: Vec<u64> = (1..=n as u64).collect();
        let http = |id: u64| loopback(ports[2 * (id as usize - 1)]);
        let grpc = |id: u64| loopback(ports[2 * (id as usize - 1) + 1]);
        let peers: BTreeMap<u64, SocketAddr> = ids.iter().map(|&id| (id, grpc(id))).collect();
        let pki = match config.secure {
            true => Some(Arc::new(ClusterPki::new()?)),
            false => None,
        };
        let mut opts = Vec::new();
        for &id in &ids {
            let toml = config.toml_for(id);
            let o = node_options(id, http(id), grpc(id), &peers, upstream, &toml);
            opts.push(with_certs(o, pki.as_deref(), id)?);
        }
        let starts = opts.into_iter().map(CairnNode::start);
        let mut members = BTreeMap::new();
        let mut first_err = None;
        for (id, r) in ids.iter().zip(join_all(starts).await) {
            match r {
                Ok(node) => {
                    members.insert(
                        *id,
                        Member {
                            node,
                            http: http(*id),
                            grpc: grpc(*id),
                            state: RunState::Up,
                        },
                    );
                }
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(e.context(format!("starting node {id}")));
                    }
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        Ok(TestCluster {
            members,
            peers,
            upstream: upstream.to_string(),
            config: config.clone(),
            probe: probe_client()?,
            pki,
        })
    }

    /// Starts the founding members `voters` at their placements (all with the same `--peers`)
    /// and waits until they formed one cluster. Mutual TLS when `config` is secure (the
    /// placements' configs should derive from it).
    pub async fn start_placed(
        voters: BTreeMap<u64, Placement>,
        upstream: &str,
        config: &ClusterConfig,
    ) -> anyhow::Result<TestCluster> {
        let peers: BTreeMap<u64, SocketAddr> = voters.iter().map(|(id, p)| (*id, p.grpc)).collect();
        let pki = match config.secure {
            true => Some(Arc::new(ClusterPki::new()?)),
            false => None,
        };
        let mut starts = Vec::new();
        for (id, p) in &voters {
            let mut o = node_options(*id, p.http, p.grpc, &peers, upstream, &p.config.toml());
            o.prefix = p.prefix.clone();
            starts.push(CairnNode::start(with_certs(o, pki.as_deref(), *id)?));
        }
        let mut members = BTreeMap::new();
        for ((id, p), r) in voters.iter().zip(join_all(starts).await) {
            let node = r.with_context(|| format!("starting node {id}"))?;
            let state = RunState::Up;
            let (http, grpc) = (p.http, p.grpc);
            members.insert(
                *id,
                Member {
                    node,
                    http,
                    grpc,
                    state,
                },
            );
        }
        let c = TestCluster {
            members,
            peers,
            upstream: upstream.to_string(),
            config: config.clone(),
            probe: probe_client()?,
            pki,
        };
        c.wait_for_leader().await?;
        c.wait_converged().await?;
        Ok(c)
    }

    /// Starts node `id` at `placement` (its `--peers`: the founding members plus itself) and
    /// adds it through the leader as a learner (`cairn members add --learner`), or as a voter
    /// when `learner` is false.
    pub async fn add_placed(
        &mut self,
        id: u64,
        placement: Placement,
        learner: bool,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(!self.members.contains_key(&id), "node {id} already exists");
        // Before the new node counts as running: it names no leader until it is added.
        let leader = self.wait_for_leader().await?;
        let Placement {
            http,
            grpc,
            prefix,
            config,
        } = placement;
        let mut peers = self.peers.clone();
        peers.insert(id, grpc);
        let mut o = node_options(id, http, grpc, &peers, &self.upstream, &config.toml());
        o.prefix = prefix;
        let o = with_certs(o, self.pki.as_deref(), id)?;
        let node = CairnNode::start(o)
            .await
            .with_context(|| format!("starting node {id}"))?;
        let state = RunState::Up;
        self.members.insert(
            id,
            Member {
                node,
                http,
                grpc,
                state,
            },
        );
        let (id_arg, addr) = (id.to_string(), grpc.to_string());
        let mut args = vec!["members", "add", id_arg.as_str(), addr.as_str()];
        if learner {
            args.push("--learner");
        }
        self.cli_at(leader, &args).await?.ok()?;
        Ok(())
    }

    /// Starts a pristine node `id` whose `--peers` are the founding members plus itself (so it
    /// does not bootstrap a cluster of its own) and waits until it is ready. It joins only when
    /// added (`cairn members add`).
    pub async fn start_joiner(&mut self, id: u64) -> anyhow::Result<()> {
        anyhow::ensure!(!self.members.contains_key(&id), "node {id} already exists");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ports = free_ports(2)?;
            let (http, grpc) = (loopback(ports[0]), loopback(ports[1]));
            let mut peers = self.peers.clone();
            peers.insert(id, grpc);
            let opts = node_options(
                id,
                http,
                grpc,
                &peers,
                &self.upstream,
                &self.config.toml_for(id),
            );
            let opts = with_certs(opts, self.pki.as_deref(), id)?;
            match CairnNode::start(opts).await {
                Ok(node) => {
                    self.members.insert(
                        id,
                        Member {
                            node,
                            http,
                            grpc,
                            state: RunState::Up,
                        },
                    );
                    return Ok(());
                }
                Err(e) if attempt < 3 && is_bind_conflict(&e) => continue,
                Err(e) => return Err(e.context(format!("starting joiner node {id}"))),
            }
        }
    }

    /// Starts node 1 of a new cluster on a data directory that `prepare` fills first (it gets
    /// the directory and the cluster address the node will listen on, e.g. to run
    /// `cairn restore`), and waits for it to lead. Its `--peers` names only itself, so it runs as
    /// the cluster its data describes; add nodes with [`TestCluster::start_joiner`] and
    /// `cairn members add`.
    pub async fn start_prepared<F, Fut>(
        upstream: &str,
        config: &ClusterConfig,
        prepare: F,
    ) -> anyhow::Result<TestCluster>
    where
        F: FnOnce(PathBuf, SocketAddr) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        let ports = free_ports(2)?;
        let (http, grpc) = (loopback(ports[0]), loopback(ports[1]));
        let peers = BTreeMap::from([(1, grpc)]);
        let pki = match config.secure {
            true => Some(Arc::new(ClusterPki::new()?)),
            false => None,
        };
        let dir = tempfile::Builder::new().prefix("cairn-node-").tempdir()?;
        prepare(dir.path().join("data"), grpc).await?;
        let opts = node_options(1, http, grpc, &peers, upstream, &config.toml_for(1));
        let node = CairnNode::start_in(with_certs(opts, pki.as_deref(), 1)?, dir).await?;
        let member = Member {
            node,
            http,
            grpc,
            state: RunState::Up,
        };
        let cluster = TestCluster {
            members: BTreeMap::from([(1, member)]),
            peers,
            upstream: upstream.to_string(),
            config: config.clone(),
            probe: probe_client()?,
            pki,
        };
        cluster.wait_for_leader().await?;
        Ok(cluster)
    }

    fn member(&self, id: u64) -> &Member {
        self.members
            .get(&id)
            .unwrap_or_else(|| panic!("the cluster has no node {id}"))
    }

    fn member_mut(&mut self, id: u64) -> &mut Member {
        self.members
            .get_mut(&id)
            .unwrap_or_else(|| panic!("the cluster has no node {id}"))
    }

    /// The node process handle.
    pub fn node(&self, id: u64) -> &CairnNode {
        &self.member(id).node
    }

    /// Every node id.
    pub fn ids(&self) -> Vec<u64> {
        self.members.keys().copied().collect()
    }

    /// Ids of running (not stopped, not killed) nodes.
    pub fn up_ids(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|(_, m)| m.state == RunState::Up)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether node `id` is running, stopped or down.
    pub fn state(&self, id: u64) -> RunState {
        self.member(id).state
    }

    /// `http://127.0.0.1:<port>` of node `id` (stable across restarts).
    pub fn url(&self, id: u64) -> String {
        format!("http://{}", self.member(id).http)
    }

    /// The GOPROXY HTTP address of node `id`.
    pub fn http_addr(&self, id: u64) -> SocketAddr {
        self.member(id).http
    }

    /// The gRPC cluster address of node `id`.
    pub fn grpc_addr(&self, id: u64) -> SocketAddr {
        self.member(id).grpc
    }

    /// HTTP addresses of every node, in id order (backends for a load balancer).
    pub fn http_addrs(&self) -> Vec<SocketAddr> {
        self.members.values().map(|m| m.http).collect()
    }

    /// Parsed `/metrics` of node `id` (short timeout).
    pub async fn metrics(&self, id: u64) -> anyhow::Result<Metrics> {
        let url = format!("{}/metrics", self.url(id));
        let r = self
            .probe
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        anyhow::ensure!(r.status() == 200, "GET {url} -> {}", r.status());
        Ok(Metrics::parse(&r.text().await?))
    }

    /// `GET /readyz` of node `id` → (status, body) (short timeout).
    pub async fn readyz(&self, id: u64) -> anyhow::Result<(u16, String)> {
        let url = format!("{}/readyz", self.url(id));
        let r = self.probe.get(&url).send().await?;
        let status = r.status().as_u16();
        Ok((status, r.text().await?))
    }

    /// The Raft view of node `id`.
    pub async fn raft(&self, id: u64) -> anyhow::Result<RaftView> {
        Ok(RaftView::from_metrics(&self.metrics(id).await?))
    }

    /// The applied index of node `id`.
    pub async fn applied(&self, id: u64) -> anyhow::Result<u64> {
        Ok(self.raft(id).await?.applied)
    }

    /// Raft views of every running node (`None` where `/metrics` did not answer).
    pub async fn raft_views(&self) -> BTreeMap<u64, Option<RaftView>> {
        let ids = self.up_ids();
        let views = join_all(ids.iter().map(|&id| self.raft(id))).await;
        ids.into_iter()
            .zip(views.into_iter().map(Result::ok))
            .collect()
    }

    /// One line per node (state and Raft view), for failure messages.
    pub async fn describe(&self) -> String {
        let views = self.raft_views().await;
        let mut out = String::new();
        for (id, m) in &self.members {
            let _ = match views.get(id) {
                Some(Some(v)) => writeln!(
                    out,
                    "  node {id} ({:?}): leader={} leader_id={} term={} applied={}",
                    m.state, v.is_leader, v.leader_id, v.term, v.applied
                ),
                Some(None) => writeln!(out, "  node {id} ({:?}): /metrics did not answer", m.state),
                None => writeln!(out, "  node {id} ({:?})", m.state),
            };
        }
        out
    }

    /// The leader, if exactly one running node says it leads and every running node names it.
    pub async fn leader(&self) -> Option<u64> {
        let views = self.raft_views().await;
        let mut leaders = Vec::new();
        let mut named = BTreeSet::new();
        for (id, v) in &views {
            let v = (*v)?;
            if v.is_leader {
                leaders.push(*id);
            }
            named.insert(v.leader_id);
        }
        match leaders[..] {
            [l] if named.len() == 1 && named.contains(&l) => Some(l),
            _ => None,
        }
    }

    /// Waits for [`TestCluster::leader`].
    pub async fn wait_for_leader(&self) -> anyhow::Result<u64> {
        match wait_for(
            "one leader that every running node agrees on",
            patience(2.0),
            || self.leader(),
        )
        .await
        {
            Ok(l) => Ok(l),
            Err(e) => Err(e.context(self.describe().await)),
        }
    }

    /// Waits for an agreed leader other than `old`.
    pub async fn wait_for_new_leader(&self, old: u64) -> anyhow::Result<u64> {
        let what = format!("a new leader (not node {old}) that every running node agrees on");
        match wait_for(what, patience(2.0), || async {
            self.leader().await.filter(|&l| l != old)
        })
        .await
        {
            Ok(l) => Ok(l),
            Err(e) => Err(e.context(self.describe().await)),
        }
    }

    /// Waits until every running node reports the same applied index; returns it.
    pub async fn wait_converged(&self) -> anyhow::Result<u64> {
        let probe = || async {
            let views = self.raft_views().await;
            let applied: BTreeSet<u64> = views
                .values()
                .map(|v| v.map(|v| v.applied))
                .collect::<Option<_>>()?;
            match applied.len() {
                1 => applied.first().copied().filter(|&a| a > 0),
                _ => None,
            }
        };
        match wait_for(
            "every running node to report the same applied index",
            patience(3.0),
            probe,
        )
        .await
        {
            Ok(a) => Ok(a),
            Err(e) => Err(e.context(self.describe().await)),
        }
    }

    /// Waits until node `id`'s applied index reaches the highest one among the other running
    /// nodes (re-read on every poll); returns it.
    pub async fn wait_caught_up(&self, id: u64) -> anyhow::Result<u64> {
        let probe = || async {
            let views = self.raft_views().await;
            let mine = (*views.get(&id)?)?.applied;
            let others = views
                .iter()
                .filter(|(other, _)| **other != id)
                .map(|(_, v)| v.map(|v| v.applied))
                .collect::<Option<Vec<u64>>>()?;
            let target = others.into_iter().max().unwrap_or(0);
            (mine >= target && mine > 0).then_some(mine)
        };
        let what = format!("node {id}'s applied index to reach the others'");
        match wait_for(what, patience(4.0), probe).await {
            Ok(a) => Ok(a),
            Err(e) => Err(e.context(self.describe().await)),
        }
    }

    /// Waits until every running node's liveness view (`cairn_peer_up{peer}`) matches reality:
    /// every other running node up, every stopped or killed one down.
    pub async fn wait_liveness_agrees(&self) -> anyhow::Result<()> {
        let expected: BTreeMap<u64, f64> = self
            .members
            .iter()
            .map(|(id, m)| (*id, if m.state == RunState::Up { 1.0 } else { 0.0 }))
            .collect();
        let wrong = || async {
            let mut wrong = Vec::new();
            for id in self.up_ids() {
                let Ok(m) = self.metrics(id).await else {
                    wrong.push(format!("node {id}: /metrics did not answer"));
                    continue;
                };
                for (peer, want) in expected.iter().filter(|(p, _)| **p != id) {
                    let label = peer.to_string();
                    let got: Vec<f64> = m
                        .matching("cairn_peer_up", &[("peer", &label)])
                        .map(|s| s.value)
                        .collect();
                    if got != [*want] {
                        wrong.push(format!("node {id} sees peer {peer} as {got:?}, not {want}"));
                    }
                }
            }
            wrong
        };
        let r = wait_until(
            "every running node's cairn_peer_up to match which nodes run",
            patience(2.0),
            || async { wrong().await.is_empty() },
        )
        .await;
        match r {
            Ok(()) => Ok(()),
            Err(e) => Err(e.context(wrong().await.join("\n"))),
        }
    }

    /// Node `id`, to change its options before a [`TestCluster::restart`].
    pub fn node_mut(&mut self, id: u64) -> &mut CairnNode {
        &mut self.member_mut(id).node
    }

    /// `kill -9` node `id` and reap it.
    pub async fn kill9(&mut self, id: u64) {
        let m = self.member_mut(id);
        m.node.kill9().await;
        m.state = RunState::Down;
    }

    /// Pauses node `id` (`SIGSTOP`).
    pub async fn sigstop(&mut self, id: u64) -> anyhow::Result<()> {
        let m = self.member_mut(id);
        m.node.signal("STOP").await?;
        m.state = RunState::Stopped;
        Ok(())
    }

    /// Resumes node `id` (`SIGCONT`).
    pub async fn sigcont(&mut self, id: u64) -> anyhow::Result<()> {
        let m = self.member_mut(id);
        m.node.signal("CONT").await?;
        m.state = RunState::Up;
        Ok(())
    }

    /// Restarts killed node `id` on its data directory and ports; waits until it is ready.
    pub async fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        let m = self.member_mut(id);
        anyhow::ensure!(
            m.state == RunState::Down,
            "restart: node {id} is {:?}, not down",
            m.state
        );
        m.node.restart().await?;
        m.state = RunState::Up;
        Ok(())
    }

    /// The `blobs/` directory of node `id`.
    pub fn blob_dir(&self, id: u64) -> PathBuf {
        self.node(id).data_dir().join("blobs")
    }

    /// Where node `id` keeps the blob `sha256`.
    pub fn blob_path(&self, id: u64, sha256: &str) -> PathBuf {
        self.blob_dir(id).join(&sha256[..2]).join(sha256)
    }

    /// The sha256 names of node `id`'s blobs (`blobs/<aa>/<sha256>`; quarantine and temporary
    /// files excluded).
    pub fn blob_set(&self, id: u64) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let Ok(rd) = std::fs::read_dir(self.blob_dir(id)) else {
            return out;
        };
        for shard in rd.flatten() {
            let shard_name = shard.file_name().to_string_lossy().into_owned();
            if shard_name.len() != 2 || !is_hex(&shard_name) {
                continue;
            }
            let Ok(files) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.len() == 64
                    && is_hex(&name)
                    && name.starts_with(&shard_name)
                    && f.file_type().is_ok_and(|t| t.is_file())
                {
                    out.insert(name);
                }
            }
        }
        out
    }

    /// Files under node `id`'s `blobs/quarantine/`.
    pub fn quarantined(&self, id: u64) -> Vec<PathBuf> {
        let mut out = Vec::new();
        collect_files(&self.blob_dir(id).join("quarantine"), &mut out);
        out.sort();
        out
    }

    /// Waits until every running node holds every blob in `want`.
    pub async fn wait_blobs_everywhere(&self, want: &BTreeSet<String>) -> anyhow::Result<()> {
        let missing = || {
            self.up_ids()
                .into_iter()
                .map(|id| (id, want.difference(&self.blob_set(id)).count()))
                .filter(|(_, n)| *n > 0)
                .collect::<Vec<_>>()
        };
        let what = format!("every running node to hold all {} blobs", want.len());
        let r = wait_until(what, patience(4.0), || {
            let done = missing().is_empty();
            async move { done }
        })
        .await;
        match r {
            Ok(()) => Ok(()),
            Err(e) => Err(e.context(format!(
                "(node, blobs missing) on disk: {:?}\n{}",
                missing(),
                self.blob_metrics().await
            ))),
        }
    }

    /// Blob and repair metrics of every running node, for failure messages.
    pub async fn blob_metrics(&self) -> String {
        let mut out = String::new();
        for id in self.up_ids() {
            let _ = match self.metrics(id).await {
                Ok(m) => {
                    let mut s = String::new();
                    for name in [
                        "cairn_blob_objects",
                        "cairn_blobs_missing",
                        "cairn_repair_queue_length",
                        "cairn_peer_fetches_total",
                        "cairn_blob_quarantined_total",
                    ] {
                        if m.has(name) {
                            let _ = write!(s, " {name}={}", m.sum(name, &[]));
                        } else {
                            let _ = write!(s, " {name}=(absent)");
                        }
                    }
                    writeln!(out, "  node {id}:{s}")
                }
                Err(e) => writeln!(out, "  node {id}: /metrics: {e:#}"),
            };
        }
        out
    }

    /// Waits until every running node holds the same blob set; returns it.
    pub async fn wait_blob_sets_equal(&self) -> anyhow::Result<BTreeSet<String>> {
        let sets = || {
            self.up_ids()
                .into_iter()
                .map(|id| (id, self.blob_set(id)))
                .collect::<BTreeMap<_, _>>()
        };
        let r = wait_for(
            "every running node to hold the same blob set",
            patience(4.0),
            || {
                let s = sets();
                let first = s.values().next().cloned().unwrap_or_default();
                let same = s.values().all(|v| *v == first);
                async move { same.then_some(first) }
            },
        )
        .await;
        let r = r.map_err(|e| {
            let s = sets();
            let union: BTreeSet<&String> = s.values().flatten().collect();
            let per: Vec<String> = s
                .iter()
                .map(|(id, v)| format!("node {id}: {} of {}", v.len(), union.len()))
                .collect();
            e.context(format!("blob counts: {}", per.join(", ")))
        })?;
        Ok(r)
    }

    /// Runs `cairn --node <node id's gRPC address> args…` (as operator `admin` when the
    /// cluster port is secure).
    pub async fn cli_at(&self, id: u64, args: &[&str]) -> anyhow::Result<CliOutput> {
        let mut all: Vec<&str> = Vec::new();
        let dir;
        if let Some(pki) = &self.pki {
            dir = pki.dir().display().to_string();
            all.extend(["--tls-dir", dir.as_str()]);
        }
        all.extend_from_slice(args);
        run_cli(self.grpc_addr(id), &all).await
    }

    /// The cluster's certificates (`None`: insecure cluster port).
    pub fn pki(&self) -> Option<&ClusterPki> {
        self.pki.as_deref()
    }

    /// Runs `cairn args…` against the first running node.
    pub async fn cli(&self, args: &[&str]) -> anyhow::Result<CliOutput> {
        let id = *self.up_ids().first().context("no node is running")?;
        self.cli_at(id, args).await
    }

    /// Log tails of every node, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for (id, m) in &self.members {
            let _ = writeln!(
                out,
                "----- node {id} ({}):\n{}",
                m.node.log_path().display(),
                m.node.log_tail(lines)
            );
        }
        out
    }
}

/// Gives node `id` its cluster certificates when the cluster is secure.
fn with_certs(
    mut o: NodeOptions,
    pki: Option<&ClusterPki>,
    id: u64,
) -> anyhow::Result<NodeOptions> {
    if let Some(pki) = pki {
        o.env.extend(pki.node_env(id)?);
    }
    Ok(o)
}

fn node_options(
    id: u64,
    http: SocketAddr,
    grpc: SocketAddr,
    peers: &BTreeMap<u64, SocketAddr>,
    upstream: &str,
    toml: &str,
) -> NodeOptions {
    let mut o = NodeOptions::new(upstream).config(toml);
    o.node_id = id;
    o.listen = http.to_string();
    o.cluster_listen = grpc.to_string();
    o.extra_args = vec!["--peers".to_string(), peers_arg(peers)];
    o
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() => collect_files(&e.path(), out),
            Ok(t) if t.is_file() => out.push(e.path()),
            _ => {}
        }
    }
}

/// The `cairn` CLI binary: `$CAIRN_CLI_BIN`, else `cairn` next to `cairn-node`.
pub fn cli_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CAIRN_CLI_BIN") {
        return PathBuf::from(p);
    }
    let bin = node_bin().with_file_name("cairn");
    assert!(
        bin.is_file(),
        "cairn CLI not found at {} (set CAIRN_CLI_BIN to override): cargo build -p cairn-cli --bins",
        bin.display()
    );
    bin
}

/// What one `cairn` run printed.
#[derive(Clone, Debug)]
pub struct CliOutput {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The command line, for messages.
    pub describe: String,
}

impl CliOutput {
    /// Errors with the whole output unless the exit code is 0.
    pub fn ok(self) -> anyhow::Result<CliOutput> {
        if self.code != Some(0) {
            bail!("{}", self);
        }
        Ok(self)
    }

    /// Standard output parsed as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.stdout).with_context(|| format!("parsing the JSON of {self}"))
    }
}

impl Display for CliOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} exited {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.describe, self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `cairn --node <node> args…` (no `CAIRN_*` environment leaks in).
pub async fn run_cli(node: SocketAddr, args: &[&str]) -> anyhow::Result<CliOutput> {
    let mut cmd = Command::new(cli_bin());
    cmd.arg("--node").arg(node.to_string()).args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CAIRN_") {
            cmd.env_remove(&k);
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let describe = format!("cairn --node {node} {}", args.join(" "));
    let child = cmd
        .spawn()
        .with_context(|| format!("spawning {}", cli_bin().display()))?;
    let limit = patience(3.0);
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .map_err(|_| anyhow::anyhow!("{describe} did not finish within {limit:?}"))??;
    Ok(CliOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        describe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_merges_sections() {
        let t = ClusterConfig::fast()
            .set("raft", "snapshot_every_logs", 50)
            .set("cache", "list_ttl_secs", 1)
            .toml();
        assert_eq!(t.matches("[raft]").count(), 1, "{t}");
        assert!(t.contains("snapshot_every_logs = 50"), "{t}");
        assert!(t.contains("[cache]\nlist_ttl_secs = 1"), "{t}");
    }

    #[test]
    fn per_node_settings_override_shared_ones() {
        let c = ClusterConfig::fast()
            .set("cluster", "region", "\"a\"")
            .set_for(2, "cluster", "region", "\"b\"");
        assert!(c.toml_for(1).contains("region = \"a\""));
        let t2 = c.toml_for(2);
        assert!(
            t2.contains("region = \"b\"") && !t2.contains("\"a\""),
            "{t2}"
        );
        assert_eq!(t2.matches("[cluster]").count(), 1, "{t2}");
    }

    #[test]
    fn free_ports_are_distinct() {
        let p = free_ports(6).unwrap();
        assert_eq!(p.iter().collect::<BTreeSet<_>>().len(), 6);
    }
}
