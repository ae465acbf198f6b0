//! Crash safety: kill -9 at the worst moment never leaves half-written bytes behind, and an
//! acknowledged download survives a crash even when the upstream is gone afterwards.

use std::time::Duration;

use cairn_tests::corpus::m;
use cairn_tests::fixture::Override;
use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::h1::{sha256_hex, version_path};
use cairn_tests::node::CairnNode;
use cairn_tests::wait::{patience, wait_until};

use crate::common::{
    assert_maps_eq, assert_zip_body, corpus, corpus_fixture, get, start_node, sums, FAST_UPSTREAM,
};

/// Every blob named by a sha256 must hash to its name (no torn writes under a final name).
fn assert_blobs_match_their_names(node: &CairnNode) {
    for f in node.blob_files() {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let got = sha256_hex(&std::fs::read(&f).unwrap());
            assert_eq!(got, name, "blob {} does not hash to its name", f.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_a_fill_then_restart_serves_the_whole_zip() {
    let c = corpus();
    let fixture = corpus_fixture().await;
    let (module, version) = (m::BIG, "v1.0.0");
    let zip = version_path(module, version, "zip");
    // ~22 MB at 256 KiB every 40 ms: the fill takes ~3.5 s.
    fixture.set_override(
        &zip,
        Override::Throttled {
            chunk: 256 << 10,
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
        "the upstream to have sent 4 MB of the big zip",
        patience(3.0),
        || async { fixture.bytes_sent(&zip) >= 4 << 20 },
    )
    .await
    .unwrap();
    node.kill9().await;
    let sent_at_kill = fixture.bytes_sent(&zip);
    assert!(
        sent_at_kill < c.entry(module, version).zip_len,
        "the fill finished before the kill; slow it down"
    );
    if let Ok(Ok((200, body))) = inflight.await {
        // Whatever the killed node managed to send must not pass for a complete, wrong zip.
        let e = c.entry(module, version);
        assert!(
            body.len() as u64 != e.zip_len || sha256_hex(&body) == e.zip_sha256,
            "the killed node answered 200 with a complete-length but wrong zip"
        );
    }
    assert_blobs_match_their_names(&node);

    fixture.clear_override(&zip);
    node.restart().await.unwrap();
    assert_blobs_match_their_names(&node);
    let r = get(&node, &zip).await;
    assert_zip_body(&r, c, module, version);
    if let Some(go) = go("kill9_during_a_fill_then_restart_serves_the_whole_zip") {
        let d = GoEnv::new(&go, &node.url())
            .unwrap()
            .mod_download_ok(&[format!("{module}@{version}")])
            .await
            .unwrap();
        assert_eq!(d[0].sum, c.entry(module, version).zip_h1);
    }
    assert_blobs_match_their_names(&node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_download_survives_kill9_with_the_upstream_gone() {
    let Some(go) = go("an_acknowledged_download_survives_kill9_with_the_upstream_gone") else {
        return;
    };
    let c = corpus();
    let fixture = corpus_fixture().await;
    let mut node = start_node(&fixture.url(), FAST_UPSTREAM).await;
    let want: Vec<String> = [
        (m::SIMPLE, "v1.1.0"),
        (m::MANY, "v1.0.0"),
        (m::UPPER, m::UPPER_RC),
        (m::LEGACY, m::LEGACY_INCOMPATIBLE),
    ]
    .iter()
    .map(|(m, v)| format!("{m}@{v}"))
    .collect();
    let env = GoEnv::new(&go, &node.url()).unwrap();
    let first = env.mod_download_ok(&want).await.unwrap();
    let list = env.list_versions(m::SIMPLE).await.unwrap();
    let latest = env.list_query(m::SIMPLE, "latest").await.unwrap();
    node.kill9().await;
    fixture.kill().await;

    node.restart().await.unwrap();
    let env = GoEnv::new(&go, &node.url()).unwrap();
    let second = env.mod_download_ok(&want).await.unwrap();
    assert_eq!(
        env.list_versions(m::SIMPLE).await.unwrap(),
        list,
        "list after restart"
    );
    assert_eq!(
        env.list_query(m::SIMPLE, "latest").await.unwrap(),
        latest,
        "@latest after restart"
    );
    assert_maps_eq(
        "hashes after kill -9 + restart, upstream dead",
        &sums(&first),
        &sums(&second),
    );
    for d in &second {
        assert_eq!(
            d.sum,
            c.entry(&d.path, &d.version).zip_h1,
            "{}@{}",
            d.path,
            d.version
        );
    }
    assert_blobs_match_their_names(&node);
}
