//! A three-node `cairn-node` cluster on 127.0.0.1 for the cluster benchmarks: start, kill -9,
//! restart, and read each node's Raft view from `/metrics`.
//!
//! Ports are picked up front (bind `127.0.0.1:0`, read, drop — `--peers` must name every
//! cluster address before any node starts) and kept across restarts, so a restarted node has the
//! same URL. If a node cannot bind its port (taken in between), the whole start is retried with
//! new ports. Every node gets the same TOML config (a [`Profile`]'s Raft timings) apart from its
//! own certificate, and all share one upstream; their stderr (JSON logs, level warn) goes to
//! `<work>/node-N.log`, appended across restarts. Dropping the cluster kills every node.
//!
//! The cluster port runs with mutual TLS when the profile says so (a CA and one certificate per
//! node, made in-process with `cairn_node::tls::pki` under `<work>/tls/`, what `cairn certs init`
//! and `cairn certs node N --host 127.0.0.1` would make), else with `cluster.insecure = true`: a
//! multi-node cluster refuses to start with neither.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use crate::promtext::Scrape;
use crate::servers;

/// How long a cluster gets to form (or a node to come back and catch up).
pub const FORM_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of one `/metrics` or `/readyz` probe (a dead node refuses at once anyway).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Raft timings the nodes run with.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// Short name for the report.
    pub name: &'static str,
    /// `[raft] heartbeat_ms, election_min_ms, election_max_ms`; `None` = the node's defaults.
    pub raft: Option<(u64, u64, u64)>,
    /// What the timings are, for the report.
    pub describe: &'static str,
    /// Mutual TLS on the cluster port (else `cluster.insecure = true`).
    pub mtls: bool,
}

/// The node's own Raft defaults (no `[raft]` keys written).
pub const DEFAULT_PROFILE: Profile = Profile {
    name: "default",
    raft: None,
    describe: "node defaults (heartbeat 200 ms, election timeout 450-900 ms)",
    mtls: false,
};

/// Faster failure detection.
pub const FAST_PROFILE: Profile = Profile {
    name: "fast",
    raft: Some((100, 500, 1000)),
    describe: "heartbeat_ms=100, election_min_ms=500, election_max_ms=1000",
    mtls: false,
};

/// A node's cluster-port certificate files: (CA, certificate, key).
type CertFiles = (PathBuf, PathBuf, PathBuf);

impl Profile {
    /// This profile with mutual TLS on the cluster port on or off.
    pub const fn with_mtls(self, mtls: bool) -> Profile {
        Profile { mtls, ..self }
    }

    /// `mtls` or `insecure`, for the report.
    pub fn security(&self) -> &'static str {
        if self.mtls {
            "mtls"
        } else {
            "insecure"
        }
    }

    /// A node's config file: the profile's Raft timings, `min_copies = 2`, and its cluster-port
    /// certificate files, or `insecure = true` without them.
    fn toml(&self, certs: Option<&CertFiles>) -> String {
        let mut out = String::new();
        if let Some((hb, min, max)) = self.raft {
            out.push_str(&format!(
                "[raft]\nheartbeat_ms = {hb}\nelection_min_ms = {min}\nelection_max_ms = {max}\n\n"
            ));
        }
        out.push_str("[cluster]\nmin_copies = 2\n");
        match certs {
            Some((ca, cert, key)) => out.push_str(&format!(
                "ca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n\n",
                ca.display().to_string(),
                cert.display().to_string(),
                key.display().to_string()
            )),
            None => out.push_str("insecure = true\n\n"),
        }
        // The bench upstream is a local fixture whose modules no public checksum database
        // knows; verification has its own bench.
        out.push_str("[sumdb]\ndatabases = []\n");
        out
    }
}

/// One member of the cluster.
pub struct ClusterNode {
    /// Raft node id (1-based).
    pub id: u64,
    /// HTTP (GOPROXY) address.
    pub http: SocketAddr,
    /// gRPC cluster address.
    pub grpc: SocketAddr,
    /// Data directory.
    pub data: PathBuf,
    /// stderr log (appended across restarts).
    pub log: PathBuf,
    /// Its config file.
    config: PathBuf,
    child: Option<Child>,
}

impl ClusterNode {
    /// Whether the process is running (started and not killed).
    pub fn is_up(&self) -> bool {
        self.child.is_some()
    }

