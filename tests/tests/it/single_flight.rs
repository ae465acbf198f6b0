//! A stampede of identical misses (a CI burst after a release) reaches the upstream once.

use std::time::Duration;

use cairn_tests::corpus::m;
use cairn_tests::fixture::Override;
use cairn_tests::h1::{sha256_hex, version_path};
use cairn_tests::wait::patience;

use crate::common::{corpus, corpus_fixture, start_node, FAST_UPSTREAM};

const CLIENTS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_misses_make_one_upstream_request() {
    let c = corpus();
    let fixture = corpus_fixture().await;
    let (module, version) = (m::MANY, "v1.0.0");
    let zip = version_path(module, version, "zip");
    fixture.set_override(&zip, Override::Delay(Duration::from_millis(1500)));
    let node = start_node(&fixture.url(), FAST_UPSTREAM).await;

    let url = format!("{}{zip}", node.url());
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                // One client per task: separate connections, like separate CI jobs.
                let client = reqwest::Client::builder()
                    .no_proxy()
                    .timeout(patience(6.0))
                    .build()
                    .unwrap();
                let r = client
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| format!("client {i}: {e}"))?;
                let status = r.status().as_u16();
                let body = r
                    .bytes()
                    .await
                    .map_err(|e| format!("client {i}: body: {e}"))?;
                Ok::<_, String>((status, body))
            })
        })
        .collect();
    let want = &c.entry(module, version).zip_sha256;
    let mut failures = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok((200, body)) if &sha256_hex(&body) == want => {}
            Ok((status, body)) => failures.push(format!(
                "status {status}, {} bytes, sha256 {}",
                body.len(),
                sha256_hex(&body)
            )),
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {CLIENTS} clients did not get the right zip:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let counts: Vec<(String, usize)> = ["info", "mod", "zip"]
        .iter()
        .map(|ext| {
            let p = version_path(module, version, ext);
            let n = fixture.count(&p);
            (p, n)
        })
        .collect();
    assert_eq!(
        fixture.count(&zip),
        1,
        "upstream requests per file: {counts:?}"
    );
    assert!(
        counts.iter().all(|(_, n)| *n <= 1),
        "duplicate upstream requests: {counts:?}"
    );
}
