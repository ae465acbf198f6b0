//! Three nodes started with the same `--peers` form one cluster; the operator CLI sees it; and a
//! corpus downloaded through one node is served by every other node once the upstream is gone.

use std::collections::BTreeSet;

use cairn_tests::cluster::ClusterConfig;
use cairn_tests::corpus::m;
use cairn_tests::gocmd::{go, GoEnv};

use super::{args, corpus, expected, fixture, standard_versions, start, status_members};
use crate::common::{assert_maps_eq, sums};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_forms_and_the_cli_reports_one_leader() {
    let fixture = fixture().await;
    let cl = start(3, &fixture.url(), &ClusterConfig::fast()).await;
    let leader = cl.wait_for_leader().await.unwrap();
    let applied = cl.wait_converged().await.unwrap();
    println!("cluster formed: leader {leader}, applied index {applied} everywhere");

    for id in cl.ids() {
        let out = cl.cli_at(id, &["status", "--json"]).await.unwrap();
        assert_eq!(out.code, Some(0), "a healthy cluster: {out}");
        let members = status_members(&out.json().unwrap());
        let ids: BTreeSet<u64> = members.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, BTreeSet::from([1, 2, 3]), "members in {out}");
        let leaders: Vec<u64> = members
            .iter()
            .filter(|(_, role)| role == "leader")
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(leaders, [leader], "leaders in {out}");
    }

    let out = cl
        .cli_at(2, &["members", "list"])
        .await
        .unwrap()
        .ok()
        .unwrap();
    for id in cl.ids() {
        let addr = cl.grpc_addr(id).to_string();
        assert!(
            out.stdout.contains(&addr),
            "`cairn members list` does not name node {id} ({addr}):\n{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_serves_the_corpus_from_every_node_after_the_upstream_dies() {
    let Some(go) = go("cluster_serves_the_corpus_from_every_node_after_the_upstream_dies") else {
        return;
    };
    let versions = standard_versions(true);
    let want = expected(&versions);
    let fixture = fixture().await;
    let cl = start(3, &fixture.url(), &ClusterConfig::fast()).await;

    let first = GoEnv::new(&go, &cl.url(1))
        .unwrap()
        .mod_download_ok(&args(&versions))
        .await
        .unwrap();
    assert_maps_eq("hashes through node 1", &want, &sums(&first));
    let upstream_requests = fixture.total();
    fixture.kill().await;

    for id in [2, 3] {
        let d = GoEnv::new(&go, &cl.url(id))
            .unwrap()
            .mod_download_ok(&args(&versions))
            .await
            .unwrap_or_else(|e| panic!("through node {id} with the upstream dead: {e:#}"));
        assert_maps_eq(
            &format!("hashes through node {id}, upstream dead"),
            &want,
            &sums(&d),
        );
    }
    assert_eq!(
        fixture.total(),
        upstream_requests,
        "nothing reached the dead upstream"
    );
}

/// Issue 9: a module with only a pseudo-version, downloaded through node 1; with the upstream
/// dead and no `@latest` ever stored, every other node answers `go list -m M@latest` from the
/// version it holds, exactly as the go command answers it from the corpus itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r9_pseudo_version_only_module_latest_from_any_node_with_the_upstream_dead() {
    let Some(go) = go("r9_pseudo_version_only_module_latest_from_any_node_with_the_upstream_dead")
    else {
        return;
    };
    let fixture = fixture().await;
    let cl = start(3, &fixture.url(), &ClusterConfig::fast()).await;
    let mv = format!("{}@{}", m::PSEUDO, m::PSEUDO_VERSION);
    GoEnv::new(&go, &cl.url(1))
        .unwrap()
        .mod_download_ok(std::slice::from_ref(&mv))
        .await
        .unwrap();
    assert_eq!(
        fixture.count(&format!("/{}/@latest", m::PSEUDO)),
        0,
        "@latest was fetched"
    );
    let reference = GoEnv::new(&go, &corpus().file_url())
        .unwrap()
        .list_query(m::PSEUDO, "latest")
        .await
        .unwrap();
    assert_eq!(
        reference.version,
        m::PSEUDO_VERSION,
        "the go command's own answer"
    );
    cl.wait_converged().await.unwrap();
    fixture.kill().await;

    for id in [3, 2, 1] {
        let got = GoEnv::new(&go, &cl.url(id))
            .unwrap()
            .list_query(m::PSEUDO, "latest")
            .await
            .unwrap_or_else(|e| panic!("go list -m M@latest through node {id}: {e:#}"));
        assert_eq!(
            (got.version.as_str(), got.time.as_str()),
            (reference.version.as_str(), reference.time.as_str()),
            "node {id}"
        );
    }
}
