//! Issue 14, data plane, on loopback: two regions of two nodes (`a` = nodes 1 and 2, `b` = nodes
//! 3 and 4). Misses asked in region `a` are owned and filled in region `a`, each new blob then
//! crosses into region `b` exactly once (one node of `b` pulls it across, the other copies it
//! from that node), and every node then serves the go command the right bytes with no
//! cross-region request.

use std::collections::{BTreeMap, BTreeSet};

use cairn_proto::v1::admin_client::AdminClient;
use cairn_proto::v1::StatusRequest;
use cairn_tests::cluster::{ClusterConfig, TestCluster};
use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::h1::version_path;
use cairn_tests::metrics::Metrics;
use cairn_tests::wait::{patience, wait_until};

use super::{args, corpus, expected, fixture, standard_versions, start, zip_shas};
use crate::common::{assert_maps_eq, sums};

const BYTES: &str = "cairn_cluster_cross_region_bytes_total";
const REQUESTS: &str = "cairn_cluster_peer_requests_total";

fn region_of(id: u64) -> &'static str {
    if id <= 2 {
        "a"
    } else {
        "b"
    }
}

/// Whether node `id`'s membership records the region of each of the 4 members.
async fn regions_recorded(cl: &TestCluster, id: u64) -> bool {
    regions_recorded_as(cl, id, 4, region_of).await
}

/// Whether node `id`'s membership has `n` members, each in `region(id)`.
async fn regions_recorded_as(
    cl: &TestCluster,
    id: u64,
    n: usize,
    region: fn(u64) -> &'static str,
) -> bool {
    let url = format!("http://{}", cl.grpc_addr(id));
    let Ok(mut client) = AdminClient::connect(url).await else {
        return false;
    };
    let Ok(reply) = client.status(StatusRequest {}).await else {
        return false;
    };
    let members = reply.into_inner().members;
    members.len() == n && members.iter().all(|m| m.region == region(m.id))
}

async fn all_metrics(cl: &TestCluster) -> BTreeMap<u64, Metrics> {
    let mut out = BTreeMap::new();
    for id in cl.ids() {
        out.insert(id, cl.metrics(id).await.unwrap());
    }
    out
}

fn cross_requests(m: &Metrics) -> f64 {
    m.sum(REQUESTS, &[("scope", "cross_region")])
}

