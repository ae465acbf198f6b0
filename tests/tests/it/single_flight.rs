//! A stampede of identical misses (a CI burst after a release) reaches the upstream once, and the
//! client that caused the fill walking away does not break it for the others.

use std::time::Duration;

use cairn_tests::corpus::m;
use cairn_tests::fixture::Override;
use cairn_tests::h1::{latest_path, list_path, sha256_hex, version_path};
use cairn_tests::stampede::{stampede, wrong_answers};
use cairn_tests::wait::{patience, wait_until};

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

    let urls = vec![format!("{}{zip}", node.url()); CLIENTS];
    let want = &c.entry(module, version).zip_sha256;
    let failures = wrong_answers(&stampede(&urls).await, &urls, want);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_client_hanging_up_does_not_break_the_fill_for_others() {
    let c = corpus();
    let fixture = corpus_fixture().await;
    let (module, version) = (m::BIG, "v1.0.0");
    let zip = version_path(module, version, "zip");
    // ~22 MB at 512 KiB every 30 ms: ~1.3 s.
    fixture.set_override(
        &zip,
        Override::Throttled {
            chunk: 512 << 10,
            interval: Duration::from_millis(30),
        },
    );
    let node = start_node(&fixture.url(), FAST_UPSTREAM).await;
    let url = format!("{}{zip}", node.url());

    let first = {
        let (client, url) = (node.client().clone(), url.clone());
        tokio::spawn(async move { client.get(&url).send().await.map(|r| r.status()) })
    };
    wait_until("the fill to start", patience(3.0), || async {
        fixture.bytes_sent(&zip) >= 2 << 20
    })
    .await
    .unwrap();
    let second = {
        let (client, url) = (node.client().clone(), url.clone());
        tokio::spawn(async move {
            let r = client.get(&url).send().await?;
            let status = r.status().as_u16();
            Ok::<_, reqwest::Error>((status, r.bytes().await?))
        })
    };
    first.abort(); // the first client hangs up mid-fill
    let (status, body) = second.await.unwrap().unwrap();
    assert_eq!(status, 200, "the second client after the first hung up");
    assert_eq!(
        sha256_hex(&body),
        c.entry(module, version).zip_sha256,
        "the second client's zip ({} bytes)",
        body.len()
    );
    let r = node.get(&zip).await.unwrap();
    assert_eq!(
        sha256_hex(&r.body),
        c.entry(module, version).zip_sha256,
        "a later hit"
    );
    assert!(
        fixture.count(&zip) <= 2,
        "upstream requests for the zip: {}",
        fixture.count(&zip)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stampedes_on_lists_latest_info_and_404s_make_one_upstream_request_each() {
    let fixture = corpus_fixture().await;
    let missing = "example.com/nosuchmodule";
    let cases = [
        (list_path(m::MODV2), 200),
        (latest_path(m::PSEUDO), 200),
        (version_path(m::RETRACT, "v1.1.0", "info"), 200),
        (version_path(m::RETRACT, "v1.1.0", "mod"), 200),
        (list_path(missing), 404),
        (version_path(missing, "v1.0.0", "info"), 404),
    ];
    for (path, _) in &cases {
        fixture.set_override(path, Override::Delay(Duration::from_millis(1000)));
    }
    let node = start_node(&fixture.url(), FAST_UPSTREAM).await;
    let mut problems = Vec::new();
    for (path, want) in &cases {
        let results = stampede(&vec![format!("{}{path}", node.url()); 100]).await;
        let bodies: std::collections::BTreeSet<Vec<u8>> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|(_, b)| b.to_vec())
            .collect();
        let wrong: Vec<String> = results
            .iter()
            .filter_map(|r| match r {
                Ok((s, _)) if s == want => None,
                Ok((s, b)) => Some(format!("{s}: {}", String::from_utf8_lossy(b))),
                Err(e) => Some(e.clone()),
            })
            .collect();
        if !wrong.is_empty() {
            problems.push(format!(
                "{path}: {} clients got the wrong answer, e.g. {:?}",
                wrong.len(),
                &wrong[..wrong.len().min(3)]
            ));
        }
        if *want == 200 && bodies.len() != 1 {
            problems.push(format!("{path}: {} different bodies", bodies.len()));
        }
        let n = fixture.count(path);
        if n != 1 {
            problems.push(format!(
                "{path}: the upstream saw {n} requests for 100 concurrent clients"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
