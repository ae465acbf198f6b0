//! SIGTERM drains: a slow download in flight completes with the right bytes, then the process
//! exits with status 0.

use std::time::Duration;

use cairn_tests::corpus::m;
use cairn_tests::fixture::Override;
use cairn_tests::h1::{sha256_hex, version_path};
use cairn_tests::wait::{patience, wait_until};

use crate::common::{corpus, corpus_fixture, start_node, FAST_UPSTREAM};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_inflight_download_finish_then_exits_zero() {
    let c = corpus();
    let fixture = corpus_fixture().await;
    let (module, version) = (m::BIG, "v1.0.0");
    let zip = version_path(module, version, "zip");
    // ~22 MB at 512 KiB every 40 ms: ~1.7 s of transfer.
    fixture.set_override(
        &zip,
        Override::Throttled {
            chunk: 512 << 10,
            interval: Duration::from_millis(40),
        },
    );
    let mut node = start_node(&fixture.url(), FAST_UPSTREAM).await;

    let (client, url) = (node.client().clone(), format!("{}{zip}", node.url()));
    let inflight = tokio::spawn(async move {
        let r = client.get(&url).send().await?;
        let status = r.status().as_u16();
        let body = r.bytes().await?;
        Ok::<_, reqwest::Error>((status, body))
    });
    wait_until(
        "the upstream to start sending the big zip",
        patience(3.0),
        || async { fixture.bytes_sent(&zip) >= 1 << 20 },
    )
    .await
    .unwrap();
    let status = node.sigterm(patience(3.0)).await.unwrap();
    let (code, body) = inflight
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the in-flight download failed after SIGTERM: {e}"));
    assert_eq!(code, 200, "in-flight download after SIGTERM");
    assert_eq!(
        sha256_hex(&body),
        c.entry(module, version).zip_sha256,
        "in-flight zip bytes after SIGTERM ({} bytes)",
        body.len()
    );
    assert!(
        status.success(),
        "cairn-node exited with {status} after SIGTERM, want 0"
    );
}
