//! Scenarios for access control: static tokens, JWTs, rules, reloads and settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use tokio_util::sync::CancellationToken;

use super::*;

mod jwt;

// === helpers ===

fn basic(login: &str, password: &str) -> HeaderMap {
    let v = format!("Basic {}", STANDARD.encode(format!("{login}:{password}")));
    header(&v)
}

fn bearer(token: &str) -> HeaderMap {
    header(&format!("Bearer {token}"))
}

fn header(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
    h
}

/// Writes `text` to `path` through a temp file and a rename, as a rotation would.
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn tokens_toml(entries: &[(&str, &str, &[&str])]) -> String {
    entries
        .iter()
        .map(|(name, token, groups)| {
            format!(
                "[[token]]\nname = {name:?}\nsha256 = {:?}\ngroups = {groups:?}\n",
                hash_token(token)
            )
        })
        .collect()
}

fn settings_with_tokens(path: &Path) -> AccessSettings {
    AccessSettings {
        enabled: true,
        tokens_file: Some(path.to_path_buf()),
        ..AccessSettings::default()
    }
}

async fn access(settings: &AccessSettings) -> Access {
    Access::new(settings, reqwest::Client::new()).await.unwrap()
}

fn name_of(authn: &Authn) -> Option<&str> {
    authn.identity().map(|i| i.name.as_str())
}

/// Polls `cond` every 20 ms until it holds, failing after 10 s.
async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reached in time: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn rule(pattern: &str, allow: &[&str]) -> AccessRule {
    AccessRule {
        pattern: pattern.to_string(),
        allow: allow.iter().map(|s| s.to_string()).collect(),
    }
}

// === static tokens ===

#[tokio::test]
async fn basic_token_checks_login_and_password() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    let token = new_token();
    std::fs::write(&path, tokens_toml(&[("ci-payments", &token, &["ci"])])).unwrap();
    let a = access(&settings_with_tokens(&path)).await;

    let ok = a.authenticate(&basic("ci-payments", &token)).await;
    let id = ok.identity().unwrap();
    assert_eq!(id.name, "ci-payments");
    assert_eq!(id.groups, ["ci"]);
    assert_eq!(id.method, AuthMethod::BasicToken);

    let wrong_pw = a.authenticate(&basic("ci-payments", "nope")).await;
    assert_eq!(wrong_pw, Authn::Failed(AuthFailure::BadPassword));
    let wrong_login = a.authenticate(&basic("mallory", &token)).await;
    assert_eq!(wrong_login, Authn::Failed(AuthFailure::UnknownUser));
}

#[tokio::test]
async fn bearer_token_is_looked_up_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    let token = new_token();
    std::fs::write(&path, tokens_toml(&[("ci", &token, &[])])).unwrap();
    let a = access(&settings_with_tokens(&path)).await;

    let ok = a.authenticate(&bearer(&token)).await;
    assert_eq!(ok.identity().unwrap().method, AuthMethod::BearerToken);
    assert_eq!(name_of(&ok), Some("ci"));
    let bad = a.authenticate(&bearer(&new_token())).await;
    assert_eq!(bad, Authn::Failed(AuthFailure::UnknownToken));
    assert_eq!(a.authenticate(&HeaderMap::new()).await, Authn::Anonymous);
}

#[tokio::test]
async fn rotated_tokens_file_takes_effect_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    let (old, new) = (new_token(), new_token());
    std::fs::write(&path, tokens_toml(&[("ci", &old, &[])])).unwrap();
    let a = access(&settings_with_tokens(&path)).await;
    let shutdown = CancellationToken::new();
    a.spawn_reloader_every(shutdown.clone(), Duration::from_millis(20));

    write_atomically(&path, &tokens_toml(&[("ci", &new, &[])]));
    let (a2, new2) = (&a, &new);
    wait_until("the new token is accepted", || async move {
        a2.authenticate(&bearer(new2)).await.identity().is_some()
    })
    .await;
    let stale = a.authenticate(&bearer(&old)).await;
    assert_eq!(stale, Authn::Failed(AuthFailure::UnknownToken));
    shutdown.cancel();
}

#[tokio::test]
async fn unparsable_rotation_keeps_the_previous_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    let token = new_token();
    std::fs::write(&path, tokens_toml(&[("ci", &token, &[])])).unwrap();
    let a = access(&settings_with_tokens(&path)).await;

    for broken in [
        "[[token]]\nname = \"x\"\nsha256 = \"zz\"\n",
        "not toml at all [",
    ] {
        write_atomically(&path, broken);
        a.poll_now().await;
        let still = a.authenticate(&bearer(&token)).await;
        assert_eq!(name_of(&still), Some("ci"), "after {broken:?}");
    }
    std::fs::remove_file(&path).unwrap();
    a.poll_now().await;
    assert!(a.authenticate(&bearer(&token)).await.identity().is_some());
}

