//! Private modules from git in a three-node cluster: every node serves them with the go
//! command's own hashes, misses are filled once by their owner and replicated, and when the git
//! server dies every node keeps serving what the cluster holds.

use cairn_tests::cluster::ClusterConfig;
use cairn_tests::gitcorpus::{module_path, GitCorpus, HOST, PRIVATE_PATTERN, TEAM};
use cairn_tests::githttp::GitServer;
use cairn_tests::gocmd::{go, GoEnv};

use super::start;
use crate::common::sums;
use crate::direct::direct_env;
use crate::direct_cairn::link_dot_git;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_serves_git_modules_and_keeps_them_when_git_dies() {
    let Some(go) = go("cluster_serves_git_modules_and_keeps_them_when_git_dies") else {
        return;
    };
    let corpus = GitCorpus::build().unwrap();
    link_dot_git(&corpus.root());
    let server = GitServer::start(&corpus.root()).await.unwrap();
    let hosts = format!(
        "[{{ prefix = \"{HOST}/{TEAM}\", url = \"{}/{TEAM}\" }}]",
        server.url()
    );
    let config = ClusterConfig::fast()
        .set("direct", "refresh_min_secs", 0)
        .set("direct", "hosts", hosts);
    // Everything is private here: the default upstream itself is `direct`.
    let cl = start(3, "direct", &config).await;
    cl.wait_liveness_agrees().await.unwrap();

    let args: Vec<String> = [
        ("plain", "", "v1.0.0"),
        ("plain", "", "v1.1.0"),
        ("mono", "sub", "v1.2.3"),
        ("v2sub", "v2", "v2.0.1"),
        ("incompat", "", "v2.0.0+incompatible"),
        ("legacy", "", "v0.2.0"),
    ]
    .iter()
    .map(|(repo, sub, v)| format!("{}@{v}", module_path(repo, sub)))
    .collect();
    let reference = sums(
        &direct_env(&go, &server.url())
            .mod_download_ok(&args)
            .await
            .unwrap(),
    );
    let via = |id: u64| {
        GoEnv::new(&go, &cl.url(id))
            .unwrap()
            .with_nosumdb(PRIVATE_PATTERN)
    };
    let first = sums(&via(1).mod_download_ok(&args).await.unwrap());
    assert_eq!(first, reference, "through node 1");
    cl.wait_blob_sets_equal().await.unwrap();

    server.kill().await;
    for id in [2, 3] {
        let got = sums(&via(id).mod_download_ok(&args).await.unwrap());
        assert_eq!(got, reference, "through node {id} with the git server dead");
    }
    let unknown = "/git.corp.example/team/plain.git/@v/v9.9.9.info";
    for id in cl.ids() {
        let st = cl.node(id).get(unknown).await.unwrap().status;
        assert!(matches!(st, 404 | 502), "node {id}: {st}");
    }
    let mut clones = 0.0;
    for id in cl.ids() {
        clones += cl
            .metrics(id)
            .await
            .unwrap()
            .sum("cairn_direct_clones_total", &[]);
    }
    // Five repositories; each node clones a repository only if it filled one of its versions.
    assert!((1.0..=15.0).contains(&clones), "{clones} clones");
}
