//! Routing rules and the no-leak guarantee (DESIGN.md promise 5, issue 4).
//!
//! Two fixture upstreams serve the same corpus: "public" (the node's default `upstream`) and
//! "private" (the upstream of a rule for `example.com/Upper`, standing in for git until `direct`
//! exists). A fake checksum database is proxied under `/sumdb/`. Every endpoint is driven for
//! private paths — found, not found, malformed — with the private fixture healthy, failing (500)
//! and dead, and the public fixture and the database must never see a request that mentions a
//! private path (escaped `!upper` or unescaped `Upper`). The go command downloads the private
//! module with the right hashes (`GONOSUMDB`), a public module still verifies through the
//! database, a denied path gets 403 without reaching any upstream, and `cairn route` names the
//! rule.

use cairn_tests::cluster::cli_bin;
use cairn_tests::corpus::m;
use cairn_tests::fixture::Fixture;
use cairn_tests::gocmd::go;
use cairn_tests::node::CairnNode;
use cairn_tests::sumdb::{corpus_records, FakeSumdb, DB_NAME};

use crate::common::{corpus, corpus_fixture, expected_sums, get, start_node, sums, FAST_UPSTREAM};
use crate::sumdb::SumGo;

/// The private rule's pattern (also the developer's `GONOSUMDB`).
const PRIVATE: &str = "example.com/Upper";
/// A denied pattern: answered 403, never fetched.
const DENIED: &str = "example.com/legacy";

/// The private paths every endpoint is driven with (escaped form for URLs).
const PRIVATE_PATHS: &[&str] = &[
    "/example.com/!upper/!case/@v/list",
    "/example.com/!upper/!case/@latest",
    "/example.com/!upper/!case/@v/v1.0.0-!r!c1.info",
    "/example.com/!upper/!case/@v/v1.0.0-!r!c1.mod",
    "/example.com/!upper/!case/@v/v1.0.0-!r!c1.zip",
    "/example.com/!upper/!case/@v/master.info",
    "/example.com/!upper/!case/@v/v9.9.9.info",
    "/example.com/!upper/!case/@v/v9.9.9.mod",
    "/example.com/!upper/!case/@v/v9.9.9.zip",
    "/example.com/!upper/!secret/@v/list",
    "/example.com/!upper/!secret/@latest",
    "/example.com/!upper/!secret/@v/v1.0.0.info",
    "/example.com/Upper/Case/@v/list",
    "/example.com/!upper/!case/@v/v1.0.0..info",
    "/example.com/!upper/!case/@v/!v1.0.0.zip",
];

fn node_config(private: &Fixture, db: &FakeSumdb) -> String {
    format!(
        "{FAST_UPSTREAM}\n[sumdb]\nlatest_ttl_secs = 60\n\n[[sumdb.databases]]\nname = \"{}\"\n\
         url = \"{}\"\n\n[[routes]]\nname = \"corp\"\npatterns = \"{PRIVATE}\"\nupstream = \"{}\"\n\n\
         [[routes]]\nname = \"blocked\"\npatterns = \"{DENIED}\"\ndeny = true\n",
        db.name(),
        db.url(),
        private.url()
    )
}

/// Requests of the public fixture or the database that mention a private path.
fn leaks(public: &Fixture, db: &FakeSumdb) -> Vec<String> {
    let mentions = |p: &str| {
        let l = p.to_ascii_lowercase();
        l.contains("upper") || l.contains("secret") || l.contains("legacy")
    };
    let upstream = public.requests().into_iter().map(|r| r.path);
    let database = db.requests().into_iter().map(|r| r.path);
    upstream.chain(database).filter(|p| mentions(p)).collect()
}

/// Drives every private path (and private sumdb lookups) through cairn, plus paths under a
/// `tag` element fresh to this phase (so no cached or negative answer hides the upstream's
/// failure); returns the statuses.
async fn drive_private(node: &CairnNode, tag: &str) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    let fresh = ["@v/list", "@latest", "@v/v1.0.0.info", "@v/v1.0.0.zip"]
        .map(|ep| format!("/example.com/!upper/{tag}/{ep}"));
    let lookups = [
        format!("/sumdb/{DB_NAME}/lookup/example.com/!upper/!case@v1.0.0-!r!c1"),
        format!("/sumdb/{DB_NAME}/lookup/example.com/!upper/!secret@v1.0.0"),
        format!("/sumdb/{DB_NAME}/lookup/example.com/Upper/Case@v1.0.0"),
        format!("/sumdb/{DB_NAME}/lookup/example.com/legacy@v1.0.0"),
    ];
    for path in PRIVATE_PATHS
        .iter()
        .map(|p| p.to_string())
        .chain(fresh)
        .chain(lookups)
    {
        let resp = get(node, &path).await;
        out.push((path, resp.status));
    }
    out
}

