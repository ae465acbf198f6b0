//! Hostile and malformed requests, sent as raw bytes so nothing normalizes them: each gets a 4xx,
//! none reaches the upstream, nothing is logged as an error, and the node keeps serving.

use cairn_tests::raw;
use cairn_tests::wait::patience;

use crate::common::{assert_no_error_logs, corpus_fixture, start_node, FAST_UPSTREAM};

/// (method, request target, why it is wrong).
fn cases() -> Vec<(&'static str, String, &'static str)> {
    let long = format!("/example.com/{}/@v/list", "a".repeat(10 * 1024));
    let deep = format!("/example.com/{}@v/list", "a/".repeat(2000));
    vec![
        (
            "GET",
            "/example.com/!Abc/@v/list".into(),
            "! before an upper-case letter",
        ),
        ("GET", "/example.com/simple!/@v/list".into(), "trailing !"),
        ("GET", "/example.com/s!!imple/@v/list".into(), "!!"),
        (
            "GET",
            "/example.com/Simple/@v/list".into(),
            "unescaped upper case",
        ),
        (
            "GET",
            "/example.com/%zz/@v/list".into(),
            "bad percent escape",
        ),
        ("GET", "/example.com/simple%/@v/list".into(), "dangling %"),
        ("GET", "/example.com/sim%00ple/@v/list".into(), "NUL byte"),
        (
            "GET",
            "/example.com/sim%ffple/@v/list".into(),
            "non-UTF-8 byte",
        ),
        (
            "GET",
            "/example.com/sim%20ple/@v/list".into(),
            "space in the module path",
        ),
        (
            "GET",
            "/example.com/simple/../simple/@v/list".into(),
            ".. segment",
        ),
        ("GET", "/../../../etc/passwd".into(), ".. escaping the root"),
        (
            "GET",
            "/example.com/simple/@v/../../../etc/passwd".into(),
            ".. after @v",
        ),
        (
            "GET",
            "/example.com/%2e%2e/simple/@v/list".into(),
            "percent-encoded ..",
        ),
        ("GET", "/example.com/./simple/@v/list".into(), ". segment"),
        (
            "GET",
            "/example.com//simple/@v/list".into(),
            "empty segment",
        ),
        (
            "GET",
            "/Example.com/simple/@v/list".into(),
            "upper case in the host element",
        ),
        (
            "GET",
            "/localhost/simple/@v/list".into(),
            "first element without a dot",
        ),
        (
            "GET",
            "/example.com/simple/v1/@v/list".into(),
            "/v1 major suffix",
        ),
        ("GET", long, "10 KB path"),
        ("GET", deep, "2000 path elements"),
        (
            "GET",
            "/example.com/simple/@v/v1.2.3.4.zip".into(),
            "not a semantic version",
        ),
        (
            "GET",
            "/example.com/simple/@v/v1.2.3.4.mod".into(),
            "not a semantic version",
        ),
        (
            "GET",
            "/example.com/simple/@v/master.mod".into(),
            ".mod of a branch name",
        ),
        (
            "GET",
            "/example.com/simple/@v/master.zip".into(),
            ".zip of a branch name",
        ),
        (
            "GET",
            "/example.com/simple/@v/v1.0.zip".into(),
            "non-canonical version",
        ),
        (
            "GET",
            "/example.com/simple/@v/v1.0.0+meta.zip".into(),
            "build metadata",
        ),
        (
            "GET",
            "/example.com/simple/@v/1.0.0.zip".into(),
            "no leading v",
        ),
        (
            "GET",
            "/example.com/mod/v2/@v/v1.0.0.zip".into(),
            "major version mismatch",
        ),
        (
            "GET",
            "/example.com/simple/@v/v2.0.0.zip".into(),
            "v2 without /v2 or +incompatible",
        ),
        (
            "GET",
            "/example.com/simple/@v/".into(),
            "@v/ without a version",
        ),
        ("GET", "/example.com/simple/@v/.zip".into(), "empty version"),
        (
            "GET",
            "/example.com/simple/@v/.info".into(),
            "empty version",
        ),
        (
            "GET",
            "/example.com/simple/@v/v1.0.0.tar".into(),
            "unknown suffix",
        ),
        (
            "GET",
            "/example.com/simple/@v/list/extra".into(),
            "trailing element after list",
        ),
        (
            "GET",
            "/example.com/simple/@latest/extra".into(),
            "trailing element after @latest",
        ),
        ("GET", "/@v/list".into(), "empty module path"),
        (
            "GET",
            "/example.com/simple@v1.0.0/@v/list".into(),
            "@ in the module path",
        ),
        ("POST", "/example.com/simple/@v/list".into(), "POST"),
        ("PUT", "/example.com/simple/@v/v1.0.0.zip".into(), "PUT"),
        (
            "DELETE",
            "/example.com/simple/@v/v1.0.0.info".into(),
            "DELETE",
        ),
        ("PATCH", "/example.com/simple/@latest".into(), "PATCH"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_4xx_and_never_reach_the_upstream() {
    let fixture = corpus_fixture().await;
    let node = start_node(&fixture.url(), FAST_UPSTREAM).await;
    let mut wrong = Vec::new();
    let mut seen = Vec::new();
    for (method, target, why) in cases() {
        let shown = if target.len() > 80 {
            format!("{}…({} bytes)", &target[..60], target.len())
        } else {
            target.clone()
        };
        let before = fixture.total();
        let r = match raw::request(node.addrs().http, method, &target, &[], patience(1.0)).await {
            Ok(r) => r,
            Err(e) => {
                wrong.push(format!("{method} {shown} ({why}): no answer: {e:#}"));
                continue;
            }
        };
        seen.push(format!("{} {method} {shown}", r.status));
        let methods_ok = !matches!(method, "POST" | "PUT" | "DELETE" | "PATCH") || r.status == 405;
        if !(400..500).contains(&r.status) || !methods_ok {
            wrong.push(format!(
                "{method} {shown} ({why}): {:?}, body {:?}",
                r.status_line,
                String::from_utf8_lossy(&r.body)
            ));
        }
        if fixture.total() != before {
            wrong.push(format!(
                "{method} {shown} ({why}): reached the upstream:\n{}",
                fixture.log_tail(3)
            ));
        }
    }
    eprintln!(
        "hostile requests and their statuses:\n  {}",
        seen.join("\n  ")
    );
    assert!(
        wrong.is_empty(),
        "{} malformed request(s) handled wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(
        fixture.total(),
        0,
        "the upstream saw:\n{}",
        fixture.log_tail(20)
    );
    let health = node.get("/healthz").await.unwrap();
    assert_eq!(health.status, 200, "/healthz after the hostile requests");
    assert_no_error_logs(&node);
}
