//! GOPROXY fall-through: for a module its upstream lacks, cairn answers 404 so the go command moves
//! on to the next proxy in the list; when the upstream *fails*, cairn answers 502, which stops a
//! `,` list (no leak to the next proxy) and lets a `|` list move on.

use cairn_tests::corpus::{m, time_n, Corpus, ModuleSpec};
use std::time::{Duration, Instant};

use cairn_tests::fixture::{Fixture, Override};
use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::h1::{list_path, version_path};

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
    // cairn was asked for the list twice (by us, then by go list); the 404 is negatively cached.
    assert_eq!(
        first.count(&list_path(ONLY_SECOND)),
        1,
        "upstream requests for the missing module's list (negative cache):\n{}",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_failure_is_502_which_stops_a_comma_list() {
    let Some(go) = go("an_upstream_failure_is_502_which_stops_a_comma_list") else {
        return;
    };
    let c = corpus();
    let first = corpus_fixture().await;
    let second = corpus_fixture().await;
    let node = start_node(&first.url(), FAST_UPSTREAM).await;
    let (module, version) = (m::SIMPLE, "v1.0.0");
    let mv = [format!("{module}@{version}")];

    first.set_fail(Some(500));
    for path in [list_path(module), version_path(module, version, "info")] {
        let r = get(&node, &path).await;
        assert_eq!(
            r.status,
            502,
            "GET {path} with the upstream answering 500: {}",
            r.text()
        );
    }
    let comma = GoEnv::new(&go, &format!("{},{}", node.url(), second.url())).unwrap();
    let (downloads, out) = comma.mod_download(&mv).await.unwrap();
    assert!(
        !out.success && downloads.iter().all(|d| !d.error.is_empty()),
        "with GOPROXY=cairn,second and a failing upstream the download must fail: {downloads:?}"
    );
    assert_eq!(
        second.total(),
        0,
        "a 502 must not let the go command fall through a comma:\n{}",
        second.log_tail(10)
    );

    let pipe = GoEnv::new(&go, &format!("{}|{}", node.url(), second.url())).unwrap();
    let d = pipe.mod_download_ok(&mv).await.unwrap();
    assert_eq!(
        d[0].sum,
        c.entry(module, version).zip_h1,
        "via GOPROXY=cairn|second"
    );
    assert!(
        second.total() > 0,
        "with | the go command moves on to the second proxy"
    );

    first.set_fail(None);
    first.kill().await;
    let path = version_path(m::MODV2, "v2.1.0", "info");
    let r = get(&node, &path).await;
    assert_eq!(
        r.status,
        502,
        "GET {path} with the upstream refusing connections: {}",
        r.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_upstream_gets_a_502_within_the_first_byte_timeout() {
    let fixture = corpus_fixture().await;
    let config =
        "[upstream_http]\nretries = 0\nbackoff_base_ms = 10\nfirst_byte_timeout_ms = 1000\n";
    let node = start_node(&fixture.url(), config).await;
    let path = version_path(m::SIMPLE, "v1.0.0", "info");
    fixture.set_override(&path, Override::Delay(Duration::from_secs(60)));
    let start = Instant::now();
    let r = get(&node, &path).await;
    let took = start.elapsed();
    assert_eq!(
        r.status,
        502,
        "GET {path} with a hung upstream: {}",
        r.text()
    );
    assert!(
        took < Duration::from_secs(10),
        "the 502 took {took:?} with first_byte_timeout_ms = 1000"
    );
    fixture.clear_override(&path);
    let r = get(&node, &path).await;
    assert_eq!(
        r.status,
        200,
        "GET {path} once the upstream answers: {}",
        r.text()
    );
}
