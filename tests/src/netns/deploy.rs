//! A cairn cluster spread over emulated [`Regions`]: nodes placed at the regions' host
//! addresses, `[cluster] region` in their configs, one load balancer per region. Shared by the
//! multi-region integration tests and `cairn-bench regions`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::Context;

use super::{RegionLb, Regions};
use crate::cluster::{ClusterConfig, Placement, TestCluster};
use crate::fixture::Fixture;
use crate::metrics::Metrics;

/// The GOPROXY port of every node (each node has its own address, so one port serves all).
pub const HTTP_PORT: u16 = 8080;
/// The cluster port of every node.
pub const GRPC_PORT: u16 = 9090;

/// The cluster settings of these tests: the fast test settings for everything but Raft, whose
/// timings stay the node's defaults (200 ms heartbeats, 450–900 ms elections), because whether
/// those survive 100 ms round trips is part of what is tested.
pub fn config() -> ClusterConfig {
    ClusterConfig::fast()
        .unset("raft", "heartbeat_ms")
        .unset("raft", "election_min_ms")
        .unset("raft", "election_max_ms")
}

/// `config` for a node of region `region`: `[cluster] region = "<region>"` and
/// `zone = "<region>-1"`.
pub fn in_region(config: &ClusterConfig, region: &str) -> ClusterConfig {
    config
        .clone()
        .set("cluster", "region", format!("\"{region}\""))
        .set("cluster", "zone", format!("\"{region}-1\""))
}

/// Node `i` (from 0) of region `region`, placed at that region's host address `i`; `config`
/// is its whole configuration (see [`in_region`]).
pub fn placement(net: &Regions, region: &str, i: usize, config: ClusterConfig) -> Placement {
    let ip = net.host(region, i);
    Placement {
        http: SocketAddr::from((ip, HTTP_PORT)),
        grpc: SocketAddr::from((ip, GRPC_PORT)),
        prefix: net.exec_prefix(region),
        config,
    }
}

/// An upstream fixture serving the GOPROXY tree at `root` on the root namespace's address of
/// `net` (every region reaches it; see [`Regions::root_ip`]).
pub async fn upstream(net: &Regions, root: &std::path::Path) -> anyhow::Result<Fixture> {
    Fixture::start_at(Some(root), None, SocketAddr::from((net.root_ip(), 0))).await
}

/// A running multi-region deployment: which region each node is in, the cluster, and one load
/// balancer per region over that region's nodes.
pub struct Deployment {
    /// Node id → region name.
    pub region_of: BTreeMap<u64, String>,
    /// Region name → the load balancer inside it.
    pub lbs: BTreeMap<String, RegionLb>,
    /// The cluster (dropped before the regions).
    pub cluster: TestCluster,
}

impl Deployment {
    /// Starts `per_region` nodes in every region of `net`: node ids count from 1, region by
    /// region; the first `voters` nodes of each region are founding voters, the others join as
    /// learners. Every node's config names its region ([`in_region`]).
    pub async fn start(
        net: &Regions,
        per_region: usize,
        voters: usize,
        upstream: &str,
    ) -> Deployment {
        Deployment::start_with(net, per_region, voters, upstream, true).await
    }

    /// [`Deployment::start`], with `[cluster] region` in the configs only when `label_regions`
    /// (a cluster without it is today's single-region cluster, the baseline of the latency
    /// test).
    pub async fn start_with(
        net: &Regions,
        per_region: usize,
        voters: usize,
        upstream: &str,
        label_regions: bool,
    ) -> Deployment {
        Deployment::try_start(net, per_region, voters, upstream, label_regions, &config())
            .await
            .unwrap_or_else(|e| panic!("starting the multi-region deployment: {e:#}"))
    }

