//! Multi-region topology (issue 14) on one machine: nodes in regions a, b and c record their
//! region in the membership by themselves (bootstrapped from static `--peers`), `cairn status`
//! and `cairn members list` group members by region and warn when losing one region would lose
//! the quorum, the per-region gauges say the same, a promotion that gives one region a majority
//! of the voters is refused unless forced (a learner is fine), and a node cannot report another
//! node's location.

use std::collections::BTreeMap;

use cairn_proto::v1::raft_client::RaftClient;
use cairn_proto::v1::SetLocationRequest;
use cairn_tests::cluster::{ClusterConfig, TestCluster};
use cairn_tests::wait::{patience, wait_until};
use tonic::Code;

use super::mtls::{channel, client_config};
use super::{fixture, start};

/// Regions of nodes 1..=5.
const REGIONS: [(u64, &str); 5] = [(1, "a"), (2, "b"), (3, "c"), (4, "a"), (5, "a")];

fn config() -> ClusterConfig {
    REGIONS
        .iter()
        .fold(ClusterConfig::fast(), |c, (id, region)| {
            c.set_for(*id, "cluster", "region", format!("\"{region}\""))
                .set_for(*id, "cluster", "zone", format!("\"{region}-{id}\""))
        })
}

/// `id → (region, voter)` from `cairn members list --json` asked of node `at`.
async fn regions_of(cl: &TestCluster, at: u64) -> BTreeMap<u64, (String, bool)> {
    let out = cl.cli_at(at, &["--json", "members", "list"]).await.unwrap();
    let j = out.json().unwrap();
    j["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members in {out}"))
        .iter()
        .map(|m| {
            let id = m["id"].as_u64().unwrap();
            let region = m["region"].as_str().unwrap_or_default().to_string();
            (id, (region, m["voter"].as_bool().unwrap_or(false)))
        })
        .collect()
}

/// Waits until node `at` reports every one of `ids` with its configured region.
async fn wait_regions_recorded(cl: &TestCluster, at: u64, ids: &[u64]) {
    let want: BTreeMap<u64, String> = REGIONS
        .iter()
        .filter(|(id, _)| ids.contains(id))
        .map(|(id, r)| (*id, r.to_string()))
        .collect();
    let r = wait_until(
        "every member's region in the membership",
        patience(3.0),
        || {
            let want = want.clone();
            async move {
                let got: BTreeMap<u64, String> = regions_of(cl, at)
                    .await
                    .into_iter()
                    .map(|(id, (r, _))| (id, r))
                    .collect();
                got == want
            }
        },
    )
    .await;
    if let Err(e) = r {
        panic!(
            "{e:#}\nmembers: {:?}\n{}",
            regions_of(cl, at).await,
            cl.log_tails(20)
        );
    }
}

