//! GOPROXY fall-through: for a module its upstream lacks, cairn answers 404 so the go command moves
//! on to the next proxy in the list.

use cairn_tests::corpus::{m, time_n, Corpus, ModuleSpec};
use cairn_tests::fixture::Fixture;
use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::h1::list_path;

use crate::common::{corpus, corpus_fixture, get, start_node, FAST_UPSTREAM};

const ONLY_SECOND: &str = "example.com/onlysecond";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_only_the_next_proxy_has_is_found_there() {
    let Some(go) = go("a_module_only_the_next_proxy_has_is_found_there") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let second_corpus = Corpus::write(
        dir.path(),
        &[ModuleSpec::new(ONLY_SECOND)
            .version("v1.0.0", &time_n(1))
            .version("v1.1.0", &time_n(2))],
    )
    .unwrap();
    let first = corpus_fixture().await;
    let second = Fixture::start(Some(dir.path())).await.unwrap();
    let node = start_node(&first.url(), FAST_UPSTREAM).await;

    let r = get(&node, &list_path(ONLY_SECOND)).await;
    assert_eq!(
        r.status,
        404,
        "cairn must answer 404 for a module its upstream lacks: {}",
        r.text()
    );

    let env = GoEnv::new(&go, &format!("{},{}", node.url(), second.url())).unwrap();
    let want = [
        format!("{ONLY_SECOND}@v1.0.0"),
        format!("{}@v1.0.0", m::SIMPLE),
    ];
    let downloads = env.mod_download_ok(&want).await.unwrap();
    for d in &downloads {
        let e = if d.path == ONLY_SECOND {
            second_corpus.entry(&d.path, &d.version)
        } else {
            corpus().entry(&d.path, &d.version)
        };
        assert_eq!(
            (&d.sum, &d.go_mod_sum),
            (&e.zip_h1, &e.mod_h1),
            "hashes of {}@{}",
            d.path,
            d.version
        );
    }
    assert_eq!(
        env.list_versions(ONLY_SECOND).await.unwrap(),
        ["v1.0.0", "v1.1.0"]
    );
    assert!(
        first.count(&list_path(ONLY_SECOND)) >= 1,
        "cairn never asked its upstream:\n{}",
        first.log_tail(20)
    );
    assert!(second.total() > 0, "the second proxy was never asked");
    assert_eq!(
        second.count(&list_path(m::SIMPLE)),
        0,
        "the go command fell through for a module cairn has"
    );
    assert!(
        second
            .requests()
            .iter()
            .all(|r| r.path.starts_with(&format!("/{ONLY_SECOND}/"))),
        "the second proxy saw requests for modules cairn serves:\n{}",
        second.log_tail(20)
    );
}
