//! A cold version in three regions against one region, under the same emulated network.
//!
//! What is asserted, and why only that: in the leader's region a cold fill costs the local fill
//! plus one commit, whose quorum needs one other region, so one round trip (100 ms) more than a
//! single-region cluster: that bound is asserted, with slack for a loaded debug build. In a
//! region without the leader the proposal must also reach the leader first (one more round
//! trip) unless the node side avoids it; that figure is logged, not asserted, and goes to the
//! closing note (issue 14: "no test asserts a time" beyond the one-round-trip promise).

use std::time::{Duration, Instant};

use cairn_tests::corpus::generated_versions;
use cairn_tests::gocmd::go;
use cairn_tests::h1::version_path;
use cairn_tests::netns::{regions_or_skip, Delays};

use super::{fixture, Deployment};

/// The emulated round trip between regions (twice [`Delays::default`]'s one way).
const RTT: Duration = Duration::from_millis(100);
/// Room for scheduling noise on a shared machine running debug builds: less than a round trip,
/// so two round trips more than one region still fail.
const SLACK: Duration = Duration::from_millis(80);
/// Cold versions timed per node.
const SAMPLES: usize = 5;

/// The median time of a cold `.info` (the request that fills the version) through node `id`,
/// over `versions` none of which the cluster has seen.
async fn cold_info(d: &Deployment, id: u64, versions: &[(String, String)]) -> Duration {
    let mut times = Vec::new();
    for (module, version) in versions {
        let path = version_path(module, version, "info");
        let t = Instant::now();
        let r = d.cluster.node(id).get(&path).await.unwrap();
        times.push(t.elapsed());
        assert_eq!(r.status, 200, "GET {path} at node {id}: {}", r.text());
    }
    times.sort();
    times[times.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_version_costs_at_most_one_round_trip_more_than_in_one_region() {
    let test = "a_cold_version_costs_at_most_one_round_trip_more_than_in_one_region";
    if go(test).is_none() {
        return; // the cluster corpus's fixture is judged by go elsewhere; keep skips aligned
    }
    let all = generated_versions();
    let batches: Vec<Vec<(String, String)>> =
        all.chunks(SAMPLES).take(3).map(<[_]>::to_vec).collect();

    let single = {
        let Some(net) = regions_or_skip(test, &["solo"], 3, Delays::default()) else {
            return;
        };
        let upstream = fixture(&net).await;
        // Without `[cluster] region`: today's cluster, and no region holding a voter majority.
        let d = Deployment::start_with(&net, 3, 3, &upstream.url(), false).await;
        let leader = d.cluster.wait_for_leader().await.unwrap();
        let follower = d
            .cluster
            .ids()
            .into_iter()
            .find(|id| *id != leader)
            .unwrap();
        cold_info(&d, follower, &batches[0]).await
    };

    // Two nodes a region, as deployed: `min_copies = 2` is met inside the region.
    let Some(net) = regions_or_skip(test, &["a", "b", "c"], 2, Delays::default()) else {
        return;
    };
    let upstream = fixture(&net).await;
    let d = Deployment::start(&net, 2, 1, &upstream.url()).await;
    let leader = d.cluster.wait_for_leader().await.unwrap();
    let other = d
        .cluster
        .ids()
        .into_iter()
        .find(|id| d.region(*id) != d.region(leader))
        .unwrap();
    let at_leader = cold_info(&d, leader, &batches[1]).await;
    let elsewhere = cold_info(&d, other, &batches[2]).await;
    eprintln!(
        "{test}: median cold .info over {SAMPLES} versions: one region (follower) {single:?}; \
         three regions, leader's region {at_leader:?}, region {} without the leader {elsewhere:?} \
         (round trip {RTT:?})",
        d.region(other)
    );
    assert!(
        at_leader <= single + RTT + SLACK,
        "a cold version in the leader's region took {at_leader:?}, more than one round trip \
         ({RTT:?}, slack {SLACK:?}) over one region's {single:?}"
    );
}
