//! Unit tests of the policy gate's pure parts: `/index` query parsing and formatting, rule
//! matching, and the `[policy]` section.

use super::gate::{rule_label, rule_matches, rules_for_module};
use super::index::{format_us, render, IndexQuery, IndexQueryError, MAX_LIMIT};
use super::PolicySettings;
use crate::store::meta::{DenyRule, IndexEntry};

fn rule(pattern: &str, version: Option<&str>) -> DenyRule {
    DenyRule {
        pattern: pattern.into(),
        version: version.map(Into::into),
        reason: "r".into(),
        by: "alice".into(),
        at_ms: 0,
    }
}

#[test]
fn index_query_defaults_caps_and_refusals() {
    let q = IndexQuery::parse(None).unwrap();
    assert_eq!((q.since_us, q.limit), (i64::MIN, MAX_LIMIT));
    let q = IndexQuery::parse(Some("since=2019-04-10T19:08:52.997264Z&limit=5")).unwrap();
    assert_eq!(q.limit, 5);
    assert_eq!(q.since_us, 1_554_923_332_997_264);
    let q = IndexQuery::parse(Some("limit=99999")).unwrap();
    assert_eq!(q.limit, MAX_LIMIT, "capped like index.golang.org");
    // Sub-microsecond precision rounds up (inclusive `since`).
    let q = IndexQuery::parse(Some("since=1970-01-01T00:00:00.0000001Z")).unwrap();
    assert_eq!(q.since_us, 1);
    let q = IndexQuery::parse(Some("since=2019-04-10T21:08:52%2B02:00")).unwrap();
    assert_eq!(q.since_us, 1_554_923_332_000_000);
    assert!(matches!(
        IndexQuery::parse(Some("since=yesterday")),
        Err(IndexQueryError::Since(_))
    ));
    for bad in ["limit=0", "limit=-1", "limit=x"] {
        assert!(
            matches!(IndexQuery::parse(Some(bad)), Err(IndexQueryError::Limit(_))),
            "{bad}"
        );
    }
    assert!(matches!(
        IndexQuery::parse(Some("limit=1&limit=2")),
        Err(IndexQueryError::Unknown(_))
    ));
    assert!(matches!(
        IndexQuery::parse(Some("page=2")),
        Err(IndexQueryError::Unknown(_))
    ));
}

#[test]
fn index_lines_look_like_index_golang_org() {
    assert_eq!(
        format_us(1_554_923_332_997_264),
        "2019-04-10T19:08:52.997264Z"
    );
    assert_eq!(format_us(1_554_923_332_000_000), "2019-04-10T19:08:52Z");
    let body = render(&[IndexEntry {
        module: "golang.org/x/text".into(),
        version: "v0.3.0".into(),
        ts_us: 1_554_923_332_997_264,
    }]);
    assert_eq!(
        body,
        "{\"Path\":\"golang.org/x/text\",\"Version\":\"v0.3.0\",\"Timestamp\":\"2019-04-10T19:08:52.997264Z\"}\n"
    );
    // Each line parses back to the same instant.
    let q = IndexQuery::parse(Some("since=2019-04-10T19:08:52.997264Z")).unwrap();
    assert_eq!(q.since_us, 1_554_923_332_997_264);
}

#[test]
fn rules_match_paths_globs_and_versions() {
    let exact = rule("example.com/m", Some("v1.0.0"));
    assert!(rule_matches(&exact, "example.com/m", Some("v1.0.0")));
    assert!(!rule_matches(&exact, "example.com/m", Some("v1.0.1")));
    assert!(
        !rule_matches(&exact, "example.com/m", None),
        "lists: module-wide rules only"
    );
    assert!(
        rule_matches(&exact, "example.com/m/sub", Some("v1.0.0")),
        "GOPRIVATE prefix semantics"
    );
    assert!(!rule_matches(&exact, "example.com/mm", Some("v1.0.0")));
    let glob = rule("corp.example.com/*", None);
    assert!(rule_matches(&glob, "corp.example.com/x", Some("v1.2.3")));
    assert!(rule_matches(&glob, "corp.example.com/x", None));
    assert!(!rule_matches(&glob, "example.com/x", None));
    let rules = vec![exact.clone(), glob];
    assert_eq!(rules_for_module(&rules, "example.com/m").len(), 1);
    assert_eq!(rule_label(&exact), "example.com/m@v1.0.0");
}

#[test]
fn deny_status_is_410_or_403() {
    assert_eq!(PolicySettings::default().deny_status, 410);
    assert!(PolicySettings { deny_status: 403 }.problem().is_none());
    let p = PolicySettings { deny_status: 404 }.problem().unwrap();
    assert!(p.contains("410") && p.contains("403"), "{p}");
}

#[test]
fn bad_rules_are_explained() {
    use crate::raft::policy::deny_rule_problem;
    assert!(deny_rule_problem("example.com/m", Some("v1.0.0")).is_none());
    assert!(deny_rule_problem("example.com/m", Some("v2.0.0+incompatible")).is_none());
    assert!(deny_rule_problem("corp.example.com/*", None).is_none());
    for (p, v) in [
        ("", None),
        ("a,b", None),
        ("bad[", None),
        ("m@v1", None),
        ("example.com/m", Some("latest")),
    ] {
        let why = deny_rule_problem(p, v);
        assert!(why.is_some(), "{p:?} {v:?}");
    }
}