    /// Where this node keeps the blob with address `sha256`.
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.data.join("blobs").join(&sha256[..2]).join(sha256)
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                bail!(
                    "node {} exited ({status}); log tail:\n{}",
                    self.id,
                    servers::log_tail(&self.log)
                );
            }
        }
        Ok(())
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running three-node cluster (any size works; the benchmarks use 3).
pub struct Cluster {
    /// The members, index = id - 1.
    pub nodes: Vec<ClusterNode>,
    bin: PathBuf,
    peers: String,
    upstream: String,
    env: Vec<(String, String)>,
}

/// The Raft view of one node, from its `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftView {
    /// `cairn_raft_is_leader == 1`.
    pub is_leader: bool,
    /// `cairn_raft_leader_id` (0 = none known).
    pub leader_id: u64,
    /// `cairn_raft_applied_index`.
    pub applied: u64,
}

impl RaftView {
    /// Reads the view from a scrape.
    pub fn of(m: &Scrape) -> RaftView {
        RaftView {
            is_leader: m.sum("cairn_raft_is_leader", &[]) == 1.0,
            leader_id: m.sum("cairn_raft_leader_id", &[]) as u64,
            applied: m.sum("cairn_raft_applied_index", &[]) as u64,
        }
    }
}

/// A cluster CA and a certificate for each of nodes 1..=`n` (valid for their
/// `<id>.node.cairn.internal` name and 127.0.0.1), written under `dir`; returns each node's files.
fn cluster_certs(dir: &Path, n: u64) -> anyhow::Result<Vec<CertFiles>> {
    use cairn_node::tls::pki;
    let ca = pki::new_ca("cairn-bench cluster CA", 30)?;
    std::fs::create_dir_all(dir)?;
    let ca_file = dir.join(pki::files::CA);
    std::fs::write(&ca_file, &ca.cert_pem)?;
    (1..=n)
        .map(|id| {
            let leaf = pki::Leaf::Node {
                id,
                hosts: vec!["127.0.0.1".into()],
            };
            let issued = pki::issue(&ca, &leaf, 30)?;
            let (cert, key) = pki::files::node(id);
            let (cert, key) = pki::write(dir, &issued, &cert, &key)?;
            Ok((ca_file.clone(), cert, key))
        })
        .collect()
}

/// Picks `n` distinct free loopback ports (all bound at once, then released).
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

