//! Cold-miss latency, 3 nodes vs 1: the time of `GET …/@v/<v>.zip` (and `.info`) for versions
//! no node has cached, through a single-node cairn and through node 1 of the cluster.
//!
//! `n` versions of `example.com/cold` (small incompressible zips) and `n` of
//! `example.com/coldinfo` (`.info`/`.mod` only) are written into the `file://` upstream. Each
//! version is asked once of the single node and once of cluster node 1, one request at a time,
//! alternating which goes first so a drift in machine load hits both alike. Latency = connect →
//! last body byte. On the single node a miss is fetch + validate + fsync + a local Raft commit;
//! on the cluster a miss is routed to the version's owner (rendezvous hashing, so about 2 in 3
//! are owned by node 2 or 3), filled there, the zip copied to `min_copies` = 2 nodes and the
//! record committed through the leader, and node 1 then gets the blob if it is not one of the
//! two. The owner of each version is computed with cairn's rendezvous hash (sha256 of
//! `module@version`, a zero byte and the big-endian node id; the highest first 8 bytes wins) and
//! cross-checked with node 1's `cairn_owner_fills_total` (the misses it had another node fill).
//! After each cluster zip the bench waits until all three nodes hold the blob, so one miss's
//! background copy does not overlap the next measurement; that time is reported too.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use serde_json::json;
use tokio::time::Instant;

use crate::cluster::{self, Cluster};
use crate::corpus;
use crate::promtext::Scrape;
use crate::replication::{scrape_addrs, sha256_file};
use crate::stats::Summary;

const ZIP_MODULE: &str = "example.com/cold";
const INFO_MODULE: &str = "example.com/coldinfo";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the third copy of a small zip.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// One cold version: its URL path, owner key and, for zips, the blob address and size.
#[derive(Debug, Clone)]
pub struct ColdVersion {
    path: String,
    key: String,
    zip: Option<(String, u64)>,
}

/// The owner of `key` among `ids` by cairn's rendezvous hashing (`cluster::owner`).
fn owner_of(key: &str, ids: &[u64]) -> u64 {
    use sha2::Digest;
    let weight = |id: u64| {
        let mut h = sha2::Sha256::new();
        h.update(key.as_bytes());
        h.update([0u8]);
        h.update(id.to_be_bytes());
        let d = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        (u64::from_be_bytes(first), id)
    };
    ids.iter()
        .copied()
        .max_by_key(|&id| weight(id))
        .unwrap_or(1)
}

/// Writes `n` zip versions (about `zip_bytes` each) and `n` info-only versions.
pub fn write_versions(
    root: &Path,
    n: usize,
    zip_bytes: usize,
) -> anyhow::Result<(Vec<ColdVersion>, Vec<ColdVersion>)> {
    let mut zips = Vec::new();
    let mut infos = Vec::new();
    for i in 0..n {
        let version = format!("v1.0.{i}");
        let (path, size) = corpus::write_version(
            root,
            ZIP_MODULE,
            &version,
            Some((zip_bytes, 1)),
            5000 + i as u64,
        )?;
        let sha = sha256_file(&root.join(&path[1..]))?;
        zips.push(ColdVersion {
            path,
            key: format!("{ZIP_MODULE}@{version}"),
            zip: Some((sha, size)),
        });
        corpus::write_version(root, INFO_MODULE, &version, None, 0)?;
        infos.push(ColdVersion {
            path: format!("/{INFO_MODULE}/@v/{version}.info"),
            key: format!("{INFO_MODULE}@{version}"),
            zip: None,
        });
    }
    Ok((zips, infos))
}

/// Latencies of one kind of request (ms).
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// `zip` or `info`.
    pub kind: &'static str,
    /// Single node, one per version.
    pub single: Vec<f64>,
    /// Cluster node 1: (ms, owner node id) per version.
    pub cluster: Vec<(f64, u64)>,
    /// Cluster zips only: request start → blob on all 3 nodes.
    pub all_copies: Vec<f64>,
    /// Versions where node 1's `cairn_owner_fills_total` disagreed with the computed owner.
    pub owner_mismatches: usize,
    /// What each node spent on proposals, flushes and upstream requests over the series.
    pub costs: Costs,
}

