//! Checksum-database answers belong to the cluster (issue 9). A three-node cluster behind a
//! round-robin load balancer verifies against a fake checksum database; the go command with an
//! empty go.sum (and `GOSUMDB` through cairn) fills it once. A second go command with fresh
//! caches must then make no request at all to the upstream or to the database — every lookup,
//! tile and tree head comes from the replicated state — and with both stopped, a go command
//! verifies the whole graph through each node.

use cairn_tests::cluster::ClusterConfig;
use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::lb::Lb;
use cairn_tests::sumdb::{corpus_records, filler_records, FakeSumdb};

use super::{args, corpus, expected, fixture, standard_versions, start};
use crate::common::{assert_maps_eq, sums};

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
    let databases = format!(
        "[{{ name = \"{}\", url = \"{}\", key = \"{}\", verify = \"require\" }}]",
        db.name(),
        db.url(),
        db.verifier_key()
    );
    let config = ClusterConfig::fast()
        .set("sumdb", "databases", databases)
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
