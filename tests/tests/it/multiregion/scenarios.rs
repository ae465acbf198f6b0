//! Issue 14's judged scenarios on three regions × two nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_tests::corpus::generated_versions;
use cairn_tests::fixture::Fixture;
use cairn_tests::gocmd::{go, Go, GoEnv};
use cairn_tests::h1::version_path;
use cairn_tests::netns::{regions_or_skip, Delays, Regions};
use cairn_tests::wait::{patience, wait_for, wait_until};

use super::workload::{
    cross_region_counters, describe, download, leader_among, terms, Pool, Run, Workload,
};
use super::{fixture, Deployment};
use crate::cluster::{args, expected, standard_versions, zip_shas};
use crate::common::{assert_maps_eq, sums};

const REGIONS: [&str; 3] = ["a", "b", "c"];

/// The upper bound this test holds a failover to, from the cut to a leader that every node
/// outside the cut region agrees on. With the node defaults (200 ms heartbeats, 450–900 ms
/// elections, a 900 ms leader lease) a follower campaigns 1.35–1.8 s after the last heartbeat,
/// and a vote costs one 100 ms round trip; the rest is slack for a loaded debug build.
const FAILOVER_BOUND: Duration = Duration::from_secs(10);

/// A go environment in `region`, behind its load balancer; commands may take a minute (the
/// node decides when to give up, not the test).
fn region_env(go: &Go, net: &Regions, d: &Deployment, region: &str) -> GoEnv {
    let mut env = GoEnv::new(go, d.lbs[region].url())
        .unwrap()
        .with_prefix(net.exec_prefix(region));
    env.timeout = Duration::from_secs(60);
    env
}

/// Every failed run, by region, of the regions other than `except`.
fn failures_outside(runs: &BTreeMap<String, Vec<Run>>, except: &str) -> Vec<(String, Run)> {
    runs.iter()
        .filter(|(r, _)| *r != except)
        .flat_map(|(r, rs)| rs.iter().map(move |run| (r.clone(), run.clone())))
        .filter(|(_, run)| run.failure.is_some())
        .collect()
}

fn log_runs(test: &str, phase: &str, runs: &BTreeMap<String, Vec<Run>>, t0: Instant) {
    for (r, rs) in runs {
        eprintln!(
            "{test}: {phase}: region {r}: {} runs\n{}",
            rs.len(),
            describe(rs, t0)
        );
    }
}

/// Waits until every region in `regions` finished `n` runs that started at or after `since`.
async fn wait_runs(w: &Workload, regions: &[&str], since: Instant, n: usize) {
    let what = format!("{n} go commands started since the mark in regions {regions:?}");
    wait_until(what, patience(12.0), || {
        let done = regions.iter().all(|r| w.runs_since(r, since) >= n);
        async move { done }
    })
    .await
    .unwrap();
}

/// Downloads the standard versions (the 21 MB one aside) through region `a` and waits until
/// every node holds them; returns them.
async fn warm(go: &Go, net: &Regions, d: &Deployment) -> Vec<(String, String)> {
    let warm = standard_versions(false);
    let got = region_env(go, net, d, "a")
        .mod_download_ok(&args(&warm))
        .await
        .unwrap();
    assert_maps_eq("warming through region a", &expected(&warm), &sums(&got));
    d.cluster
        .wait_blobs_everywhere(&zip_shas(&warm))
        .await
        .unwrap();
    d.cluster.wait_converged().await.unwrap();
    warm
}