fn dump(all: &BTreeMap<u64, Metrics>) -> String {
    all.iter()
        .map(|(id, m)| format!("node {id}:\n{}", m.dump("cairn_cluster_")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Starts nodes 1, 2 in region a and 3, 4 in region b, and waits until every node knows every
/// region and sees every peer alive.
async fn start_two_regions(upstream: &str, config: ClusterConfig) -> TestCluster {
    let mut config = config.insecure();
    for id in 1..=4 {
        config = config.set_for(id, "cluster", "region", format!("\"{}\"", region_of(id)));
    }
    let cl = start(4, upstream, &config).await;
    for id in cl.ids() {
        let what = format!("node {id} to record every member's region");
        wait_until(what, patience(2.0), || regions_recorded(&cl, id))
            .await
            .unwrap();
    }
    cl.wait_liveness_agrees().await.unwrap();
    cl
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_regions_fill_near_the_client_and_cross_each_boundary_once() {
    let Some(go) = go("cluster_regions_fill_near_the_client_and_cross_each_boundary_once") else {
        return;
    };
    let fixture = fixture().await;
    let cl = start_two_regions(&fixture.url(), ClusterConfig::fast()).await;

    // Cold misses through node 1 (region a).
    let versions = standard_versions(false);
    let want = expected(&versions);
    let first = GoEnv::new(&go, &cl.url(1))
        .unwrap()
        .mod_download_ok(&args(&versions))
        .await
        .unwrap();
    assert_maps_eq("hashes through node 1", &want, &sums(&first));
    for (module, version) in &versions {
        let zip = version_path(module, version, "zip");
        assert_eq!(fixture.count(&zip), 1, "upstream fetches of {zip}");
    }

    // Every blob reaches region b, crossing the boundary once.
    let shas = zip_shas(&versions);
    cl.wait_blobs_everywhere(&shas).await.unwrap();
    let c = corpus();
    let blob_bytes: u64 = versions
        .iter()
        .map(|(m, v)| (c.entry(m, v).zip_sha256.clone(), c.entry(m, v).zip_len))
        .collect::<BTreeMap<_, _>>()
        .values()
        .sum();
    let before = all_metrics(&cl).await;
    let ms = dump(&before);
    for id in [1, 2] {
        let m = &before[&id];
        let fills = m.sum(REQUESTS, &[("kind", "fill"), ("scope", "cross_region")]);
        assert_eq!(fills, 0.0, "node {id} sent a fill across regions\n{ms}");
        let pulls = copies_asked_across(m);
        assert_eq!(pulls, 0.0, "node {id} asked region b for a copy\n{ms}");
        let got = m.sum(BYTES, &[("direction", "received")]);
        assert_eq!(got, 0.0, "region a received blob bytes from b\n{ms}");
    }
    let received: f64 = [3, 4]
        .iter()
        .map(|id| before[id].sum(BYTES, &[("direction", "received"), ("peer_region", "a")]))
        .sum();
    let sent: f64 = [1, 2]
        .iter()
        .map(|id| before[id].sum(BYTES, &[("direction", "sent"), ("peer_region", "b")]))
        .sum();
    assert_eq!(
        received, blob_bytes as f64,
        "region b received {received} bytes across regions for {} blobs of {blob_bytes} bytes\n{ms}",
        shas.len()
    );
    assert_eq!(sent, received, "bytes sent by region a\n{ms}");
    println!(
        "{} blobs, {blob_bytes} bytes; crossed into region b: {received} bytes (node 3: {}, node 4: {})",
        shas.len(),
        before[&3].sum(BYTES, &[("direction", "received")]),
        before[&4].sum(BYTES, &[("direction", "received")]),
    );
    // Both nodes of region b fetched inside the region too (from the one that pulled).
    for id in [3, 4] {
        let local = before[&id].sum(REQUESTS, &[("kind", "fetch_blob"), ("scope", "local")]);
        assert!(
            local > 0.0,
            "node {id} never fetched inside its region\n{ms}"
        );
    }

    // Hits everywhere: right bytes, nothing new from the upstream, no cross-region request.
    let upstream = fixture.total();
    for id in cl.ids() {
        let d = GoEnv::new(&go, &cl.url(id))
            .unwrap()
            .mod_download_ok(&args(&versions))
            .await
            .unwrap_or_else(|e| panic!("through node {id}: {e:#}"));
        assert_maps_eq(&format!("hashes through node {id}"), &want, &sums(&d));
    }
    assert_eq!(fixture.total(), upstream, "hits reached the upstream");
    let after = all_metrics(&cl).await;
    for id in cl.ids() {
        assert_eq!(
            cross_requests(&after[&id]),
            cross_requests(&before[&id]),
            "node {id} made cross-region requests while serving hits\n{}",
            dump(&after)
        );
    }
    let held: BTreeSet<String> = cl.blob_set(3);
    assert!(held.is_superset(&shas));
}

/// `cluster.min_copies_remote_regions = 1`: a download through region a returns only once
/// every new zip is also on a node of region b (the one that pulls it into region b).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_regions_min_copies_remote_regions_waits_for_a_copy_in_the_other_region() {
    let Some(go) =
        go("cluster_regions_min_copies_remote_regions_waits_for_a_copy_in_the_other_region")
    else {
        return;
    };
    let fixture = fixture().await;
    let config = ClusterConfig::fast().set("cluster", "min_copies_remote_regions", 1);
    let cl = start_two_regions(&fixture.url(), config).await;
    let versions: Vec<(String, String)> = standard_versions(false).into_iter().take(6).collect();
    let d = GoEnv::new(&go, &cl.url(1))
        .unwrap()
        .mod_download_ok(&args(&versions))
        .await
        .unwrap();
    assert_maps_eq("hashes through node 1", &expected(&versions), &sums(&d));
    let in_b: BTreeSet<String> = cl.blob_set(3).union(&cl.blob_set(4)).cloned().collect();
    let shas = zip_shas(&versions);
    let missing: Vec<&String> = shas.difference(&in_b).collect();
    assert!(
        missing.is_empty(),
        "acknowledged zips not in region b: {missing:?}"
    );
    // The copies were asked for by the fills (not left to repair, which may be quick too).
    let mut asked = 0.0;
    for id in [1, 2] {
        let held = cl.blob_set(id);
        assert!(held.is_superset(&shas), "node {id} lacks a zip of region a");
        let m = cl.metrics(id).await.unwrap();
        asked += copies_asked_across(&m);
    }
    assert!(
        asked >= shas.len() as f64,
        "{asked} cross-region copies asked for {} zips",
        shas.len()
    );
}

/// Voters 1, 2, 3 in regions a, b, c; learners 4 and 5 in region d. Misses through node 5 are
/// owned by node 4 or 5 (learners fill, and forward their proposals to the leader) and never
/// sent to another region.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_regions_learners_own_and_fill_the_misses_of_their_region() {
    let Some(go) = go("cluster_regions_learners_own_and_fill_the_misses_of_their_region") else {
        return;
    };
    fn region(id: u64) -> &'static str {
        ["a", "b", "c", "d", "d"][id as usize - 1]
    }
    let fixture = fixture().await;
    let mut config = ClusterConfig::fast().insecure();
    for id in 1..=5 {
        config = config.set_for(id, "cluster", "region", format!("\"{}\"", region(id)));
    }
    let mut cl = start(3, &fixture.url(), &config).await;
    for id in [4, 5] {
        cl.start_joiner(id).await.unwrap();
        let addr = cl.grpc_addr(id).to_string();
        cl.cli_at(1, &["members", "add", &id.to_string(), &addr, "--learner"])
            .await
            .unwrap()
            .ok()
            .unwrap_or_else(|e| panic!("{e:#}\n{}", cl.log_tails(30)));
    }
    for id in cl.ids() {
        let what = format!("node {id} to record every member's region");
        wait_until(what, patience(2.0), || {
            regions_recorded_as(&cl, id, 5, region)
        })
        .await
        .unwrap();
    }
    cl.wait_liveness_agrees().await.unwrap();

    let versions = standard_versions(false);
    let d = GoEnv::new(&go, &cl.url(5))
        .unwrap()
        .mod_download_ok(&args(&versions))
        .await
        .unwrap();
    assert_maps_eq("hashes through node 5", &expected(&versions), &sums(&d));
    for (module, version) in &versions {
        let zip = version_path(module, version, "zip");
        assert_eq!(fixture.count(&zip), 1, "upstream fetches of {zip}");
    }
    let (m4, m5) = (cl.metrics(4).await.unwrap(), cl.metrics(5).await.unwrap());
    let upstream = |m: &Metrics| m.sum("cairn_upstream_requests_total", &[("kind", "zip")]);
    assert!(
        upstream(&m4) > 0.0 && upstream(&m5) > 0.0,
        "both learners filled misses (upstream zip requests: node 4 {}, node 5 {})",
        upstream(&m4),
        upstream(&m5)
    );
    assert!(m5.sum(REQUESTS, &[("kind", "fill"), ("scope", "local")]) > 0.0);
    assert_eq!(
        m5.sum(REQUESTS, &[("kind", "fill"), ("scope", "cross_region")]),
        0.0,
        "{}",
        m5.dump("cairn_cluster_")
    );
}

/// Copies this node asked nodes of other regions to take: pulls and (small blobs) pushes.
fn copies_asked_across(m: &Metrics) -> f64 {
    ["pull_blob", "push_blob"]
        .iter()
        .map(|kind| m.sum(REQUESTS, &[("kind", kind), ("scope", "cross_region")]))
        .sum()
}
