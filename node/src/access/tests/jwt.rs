//! JWT scenarios: keys generated per test (ES256 with ring), JWK sets built as JSON.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

use super::*;

const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "cairn";

/// An ES256 signing key with its public JWK.
struct TestKey {
    encoding: EncodingKey,
    kid: String,
    jwk: serde_json::Value,
}

impl TestKey {
    fn new(kid: &str) -> TestKey {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref(); // 0x04 || x || y
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        TestKey {
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            kid: kid.to_string(),
            jwk,
        }
    }

    fn sign(&self, claims: &serde_json::Value) -> String {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.encoding).unwrap()
    }
}

fn jwks(keys: &[&TestKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Claims that pass every check.
fn claims(sub: &str, groups: &[&str]) -> serde_json::Value {
    json!({
        "sub": sub, "groups": groups, "iss": ISSUER, "aud": AUDIENCE,
        "exp": now() + 600, "nbf": now() - 10, "iat": now() - 10,
    })
}

fn jwt_settings(jwks_file: &Path) -> AccessSettings {
    AccessSettings {
        enabled: true,
        jwt: Some(JwtSettings {
            jwks_file: Some(jwks_file.to_path_buf()),
            issuer: ISSUER.to_string(),
            audience: AUDIENCE.to_string(),
            ..JwtSettings::default()
        }),
        ..AccessSettings::default()
    }
}

/// A temp dir with `jwks.json` holding `keys`, and settings pointing at it.
fn jwt_fixture(keys: &[&TestKey]) -> (tempfile::TempDir, PathBuf, AccessSettings) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks(keys)).unwrap();
    let settings = jwt_settings(&path);
    (dir, path, settings)
}

// === JWTs ===

#[tokio::test]
async fn valid_jwt_as_bearer_or_basic_password() {
    let key = TestKey::new("k1");
    let (_dir, _, settings) = jwt_fixture(&[&key]);
    let a = access(&settings).await;
    let token = key.sign(&claims("alice", &["team-payments"]));

    let b = a.authenticate(&bearer(&token)).await;
    let id = b.identity().unwrap();
    assert_eq!(
        (id.name.as_str(), id.method),
        ("alice", AuthMethod::BearerJwt)
    );
    assert_eq!(id.groups, ["team-payments"]);
    let p = a.authenticate(&basic("ignored", &token)).await;
    assert_eq!(p.identity().unwrap().method, AuthMethod::BasicJwt);
}

#[tokio::test]
async fn jwt_claim_checks_fail_with_their_reason() {
    let key = TestKey::new("k1");
    let (_dir, _, settings) = jwt_fixture(&[&key]);
    let a = access(&settings).await;
    let with = |field: &str, value: serde_json::Value| {
        let mut c = claims("alice", &[]);
        c[field] = value;
        key.sign(&c)
    };
    let cases = [
        (with("exp", json!(now() - 120)), AuthFailure::Expired),
        (with("nbf", json!(now() + 600)), AuthFailure::NotYetValid),
        (
            with("iss", json!("https://evil.example")),
            AuthFailure::WrongIssuer,
        ),
        (
            with("aud", json!("someone-else")),
            AuthFailure::WrongAudience,
        ),
        (with("exp", json!("never")), AuthFailure::Malformed),
        (with("sub", json!(null)), AuthFailure::Malformed),
    ];
    for (token, want) in cases {
        assert_eq!(a.authenticate(&bearer(&token)).await, Authn::Failed(want));
    }
    // Within the leeway (30 s by default) an expired token still passes.
    let just = with("exp", json!(now() - 5));
    assert!(a.authenticate(&bearer(&just)).await.identity().is_some());
}

#[tokio::test]
async fn jwt_from_another_key_or_unknown_kid_is_refused() {
    let key = TestKey::new("k1");
    let (_dir, _, settings) = jwt_fixture(&[&key]);
    let a = access(&settings).await;

    let impostor = TestKey::new("k1");
    let forged = impostor.sign(&claims("alice", &[]));
    let got = a.authenticate(&bearer(&forged)).await;
    assert_eq!(got, Authn::Failed(AuthFailure::BadSignature));

    let stranger = TestKey::new("k2").sign(&claims("alice", &[]));
    let got = a.authenticate(&bearer(&stranger)).await;
    assert_eq!(got, Authn::Failed(AuthFailure::UnknownKey));
}