impl Series {
    /// Cluster latencies where the owner was `pred`.
    pub fn cluster_where(&self, pred: impl Fn(u64) -> bool) -> Summary {
        let v: Vec<f64> = self
            .cluster
            .iter()
            .filter(|(_, o)| pred(*o))
            .map(|(ms, _)| *ms)
            .collect();
        Summary::of(&v)
    }

    /// All cluster latencies.
    pub fn cluster_all(&self) -> Summary {
        self.cluster_where(|_| true)
    }

    /// As JSON.
    pub fn json(&self) -> serde_json::Value {
        let single = Summary::of(&self.single);
        let cluster = self.cluster_all();
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        json!({
            "kind": self.kind,
            "single_node": single.json(),
            "cluster_node1": cluster.json(),
            "cluster_owner_node1": self.cluster_where(|o| o == 1).json(),
            "cluster_owner_other": self.cluster_where(|o| o != 1).json(),
            "cluster_all_copies": Summary::of(&self.all_copies).json(),
            "ratio_p50": ratio(cluster.p50, single.p50),
            "ratio_p90": ratio(cluster.p90, single.p90),
            "ratio_max": ratio(cluster.max, single.max),
            "owner_mismatches": self.owner_mismatches,
            "costs": self.costs.json(),
            "single_ms": self.single,
            "cluster_ms": self.cluster.iter().map(|(ms, o)| json!({"ms": ms, "owner": o})).collect::<Vec<_>>(),
        })
    }
}

/// Runs `versions` against the single node at `single` and node 1 of `cluster`.
pub async fn run(
    kind: &'static str,
    versions: &[ColdVersion],
    single: std::net::SocketAddr,
    cluster: &Cluster,
) -> anyhow::Result<Series> {
    let mut series = Series {
        kind,
        ..Series::default()
    };
    let node1 = cluster.node(1).http;
    let ids = cluster.up_ids();
    let mut fills = remote_fills(cluster).await?;
    let before = Costs::take(single, cluster).await?;
    for (i, v) in versions.iter().enumerate() {
        let single_first = i % 2 == 0;
        if single_first {
            series.single.push(one(single, &v.path).await?);
        }
        let start = Instant::now();
        let ms = one(node1, &v.path).await?;
        if let Some((sha, size)) = &v.zip {
            series
                .all_copies
                .push(wait_all_copies(cluster, sha, *size, start).await?);
        }
        let now = remote_fills(cluster).await?;
        let owner = owner_of(&v.key, &ids);
        if (now > fills) != (owner != 1) {
            series.owner_mismatches += 1;
        }
        fills = now;
        series.cluster.push((ms, owner));
        if !single_first {
            series.single.push(one(single, &v.path).await?);
        }
    }
    series.costs = Costs::take(single, cluster).await?.since(&before);
    Ok(series)
}

/// Histograms on a miss's critical path, per node, over one series: where a cluster miss
/// spends its time compared with a single node's.
#[derive(Debug, Clone, Default)]
pub struct Costs {
    /// (label, [sum s, count] of each of [`Costs::HISTOGRAMS`]): the single node first, then
    /// the cluster nodes, "(leader)" marking the Raft leader.
    pub nodes: Vec<(String, Vec<(f64, f64)>)>,
}

impl Costs {
    const HISTOGRAMS: [(&'static str, &'static str); 3] = [
        ("proposals", "cairn_raft_propose_duration_seconds"),
        ("flushes", "cairn_raft_flush_duration_seconds"),
        ("upstream", "cairn_upstream_request_duration_seconds"),
    ];

