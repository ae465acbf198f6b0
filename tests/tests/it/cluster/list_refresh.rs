//! Background refreshes of lists happen once per cluster (issue 14): after the list TTL, every
//! node serves its stale copy and asks for a refresh, but only the refresh owner (rendezvous
//! over the live members) fetches it upstream; the others get the new list through the
//! replicated state.

use cairn_tests::cluster::ClusterConfig;
use cairn_tests::corpus::{time_n, Corpus, ModuleSpec, VersionSpec};
use cairn_tests::fixture::Fixture;
use cairn_tests::h1::list_path;
use cairn_tests::wait::{patience, wait_until};

use super::start;

const GROW: &str = "example.com/grow";
/// Long enough for three nodes to converge after a refresh before the list is stale again.
const TTL_SECS: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_list_is_fetched_upstream_once_per_cluster_not_once_per_node() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ModuleSpec::new(GROW).version("v1.0.0", &time_n(1));
    let mut corpus = Corpus::write(dir.path(), &[spec]).unwrap();
    let fixture = Fixture::start(Some(dir.path())).await.unwrap();
    let cfg = ClusterConfig::fast().set("cache", "list_ttl_secs", TTL_SECS);
    let cl = start(3, &fixture.url(), &cfg).await;
    let path = list_path(GROW);
    let listed = |id: u64| {
        let (cl, path) = (&cl, &path);
        async move {
            let r = cl.node(id).get(path).await.unwrap();
            assert_eq!(r.status, 200, "GET {path} on node {id}: {}", r.text());
            r.text()
        }
    };

    assert_eq!(listed(1).await, "v1.0.0\n");
    cl.wait_converged().await.unwrap();
    for id in cl.ids() {
        assert_eq!(listed(id).await, "v1.0.0\n", "node {id}");
    }
    assert_eq!(
        fixture.count(&path),
        1,
        "one cold fetch, then hits everywhere"
    );

    corpus
        .put_version(GROW, &VersionSpec::new(GROW, "v1.1.0", &time_n(2)))
        .unwrap();
    // The condition is the clock itself: the list is stale once its TTL has passed.
    tokio::time::sleep(std::time::Duration::from_millis(TTL_SECS * 1000 + 300)).await;
    let stale = futures_util::future::join_all(cl.ids().into_iter().map(listed)).await;
    assert!(
        stale.iter().all(|l| l == "v1.0.0\n"),
        "stale copies served at once: {stale:?}"
    );
    wait_until("v1.1.0 listed by every node", patience(2.0), || async {
        let all = futures_util::future::join_all(cl.ids().into_iter().map(listed)).await;
        all.iter().all(|l| l.contains("v1.1.0"))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", fixture.log_tail(10)));
    assert_eq!(
        fixture.count(&path),
        2,
        "three nodes served a stale list: one refresh for the cluster\n{}",
        fixture.log_tail(10)
    );
}
