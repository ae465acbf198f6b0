//! The harness judges itself: the corpus must satisfy the real go command both as a `file://` tree
//! and served by the fixture, with exactly the hashes the corpus predicts. No cairn involved.

use cairn_tests::corpus::{m, Entry};
use cairn_tests::fixture::Fixture;
use cairn_tests::gocmd::{go, GoEnv};

use crate::common::corpus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_is_accepted_by_go_via_file_and_fixture() {
    let Some(go) = go("corpus_is_accepted_by_go_via_file_and_fixture") else {
        return;
    };
    let c = corpus();
    let fixture = Fixture::start(Some(&c.root)).await.unwrap();
    let all = c.module_versions();
    for proxy in [c.file_url(), fixture.url()] {
        let env = GoEnv::new(&go, &proxy).unwrap();
        let downloads = env.mod_download_ok(&all).await.unwrap();
        for d in &downloads {
            let e: &Entry = c.entry(&d.path, &d.version);
            assert_eq!(
                d.sum, e.zip_h1,
                "zip hash of {}@{} via {proxy}",
                d.path, d.version
            );
            assert_eq!(
                d.go_mod_sum, e.mod_h1,
                "go.mod hash of {}@{} via {proxy}",
                d.path, d.version
            );
        }
        assert_eq!(
            env.list_versions(m::RETRACT).await.unwrap(),
            ["v1.0.0", "v1.1.0"],
            "via {proxy}"
        );
        assert_eq!(
            env.list_versions(m::PSEUDO).await.unwrap(),
            Vec::<String>::new(),
            "via {proxy}"
        );
        assert_eq!(
            env.list_query(m::PSEUDO, "latest").await.unwrap().version,
            m::PSEUDO_VERSION
        );
        assert_eq!(
            env.list_query(m::SIMPLE, "latest").await.unwrap().version,
            "v1.2.0"
        );
        assert_eq!(
            env.list_query(m::PRERELEASE, "latest")
                .await
                .unwrap()
                .version,
            "v0.1.0-beta.2"
        );
        assert_eq!(
            env.list_query(m::LEGACY, "latest").await.unwrap().version,
            m::LEGACY_INCOMPATIBLE
        );
    }
    assert!(
        fixture.total() > all.len(),
        "the fixture served the go command"
    );
}
