//! What an operator sees: `/metrics` behind its token (and the health probes open), and an audit
//! trail with exactly one line per module request and no secret in any output.

use cairn_tests::corpus::m;
use cairn_tests::h1::{latest_path, list_path, version_path};
use cairn_tests::metrics::Metrics;
use serde_json::{json, Value};

use super::{assert_401, basic, claims, World, AUDIENCE, ISSUER, PAYMENTS};

#[tokio::test]
async fn metrics_need_their_token_and_health_probes_do_not() {
    let w = World::start().await;
    let list = list_path(m::SIMPLE);
    assert_eq!(w.get(&list, Some(&w.pat.basic())).await.status, 200);
    assert_401(
        &w.get(&list, Some(&basic("pat", "nope"))).await,
        "wrong login or token",
    );
    assert_401(&w.get(&list, None).await, "anonymous");

    let denied = w.get("/metrics", None).await;
    assert_eq!(denied.status, 401, "{}", denied.text());
    assert!(denied.header("www-authenticate").starts_with("Bearer"));
    for auth in [
        w.pat.bearer(),
        w.pat.basic(),
        format!("Bearer {}x", w.metrics_token),
    ] {
        assert_eq!(w.get("/metrics", Some(&auth)).await.status, 401, "{auth}");
    }
    let page = w
        .get("/metrics", Some(&format!("Bearer {}", w.metrics_token)))
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    let metrics = Metrics::parse(&page.text());
    let attempts =
        |outcome: &str| metrics.sum("cairn_auth_attempts_total", &[("outcome", outcome)]);
    assert!(
        attempts("ok") >= 1.0 && attempts("bad_password") >= 1.0 && attempts("anonymous") >= 1.0,
        "{}",
        metrics.dump("cairn_auth")
    );

    for path in ["/healthz", "/readyz"] {
        for auth in [None, Some("Bearer garbage")] {
            let r = w.get(path, auth).await;
            assert_eq!(r.status, 200, "{path} with {auth:?}: {}", r.text());
        }
    }
}

/// One scripted request: module, endpoint (`list`, `latest` or `<version>.<ext>`), credentials,
/// and the status and identity its audit line must show.
type Step<'a> = (&'a str, &'a str, Option<&'a str>, u16, Option<&'a str>);

/// The URL path of a step's request, and the version and kind its audit line names.
fn request_of(module: &str, endpoint: &str) -> (String, Option<String>, String) {
    match endpoint.rsplit_once('.') {
        Some((version, ext)) => (
            version_path(module, version, ext),
            Some(version.to_string()),
            ext.to_string(),
        ),
        None if endpoint == "list" => (list_path(module), None, endpoint.to_string()),
        None => (latest_path(module), None, endpoint.to_string()),
    }
}

