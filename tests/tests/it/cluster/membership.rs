//! A pristine fourth node added with `cairn members add` catches up on the state, pulls every
//! blob, and serves the whole cached corpus by itself once the upstream is gone.

use cairn_tests::cluster::ClusterConfig;
use cairn_tests::gocmd::{go, GoEnv};

use std::collections::BTreeSet;

use super::{args, expected, fixture, standard_versions, start, status_members, warm};
use crate::common::{assert_maps_eq, sums};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_fourth_node_added_with_the_cli_gets_every_blob() {
    let Some(go) = go("cluster_fourth_node_added_with_the_cli_gets_every_blob") else {
        return;
    };
    let fixture = fixture().await;
    let mut cl = start(3, &fixture.url(), &ClusterConfig::fast()).await;
    let versions = standard_versions(false);
    let shas = warm(&cl.url(1), &versions).await;
    cl.wait_blobs_everywhere(&shas).await.unwrap();
    cl.wait_converged().await.unwrap();

    cl.start_joiner(4).await.unwrap();
    let addr = cl.grpc_addr(4).to_string();
    let out = cl
        .cli_at(1, &["members", "add", "4", &addr])
        .await
        .unwrap()
        .ok()
        .unwrap_or_else(|e| panic!("{e:#}\n{}", cl.log_tails(30)));
    println!("{}", out.stdout);
    let applied = cl.wait_caught_up(4).await.unwrap();
    cl.wait_blobs_everywhere(&shas).await.unwrap();
    println!(
        "node 4 caught up at index {applied} with all {} blobs",
        shas.len()
    );

    let out = cl
        .cli_at(4, &["members", "list"])
        .await
        .unwrap()
        .ok()
        .unwrap();
    for id in cl.ids() {
        let a = cl.grpc_addr(id).to_string();
        assert!(
            out.stdout.contains(&a),
            "`cairn members list` does not name node {id} ({a}):\n{out}"
        );
    }

    let out = cl.cli_at(4, &["status", "--json"]).await.unwrap();
    let members = status_members(&out.json().unwrap());
    let ids: BTreeSet<u64> = members.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, BTreeSet::from([1, 2, 3, 4]), "members in {out}");
    assert_eq!(
        members.iter().filter(|(_, role)| role == "leader").count(),
        1,
        "one leader in {out}"
    );

    fixture.kill().await;
    let d = GoEnv::new(&go, &cl.url(4))
        .unwrap()
        .mod_download_ok(&args(&versions))
        .await
        .unwrap_or_else(|e| panic!("through node 4 with the upstream dead: {e:#}"));
    assert_maps_eq(
        "hashes through node 4, upstream dead",
        &expected(&versions),
        &sums(&d),
    );
}