/// Downloads `warm` (cached everywhere) in every region and checks that no node sent a serving
/// request to another region and no request reached the upstream.
async fn hits_stay_in_their_region(
    test: &str,
    go: &Go,
    net: &Regions,
    d: &Deployment,
    upstream: &Fixture,
    warm: &[(String, String)],
) {
    let before = cross_region_counters(&d.cluster, &d.region_of).await;
    let upstream_before = upstream.total();
    for r in REGIONS {
        let t = Instant::now();
        let got = region_env(go, net, d, r)
            .mod_download_ok(&args(warm))
            .await
            .unwrap();
        assert_maps_eq(&format!("hits in region {r}"), &expected(warm), &sums(&got));
        eprintln!(
            "{test}: {} hits in region {r}: {:?}",
            warm.len(),
            t.elapsed()
        );
    }
    let after = cross_region_counters(&d.cluster, &d.region_of).await;
    assert_eq!(
        upstream.total(),
        upstream_before,
        "hits reached the upstream"
    );
    for (id, (req, bytes)) in &after {
        let (req_before, bytes_before) = &before[id];
        eprintln!(
            "{test}: node {id} (region {}): cross-region serving requests {req_before:?} -> \
             {req:?}, cross-region bytes {bytes_before} -> {bytes}",
            d.region(*id)
        );
        // Strict: a node that does not count its cross-region requests cannot show that its
        // hits stay local.
        let count =
            |r: &Result<f64, String>| r.clone().unwrap_or_else(|e| panic!("node {id}: {e}"));
        assert_eq!(
            count(req),
            count(req_before),
            "node {id} (region {}) sent serving requests to another region during a hit-only round",
            d.region(*id)
        );
    }
}

/// In the cut region: cached versions still serve, a new version passes through to the
/// upstream (which sees it).
async fn cut_region_degrades(
    env: &GoEnv,
    upstream: &Fixture,
    warm: &[(String, String)],
    pool: &Pool,
) {
    let old = warm[..3].to_vec();
    let run = download(env, old).await;
    assert!(
        run.failure.is_none(),
        "cached versions in the cut region: {run:?}"
    );
    let new = pool.lock().unwrap().pop().unwrap();
    let path = version_path(&new.0, &new.1, "zip");
    let run = download(env, vec![new]).await;
    assert!(run.failure.is_none(), "a miss in the cut region: {run:?}");
    assert!(
        upstream.count(&path) >= 1,
        "the cut region's miss did not reach the upstream"
    );
}

/// How long a healed region may take to catch up (one leader, equal applied indexes, every
/// blob the cluster filled). Generous on purpose: connections that were open across the
/// cut recover only when TCP retransmits, and TCP's back-off doubles through the cut (up to
/// 120 s) unless the node's own keep-alives drop them first; the measured time is logged.
const CONVERGE_BOUND: Duration = Duration::from_secs(150);

/// Waits until the healed cluster converged: one leader, equal applied indexes, and every node
/// holding every blob of `want` (see [`filled`] and [`CONVERGE_BOUND`]). Blobs beyond `want`
/// (left by fills whose proposal never committed) are logged.
async fn converged(test: &str, d: &Deployment, want: &BTreeSet<String>, since: Instant) {
    let c = &d.cluster;
    let raft = || async {
        c.leader().await?;
        let views = c.raft_views().await;
        let applied: BTreeSet<u64> = views
            .values()
            .map(|v| v.map(|v| v.applied))
            .collect::<Option<_>>()?;
        (applied.len() == 1).then_some(())
    };
    if let Err(e) = wait_for("one leader and one applied index", CONVERGE_BOUND, raft).await {
        panic!("{e:#}\n{}", c.describe().await);
    }
    eprintln!(
        "{test}: Raft converged {:?} after the heal; terms {:?}",
        since.elapsed(),
        terms(c, &c.ids()).await
    );
    let missing = || -> Vec<(u64, usize)> {
        c.ids()
            .into_iter()
            .map(|id| (id, want.difference(&c.blob_set(id)).count()))
            .filter(|(_, n)| *n > 0)
            .collect()
    };
    let what = format!(
        "every node to hold the {} blobs the cluster filled",
        want.len()
    );
    let r = wait_until(what, CONVERGE_BOUND, || {
        let done = missing().is_empty();
        async move { done }
    })
    .await;
    if let Err(e) = r {
        panic!(
            "{e:#}: (node, missing) {:?}\n{}",
            missing(),
            c.blob_metrics().await
        );
    }
    for id in c.ids() {
        let extra = c.blob_set(id).difference(want).count();
        if extra > 0 {
            eprintln!("{test}: node {id} also holds {extra} blobs of fills that never committed");
        }
    }
    eprintln!(
        "{test}: blobs converged {:?} after the heal",
        since.elapsed()
    );
}