    async fn take(single: std::net::SocketAddr, cluster: &Cluster) -> anyhow::Result<Costs> {
        let read = |m: &Scrape| -> Vec<(f64, f64)> {
            Self::HISTOGRAMS
                .iter()
                .map(|(_, h)| {
                    (
                        m.sum(&format!("{h}_sum"), &[]),
                        m.sum(&format!("{h}_count"), &[]),
                    )
                })
                .collect()
        };
        // Id 0 is the single node, as in `replication::single_node_fill`.
        let mut addrs = vec![(0, single)];
        addrs.extend(
            cluster
                .up_ids()
                .into_iter()
                .map(|id| (id, cluster.node(id).http)),
        );
        let nodes = scrape_addrs(&addrs)
            .await?
            .into_iter()
            .map(|(id, m)| {
                let label = match id {
                    0 => "single node".to_string(),
                    id if m.sum("cairn_raft_is_leader", &[]) > 0.0 => format!("node {id} (leader)"),
                    id => format!("node {id}"),
                };
                (label, read(&m))
            })
            .collect();
        Ok(Costs { nodes })
    }

    fn since(&self, before: &Costs) -> Costs {
        let nodes = self
            .nodes
            .iter()
            .zip(&before.nodes)
            .map(|((label, now), (_, then))| {
                let d = now.iter().zip(then).map(|(a, b)| (a.0 - b.0, a.1 - b.1));
                (label.clone(), d.collect())
            })
            .collect();
        Costs { nodes }
    }

    /// One printable line per node: count × mean ms of each histogram.
    pub fn lines(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|(label, v)| {
                let cells: Vec<String> = Self::HISTOGRAMS
                    .iter()
                    .zip(v)
                    .map(|((name, _), (sum, n))| {
                        let mean = if *n > 0.0 { sum / n * 1e3 } else { 0.0 };
                        format!("{name} {n:>4} x {mean:>5.2} ms")
                    })
                    .collect();
                format!("{label:<18} {}", cells.join("   "))
            })
            .collect()
    }

    /// As JSON: per node, per histogram, count and mean ms.
    pub fn json(&self) -> serde_json::Value {
        let nodes: Vec<serde_json::Value> = self
            .nodes
            .iter()
            .map(|(label, v)| {
                let mut o = serde_json::Map::new();
                o.insert("node".into(), json!(label));
                for ((name, _), (sum, n)) in Self::HISTOGRAMS.iter().zip(v) {
                    let mean = if *n > 0.0 { sum / n * 1e3 } else { 0.0 };
                    o.insert((*name).into(), json!({"count": n, "mean_ms": mean}));
                }
                serde_json::Value::Object(o)
            })
            .collect();
        json!(nodes)
    }
}

/// One cold GET; its latency in ms (fails unless 200).
async fn one(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<f64> {
    let t = cluster::timed_get(addr, path, REQUEST_TIMEOUT).await?;
    if t.status != hyper::StatusCode::OK {
        bail!(
            "GET {path} on {addr}: {} {}",
            t.status,
            String::from_utf8_lossy(&t.body)
        );
    }
    Ok(t.done.as_secs_f64() * 1e3)
}

/// Node 1's `cairn_owner_fills_total{result="ok"}`: misses another node filled for it.
async fn remote_fills(cluster: &Cluster) -> anyhow::Result<f64> {
    let m = cluster.scrape(1).await?;
    Ok(m.sum("cairn_owner_fills_total", &[("result", "ok")]))
}

/// Waits until every node holds the blob; ms since `start`.
async fn wait_all_copies(
    cluster: &Cluster,
    sha: &str,
    size: u64,
    start: Instant,
) -> anyhow::Result<f64> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let all = cluster.up_ids().iter().all(|&id| {
            std::fs::metadata(cluster.node(id).blob_path(sha)).is_ok_and(|m| m.len() == size)
        });
        if all {
            return Ok(start.elapsed().as_secs_f64() * 1e3);
        }
        if Instant::now() > deadline {
            bail!("blob {sha} not on every node within {SETTLE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
