//! The `/index` feed (issue 12) under access control: a line is shown only to callers that may
//! read its module; bad credentials get 401.

use cairn_tests::corpus::m;
use cairn_tests::h1::version_path;
use cairn_tests::node::Resp;

use super::{assert_401, World};

/// The `Path`s of a feed answer, in order.
fn paths(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            v["Path"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test]
async fn index_lines_follow_the_access_rules() {
    let w = World::start().await;
    let pat = w.pat.basic();
    for path in [
        version_path(m::SIMPLE, "v1.0.0", "info"),
        version_path(m::UPPER, m::UPPER_RC, "info"),
    ] {
        let r = w.get(&path, Some(&pat)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }

    let all = paths(&w.get("/index", Some(&pat)).await);
    assert_eq!(all, [m::SIMPLE, m::UPPER], "pat may read both");
    let olga = paths(&w.get("/index", Some(&w.olga.basic())).await);
    assert_eq!(olga, [m::SIMPLE], "the private module is left out for olga");
    let anonymous = paths(&w.get("/index", None).await);
    assert!(anonymous.is_empty(), "{anonymous:?}");
    let wrong = w
        .get("/index", Some(&format!("Bearer {}x", w.pat.secret)))
        .await;
    assert_401(&wrong, "/index with a wrong token");
}