/// The zip blobs the cluster must hold after a cut: the warm versions and every version a go
/// command outside region `cut` downloaded (a fill in a region with a quorum is recorded, so
/// its blob must reach every node; the cut region's misses were passed through uncached).
fn filled(
    warm: &[(String, String)],
    runs: &BTreeMap<String, Vec<Run>>,
    cut: &str,
) -> BTreeSet<String> {
    let mut versions = warm.to_vec();
    for run in runs
        .iter()
        .filter(|(r, _)| *r != cut)
        .flat_map(|(_, rs)| rs)
    {
        if run.failure.is_none() {
            versions.extend(run.pairs.iter().cloned());
        }
    }
    zip_shas(&versions)
}

/// Starts three regions × two nodes and warms them; `None` when skipped.
async fn deploy(test: &str) -> Option<Deployed> {
    let go = go(test)?;
    let net = regions_or_skip(test, &REGIONS, 2, Delays::default())?;
    let upstream = fixture(&net).await;
    let d = Deployment::start(&net, 2, 1, &upstream.url()).await;
    let formed = (terms(&d.cluster, &d.cluster.ids()).await, Instant::now());
    let warm = warm(&go, &net, &d).await;
    Some(Deployed {
        go,
        net,
        upstream,
        d,
        warm,
        formed,
    })
}

/// What [`deploy`] made (fields dropped in order: the cluster before the regions).
struct Deployed {
    go: Go,
    d: Deployment,
    upstream: Fixture,
    net: Regions,
    warm: Vec<(String, String)>,
    /// The terms right after the cluster formed, and when.
    formed: (BTreeMap<u64, u64>, Instant),
}

