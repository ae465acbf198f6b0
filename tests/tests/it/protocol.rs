//! The go command sees the same modules through cairn as straight from the `file://` tree: same
//! hashes (and the corpus's predicted ones), same version lists, same `@latest`, same `go get`.

use std::collections::BTreeMap;

use cairn_tests::corpus::m;
use cairn_tests::gocmd::{go, GoEnv};

use crate::common::{
    assert_maps_eq, assert_no_error_logs, corpus, corpus_fixture, expected_sums, start_node, sums,
    FAST_UPSTREAM,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_version_downloads_with_the_same_hashes() {
    let Some(go) = go("every_corpus_version_downloads_with_the_same_hashes") else {
        return;
    };
    let c = corpus();
    let fixture = corpus_fixture().await;
    let node = start_node(&fixture.url(), FAST_UPSTREAM).await;
    let all = c.module_versions();

    let direct = GoEnv::new(&go, &c.file_url())
        .unwrap()
        .mod_download_ok(&all)
        .await
        .unwrap();
    let via_cairn = GoEnv::new(&go, &node.url())
        .unwrap()
        .mod_download_ok(&all)
        .await
        .unwrap();

    assert_maps_eq(
        "file:// hashes vs the corpus",
        &expected_sums(c),
        &sums(&direct),
    );
    assert_maps_eq(
        "cairn hashes vs file:// hashes",
        &sums(&direct),
        &sums(&via_cairn),
    );
    assert_no_error_logs(&node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_lists_and_latest_match_the_file_proxy() {
    let Some(go) = go("version_lists_and_latest_match_the_file_proxy") else {
        return;
    };
    let c = corpus();
    let fixture = corpus_fixture().await;
    let node = start_node(&fixture.url(), FAST_UPSTREAM).await;
    let direct = GoEnv::new(&go, &c.file_url()).unwrap();
    let via_cairn = GoEnv::new(&go, &node.url()).unwrap();

    let (mut want_lists, mut got_lists) = (BTreeMap::new(), BTreeMap::new());
    let (mut want_latest, mut got_latest) = (BTreeMap::new(), BTreeMap::new());
    for module in c.module_paths() {
        want_lists.insert(module.clone(), direct.list_versions(&module).await.unwrap());
        got_lists.insert(
            module.clone(),
            via_cairn.list_versions(&module).await.unwrap(),
        );
        let d = direct.list_query(&module, "latest").await.unwrap();
        let v = via_cairn.list_query(&module, "latest").await.unwrap();
        want_latest.insert(module.clone(), (d.version, d.time));
        got_latest.insert(module, (v.version, v.time));
    }
    assert_maps_eq(
        "go list -m -versions (file:// vs cairn)",
        &want_lists,
        &got_lists,
    );
    assert_maps_eq(
        "go list -m M@latest (file:// vs cairn)",
        &want_latest,
        &got_latest,
    );
    assert_no_error_logs(&node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_get_latest_writes_the_same_go_mod_and_go_sum() {
    let Some(go) = go("go_get_latest_writes_the_same_go_mod_and_go_sum") else {
        return;
    };
    let c = corpus();
    let fixture = corpus_fixture().await;
    let node = start_node(&fixture.url(), FAST_UPSTREAM).await;
    let modules = c.module_paths();

    let (want_mod, want_sum) = GoEnv::new(&go, &c.file_url())
        .unwrap()
        .get_latest(&modules)
        .await
        .unwrap();
    let (got_mod, got_sum) = GoEnv::new(&go, &node.url())
        .unwrap()
        .get_latest(&modules)
        .await
        .unwrap();

    assert_eq!(got_mod, want_mod, "go.mod after go get (cairn vs file://)");
    assert_eq!(got_sum, want_sum, "go.sum after go get (cairn vs file://)");
    for module in &modules {
        assert!(
            want_mod.contains(&format!("\t{module} ")),
            "go get required {module}:\n{want_mod}"
        );
    }
    assert_no_error_logs(&node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_tree_upstream_gives_the_same_hashes() {
    let Some(go) = go("a_file_tree_upstream_gives_the_same_hashes") else {
        return;
    };
    let c = corpus();
    let node = start_node(&c.file_url(), FAST_UPSTREAM).await;
    let env = GoEnv::new(&go, &node.url()).unwrap();
    let via_cairn = env.mod_download_ok(&c.module_versions()).await.unwrap();
    assert_maps_eq(
        "cairn (upstream file://) hashes vs the corpus",
        &expected_sums(c),
        &sums(&via_cairn),
    );
    assert_eq!(
        env.list_versions(m::RETRACT).await.unwrap(),
        ["v1.0.0", "v1.1.0"]
    );
    assert_eq!(
        env.list_query(m::PSEUDO, "latest").await.unwrap().version,
        m::PSEUDO_VERSION
    );
    assert_no_error_logs(&node);
}