#[tokio::test]
async fn unsigned_and_hmac_jwts_are_refused() {
    let key = TestKey::new("k1");
    let (_dir, _, settings) = jwt_fixture(&[&key]);
    let a = access(&settings).await;
    let payload = URL_SAFE_NO_PAD.encode(claims("alice", &[]).to_string());

    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#);
    let unsigned = format!("{none_header}.{payload}.");
    let got = a.authenticate(&bearer(&unsigned)).await;
    assert_eq!(got, Authn::Failed(AuthFailure::BadAlgorithm));

    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("k1".to_string());
    let secret = EncodingKey::from_secret(b"a shared secret of enough length").unwrap();
    let hmac = jsonwebtoken::encode(&h, &claims("alice", &[]), &secret).unwrap();
    let got = a.authenticate(&bearer(&hmac)).await;
    assert_eq!(got, Authn::Failed(AuthFailure::BadAlgorithm));
}

#[tokio::test]
async fn rotated_jwks_file_is_picked_up() {
    let (k1, k2) = (TestKey::new("k1"), TestKey::new("k2"));
    let (_dir, path, settings) = jwt_fixture(&[&k1]);
    let a = access(&settings).await;
    let token = k2.sign(&claims("bob", &[]));
    assert_eq!(
        a.authenticate(&bearer(&token)).await,
        Authn::Failed(AuthFailure::UnknownKey)
    );

    write_atomically(&path, &jwks(&[&k1, &k2]));
    a.poll_now().await;
    assert_eq!(name_of(&a.authenticate(&bearer(&token)).await), Some("bob"));

    write_atomically(&path, "{\"keys\": []}");
    a.poll_now().await;
    assert_eq!(name_of(&a.authenticate(&bearer(&token)).await), Some("bob"));

    // Verified tokens are remembered, but not past their key: once k2 is gone, bob's token
    // (verified, and cached, above) is refused.
    write_atomically(&path, &jwks(&[&k1]));
    a.poll_now().await;
    assert_eq!(
        a.authenticate(&bearer(&token)).await,
        Authn::Failed(AuthFailure::UnknownKey)
    );
}

#[tokio::test]
async fn jwks_url_is_fetched_at_start_and_not_hammered_on_unknown_kids() {
    let key = TestKey::new("k1");
    let (url, fetches) = serve_once_per_request(jwks(&[&key])).await;
    let settings = AccessSettings {
        enabled: true,
        jwt: Some(JwtSettings {
            jwks_url: Some(url),
            issuer: ISSUER.to_string(),
            audience: AUDIENCE.to_string(),
            ..JwtSettings::default()
        }),
        ..AccessSettings::default()
    };
    let a = access(&settings).await;
    let ok = a
        .authenticate(&bearer(&key.sign(&claims("carol", &[]))))
        .await;
    assert_eq!(name_of(&ok), Some("carol"));

    let stranger = TestKey::new("k9").sign(&claims("carol", &[]));
    for _ in 0..3 {
        let got = a.authenticate(&bearer(&stranger)).await;
        assert_eq!(got, Authn::Failed(AuthFailure::UnknownKey));
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "refetched within 30 s");
}

/// A tiny HTTP server answering every request with `body`; returns its URL and a hit counter.
async fn serve_once_per_request(body: String) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
        }
    });
    (url, hits)
}

// === rules and startup ===

#[tokio::test]
async fn groups_claim_grants_a_group_rule() {
    let key = TestKey::new("k1");
    let (_dir, _, mut settings) = jwt_fixture(&[&key]);
    settings.rules = vec![rule("corp.example.com/payments", &["group:team-payments"])];
    let a = access(&settings).await;
    let member = a
        .authenticate(&bearer(&key.sign(&claims("dan", &["team-payments"]))))
        .await;
    let outsider = a
        .authenticate(&bearer(&key.sign(&claims("eve", &["team-web"]))))
        .await;
    let m = "corp.example.com/payments/ledger/v2";
    assert_eq!(a.authorize(&member, m), Decision::Allow);
    assert_eq!(a.authorize(&outsider, m), Decision::Forbidden);
    assert_eq!(a.authorize(&Authn::Anonymous, m), Decision::Unauthenticated);
    // Unmatched paths fall back to `default` (authenticated).
    assert_eq!(a.authorize(&outsider, "golang.org/x/mod"), Decision::Allow);
}

#[tokio::test]
async fn missing_files_fail_at_startup() {
    let missing = PathBuf::from("/nonexistent/cairn/tokens.toml");
    let err = Access::new(&settings_with_tokens(&missing), reqwest::Client::new())
        .await
        .unwrap_err();
    assert!(matches!(err[..], [AccessError::TokensFile { .. }]));
    let err = Access::new(&jwt_settings(&missing), reqwest::Client::new())
        .await
        .unwrap_err();
    assert!(matches!(err[..], [AccessError::JwksFile { .. }]));
}