    /// [`Deployment::start_with`] on `config` (every node gets it, plus its region when
    /// `label_regions`), reporting failures instead of panicking.
    pub async fn try_start(
        net: &Regions,
        per_region: usize,
        voters: usize,
        upstream: &str,
        label_regions: bool,
        config: &ClusterConfig,
    ) -> anyhow::Result<Deployment> {
        let mut region_of = BTreeMap::new();
        let mut founders = BTreeMap::new();
        let mut learners = Vec::new();
        let mut id = 0u64;
        for r in net.regions() {
            for i in 0..per_region {
                id += 1;
                region_of.insert(id, r.name.clone());
                let node_config = match label_regions {
                    true => in_region(config, &r.name),
                    false => config.clone(),
                };
                let p = placement(net, &r.name, i, node_config);
                if i < voters {
                    founders.insert(id, p);
                } else {
                    learners.push((id, p));
                }
            }
        }
        let mut cluster = TestCluster::start_placed(founders, upstream, config)
            .await
            .context("starting the voters")?;
        for (id, p) in learners {
            cluster
                .add_placed(id, p, true)
                .await
                .with_context(|| format!("adding learner {id}"))?;
        }
        cluster.wait_converged().await?;
        let mut lbs = BTreeMap::new();
        for r in net.regions() {
            let backends = region_of
                .iter()
                .filter(|(_, reg)| **reg == r.name)
                .map(|(id, _)| cluster.http_addr(*id))
                .collect();
            lbs.insert(r.name.clone(), net.start_lb(&r.name, backends)?);
        }
        Ok(Deployment {
            region_of,
            lbs,
            cluster,
        })
    }

    /// The nodes of region `region`.
    pub fn nodes_in(&self, region: &str) -> Vec<u64> {
        self.region_of
            .iter()
            .filter(|(_, r)| *r == region)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The region of node `id`.
    pub fn region(&self, id: u64) -> &str {
        &self.region_of[&id]
    }
}

/// The counter of requests a node sends to its peers, labelled `peer_region` and `kind`
/// (issue 14). The one place to change if the node side names it differently.
pub const PEER_REQUESTS: &str = "cairn_cluster_peer_requests_total";
/// The counter of bytes crossing a region boundary (`direction`, `peer_region`); logged only,
/// because Raft heartbeats and liveness probes cross regions all the time.
pub const CROSS_REGION_BYTES: &str = "cairn_cluster_cross_region_bytes_total";
/// `kind`s of [`PEER_REQUESTS`] that are cluster housekeeping, not serving: they cross regions
/// whatever the clients do (Raft, liveness, and the repair worker's inventory exchange
/// `has_blobs`, which runs on a timer), so the "hits stay local" check ignores them.
pub const HOUSEKEEPING_KINDS: &[&str] = &[
    "has_blobs",
    "raft",
    "append_entries",
    "vote",
    "install_snapshot",
    "heartbeat",
    "liveness",
    "probe",
];

/// Serving requests node `own_region`'s node sent to peers of other regions so far: the sum of
/// [`PEER_REQUESTS`] over every other `peer_region`, housekeeping kinds excluded. Errors when
/// the metric is absent (a node without issue 14's metrics cannot show its hits stay local).
pub fn cross_region_requests(m: &Metrics, own_region: &str) -> Result<f64, String> {
    if !m.has(PEER_REQUESTS) {
        return Err(format!("{PEER_REQUESTS} is absent from /metrics"));
    }
    Ok(m.matching(PEER_REQUESTS, &[])
        .filter(|s| s.labels.get("peer_region").is_some_and(|r| r != own_region))
        .filter(|s| {
            let kind = s.labels.get("kind").map(String::as_str).unwrap_or("");
            !HOUSEKEEPING_KINDS.contains(&kind)
        })
        .map(|s| s.value)
        .sum())
}

/// [`cross_region_requests`] and [`CROSS_REGION_BYTES`] of every node (id → (requests or the
/// reason there is no count, bytes)).
pub async fn cross_region_counters(
    c: &TestCluster,
    region_of: &BTreeMap<u64, String>,
) -> BTreeMap<u64, (Result<f64, String>, f64)> {
    let mut out = BTreeMap::new();
    for (id, region) in region_of {
        let m = c.metrics(*id).await.unwrap();
        let bytes = m.sum(CROSS_REGION_BYTES, &[]);
        out.insert(*id, (cross_region_requests(&m, region), bytes));
    }
    out
}