struct Setup {
    public: Fixture,
    private: Fixture,
    db: FakeSumdb,
    node: CairnNode,
}

async fn setup() -> Setup {
    let public = corpus_fixture().await;
    let private = corpus_fixture().await;
    let db = FakeSumdb::start(corpus_records(corpus())).await.unwrap();
    let node = start_node(&public.url(), &node_config(&private, &db)).await;
    Setup {
        public,
        private,
        db,
        node,
    }
}

#[tokio::test]
async fn private_paths_never_reach_public_parties() {
    let s = setup().await;
    let healthy = drive_private(&s.node, "healthy").await;
    let status = |path: &str| healthy.iter().find(|(p, _)| p == path).map(|(_, st)| *st);
    assert_eq!(status(PRIVATE_PATHS[4]), Some(200), "{healthy:?}");
    assert_eq!(status(PRIVATE_PATHS[0]), Some(200), "{healthy:?}");
    assert_eq!(status(PRIVATE_PATHS[6]), Some(404), "{healthy:?}");
    for (path, st) in healthy.iter().filter(|(p, _)| p.contains("/lookup/")) {
        assert!(matches!(st, 400 | 404), "{path}: {st}");
    }
    assert!(
        s.private
            .requests()
            .iter()
            .any(|r| r.path.contains("!upper")),
        "the private rule's upstream was never asked"
    );
    s.private.set_fail(Some(500));
    let failing = drive_private(&s.node, "failing").await;
    let failed = |all: &[(String, u16)], tag: &str| {
        all.iter()
            .filter(|(p, _)| p.contains(tag))
            .all(|(_, st)| *st >= 500)
    };
    assert!(failed(&failing, "/failing/"), "{failing:?}");
    s.private.kill().await;
    let dead = drive_private(&s.node, "dead").await;
    assert!(failed(&dead, "/dead/"), "{dead:?}");
    let found = leaks(&s.public, &s.db);
    assert!(found.is_empty(), "private paths leaked: {found:?}");
    assert_eq!(s.db.total(), 0, "{}", s.db.describe_requests());
}

#[tokio::test]
async fn denied_paths_get_403_and_reach_no_upstream() {
    let s = setup().await;
    for path in [
        "/example.com/legacy/@v/list",
        "/example.com/legacy/@latest",
        "/example.com/legacy/@v/v2.0.0+incompatible.info",
        "/example.com/legacy/@v/v2.0.0+incompatible.zip",
        "/example.com/legacy/sub/@v/main.info",
    ] {
        let resp = get(&s.node, path).await;
        assert_eq!(resp.status, 403, "{path}: {}", resp.text());
        assert!(resp.text().contains("refused"), "{path}: {}", resp.text());
    }
    let mentions = |f: &Fixture| f.requests().iter().any(|r| r.path.contains("legacy"));
    assert!(!mentions(&s.public) && !mentions(&s.private));
    assert_eq!(s.db.total(), 0);
}

#[tokio::test]
async fn go_downloads_private_and_verifies_public_modules() {
    let Some(go) = go("go_downloads_private_and_verifies_public_modules") else {
        return;
    };
    let s = setup().await;
    let env = SumGo::new(&go, &s.node.url(), &s.db.verifier_key()).with_nosumdb(PRIVATE);
    let mvs = vec![
        format!("{}@{}", m::UPPER, m::UPPER_RC),
        format!("{}@v1.0.0", m::SIMPLE),
    ];
    let got = sums(&env.download_ok(&mvs).await.unwrap());
    let want = expected_sums(corpus());
    for mv in &mvs {
        assert_eq!(got.get(mv), want.get(mv), "{mv}");
    }
    assert!(s.db.total() > 0, "the public module was not verified");
    assert!(s.db.count(&format!("/lookup/{}@v1.0.0", m::SIMPLE)) > 0);
    let found = leaks(&s.public, &s.db);
    assert!(found.is_empty(), "private paths leaked: {found:?}");
    assert!(s.private.total() > 0);
}

#[tokio::test]
async fn cairn_route_names_the_matching_rule() {
    let s = setup().await;
    let node = s.node.addrs().cluster.to_string();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(cli_bin())
            .args(["--node", &node])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(&["route", "example.com/Upper/Case"]);
    assert!(
        text.contains("#0 corp") && text.contains("private"),
        "{text}"
    );
    assert!(text.contains(&s.private.url()), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&run(&["--json", "route", "example.com/legacy"])).unwrap();
    assert_eq!(json["denied"], true, "{json}");
    assert_eq!(json["name"], "blocked");
    let json: serde_json::Value =
        serde_json::from_str(&run(&["--json", "route", "rsc.io/quote"])).unwrap();
    assert_eq!(json["default"], true, "{json}");
    assert_eq!(json["sumdb"], true);
    assert_eq!(json["private"], false);
}