#[test]
fn tokens_file_rejects_duplicates_and_bad_hashes() {
    let t = new_token();
    let dup = tokens_toml(&[("a", &t, &[]), ("b", &t, &[])]);
    assert!(matches!(
        tokens::TokenSet::parse(&dup),
        Err(TokenFileError::DuplicateHash { index: 1, .. })
    ));
    let short = "[[token]]\nname = \"a\"\nsha256 = \"abcd\"\n";
    assert!(matches!(
        tokens::TokenSet::parse(short),
        Err(TokenFileError::BadHash { index: 0, .. })
    ));
    let unknown_key = format!("{}extra = 1\n", tokens_toml(&[("a", &t, &[])]));
    assert!(matches!(
        tokens::TokenSet::parse(&unknown_key),
        Err(TokenFileError::Parse(_))
    ));
}

#[test]
fn new_tokens_are_random_and_never_look_like_jwts() {
    let (a, b) = (new_token(), new_token());
    assert_ne!(a, b);
    assert!(a.starts_with(tokens::TOKEN_PREFIX));
    assert_eq!(a.len(), tokens::TOKEN_PREFIX.len() + 43);
    assert!(!credentials::looks_like_jwt(&a));
    assert_eq!(
        hash_token("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

// === rules ===

fn identity(name: &str, groups: &[&str]) -> Authn {
    Authn::Authenticated(Identity {
        name: name.to_string(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        method: AuthMethod::BearerToken,
    })
}

/// Settings with a tokens file (so they validate) and the given rules; the file stays unread.
async fn with_rules(
    rules: Vec<AccessRule>,
    default: Option<&[&str]>,
) -> (tempfile::TempDir, Access) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    std::fs::write(&path, "").unwrap();
    let mut s = settings_with_tokens(&path);
    s.rules = rules;
    s.default = default.map(|d| d.iter().map(|p| p.to_string()).collect());
    let a = access(&s).await;
    (dir, a)
}

#[tokio::test]
async fn first_matching_rule_wins() {
    let (_dir, a) = with_rules(
        vec![
            rule("corp.example.com/payments/public", &["authenticated"]),
            rule("corp.example.com/payments", &["user:alice"]),
            rule("corp.example.com/*", &["group:corp"]),
        ],
        Some(&[]),
    )
    .await;
    let (alice, bob) = (identity("alice", &[]), identity("bob", &["corp"]));
    let cases = [
        (&bob, "corp.example.com/payments/public/x", Decision::Allow),
        (&bob, "corp.example.com/payments/core", Decision::Forbidden),
        (&alice, "corp.example.com/payments", Decision::Allow),
        (&alice, "corp.example.com/web", Decision::Forbidden),
        (&bob, "corp.example.com/web", Decision::Allow),
        (&bob, "golang.org/x/mod", Decision::Forbidden),
        // Review finding: git hosts resolve paths case-insensitively, so case must not
        // slip a path past its rule.
        (&bob, "corp.example.com/Payments/core", Decision::Forbidden),
        (&bob, "CORP.example.com/PAYMENTS", Decision::Forbidden),
        (&alice, "corp.example.com/Payments", Decision::Allow),
    ];
    for (who, path, want) in cases {
        assert_eq!(a.authorize(who, path), want, "{path}");
    }
}

#[tokio::test]
async fn anonymous_rules_admit_everyone_but_refused_credentials() {
    let (_dir, a) = with_rules(vec![rule("*", &["anonymous"])], None).await;
    let m = "github.com/pkg/errors";
    assert_eq!(a.authorize(&Authn::Anonymous, m), Decision::Allow);
    assert_eq!(a.authorize(&identity("x", &[]), m), Decision::Allow);
    let failed = Authn::Failed(AuthFailure::BadPassword);
    assert_eq!(a.authorize(&failed, m), Decision::Unauthenticated);
    // Non-module paths follow `default`, which is `authenticated` when unset.
    assert_eq!(
        a.authorize_any(&Authn::Anonymous),
        Decision::Unauthenticated
    );
    assert_eq!(a.authorize_any(&identity("x", &[])), Decision::Allow);
}

#[tokio::test]
async fn disabled_access_allows_everything_and_reads_nothing() {
    let a = Access::new(&AccessSettings::default(), reqwest::Client::new())
        .await
        .unwrap();
    assert!(!a.enabled());
    let who = a.authenticate(&bearer("garbage")).await;
    assert_eq!(who, Authn::Anonymous);
    assert_eq!(a.authorize(&who, "corp.example.com/x"), Decision::Allow);
    assert!(a.metrics_allowed(&HeaderMap::new()));
    assert_eq!(
        a.www_authenticate(),
        "Basic realm=\"cairn\", Bearer realm=\"cairn\""
    );
}

#[tokio::test]
async fn malformed_headers_fail_authentication() {
    let (_dir, a) = with_rules(vec![], None).await;
    let cases = [
        (header("Negotiate abc"), AuthFailure::UnsupportedScheme),
        (header("Basic !!!"), AuthFailure::Malformed),
        (
            header(&format!("Basic {}", STANDARD.encode("nocolon"))),
            AuthFailure::Malformed,
        ),
        (header("Bearer"), AuthFailure::Malformed),
    ];
    for (h, want) in cases {
        assert_eq!(a.authenticate(&h).await, Authn::Failed(want));
    }
    let mut two = bearer("a");
    two.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
    assert_eq!(
        a.authenticate(&two).await,
        Authn::Failed(AuthFailure::Malformed)
    );
}

// === metrics token and settings ===

#[tokio::test]
async fn metrics_token_guards_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    std::fs::write(&path, "").unwrap();
    let token = new_token();
    let mut s = settings_with_tokens(&path);
    s.metrics_token_sha256 = Some(hash_token(&token).to_uppercase());
    s.realm = Some("corp mirror".to_string());
    let a = access(&s).await;
    assert!(a.metrics_allowed(&bearer(&token)));
    assert!(!a.metrics_allowed(&bearer(&new_token())));
    assert!(!a.metrics_allowed(&basic("metrics", &token)));
    assert!(!a.metrics_allowed(&HeaderMap::new()));
    assert_eq!(
        a.www_authenticate(),
        "Basic realm=\"corp mirror\", Bearer realm=\"corp mirror\""
    );
}

#[test]
fn settings_parse_from_the_documented_toml() {
    #[derive(serde::Deserialize)]
    struct Wrapper {
        access: AccessSettings,
    }
    let text = r#"
        [access]
        enabled = true
        tokens_file = "/etc/cairn/tokens.toml"
        default = ["authenticated"]
        [access.jwt]
        jwks_url = "https://idp.example.com/jwks.json"
        issuer = "https://idp.example.com"
        audience = "cairn"
        [[access.rules]]
        pattern = "corp.example.com/payments"
        allow = ["group:team-payments", "user:alice"]
    "#;
    let w: Wrapper = toml::from_str(text).unwrap();
    assert_eq!(w.access.validate().map_err(|e| e.len()), Ok(()));
    let jwt = w.access.jwt.unwrap();
    assert_eq!((jwt.name_claim.as_str(), jwt.leeway_secs), ("sub", 30));
    assert!(toml::from_str::<Wrapper>("[access]\nenable = true\n").is_err());
}

#[test]
fn settings_validation_lists_every_problem() {
    let s = AccessSettings {
        enabled: true,
        realm: Some("a\"b".to_string()),
        metrics_token_sha256: Some("xyz".to_string()),
        default: Some(vec!["everyone".to_string()]),
        rules: vec![rule("corp.example.com/[", &["user:", "group:ok"])],
        ..AccessSettings::default()
    };
    let errs = s.validate().unwrap_err();
    let has = |f: fn(&AccessError) -> bool| errs.iter().any(f);
    assert!(has(|e| matches!(e, AccessError::NoCredentialSource)));
    assert!(has(|e| matches!(e, AccessError::BadRealm(_))));
    assert!(has(|e| matches!(e, AccessError::BadHash { .. })));
    assert!(has(|e| matches!(
        e,
        AccessError::BadPattern { index: 0, .. }
    )));
    let bad: Vec<String> = errs
        .iter()
        .filter_map(|e| match e {
            AccessError::BadPrincipal { principal, .. } => Some(principal.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(bad, ["everyone", "user:"]);
    assert_eq!(errs.len(), 6, "{errs:#?}");

    let jwt = AccessSettings {
        enabled: true,
        jwt: Some(JwtSettings {
            jwks_url: Some("ftp://x".to_string()),
            jwks_file: Some(PathBuf::from("/k.json")),
            jwks_refresh_secs: 0,
            ..JwtSettings::default()
        }),
        ..AccessSettings::default()
    };
    let errs = jwt.validate().unwrap_err();
    let kinds: Vec<String> = errs.iter().map(|e| format!("{e:?}")).collect();
    assert_eq!(
        kinds,
        [
            "JwtNoIssuer",
            "JwtNoAudience",
            "JwtKeySource",
            "JwtZeroRefresh"
        ]
    );
    // Every message says what to fix.
    assert!(errs[0]
        .to_string()
        .contains("access.jwt.issuer is required"));
}
