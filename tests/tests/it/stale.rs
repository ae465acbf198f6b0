//! Stale-if-error: once cairn has served something, a dead upstream changes nothing for clients,
//! even after every list and `@latest` TTL has expired.

use std::collections::BTreeMap;
use std::time::Duration;

use cairn_tests::gocmd::{go, GoEnv};

use crate::common::{assert_maps_eq, corpus, corpus_fixture, expected_sums, start_node, sums};

const CONFIG: &str = "\
[cache]
list_ttl_secs = 1
latest_ttl_secs = 1
[upstream_http]
retries = 0
backoff_base_ms = 10
first_byte_timeout_ms = 2000
";

/// Everything the go command can ask about the corpus: hashes, lists, `@latest`.
type Answers = (
    BTreeMap<String, (String, String)>,
    BTreeMap<String, Vec<String>>,
    BTreeMap<String, (String, String)>,
);

async fn ask_everything(env: &GoEnv) -> Answers {
    let c = corpus();
    let downloads = env.mod_download_ok(&c.module_versions()).await.unwrap();
    let (mut lists, mut latest) = (BTreeMap::new(), BTreeMap::new());
    for module in c.module_paths() {
        lists.insert(module.clone(), env.list_versions(&module).await.unwrap());
        let l = env.list_query(&module, "latest").await.unwrap();
        latest.insert(module, (l.version, l.time));
    }
    (sums(&downloads), lists, latest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_upstream_changes_nothing_for_warmed_modules() {
    let Some(go) = go("a_dead_upstream_changes_nothing_for_warmed_modules") else {
        return;
    };
    let fixture = corpus_fixture().await;
    let node = start_node(&fixture.url(), CONFIG).await;
    let warm = ask_everything(&GoEnv::new(&go, &node.url()).unwrap()).await;
    assert_maps_eq(
        "warm-up hashes vs the corpus",
        &expected_sums(corpus()),
        &warm.0,
    );

    fixture.kill().await;
    // (Not "connecting fails": with tests running in parallel, another test may bind the freed
    // port at once. What matters is that the fixture answers nothing from now on.)
    let seen = fixture.requests().len();
    // Let every list/@latest TTL (1 s) expire, so each answer below is served stale.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let cold = ask_everything(&GoEnv::new(&go, &node.url()).unwrap()).await;
    assert_eq!(
        fixture.requests().len(),
        seen,
        "the killed fixture served requests"
    );
    assert_maps_eq("hashes with the upstream dead", &warm.0, &cold.0);
    assert_maps_eq(
        "go list -m -versions with the upstream dead",
        &warm.1,
        &cold.1,
    );
    assert_maps_eq(
        "go list -m M@latest with the upstream dead",
        &warm.2,
        &cold.2,
    );
    let health = node.get("/healthz").await.unwrap();
    assert_eq!(health.status, 200, "/healthz after the upstream died");
}