impl Cluster {
    /// Starts `n` nodes under `work` (`node-N/` data directories) in front of `upstream`, all
    /// with the same `--peers`, and waits until they formed one cluster.
    pub async fn start(
        bin: &Path,
        n: u64,
        upstream: &str,
        work: &Path,
        profile: &Profile,
        env: &[(String, String)],
    ) -> anyhow::Result<Cluster> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = work.join(format!("try{attempt}"));
            let mut cluster = Self::spawn_all(bin, n, upstream, &dir, profile, env)?;
            match cluster.wait_converged(FORM_TIMEOUT).await {
                Ok(_) => return Ok(cluster),
                Err(e) if attempt < 3 && format!("{e:#}").contains("in use") => {
                    eprintln!("  cluster start: port conflict, retrying with new ports");
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn spawn_all(
        bin: &Path,
        n: u64,
        upstream: &str,
        dir: &Path,
        profile: &Profile,
        env: &[(String, String)],
    ) -> anyhow::Result<Cluster> {
        std::fs::create_dir_all(dir)?;
        let certs = if profile.mtls {
            Some(cluster_certs(&dir.join("tls"), n)?)
        } else {
            None
        };
        let ports = free_ports(2 * n as usize)?;
        let at = |i: usize| SocketAddr::from(([127, 0, 0, 1], ports[i]));
        let nodes: Vec<ClusterNode> = (1..=n)
            .map(|id| {
                let i = (id - 1) as usize;
                let config = dir.join(format!("node-{id}.toml"));
                std::fs::write(&config, profile.toml(certs.as_ref().map(|c| &c[i])))?;
                Ok(ClusterNode {
                    id,
                    http: at(2 * i),
                    grpc: at(2 * i + 1),
                    data: dir.join(format!("node-{id}")),
                    log: dir.join(format!("node-{id}.log")),
                    config,
                    child: None,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let peers = nodes
            .iter()
            .map(|m| format!("{}={}", m.id, m.grpc))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            nodes,
            bin: bin.to_path_buf(),
            peers,
            upstream: upstream.to_owned(),
            env: env.to_vec(),
        };
        for id in 1..=n {
            cluster.spawn(id)?;
        }
        Ok(cluster)
    }

    fn spawn(&mut self, id: u64) -> anyhow::Result<()> {
        let (bin, peers, upstream, env) = (
            self.bin.clone(),
            self.peers.clone(),
            self.upstream.clone(),
            self.env.clone(),
        );
        let node = self.node_mut(id);
        let config = node.config.clone();
        std::fs::create_dir_all(&node.data)?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let child = Command::new(&bin)
            .arg("--node-id")
            .arg(id.to_string())
            .arg("--listen")
            .arg(node.http.to_string())
            .arg("--cluster-listen")
            .arg(node.grpc.to_string())
            .arg("--peers")
            .arg(&peers)
            .arg("--data-dir")
            .arg(&node.data)
            .arg("--upstream")
            .arg(&upstream)
            .arg("--config")
            .arg(&config)
            .args(["--log-format", "json", "--log-level", "warn"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        node.child = Some(child);
        Ok(())
    }

    /// Node `id`.
    pub fn node(&self, id: u64) -> &ClusterNode {
        &self.nodes[(id - 1) as usize]
    }

    fn node_mut(&mut self, id: u64) -> &mut ClusterNode {
        &mut self.nodes[(id - 1) as usize]
    }

    /// Ids of the running nodes.
    pub fn up_ids(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.is_up())
            .map(|n| n.id)
            .collect()
    }

    /// `kill -9` node `id` (SIGKILL, then reaped).
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.node_mut(id).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed node again with its data directory and ports.
    pub fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        if self.node(id).is_up() {
            bail!("node {id} is already running");
        }
        self.spawn(id)
    }

    /// Scrapes node `id`'s `/metrics` (bounded).
    pub async fn scrape(&self, id: u64) -> anyhow::Result<Scrape> {
        let addr = self.node(id).http;
        let (status, body) = tokio::time::timeout(PROBE_TIMEOUT, servers::get(addr, "/metrics"))
            .await
            .context("GET /metrics timed out")??;
        if status != StatusCode::OK {
            bail!("GET /metrics on node {id}: {status}");
        }
        Ok(Scrape::parse(&String::from_utf8_lossy(&body)))
    }

    /// Waits until every running node is ready (`/readyz` 200), exactly one of them leads,
    /// all agree on it, and all applied the same index; returns the leader's id.
    pub async fn wait_converged(&mut self, timeout: Duration) -> anyhow::Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            for node in &mut self.nodes {
                node.check_alive()?;
            }
            let last = match self.converged().await {
                Ok(leader) => return Ok(leader),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() > deadline {
                bail!(
                    "cluster did not converge within {timeout:?}: {last}; logs in {}",
                    self.nodes[0]
                        .log
                        .parent()
                        .map_or("?".into(), |p| p.display().to_string())
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn converged(&self) -> anyhow::Result<u64> {
        let mut views = Vec::new();
        for id in self.up_ids() {
            let ready =
                tokio::time::timeout(PROBE_TIMEOUT, servers::get(self.node(id).http, "/readyz"))
                    .await;
            match ready {
                Ok(Ok((StatusCode::OK, _))) => {}
                _ => bail!("node {id} not ready"),
            }
            views.push((id, RaftView::of(&self.scrape(id).await?)));
        }
        let leaders: Vec<u64> = views
            .iter()
            .filter(|(_, v)| v.is_leader)
            .map(|(id, _)| *id)
            .collect();
        let [leader] = leaders[..] else {
            bail!("leaders: {leaders:?}");
        };
        if let Some((id, v)) = views.iter().find(|(_, v)| v.leader_id != leader) {
            bail!("node {id} sees leader {} instead of {leader}", v.leader_id);
        }
        let applied: Vec<u64> = views.iter().map(|(_, v)| v.applied).collect();
        if applied.iter().any(|a| *a != applied[0]) {
            bail!("applied indexes differ: {applied:?}");
        }
        Ok(leader)
    }
}

/// One timed GET: status, time to the response head and to the last body byte.
#[derive(Debug, Clone)]
pub struct Timed {
    /// Response status.
    pub status: StatusCode,
    /// Request start → response head.
    pub head: Duration,
    /// Request start → last body byte.
    pub done: Duration,
    /// The body.
    pub body: Bytes,
}

/// `GET path` on a fresh connection to `addr`, timed from just before connecting; fails after
/// `timeout`.
pub async fn timed_get(addr: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<Timed> {
    let start = Instant::now();
    let run = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(conn);
        let req = Request::get(path)
            .header(hyper::header::HOST, "127.0.0.1")
            .body(Empty::<Bytes>::new())?;
        let resp = sender.send_request(req).await?;
        let head = start.elapsed();
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        let done = start.elapsed();
        driver.abort();
        anyhow::Ok(Timed {
            status,
            head,
            done,
            body,
        })
    };
    tokio::time::timeout(timeout, run)
        .await
        .with_context(|| format!("GET {path} timed out after {timeout:?}"))?
}
