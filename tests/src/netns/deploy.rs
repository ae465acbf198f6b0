//! A cairn cluster spread over emulated [`Regions`]: nodes placed at the regions' host
//! addresses, `[cluster] region` in their configs, one load balancer per region. Shared by the
//! multi-region integration tests and `cairn-bench regions`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::Context;

use super::{RegionLb, Regions};
use crate::cluster::{ClusterConfig, Placement, TestCluster};

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
