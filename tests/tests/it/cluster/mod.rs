//! Three-node clusters: formation, failover under load, quorum loss, catch-up through a
//! snapshot, corruption repair, membership change and owner routing of misses.
//!
//! Every test starts its own cluster (`cairn_tests::cluster::TestCluster`) in front of a fixture
//! serving the cluster corpus (the standard modules plus 120 small generated versions, so there
//! is always something nobody asked for yet).

mod corruption;
mod direct;
mod failover;
mod formation;
mod list_refresh;
mod membership;
mod mtls;
mod owner_routing;
mod quorum_loss;
mod region_data;
mod regions;
mod snapshot;
mod sumdb;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cairn_tests::cluster::{ClusterConfig, TestCluster};
use cairn_tests::corpus::{cluster_corpus, m, Corpus};
use cairn_tests::fixture::Fixture;
use cairn_tests::h1::{sha256_hex, version_path};
use cairn_tests::wait::patience;
use futures_util::StreamExt;

/// The cluster corpus (generated once under the cargo target tmp dir, apart from the shared one).
pub fn corpus() -> &'static Corpus {
    cluster_corpus(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("cluster"))
}

/// A fixture serving the cluster corpus.
pub async fn fixture() -> Fixture {
    Fixture::start(Some(&corpus().root)).await.unwrap()
}

/// Starts `n` nodes in front of `upstream` and waits until they formed a cluster.
pub async fn start(n: usize, upstream: &str, config: &ClusterConfig) -> TestCluster {
    TestCluster::start(n, upstream, config)
        .await
        .unwrap_or_else(|e| panic!("starting a {n}-node cluster: {e:#}"))
}

/// `module@version`.
pub fn mv(module: &str, version: &str) -> String {
    format!("{module}@{version}")
}

/// Every version of the standard modules (not the generated ones), optionally without the
/// 21 MB [`m::BIG`].
pub fn standard_versions(with_big: bool) -> Vec<(String, String)> {
    corpus()
        .entries
        .iter()
        .filter(|e| !e.module.starts_with("example.com/gen/"))
        .filter(|e| with_big || e.module != m::BIG)
        .map(|e| (e.module.clone(), e.version.clone()))
        .collect()
}

/// `module@version` arguments for `go mod download`.
pub fn args(versions: &[(String, String)]) -> Vec<String> {
    versions.iter().map(|(m, v)| mv(m, v)).collect()
}

/// The corpus's expected (zip, go.mod) hashes of `versions`, keyed by `module@version`.
pub fn expected(versions: &[(String, String)]) -> BTreeMap<String, (String, String)> {
    let c = corpus();
    versions
        .iter()
        .map(|(m, v)| {
            let e = c.entry(m, v);
            (mv(m, v), (e.zip_h1.clone(), e.mod_h1.clone()))
        })
        .collect()
}

/// The zip sha256s (blob names) of `versions`.
pub fn zip_shas(versions: &[(String, String)]) -> BTreeSet<String> {
    let c = corpus();
    versions
        .iter()
        .map(|(m, v)| c.entry(m, v).zip_sha256.clone())
        .collect()
}

/// Fetches `.info`, `.mod` and `.zip` of every version through `base_url` (6 at a time) and
/// checks the answers against the corpus; returns the zip sha256s.
pub async fn warm(base_url: &str, versions: &[(String, String)]) -> BTreeSet<String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(patience(6.0))
        .build()
        .unwrap();
    let c = corpus();
    let fetches = versions.iter().map(|(module, version)| {
        let client = client.clone();
        async move {
            let e = c.entry(module, version);
            for ext in ["info", "mod", "zip"] {
                let url = format!("{base_url}{}", version_path(module, version, ext));
                let r = client
                    .get(&url)
                    .send()
                    .await
                    .unwrap_or_else(|err| panic!("GET {url}: {err}"));
                let status = r.status().as_u16();
                let body = r
                    .bytes()
                    .await
                    .unwrap_or_else(|err| panic!("GET {url}: body: {err}"));
                assert_eq!(status, 200, "GET {url}: {}", String::from_utf8_lossy(&body));
                match ext {
                    "info" => assert_eq!(body, e.info.as_bytes(), "GET {url}"),
                    "mod" => assert_eq!(body, e.go_mod.as_bytes(), "GET {url}"),
                    _ => assert_eq!(sha256_hex(&body), e.zip_sha256, "GET {url}"),
                }
            }
            e.zip_sha256.clone()
        }
    });
    futures_util::stream::iter(fetches)
        .buffer_unordered(6)
        .collect()
        .await
}

/// `(id, role)` of every member in `cairn status --json`: the member list is `members` (or
/// `nodes`); ids are `id` (or `node_id`); roles are `role` (or `raft_state`/`state`).
pub fn status_members(j: &serde_json::Value) -> Vec<(u64, String)> {
    let list = j
        .get("members")
        .or_else(|| j.get("nodes"))
        .and_then(|v| v.as_array())
        .unwrap_or_else(|| panic!("no members/nodes array in cairn status --json:\n{j:#}"));
    list.iter()
        .map(|m| {
            let id = m
                .get("id")
                .or_else(|| m.get("node_id"))
                .and_then(|v| v.as_u64())
                .unwrap_or_else(|| panic!("member without an id in:\n{j:#}"));
            let role = ["role", "raft_state", "state"]
                .iter()
                .find_map(|k| m.get(*k).and_then(|v| v.as_str()))
                .unwrap_or_else(|| panic!("member {id} without a role in:\n{j:#}"));
            (id, role.to_ascii_lowercase())
        })
        .collect()
}