/// A gauge on node `id` (summed over the matching series).
async fn gauge(cl: &TestCluster, id: u64, name: &str, filter: &[(&str, &str)]) -> f64 {
    cl.metrics(id).await.unwrap().sum(name, filter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regions_are_recorded_grouped_and_voter_placement_is_enforced() {
    let fixture = fixture().await;
    let cfg = config();
    let mut cl = start(3, &fixture.url(), &cfg).await;
    let leader = cl.wait_for_leader().await.unwrap();

    // Nodes 2 and 3 were bootstrapped from --peers: they report their own region.
    wait_regions_recorded(&cl, 2, &[1, 2, 3]).await;
    let status = cl.cli_at(3, &["--json", "status"]).await.unwrap();
    let j = status.json().unwrap();
    for m in j["members"].as_array().unwrap() {
        let id = m["id"].as_u64().unwrap();
        let (_, region) = REGIONS[id as usize - 1];
        assert_eq!(m["region"], region, "node {id} in {status}");
        assert_eq!(m["zone"], format!("{region}-{id}"), "node {id} in {status}");
    }
    assert!(j["placement_warning"].is_null(), "3×1 survives: {status}");
    assert_eq!(j["regions"]["b"]["voters"], 1, "{status}");
    let table = cl.cli_at(1, &["status"]).await.unwrap();
    assert!(table.stdout.contains("REGION"), "{table}");
    assert!(
        table.stdout.contains("region c: 1/1 voters reachable"),
        "{table}"
    );
    let gauges = wait_until("per-region gauges on the leader", patience(2.0), || {
        let cl = &cl;
        async move {
            gauge(
                cl,
                leader,
                "cairn_cluster_region_voters",
                &[("region", "a")],
            )
            .await
                == 1.0
                && gauge(cl, leader, "cairn_cluster_region_voters_reachable", &[]).await == 3.0
                && gauge(cl, leader, "cairn_cluster_quorum_survives_region_loss", &[]).await == 1.0
        }
    })
    .await;
    if let Err(e) = gauges {
        let m = cl.metrics(leader).await.unwrap();
        panic!("{e:#}\n{}", m.dump("cairn_cluster"));
    }
    // The leader labels each member's replication lag with the member's region.
    let lag_labelled = wait_until(
        "region labels on the leader's lag gauges",
        patience(2.0),
        || {
            let cl = &cl;
            async move {
                let m = cl.metrics(leader).await.unwrap();
                REGIONS
                    .iter()
                    .take(3)
                    .filter(|(id, _)| *id != leader)
                    .all(|(id, region)| {
                        let peer = id.to_string();
                        let filter = [("peer", peer.as_str()), ("region", *region)];
                        m.matching("cairn_raft_replication_lag_entries", &filter)
                            .count()
                            == 1
                    })
            }
        },
    )
    .await;
    let m = cl.metrics(leader).await.unwrap();
    if let Err(e) = lag_labelled {
        panic!("{e:#}\n{}", m.dump("cairn_raft_replication_lag"));
    }
    assert!(
        m.has("cairn_node_info")
            && m.sum(
                "cairn_node_info",
                &[(
                    "zone",
                    &format!("{}-{leader}", REGIONS[leader as usize - 1].1)
                )]
            ) == 1.0,
        "{}",
        m.dump("cairn_node_info")
    );

    // A fourth voter in region a (2 + 1 + 1) is no majority, so it is accepted, but losing
    // region a would now lose the quorum: status, members list and the gauge say so.
    cl.start_joiner(4).await.unwrap();
    let addr4 = cl.grpc_addr(4).to_string();
    cl.cli_at(1, &["members", "add", "4", &addr4])
        .await
        .unwrap()
        .ok()
        .unwrap_or_else(|e| panic!("{e:#}\n{}", cl.log_tails(20)));
    let warning =
        "voter placement does not survive the loss of one region: region a holds 2 of 4 voters";
    let list = cl.cli_at(2, &["members", "list"]).await.unwrap();
    assert!(list.stdout.contains(warning), "{list}");
    let status = cl.cli_at(4, &["--json", "status"]).await.unwrap();
    let w = status.json().unwrap()["placement_warning"].to_string();
    assert!(w.contains(warning), "{status}");
    wait_until("the leader's gauge sees the risk", patience(2.0), || {
        let cl = &cl;
        async move {
            gauge(cl, leader, "cairn_cluster_quorum_survives_region_loss", &[]).await == 0.0
        }
    })
    .await
    .unwrap();

    // A fifth voter in region a would give it 3 of 5, a majority: refused with the reason.
    cl.start_joiner(5).await.unwrap();
    let addr5 = cl.grpc_addr(5).to_string();
    let refused = cl
        .cli_at(1, &["members", "add", "5", &addr5])
        .await
        .unwrap();
    assert_ne!(refused.code, Some(0), "{refused}");
    assert!(
        refused.stderr.contains("FailedPrecondition")
            && refused.stderr.contains("region a would hold 3 of 5 voters")
            && refused.stderr.contains("--force-placement"),
        "{refused}"
    );
    assert!(
        !regions_of(&cl, 1).await.contains_key(&5),
        "node 5 is not a member"
    );

    // As a learner it is fine; promoting it needs --force-placement.
    cl.cli_at(1, &["members", "add", "5", &addr5, "--learner"])
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(
        regions_of(&cl, 3).await.get(&5),
        Some(&("a".to_string(), false))
    );
    cl.cli_at(1, &["members", "add", "5", &addr5, "--force-placement"])
        .await
        .unwrap()
        .ok()
        .unwrap_or_else(|e| panic!("{e:#}\n{}", cl.log_tails(20)));
    wait_regions_recorded(&cl, 5, &[1, 2, 3, 4, 5]).await;
    assert_eq!(
        regions_of(&cl, 5).await.get(&5),
        Some(&("a".to_string(), true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cannot_report_another_nodes_location() {
    let fixture = fixture().await;
    let cl = start(3, &fixture.url(), &config()).await;
    let leader = cl.wait_for_leader().await.unwrap();
    let other = cl.ids().into_iter().find(|&id| id != leader).unwrap();
    let pki = cl.pki().expect("the harness cluster is secure");
    let (cert, key) = pki.node(other).unwrap();
    let ch = channel(
        cl.grpc_addr(leader),
        client_config(&pki.ca(), Some((&cert, &key))),
    )
    .await
    .unwrap();
    let mut raft = RaftClient::new(ch);
    let err = raft
        .set_location(SetLocationRequest {
            id: leader,
            region: "elsewhere".into(),
            zone: String::new(),
        })
        .await
        .expect_err("a node reporting another node's location");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // Its own location is accepted (a no-op once recorded).
    let (_, region) = REGIONS[other as usize - 1];
    raft.set_location(SetLocationRequest {
        id: other,
        region: region.into(),
        zone: format!("{region}-{other}"),
    })
    .await
    .unwrap_or_else(|e| panic!("node {other} reporting its own location: {e:?}"));
    let regions = regions_of(&cl, leader).await;
    assert_eq!(regions[&leader].0, REGIONS[leader as usize - 1].1);
}