/// Asserts no Raft term moved since `before` (nothing was cut meanwhile).
async fn no_election(test: &str, d: &Deployment, before: &BTreeMap<u64, u64>, since: Instant) {
    let quiet = since.elapsed();
    assert_eq!(
        &terms(&d.cluster, &d.cluster.ids()).await,
        before,
        "a Raft term moved in {quiet:?} with nothing cut: elections flap at a 100 ms round trip"
    );
    eprintln!("{test}: no election in {quiet:?} of 100 ms round trips (node default timings)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_in_every_region_stay_in_the_region() {
    let test = "hits_in_every_region_stay_in_the_region";
    let t0 = Instant::now();
    let Some(x) = deploy(test).await else {
        return;
    };
    hits_stay_in_their_region(test, &x.go, &x.net, &x.d, &x.upstream, &x.warm).await;
    no_election(test, &x.d, &x.formed.0, x.formed.1).await;
    eprintln!("{test}: done in {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_region_degrades_and_the_others_lose_nothing() {
    let test = "a_cut_region_degrades_and_the_others_lose_nothing";
    let t0 = Instant::now();
    let Some(x) = deploy(test).await else {
        return;
    };
    let (go, net, upstream, d, warm) = (&x.go, &x.net, &x.upstream, &x.d, &x.warm);
    no_election(test, d, &x.formed.0, x.formed.1).await;
    let ids = d.cluster.ids();

    // A region without the leader is cut while go commands run everywhere.
    let leader = d.cluster.wait_for_leader().await.unwrap();
    let cut = *REGIONS
        .iter()
        .rev()
        .find(|r| **r != d.region(leader))
        .unwrap();
    let pool: Pool = Arc::new(Mutex::new(generated_versions()));
    let envs = REGIONS
        .iter()
        .map(|r| (r.to_string(), region_env(go, net, d, r)));
    let w = Workload::start(envs.collect(), warm.clone(), pool.clone());
    wait_runs(&w, &REGIONS, t0, 1).await;
    let cut_at = Instant::now();
    net.cut(cut);
    eprintln!(
        "{test}: cut region {cut} (leader: node {leader} in {})",
        d.region(leader)
    );
    let others: Vec<&str> = REGIONS.into_iter().filter(|r| *r != cut).collect();
    let outside: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| d.region(*id) != cut)
        .collect();
    let terms_before = terms(&d.cluster, &outside).await;
    let cut_env = region_env(go, net, d, cut);
    tokio::join!(
        wait_runs(&w, &others, cut_at, 3),
        cut_region_degrades(&cut_env, upstream, warm, &pool)
    );
    let during = terms(&d.cluster, &ids).await;
    eprintln!(
        "{test}: terms after {:?} of cut: {during:?}",
        cut_at.elapsed()
    );
    let healed_at = Instant::now();
    net.heal(cut);
    wait_runs(&w, &REGIONS, healed_at, 1).await;
    let runs = w.stop().await;
    log_runs(test, "region cut", &runs, t0);
    let failed = failures_outside(&runs, cut);
    assert!(
        failed.is_empty(),
        "go commands failed outside the cut region {cut}: {failed:#?}"
    );
    converged(test, d, &filled(warm, &runs, cut), healed_at).await;
    // The cut voter held back its elections (it reached no majority), so its term did not
    // grow and the heal cost the others no election.
    assert_eq!(
        terms(&d.cluster, &outside).await,
        terms_before,
        "a Raft term moved outside the cut region {cut}: the heal disrupted the leader"
    );
    assert_eq!(
        d.cluster.wait_for_leader().await.unwrap(),
        leader,
        "the leader changed"
    );
    eprintln!("{test}: done in {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leaders_region_is_cut_and_another_region_takes_over() {
    let test = "the_leaders_region_is_cut_and_another_region_takes_over";
    let t0 = Instant::now();
    let Some(x) = deploy(test).await else {
        return;
    };
    let (go, net, d, warm) = (&x.go, &x.net, &x.d, &x.warm);
    no_election(test, d, &x.formed.0, x.formed.1).await;
    let ids = d.cluster.ids();
    let leader = d.cluster.wait_for_leader().await.unwrap();
    let lost = d.region(leader).to_string();
    let pool: Pool = Arc::new(Mutex::new(generated_versions()));
    let envs = REGIONS
        .iter()
        .map(|r| (r.to_string(), region_env(go, net, d, r)));
    let w = Workload::start(envs.collect(), warm.clone(), pool.clone());
    wait_runs(&w, &REGIONS, t0, 1).await;
    let cut_at = Instant::now();
    net.cut(&lost);
    let outside: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| d.region(*id) != lost)
        .collect();
    let new_leader = wait_for("a new leader outside the cut region", patience(3.0), || {
        leader_among(&d.cluster, &outside)
    })
    .await
    .unwrap();
    let failover = cut_at.elapsed();
    eprintln!(
        "{test}: leader region {lost} cut; node {new_leader} (region {}) leads after {failover:?}",
        d.region(new_leader)
    );
    assert!(failover <= FAILOVER_BOUND, "failover took {failover:?}");
    let others: Vec<&str> = REGIONS.into_iter().filter(|r| *r != lost).collect();
    wait_runs(&w, &others, cut_at + failover, 2).await;
    let during = terms(&d.cluster, &ids).await;
    eprintln!(
        "{test}: terms after {:?} of cut: {during:?}",
        cut_at.elapsed()
    );
    let healed_at = Instant::now();
    net.heal(&lost);
    wait_runs(&w, &REGIONS, healed_at, 1).await;
    let runs = w.stop().await;
    log_runs(test, "leader region cut", &runs, t0);
    let failed = failures_outside(&runs, &lost);
    assert!(
        failed.is_empty(),
        "go commands failed outside the cut region {lost}: {failed:#?}"
    );
    converged(test, d, &filled(warm, &runs, &lost), healed_at).await;
    eprintln!("{test}: done in {:?}", t0.elapsed());
}
