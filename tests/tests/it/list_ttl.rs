//! Lists are mutable: after `list_ttl_secs` a version the upstream added shows up in cairn's
//! `@v/list`, and pseudo-versions never do (neither ones cairn holds nor ones the upstream lists).
//! Release versions cairn holds stay listed even when the upstream forgets them, `@latest` follows
//! the upstream after `latest_ttl_secs`, and a 404 is only remembered for `negative_ttl_secs`.

use std::collections::BTreeSet;
use std::sync::Mutex;

use cairn_tests::corpus::{is_pseudo, time_n, Corpus, ModuleSpec, VersionSpec};
use cairn_tests::fixture::Fixture;
use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::h1::{latest_path, list_path, version_path};
use cairn_tests::node::CairnNode;
use cairn_tests::wait::{patience, wait_until};

use crate::common::{get, start_node};

const GROW: &str = "example.com/grow";
const PSEUDO: &str = "v1.0.1-0.20230601000000-abcdefabcdef";

const CONFIG: &str = "\
[cache]
list_ttl_secs = 1
latest_ttl_secs = 1
[upstream_http]
retries = 0
backoff_base_ms = 10
";

async fn listed(node: &CairnNode) -> Vec<String> {
    let r = get(node, &list_path(GROW)).await;
    assert_eq!(r.status, 200, "GET list: {}", r.text());
    r.text()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_versions_appear_after_the_ttl_and_pseudo_versions_never() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ModuleSpec::new(GROW)
        .version("v1.0.0", &time_n(1))
        .with(VersionSpec::new(GROW, PSEUDO, "2023-06-01T00:00:00Z"));
    let mut corpus = Corpus::write(dir.path(), &[spec]).unwrap();
    let fixture = Fixture::start(Some(dir.path())).await.unwrap();
    let node = start_node(&fixture.url(), CONFIG).await;

    assert_eq!(listed(&node).await, ["v1.0.0"]);
    for ext in ["info", "mod", "zip"] {
        let r = get(&node, &version_path(GROW, PSEUDO, ext)).await;
        assert_eq!(
            r.status,
            200,
            "GET the pseudo-version's .{ext}: {}",
            r.text()
        );
    }
    assert_eq!(
        listed(&node).await,
        ["v1.0.0"],
        "a pseudo-version cairn holds must not be listed"
    );

    corpus
        .put_version(GROW, &VersionSpec::new(GROW, "v1.1.0", &time_n(2)))
        .unwrap();
    // Some proxies (file trees made from a module cache) list pseudo-versions too.
    corpus.write_list_with_extra(GROW, &[PSEUDO]).unwrap();
    let polls = Mutex::new(Vec::new());
    wait_until(
        format!("v1.1.0 in cairn's {GROW} list"),
        patience(2.0),
        || async {
            let l = listed(&node).await;
            let found = l.iter().any(|v| v == "v1.1.0");
            polls.lock().unwrap().push(l);
            found
        },
    )
    .await
    .unwrap();
    let polls = polls.into_inner().unwrap();
    let with_pseudo: Vec<&Vec<String>> = polls
        .iter()
        .filter(|l| l.iter().any(|v| is_pseudo(v)))
        .collect();
    assert!(
        with_pseudo.is_empty(),
        "cairn listed pseudo-versions: {with_pseudo:?}"
    );
    let last: BTreeSet<String> = polls.last().unwrap().iter().cloned().collect();
    assert_eq!(
        last,
        BTreeSet::from(["v1.0.0".to_string(), "v1.1.0".to_string()])
    );

    if let Some(go) = go("new_versions_appear_after_the_ttl_and_pseudo_versions_never") {
        let env = GoEnv::new(&go, &node.url()).unwrap();
        assert_eq!(env.list_versions(GROW).await.unwrap(), ["v1.0.0", "v1.1.0"]);
        assert_eq!(
            env.list_query(GROW, "latest").await.unwrap().version,
            "v1.1.0"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_versions_stay_listed_latest_refreshes_and_404s_expire() {
    const SHRINK: &str = "example.com/shrink";
    const LATER: &str = "example.com/later";
    let config = CONFIG.replace("[cache]\n", "[cache]\nnegative_ttl_secs = 1\n");
    let dir = tempfile::tempdir().unwrap();
    let spec = ModuleSpec::new(SHRINK)
        .version("v1.0.0", &time_n(1))
        .version("v1.1.0", &time_n(2))
        .latest("v1.1.0");
    let mut corpus = Corpus::write(dir.path(), &[spec]).unwrap();
    let fixture = Fixture::start(Some(dir.path())).await.unwrap();
    let node = start_node(&fixture.url(), &config).await;
    let list_of = |module: &'static str| {
        let node = &node;
        async move {
            let r = get(node, &list_path(module)).await;
            (
                r.status,
                r.text()
                    .lines()
                    .map(str::to_string)
                    .collect::<BTreeSet<String>>(),
            )
        }
    };
    let latest_of = || async {
        let r = get(&node, &latest_path(SHRINK)).await;
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        (
            r.status,
            v["Version"].as_str().unwrap_or_default().to_string(),
        )
    };

    let r = get(&node, &version_path(SHRINK, "v1.0.0", "zip")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(list_of(SHRINK).await, (200, set(&["v1.0.0", "v1.1.0"])));
    assert_eq!(latest_of().await, (200, "v1.1.0".to_string()));
    let missing = get(&node, &list_path(LATER)).await;
    assert_eq!(missing.status, 404, "{}", missing.text());

    // The upstream releases v1.2.0, forgets v1.0.0 (which cairn holds), and LATER appears.
    corpus
        .put_version(SHRINK, &VersionSpec::new(SHRINK, "v1.2.0", &time_n(3)))
        .unwrap();
    corpus.set_latest(SHRINK, "v1.2.0").unwrap();
    std::fs::write(corpus.file(&list_path(SHRINK)), "v1.1.0\nv1.2.0\n").unwrap();
    corpus
        .put_version(LATER, &VersionSpec::new(LATER, "v0.1.0", &time_n(4)))
        .unwrap();

    wait_until(
        "@latest of example.com/shrink to become v1.2.0",
        patience(2.0),
        || async { latest_of().await == (200, "v1.2.0".to_string()) },
    )
    .await
    .unwrap();
    wait_until(
        "v1.2.0 in the list of example.com/shrink",
        patience(2.0),
        || async { list_of(SHRINK).await.1.contains("v1.2.0") },
    )
    .await
    .unwrap();
    assert_eq!(
        list_of(SHRINK).await,
        (200, set(&["v1.0.0", "v1.1.0", "v1.2.0"])),
        "the list must be the union of the upstream's and the held release versions"
    );
    wait_until(
        "example.com/later to stop being 404 (negative_ttl_secs = 1)",
        patience(2.0),
        || async { list_of(LATER).await.0 == 200 },
    )
    .await
    .unwrap();
    assert_eq!(list_of(LATER).await, (200, set(&["v0.1.0"])));
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}