#[tokio::test]
async fn audit_has_one_line_per_module_request_and_no_secret_anywhere() {
    let w = World::start().await;
    let (jwt, wrong) = (w.jwt("jay", &[PAYMENTS]), format!("{}x", w.olga.secret));
    let expired = w.idp.sign(&claims("jay", &[], ISSUER, AUDIENCE, -600));
    let sent = [
        w.pat.basic(),
        w.pat.bearer(),
        w.olga.basic(),
        w.olga.bearer(),
        basic("olga", &wrong),
        format!("Bearer {jwt}"),
        format!("Bearer {expired}"),
        basic("x", &jwt),
    ];
    let [pat, pat_b, olga, olga_b, wrong_pw, jwt_b, expired_b, jwt_pw] =
        sent.each_ref().map(|s| Some(s.as_str()));
    let (upper, simple) = (m::UPPER, m::SIMPLE);
    let steps: [Step; 9] = [
        (simple, "list", None, 401, None),
        (simple, "v1.0.0.info", pat, 200, Some("pat")),
        (simple, "v1.0.0.mod", olga_b, 200, Some("olga")),
        (upper, "v1.0.0-RC1.zip", olga, 403, Some("olga")),
        (upper, "v1.0.0-RC1.zip", pat_b, 200, Some("pat")),
        (upper, "list", wrong_pw, 401, None),
        (simple, "latest", jwt_b, 200, Some("jay")),
        (upper, "v1.0.0-RC1.info", expired_b, 401, None),
        (simple, "v9.9.9.info", jwt_pw, 404, Some("jay")),
    ];
    let mut bodies = Vec::new();
    for (i, &(module, endpoint, auth, status, _)) in steps.iter().enumerate() {
        let (path, rid) = (request_of(module, endpoint).0, format!("audit-step-{i}"));
        let r = w.get_with(&path, auth, &[("x-request-id", &rid)]).await;
        assert_eq!(r.status, status, "step {i} {path}: {}", r.text());
        bodies.push(r.text());
    }
    let lines = w.audit_lines(steps.len()).await;
    for (i, (step, line)) in steps.iter().zip(&lines).enumerate() {
        assert_line(i, step, line);
    }

    // Nothing else is audited: the health, identity and metrics endpoints, then a sentinel
    // module request. The writer is first in, first out, so if any of the former were audited
    // its line would come before the sentinel's.
    let metrics_auth = format!("Bearer {}", w.metrics_token);
    for (path, auth) in [
        ("/healthz", None),
        ("/readyz", pat),
        ("/whoami", pat),
        ("/whoami", wrong_pw),
        ("/metrics", Some(metrics_auth.as_str())),
    ] {
        bodies.push(w.get(path, auth).await.text());
    }
    let sentinel = [("x-request-id", "sentinel")];
    let r = w.get_with(&list_path(simple), olga, &sentinel).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let lines = w.audit_lines(steps.len() + 1).await;
    assert_eq!(
        lines.len(),
        steps.len() + 1,
        "extra audit lines: {lines:#?}"
    );
    assert_eq!(lines[steps.len()]["request_id"], "sentinel", "{lines:#?}");

    let places = [
        (
            "the audit trail",
            std::fs::read_to_string(w.audit_file()).unwrap(),
        ),
        ("the node log", w.node.log()),
        (
            "/metrics",
            w.get("/metrics", Some(&metrics_auth)).await.text(),
        ),
        ("the response bodies", bodies.join("\n")),
    ];
    let mut secrets = vec![
        w.pat.secret.clone(),
        w.olga.secret.clone(),
        wrong,
        w.metrics_token.clone(),
        jwt.rsplit('.').next().unwrap().to_string(),
        expired.rsplit('.').next().unwrap().to_string(),
    ];
    // Every Authorization value sent, without its scheme: tokens, JWTs and Basic's base64.
    secrets.extend(
        sent.iter()
            .map(|a| a.split_once(' ').unwrap().1.to_string()),
    );
    for (place, text) in &places {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{secret:?} appears in {place}"
            );
        }
    }
    assert!(
        places[1].1.contains("authentication failed"),
        "the node log has no debug lines, so the check above proves little"
    );
}

/// Asserts the audit line of step `i`.
fn assert_line(i: usize, step: &Step, line: &Value) {
    let &(module, endpoint, _, status, identity) = step;
    let (path, version, kind) = request_of(module, endpoint);
    let ctx = format!("step {i} {path}: {line}");
    assert_eq!(line["type"], "request", "{ctx}");
    assert_eq!(line["request_id"], format!("audit-step-{i}"), "{ctx}");
    assert_eq!(line["identity"], json!(identity), "{ctx}");
    assert_eq!(line["auth_method"].is_null(), identity.is_none(), "{ctx}");
    assert_eq!(line["status"], status, "{ctx}");
    assert_eq!(line["module"], module, "{ctx}");
    assert_eq!(line["version"], json!(version), "{ctx}");
    assert_eq!(line["kind"], kind, "{ctx}");
    assert_eq!(line["node"], 1, "{ctx}");
    assert!(
        line["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.0.0.1:")),
        "{ctx}"
    );
    if matches!(status, 401 | 403) {
        assert_eq!(
            line["cache"], "none",
            "a refused request is not looked up: {ctx}"
        );
    }
}
