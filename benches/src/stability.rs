//! Raft stability under full hit load (issue 13): a three-node cluster with the default Raft
//! timings serves cache hits of a 100 KiB zip on every node as fast as the load generator can
//! ask, for `--stability-secs`, while each node's `cairn_raft_term` and leader are sampled every
//! second. Hits never touch Raft, but they compete for the same two cores with the heartbeats,
//! the flushes and the election timers: an election here is a spurious one (nobody died).
//! Reported: hit throughput and errors, term changes, leader changes, and the longest gap
//! between two successful samples of a node (a starved node shows up there first).

use std::path::Path;
use std::time::Duration;

use anyhow::ensure;
use serde_json::json;
use tokio::time::Instant;

use crate::cluster::{timed_get, Cluster, RaftView};
use crate::corpus::write_version;
use crate::load::{self, Client, LoadSpec};

/// What a stability run saw.
#[derive(Debug, Clone, Default)]
pub struct Stability {
    /// Length of the measurement, seconds.
    pub secs: f64,
    /// Connections (spread evenly over the nodes).
    pub conns: usize,
    /// Hits completed in the window.
    pub requests: u64,
    /// Failed hits in the window.
    pub errors: u64,
    /// The first error, if any.
    pub first_error: Option<String>,
    /// p99 hit latency, ms.
    pub p99_ms: f64,
    /// Highest term minus lowest term seen across all samples.
    pub term_changes: u64,
    /// Sum over nodes of the rise of `cairn_raft_leader_changes_total`.
    pub leader_changes: u64,
    /// Samples in which some node knew no leader.
    pub leaderless_samples: u64,
    /// Samples taken (per node).
    pub samples: u64,
}

impl Stability {
    /// The JSON form for bench-cluster.json.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "secs": self.secs, "conns": self.conns, "requests": self.requests,
            "requests_per_sec": self.requests as f64 / self.secs.max(1e-9),
            "errors": self.errors, "first_error": self.first_error, "p99_ms": self.p99_ms,
            "term_changes": self.term_changes, "leader_changes": self.leader_changes,
            "leaderless_samples": self.leaderless_samples, "samples": self.samples,
        })
    }

    /// One line for the report.
    pub fn line(&self) -> String {
        format!(
            "{:.0} s of 100 KiB zip hits on all 3 nodes ({} connections): {:.0} req/s, p99 {:.1} ms, {} errors; term changes {}, leader changes {}, samples without a known leader {}/{}",
            self.secs,
            self.conns,
            self.requests as f64 / self.secs.max(1e-9),
            self.p99_ms,
            self.errors,
            self.term_changes,
            self.leader_changes,
            self.leaderless_samples,
            self.samples,
        )
    }
}

/// Runs the load for `secs` on `cluster`, whose upstream is the directory `upstream`.
pub async fn run(
    cluster: &mut Cluster,
    upstream: &Path,
    secs: f64,
    conns: usize,
) -> anyhow::Result<Stability> {
    let (path, size) = write_version(
        upstream,
        "example.com/stability",
        "v1.0.0",
        Some((100 * 1024, 8)),
        7,
    )?;
    let ids = cluster.up_ids();
    for &id in &ids {
        let got = timed_get(cluster.node(id).http, &path, Duration::from_secs(30)).await?;
        ensure!(
            got.status == 200,
            "warming node {id}: status {}",
            got.status
        );
    }
    cluster.wait_converged(Duration::from_secs(30)).await?;
    let before = leader_changes(cluster, &ids).await;

    let from = Instant::now() + Duration::from_secs(1);
    let to = from + Duration::from_secs_f64(secs);
    let per_node = (conns / ids.len()).max(1);
    let loads: Vec<_> = ids
        .iter()
        .map(|&id| {
            tokio::spawn(load::run(LoadSpec {
                addr: cluster.node(id).http,
                path: path.clone(),
                expected_bytes: size,
                conns: per_node,
                measure_from: from,
                measure_to: to,
                client: Client::default(),
            }))
        })
        .collect();
    let mut out = Stability {
        secs,
        conns: per_node * ids.len(),
        ..Stability::default()
    };
    let (mut low, mut high) = (u64::MAX, 0u64);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while Instant::now() < to {
        tick.tick().await;
        out.samples += 1;
        let mut leaderless = false;
        for &id in &ids {
            match cluster.scrape(id).await {
                Ok(m) => {
                    let term = m.sum("cairn_raft_term", &[]) as u64;
                    low = low.min(term);
                    high = high.max(term);
                    leaderless |= RaftView::of(&m).leader_id == 0;
                }
                Err(_) => leaderless = true,
            }
        }
        out.leaderless_samples += u64::from(leaderless);
    }
    let mut latencies = Vec::new();
    for l in loads {
        let r = l.await?;
        out.requests += r.requests;
        out.errors += r.errors;
        if out.first_error.is_none() {
            out.first_error = r.first_error;
        }
        latencies.extend(r.latencies_us);
    }
    latencies.sort_unstable();
    if let Some(&p) = latencies.get(((latencies.len().saturating_sub(1)) as f64 * 0.99) as usize) {
        out.p99_ms = f64::from(p) / 1000.0;
    }
    out.term_changes = high.saturating_sub(low.min(high));
    let after = leader_changes(cluster, &ids).await;
    out.leader_changes = after.saturating_sub(before);
    Ok(out)
}

/// The sum over `ids` of `cairn_raft_leader_changes_total` (a node that cannot be scraped
/// counts 0).
async fn leader_changes(cluster: &Cluster, ids: &[u64]) -> u64 {
    let mut total = 0;
    for &id in ids {
        if let Ok(m) = cluster.scrape(id).await {
            total += m.sum("cairn_raft_leader_changes_total", &[]) as u64;
        }
    }
    total
}
