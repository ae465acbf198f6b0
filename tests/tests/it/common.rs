//! Helpers shared by the scenario modules.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::Path;

use cairn_tests::corpus::{Corpus, Entry};
use cairn_tests::fixture::Fixture;
use cairn_tests::gocmd::Download;
use cairn_tests::h1;
use cairn_tests::node::{CairnNode, NodeOptions, Resp};

/// The shared standard corpus (generated once under the cargo target tmp dir).
pub fn corpus() -> &'static Corpus {
    Corpus::shared(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// Upstream settings that keep failure paths fast (few retries, short back-off).
pub const FAST_UPSTREAM: &str = "[upstream_http]\nretries = 1\nbackoff_base_ms = 20\n";

/// A fixture serving the shared corpus.
pub async fn corpus_fixture() -> Fixture {
    Fixture::start(Some(&corpus().root)).await.unwrap()
}

/// A node in front of `upstream` with `config` (TOML text), ready to serve.
pub async fn start_node(upstream: &str, config: &str) -> CairnNode {
    CairnNode::start(NodeOptions::new(upstream).config(config))
        .await
        .unwrap_or_else(|e| panic!("starting cairn-node: {e:#}"))
}

/// GET through the node; panics (with context) on transport errors.
pub async fn get(node: &CairnNode, path: &str) -> Resp {
    node.get(path)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e:#}"))
}

/// Go's hashes keyed by `module@version` → (zip sum, go.mod sum).
pub fn sums(downloads: &[Download]) -> BTreeMap<String, (String, String)> {
    downloads
        .iter()
        .map(|d| {
            (
                format!("{}@{}", d.path, d.version),
                (d.sum.clone(), d.go_mod_sum.clone()),
            )
        })
        .collect()
}

/// The corpus's predicted hashes in the same shape as [`sums`].
pub fn expected_sums(c: &Corpus) -> BTreeMap<String, (String, String)> {
    c.entries
        .iter()
        .map(|e: &Entry| {
            (
                format!("{}@{}", e.module, e.version),
                (e.zip_h1.clone(), e.mod_h1.clone()),
            )
        })
        .collect()
}

/// Asserts two maps are equal, listing only the keys that differ.
pub fn assert_maps_eq<K: Ord + Debug, V: PartialEq + Debug>(
    what: &str,
    expected: &BTreeMap<K, V>,
    actual: &BTreeMap<K, V>,
) {
    let mut diffs = Vec::new();
    for (k, v) in expected {
        match actual.get(k) {
            None => diffs.push(format!("  {k:?}: missing (expected {v:?})")),
            Some(a) if a != v => {
                diffs.push(format!("  {k:?}:\n    expected {v:?}\n    got      {a:?}"))
            }
            Some(_) => {}
        }
    }
    for (k, a) in actual {
        if !expected.contains_key(k) {
            diffs.push(format!("  {k:?}: unexpected {a:?}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} difference(s):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// Asserts `resp` is 200 and its body is exactly the corpus zip of `module@version`.
pub fn assert_zip_body(resp: &Resp, c: &Corpus, module: &str, version: &str) {
    assert_eq!(
        resp.status,
        200,
        "GET zip {module}@{version}: {} {}",
        resp.status,
        resp.text()
    );
    let e = c.entry(module, version);
    assert_eq!(
        resp.body.len() as u64,
        e.zip_len,
        "zip length of {module}@{version}"
    );
    assert_eq!(
        h1::sha256_hex(&resp.body),
        e.zip_sha256,
        "zip sha256 of {module}@{version}"
    );
}

/// Asserts the node logged nothing at ERROR level.
pub fn assert_no_error_logs(node: &CairnNode) {
    let errors = node.error_lines();
    assert!(
        errors.is_empty(),
        "cairn-node logged {} ERROR line(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
}
