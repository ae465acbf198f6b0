//! `cairn prefetch` (issue 12): warming a node from a `go.sum`. Every line is filled exactly
//! once (the recording upstream proves it), a second run fetches nothing, failures are listed
//! with a non-zero exit, the progress output suits a log, and what was filled is served with
//! the upstream gone, with the go command's hashes.

use std::collections::BTreeMap;
use std::path::Path;

use cairn_tests::cluster::{run_cli, CliOutput};
use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::h1::escape;

use crate::common::{corpus, corpus_fixture, expected_sums, start_node, sums, FAST_UPSTREAM};

/// A version the upstream does not have.
const MISSING: &str =
    "example.com/missing v1.0.0 h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";

/// `cairn prefetch` against `proxy` (the `--node` address is never dialled by prefetch).
async fn prefetch(proxy: &str, args: &[&str]) -> CliOutput {
    let mut all = vec!["prefetch", "--proxy", proxy];
    all.extend_from_slice(args);
    run_cli("127.0.0.1:9".parse().unwrap(), &all).await.unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p12_prefetch_fills_each_go_sum_line_once_and_a_second_run_fetches_nothing() {
    let Some(go) = go("p12_prefetch_fills_each_go_sum_line_once_and_a_second_run_fetches_nothing")
    else {
        return;
    };
    let c = corpus();
    let fixture = corpus_fixture().await;
    let node = start_node(&fixture.url(), FAST_UPSTREAM).await;
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "go.sum", &c.go_sum());
    std::fs::create_dir(dir.path().join("other")).unwrap();
    let bad = write(&dir.path().join("other"), "go.sum", MISSING);
    // Slow answers so that the run lasts long enough for several log lines.
    fixture.set_delay(std::time::Duration::from_millis(30));

    let first = prefetch(
        &node.url(),
        &[
            "--concurrency",
            "4",
            "--progress-interval",
            "0.1",
            &good,
            &bad,
        ],
    )
    .await;
    assert_eq!(
        first.code,
        Some(1),
        "a missing version must fail the run\n{first}"
    );
    let n = c.entries.len();
    assert!(
        first
            .stdout
            .contains(&format!("prefetched {} versions in", n + 1))
            && first
                .stdout
                .contains(&format!("{n} filled, 0 already cached, 1 failed")),
        "{first}"
    );
    let failed: Vec<&str> = first
        .stdout
        .lines()
        .filter(|l| l.starts_with("FAILED "))
        .collect();
    assert_eq!(failed.len(), 1, "{first}");
    assert!(
        failed[0].starts_with("FAILED example.com/missing@v1.0.0: ") && failed[0].contains("404"),
        "the failure names the version and why: {first}"
    );

    // Exactly one upstream fetch of each zip; at most one of each go.mod.
    for e in &c.entries {
        let base = format!("/{}/@v/{}", escape(&e.module), escape(&e.version));
        assert_eq!(
            fixture.count(&format!("{base}.zip")),
            1,
            "{}@{} zip",
            e.module,
            e.version
        );
        assert!(
            fixture.count(&format!("{base}.mod")) <= 1,
            "{}@{} mod",
            e.module,
            e.version
        );
    }

    // A log, not a terminal: plain lines, no carriage returns or escapes, counts that only grow.
    assert!(
        !first.stderr.contains('\r') && !first.stderr.contains('\x1b'),
        "terminal control codes in a log: {first}"
    );
    let progress: Vec<&str> = first
        .stderr
        .lines()
        .filter(|l| l.starts_with("prefetch: "))
        .collect();
    assert!(!progress.is_empty(), "no progress lines: {first}");
    let mut last = 0u64;
    for l in &progress {
        let done: u64 = l["prefetch: ".len()..]
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(done >= last, "progress went backwards: {first}");
        last = done;
        assert!(
            l.contains(&format!("/{} versions", n + 1)) && l.contains("ETA"),
            "{l}"
        );
    }

    // Second run: everything is cached, the upstream sees nothing.
    fixture.reset_log();
    let second = prefetch(&node.url(), &["--json", &good])
        .await
        .ok()
        .unwrap();
    assert_eq!(
        fixture.total(),
        0,
        "the second run reached the upstream: {}",
        fixture.log_tail(10)
    );
    let j = second.json().unwrap();
    assert_eq!(j["versions"], n as u64, "{second}");
    assert_eq!(j["filled"], 0, "{second}");
    assert_eq!(j["cached"], n as u64, "{second}");
    assert_eq!(j["failed"], 0, "{second}");

    // The upstream dies; the go command gets every prefetched version with its hashes.
    fixture.kill().await;
    let env = GoEnv::new(&go, &node.url()).unwrap();
    let mvs = c.module_versions();
    let got = sums(&env.mod_download_ok(&mvs).await.unwrap());
    let want: BTreeMap<_, _> = expected_sums(c);
    crate::common::assert_maps_eq("go mod download after prefetch", &want, &got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p12_prefetch_refuses_bytes_the_go_sum_disagrees_with() {
    let c = corpus();
    let fixture = corpus_fixture().await;
    let node = start_node(&fixture.url(), FAST_UPSTREAM).await;
    let dir = tempfile::tempdir().unwrap();
    let a = &c.entries[0];
    let b = c
        .entries
        .iter()
        .find(|e| e.mod_h1 != a.mod_h1 && e.zip_h1 != a.zip_h1)
        .unwrap();
    // One zip hash and one go.mod hash that the served bytes do not match.
    let text = format!(
        "{} {} {}\n{} {}/go.mod {}\n",
        a.module, a.version, b.zip_h1, b.module, b.version, a.mod_h1
    );
    let sum = write(dir.path(), "go.sum", &text);
    let out = prefetch(&node.url(), &["--json", &sum]).await;
    assert_eq!(out.code, Some(1), "{out}");
    let j = out.json().unwrap();
    let failures = j["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2, "{out}");
    for f in failures {
        assert!(
            f["error"].as_str().unwrap().contains("hash mismatch"),
            "{out}"
        );
    }

    // Bad input is refused before anything is fetched, naming file and line.
    fixture.reset_log();
    let garbage = write(dir.path(), "garbage.sum", "not a go.sum line\n");
    let out = prefetch(&node.url(), &[&garbage]).await;
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("garbage.sum:1: "), "{out}");
    assert_eq!(fixture.total(), 0, "{}", fixture.log_tail(5));
}

/// The `(Path, Version)` set of a node's whole `/index` feed.
async fn feed(node: &cairn_tests::node::CairnNode) -> std::collections::BTreeSet<(String, String)> {
    let resp = node.get("/index?limit=2000").await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.text()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["Path"].as_str().unwrap().to_string(),
                v["Version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p12_a_second_cluster_following_the_index_ends_with_the_same_set() {
    use cairn_tests::cluster::{ClusterConfig, TestCluster};
    let c = corpus();
    let fixture = corpus_fixture().await;
    let first = start_node(&fixture.url(), FAST_UPSTREAM).await;
    let dir = tempfile::tempdir().unwrap();
    let sum = write(dir.path(), "go.sum", &c.go_sum());
    prefetch(&first.url(), &[&sum]).await.ok().unwrap();
    let want = feed(&first).await;
    assert_eq!(want.len(), c.entries.len(), "the first node's feed");

    // The second cluster's upstream is the first node (a region following another), and it
    // learns what to hold from the first node's feed, a few entries per page.
    let second = TestCluster::start(3, &first.url(), &ClusterConfig::fast())
        .await
        .unwrap();
    let proxy = second.node(2).url();
    let index = format!("{}/index", first.url());
    let out = prefetch(
        &proxy,
        &["--json", "--from-index", &index, "--index-limit", "7"],
    )
    .await
    .ok()
    .unwrap();
    let j = out.json().unwrap();
    assert_eq!(j["index"]["entries"], want.len() as u64, "{out}");
    assert_eq!(j["filled"], want.len() as u64, "{out}");
    second.wait_converged().await.unwrap();
    for id in second.ids() {
        assert_eq!(feed(second.node(id)).await, want, "node {id}'s feed");
    }

    // Continuing from where the run stopped finds nothing new to fill.
    let since = j["index"]["next_since"].as_str().unwrap().to_string();
    let again = prefetch(
        &proxy,
        &["--json", "--from-index", &index, "--since", &since],
    )
    .await
    .ok()
    .unwrap();
    let j = again.json().unwrap();
    assert_eq!(j["filled"], 0, "{again}");
    assert!(
        j["index"]["entries"].as_u64().unwrap() <= 1,
        "only the boundary line: {again}"
    );
}
