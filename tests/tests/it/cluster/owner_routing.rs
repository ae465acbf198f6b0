//! Concurrent cold misses for one version, spread over every node, reach the upstream once: each
//! miss is routed to the version's owner node, which fetches it a single time.

use std::time::Duration;

use cairn_tests::cluster::ClusterConfig;
use cairn_tests::corpus::generated_versions;
use cairn_tests::fixture::Override;
use cairn_tests::h1::version_path;
use cairn_tests::stampede::{stampede, wrong_answers};

use super::{corpus, fixture, start};

/// Concurrent clients, spread round-robin over the nodes.
const CLIENTS: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_concurrent_cold_misses_on_every_node_make_one_upstream_fetch() {
    let fixture = fixture().await;
    let cl = start(3, &fixture.url(), &ClusterConfig::fast()).await;
    // Every node must see every peer alive before the stampede, or the owners would disagree.
    cl.wait_liveness_agrees().await.unwrap();

    let (module, version) = generated_versions()[5].clone();
    let zip = version_path(&module, &version, "zip");
    fixture.set_override(&zip, Override::Delay(Duration::from_millis(1500)));
    let want = corpus().entry(&module, &version).zip_sha256.clone();
    let ids = cl.ids();
    let urls: Vec<String> = (0..CLIENTS)
        .map(|i| format!("{}{zip}", cl.url(ids[i % ids.len()])))
        .collect();
    let failures = wrong_answers(&stampede(&urls).await, &urls, &want);
    assert!(
        failures.is_empty(),
        "{} of {CLIENTS} clients did not get the right zip:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let mut per_node = Vec::new();
    for id in &ids {
        let m = cl.metrics(*id).await.unwrap();
        per_node.push(format!(
            "node {id}: upstream {}",
            m.sum("cairn_upstream_requests_total", &[("kind", "zip")])
        ));
    }
    assert_eq!(
        fixture.count(&zip),
        1,
        "the upstream saw {} requests for {zip} ({})",
        fixture.count(&zip),
        per_node.join(", ")
    );
}
