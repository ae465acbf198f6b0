//! Multi-region clusters (issue 14) on emulated regions: Linux network namespaces joined by a
//! link emulator with 50 ms one-way between regions (`cairn_tests::netns`).
//!
//! - `plumbing`: the emulation itself (round trips, cuts, clean-up) and one node per region.
//! - `scenarios`: three regions × two nodes (one voter per region, the others learners), the
//!   real go command in each region behind the region's own load balancer; hits stay local, a
//!   region is cut while commands run everywhere, the leader's region is cut.
//! - `latency`: a cold version in a multi-region cluster against a single-region one.
//! - `workload`: go commands looping in every region, the cross-region counters.
//!
//! The hits and cold-version tests judge issue 14's data plane (misses owned inside the asking
//! node's region, `cairn_cluster_peer_requests_total`): without it they fail, as they should.
//!
//! Root only: without namespaces the tests print a loud SKIP, or fail under
//! `CAIRN_REQUIRE_NETNS=1` (which `.ci/run` sets). Run only these:
//! `cargo build --bins && CAIRN_REQUIRE_NETNS=1 cargo test -p cairn-tests --test it multiregion -- --nocapture --test-threads=1`.

mod latency;
mod plumbing;
mod scenarios;
mod workload;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use cairn_tests::cluster::{ClusterConfig, Placement, TestCluster};
use cairn_tests::fixture::Fixture;
use cairn_tests::netns::{RegionLb, Regions};

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

/// A fixture serving the cluster corpus on the root namespace's address of `net`.
pub async fn fixture(net: &Regions) -> Fixture {
    let root = &crate::cluster::corpus().root;
    Fixture::start_at(Some(root), None, SocketAddr::from((net.root_ip(), 0)))
        .await
        .unwrap()
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
        let config = config();
        let mut region_of = BTreeMap::new();
        let mut founders = BTreeMap::new();
        let mut learners = Vec::new();
        let mut id = 0u64;
        for r in net.regions() {
            for i in 0..per_region {
                id += 1;
                region_of.insert(id, r.name.clone());
                let node_config = match label_regions {
                    true => in_region(&config, &r.name),
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
        let mut cluster = TestCluster::start_placed(founders, upstream, &config)
            .await
            .unwrap_or_else(|e| panic!("starting the voters: {e:#}"));
        for (id, p) in learners {
            cluster
                .add_placed(id, p, true)
                .await
                .unwrap_or_else(|e| panic!("adding learner {id}: {e:#}"));
        }
        cluster.wait_converged().await.unwrap();
        let mut lbs = BTreeMap::new();
        for r in net.regions() {
            let backends = region_of
                .iter()
                .filter(|(_, reg)| **reg == r.name)
                .map(|(id, _)| cluster.http_addr(*id))
                .collect();
            lbs.insert(r.name.clone(), net.start_lb(&r.name, backends).unwrap());
        }
        Deployment {
            region_of,
            lbs,
            cluster,
        }
    }

    /// The region of node `id`.
    pub fn region(&self, id: u64) -> &str {
        &self.region_of[&id]
    }
}
