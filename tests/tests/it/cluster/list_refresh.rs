//! Background refreshes of lists and `@latest` happen once per cluster (issue 14): after the
//! TTL, every node serves its stale copy and asks for a refresh, but only the refresh owner
//! (rendezvous over the live members) fetches it upstream; the others get the new answer
//! through the replicated state.

use cairn_tests::cluster::{ClusterConfig, TestCluster};
use cairn_tests::corpus::{time_n, Corpus, ModuleSpec, VersionSpec};
use cairn_tests::fixture::Fixture;
use cairn_tests::h1::{latest_path, list_path};
use cairn_tests::wait::{patience, wait_until};
use futures_util::future::join_all;

use super::start;

const GROW: &str = "example.com/grow";
/// Long enough for three nodes to converge after a refresh before the answers are stale again.
const TTL_SECS: u64 = 5;

async fn get(cl: &TestCluster, id: u64, path: &str) -> String {
    let r = cl.node(id).get(path).await.unwrap();
    assert_eq!(r.status, 200, "GET {path} on node {id}: {}", r.text());
    r.text()
}

/// `(list, @latest version)` as each node answers them.
async fn answers(cl: &TestCluster) -> Vec<(String, String)> {
    join_all(cl.ids().into_iter().map(|id| async move {
        let list = get(cl, id, &list_path(GROW)).await;
        let latest: serde_json::Value =
            serde_json::from_str(&get(cl, id, &latest_path(GROW)).await).unwrap();
        (
            list,
            latest["Version"].as_str().unwrap_or_default().to_string(),
        )
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_list_or_latest_is_fetched_upstream_once_per_cluster_not_once_per_node() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ModuleSpec::new(GROW)
        .version("v1.0.0", &time_n(1))
        .latest("v1.0.0");
    let mut corpus = Corpus::write(dir.path(), &[spec]).unwrap();
    let fixture = Fixture::start(Some(dir.path())).await.unwrap();
    let cfg = ClusterConfig::fast()
        .set("cache", "list_ttl_secs", TTL_SECS)
        .set("cache", "latest_ttl_secs", TTL_SECS);
    let cl = start(3, &fixture.url(), &cfg).await;
    let (list, latest) = (list_path(GROW), latest_path(GROW));
    let old = ("v1.0.0\n".to_string(), "v1.0.0".to_string());

    get(&cl, 1, &list).await;
    get(&cl, 1, &latest).await;
    cl.wait_converged().await.unwrap();
    assert_eq!(answers(&cl).await, vec![old.clone(); 3]);
    let counts = || (fixture.count(&list), fixture.count(&latest));
    assert_eq!(
        counts(),
        (1, 1),
        "one cold fetch each, then hits everywhere"
    );

    corpus
        .put_version(GROW, &VersionSpec::new(GROW, "v1.1.0", &time_n(2)))
        .unwrap();
    corpus.set_latest(GROW, "v1.1.0").unwrap();
    // The condition is the clock itself: the answers are stale once their TTL has passed.
    tokio::time::sleep(std::time::Duration::from_millis(TTL_SECS * 1000 + 300)).await;
    assert_eq!(
        answers(&cl).await,
        vec![old; 3],
        "stale copies are served at once"
    );
    let new = ("v1.0.0\nv1.1.0\n".to_string(), "v1.1.0".to_string());
    wait_until(
        "the new list and @latest on every node",
        patience(2.0),
        || async { answers(&cl).await == vec![new.clone(); 3] },
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", fixture.log_tail(10)));
    assert_eq!(
        counts(),
        (2, 2),
        "three nodes served stale answers: one refresh each for the cluster\n{}",
        fixture.log_tail(10)
    );
}
