//! Checksum-database answers belong to the cluster (issue 9). A three-node cluster behind a
//! round-robin load balancer verifies against a fake checksum database; the go command with an
//! empty go.sum (and `GOSUMDB` through cairn) fills it once. A second go command with fresh
//! caches must then make no request at all to the upstream or to the database — every lookup,
//! tile and tree head comes from the replicated state — and with both stopped, a go command
//! verifies the whole graph through each node.

use cairn_tests::cluster::ClusterConfig;
use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::h1::escape;
use cairn_tests::lb::Lb;
use cairn_tests::sumdb::{corpus_records, filler_records, FakeSumdb};

use super::{args, corpus, expected, fixture, standard_versions, start};
use crate::common::{assert_maps_eq, sums};

/// `[sumdb] databases = [...]` for `db` in `mode`.
fn databases(db: &FakeSumdb, mode: &str) -> String {
    format!(
        "[{{ name = \"{}\", url = \"{}\", key = \"{}\", verify = \"{mode}\" }}]",
        db.name(),
        db.url(),
        db.verifier_key()
    )
}

/// A fork seen by one node is the whole cluster's verdict: node 3 is restarted against a
/// database that rewrote its history (same key, a tree that does not extend the one the cluster
/// recorded through node 1); it detects the fork, and node 1 — still talking to the honest
/// database — refuses verification from then on too, while serving what it verified before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r9_a_fork_detected_on_one_node_is_refused_on_every_node() {
    let fixture = fixture().await;
    let honest_log = || {
        let mut r = filler_records(300);
        r.extend(corpus_records(corpus()));
        r
    };
    let honest = FakeSumdb::start(honest_log()).await.unwrap();
    let mut forked_log = filler_records(307);
    forked_log.extend(corpus_records(corpus()));
    let forked = FakeSumdb::start(forked_log).await.unwrap();
    let config = ClusterConfig::fast()
        .set("sumdb", "databases", databases(&honest, "require"))
        .set("cluster", "owner_routing", false);
    let mut cl = start(3, &fixture.url(), &config).await;
    let versions = standard_versions(false);
    let path = |i: usize| {
        let (m, v) = &versions[i];
        format!("/{}/@v/{}.info", escape(m), escape(v))
    };
    let r = cl.node(1).get(&path(0)).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    cl.wait_converged().await.unwrap();

    cl.kill9(3).await;
    let opts = cl.node_mut(3).options_mut();
    let cfg = opts.config.clone().unwrap_or_default();
    opts.config = Some(cfg.replace(&honest.url(), &forked.url()));
    cl.restart(3).await.unwrap();
    let r = cl.node(3).get(&path(1)).await.unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("forked"), "node 3: {}", r.text());
    cl.wait_converged().await.unwrap();

    let r = cl.node(1).get(&path(2)).await.unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("forked"), "node 1: {}", r.text());
    let m = cl.node(1).metrics().await.unwrap();
    assert_eq!(m.sum("cairn_sumdb_forked", &[]), 1.0);
    let r = cl.node(1).get(&path(0)).await.unwrap();
    assert_eq!(r.status, 200, "verified before the fork: {}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r9_a_warm_cluster_answers_modules_and_checksums_without_upstream_or_database() {
    let Some(go) =
        go("r9_a_warm_cluster_answers_modules_and_checksums_without_upstream_or_database")
    else {
        return;
    };
    let versions = standard_versions(false);
    let want = expected(&versions);
    let fixture = fixture().await;
    let mut records = filler_records(300);
    records.extend(corpus_records(corpus()));
    let db = FakeSumdb::start(records).await.unwrap();
    let config = ClusterConfig::fast()
        .set("sumdb", "databases", databases(&db, "require"))
        .set("sumdb", "latest_ttl_secs", 3600);
    let cl = start(3, &fixture.url(), &config).await;
    let backends = cl
        .ids()
        .iter()
        .map(|&id| cl.node(id).addrs().http)
        .collect();
    let lb = Lb::start(backends).await.unwrap();
    let verifying = |url: &str| GoEnv::new(&go, url).unwrap().with_sumdb(&db.verifier_key());

    let cold = verifying(&lb.url())
        .mod_download_ok(&args(&versions))
        .await
        .unwrap();
    assert_maps_eq("cold, through the load balancer", &want, &sums(&cold));
    cl.wait_converged().await.unwrap();
    let (upstream_before, db_before) = (fixture.total(), db.total());
    assert!(db_before > 0, "the database was never asked");

    let warm = verifying(&lb.url())
        .mod_download_ok(&args(&versions))
        .await
        .unwrap();
    assert_maps_eq("warm, through the load balancer", &want, &sums(&warm));
    assert_eq!(
        fixture.total(),
        upstream_before,
        "a warm cluster asked the upstream"
    );
    assert_eq!(
        db.total(),
        db_before,
        "a warm cluster asked the checksum database:\n{}",
        db.describe_requests()
    );

    fixture.kill().await;
    db.kill().await;
    for id in cl.ids() {
        let got = verifying(&cl.url(id))
            .mod_download_ok(&args(&versions))
            .await
            .unwrap_or_else(|e| panic!("node {id}, upstream and database dead: {e:#}"));
        assert_maps_eq(
            &format!("node {id}, upstream and database dead"),
            &want,
            &sums(&got),
        );
    }
}
