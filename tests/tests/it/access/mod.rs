//! Access control on the GOPROXY port and the audit trail, end to end.
//!
//! One node serves HTTPS (the go command sends `.netrc` credentials and GOAUTH headers only over
//! HTTPS) in front of a recording fixture upstream. Two static tokens live in a hashed tokens
//! file: `pat` in `team-payments`, `olga` in no group. JWTs come from a test identity provider
//! (an ES256 key made here, its public half in a JWKS file). Rules: `example.com/Upper` (the
//! corpus module `example.com/Upper/Case`) is readable by `group:team-payments` only, everything
//! else by any authenticated identity. `/metrics` needs its own token; the audit trail goes to a
//! file. The scenarios:
//!
//! 1. the go command downloads with a `.netrc` entry, and fails visibly (401) with a wrong one;
//! 2. a group rule answers 403 with one body for existing and missing paths, and the refused
//!    path never reaches the upstream;
//! 3. JWTs as Bearer (requests and a GOAUTH helper) and as a Basic password; expired, foreign,
//!    wrong-issuer and wrong-audience JWTs get 401; `/whoami` names identities and groups;
//! 4. a rewritten tokens file takes effect without a restart;
//! 5. `/metrics` needs its token, `/healthz` and `/readyz` do not;
//! 6. exactly one audit line per module request, with the right identity, status, module and
//!    kind, and no secret anywhere: audit trail, node log, `/metrics`, error bodies.
//!
//! This file holds the node and the credentials; `tokens` has scenarios 1, 2 and 4, `jwt` 3,
//! and `audit` 5 and 6.

mod audit;
mod feed;
mod jwt;
mod tokens;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use cairn_tests::fixture::Fixture;
use cairn_tests::gocmd::{Go, GoEnv};
use cairn_tests::h1::sha256_hex;
use cairn_tests::node::{CairnNode, NodeOptions, Resp};
use cairn_tests::tls::TestCa;
use cairn_tests::wait::{patience, wait_for};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::common::{corpus, expected_sums, FAST_UPSTREAM};

/// The private pattern: it covers the corpus module `example.com/Upper/Case`.
const PRIVATE: &str = "example.com/Upper";
/// The group the private pattern is readable by.
const PAYMENTS: &str = "team-payments";
/// The identity provider's `iss`.
const ISSUER: &str = "https://idp.example.test";
/// The `aud` cairn's JWTs carry.
const AUDIENCE: &str = "cairn-proxy";

// === credentials ===

/// A fresh high-entropy secret shaped like the node's own tokens (no `.`, so never a JWT).
fn secret() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).unwrap();
    format!("cairn_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A static token and who it stands for.
struct Token {
    name: String,
    secret: String,
    groups: Vec<String>,
}

impl Token {
    fn new(name: &str, groups: &[&str]) -> Token {
        Token {
            name: name.to_string(),
            secret: secret(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    /// `Authorization` for `.netrc`-style Basic (login = token name).
    fn basic(&self) -> String {
        basic(&self.name, &self.secret)
    }

    /// `Authorization` for a GOAUTH-style Bearer.
    fn bearer(&self) -> String {
        format!("Bearer {}", self.secret)
    }
}

fn basic(login: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{login}:{password}")))
}

/// Replaces the tokens file the way an operator's tooling would: write aside, rename into place.
fn write_tokens(path: &Path, tokens: &[&Token]) {
    let text: String = tokens
        .iter()
        .map(|t| {
            format!(
                "[[token]]\nname = \"{}\"\nsha256 = \"{}\"\ngroups = {:?}\n\n",
                t.name,
                sha256_hex(t.secret.as_bytes()),
                t.groups
            )
        })
        .collect();
    let aside = path.with_extension("new");
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

/// A test identity provider: one ES256 key.
struct Idp {
    key: EcdsaKeyPair,
    kid: &'static str,
}

impl Idp {
    fn new(kid: &'static str) -> Idp {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Idp { key, kid }
    }

    /// The JWK set publishing this key.
    fn jwks(&self) -> String {
        // An uncompressed P-256 point: 0x04, then x and y (32 bytes each).
        let point = self.key.public_key().as_ref();
        json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }]})
        .to_string()
    }

    /// A compact JWS over `claims`.
    fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

/// Claims for `sub` in `groups`, expiring `exp_in` seconds from now.
fn claims(sub: &str, groups: &[&str], iss: &str, aud: &str, exp_in: i64) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    json!({"sub": sub, "groups": groups, "iss": iss, "aud": aud,
           "iat": now.min(now + exp_in) - 60, "nbf": now - 60, "exp": now + exp_in})
}

// === the node ===

/// A node with access control and an audit trail, and everything it was configured with.
struct World {
    dir: TempDir,
    ca: TestCa,
    upstream: Fixture,
    /// In `team-payments`.
    pat: Token,
    /// In no group.
    olga: Token,
    metrics_token: String,
    idp: Idp,
    node: CairnNode,
}

impl World {
    async fn start() -> World {
        let dir = tempfile::Builder::new()
            .prefix("cairn-access-")
            .tempdir()
            .unwrap();
        let ca = TestCa::new().unwrap();
        let upstream = crate::common::corpus_fixture().await;
        let (pat, olga) = (Token::new("pat", &[PAYMENTS]), Token::new("olga", &[]));
        let metrics_token = secret();
        let idp = Idp::new("idp-1");
        let tokens = dir.path().join("tokens.toml");
        write_tokens(&tokens, &[&pat, &olga]);
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, idp.jwks()).unwrap();
        let config = format!(
            "{FAST_UPSTREAM}\n[tls]\ncert_file = {cert:?}\nkey_file = {key:?}\n\n\
             [access]\nenabled = true\ntokens_file = {tokens:?}\nmetrics_token_sha256 = \"{mhash}\"\n\n\
             [access.jwt]\njwks_file = {jwks:?}\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\n\n\
             [[access.rules]]\npattern = \"{PRIVATE}\"\nallow = [\"group:{PAYMENTS}\"]\n\n\
             [[access.rules]]\npattern = \"*\"\nallow = [\"authenticated\"]\n\n\
             [audit]\ntarget = {audit:?}\n",
            cert = ca.server_cert_file(),
            key = ca.server_key_file(),
            mhash = sha256_hex(metrics_token.as_bytes()),
            audit = dir.path().join("audit.log"),
        );
        let mut opts = NodeOptions::new(&upstream.url())
            .config(&config)
            .https(&ca.ca_file());
        // Debug logging: the secrets check in `audit` should see everything the node could log.
        opts.extra_args = vec!["--log-level".into(), "debug,openraft=info,sled=info".into()];
        let node = CairnNode::start(opts)
            .await
            .unwrap_or_else(|e| panic!("starting cairn-node: {e:#}"));
        World {
            dir,
            ca,
            upstream,
            pat,
            olga,
            metrics_token,
            idp,
            node,
        }
    }

    fn tokens_file(&self) -> PathBuf {
        self.dir.path().join("tokens.toml")
    }

    fn audit_file(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }

    /// A valid JWT for `sub` in `groups`.
    fn jwt(&self, sub: &str, groups: &[&str]) -> String {
        self.idp.sign(&claims(sub, groups, ISSUER, AUDIENCE, 600))
    }

    /// GET `path` with an optional `Authorization` value and extra headers.
    async fn get(&self, path: &str, auth: Option<&str>) -> Resp {
        self.get_with(path, auth, &[]).await
    }

    /// [`World::get`] with more headers (e.g. `x-request-id`).
    async fn get_with(&self, path: &str, auth: Option<&str>, more: &[(&str, &str)]) -> Resp {
        let mut headers: Vec<(&str, &str)> = more.to_vec();
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        self.node
            .request(reqwest::Method::GET, path, &headers)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e:#}"))
    }

    /// Waits until the audit file holds at least `n` whole lines and returns them parsed.
    async fn audit_lines(&self, n: usize) -> Vec<Value> {
        self.audit_until(&format!("{n} lines"), |lines| lines.len() >= n)
            .await
    }

    /// Waits until the audit file's whole lines, parsed, satisfy `done`, and returns them.
    async fn audit_until(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let path = self.audit_file();
        let what = format!("{what} in {}", path.display());
        wait_for(what, patience(1.0), || {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            // Only whole lines: the writer may be half way through the next one.
            let lines: Vec<Value> = text
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect();
            let ready = done(&lines);
            async move { ready.then_some(lines) }
        })
        .await
        .unwrap()
    }

    /// A hermetic go environment that trusts the node's CA and uses it as `GOPROXY`.
    fn go_env(&self, go: &Go) -> GoEnv {
        let ca = self.ca.ca_file();
        GoEnv::new(go, &self.node.url())
            .unwrap()
            .with_env("SSL_CERT_FILE", ca.to_str().unwrap())
    }
}

/// `.netrc` in the environment's HOME with one entry for the node. The machine is `host:port`:
/// the go command keys `.netrc` credentials by the machine name and looks them up by the URL's
/// `host:port/path` prefixes, so a bare `127.0.0.1` never matches a proxy URL with a port.
fn write_netrc(w: &World, env: &GoEnv, login: &str, password: &str) {
    let machine = w.node.addrs().http;
    let text = format!("machine {machine} login {login} password {password}\n");
    std::fs::write(env.home().join(".netrc"), text).unwrap();
}

/// The corpus's hashes of `mvs`, shaped like `crate::common::sums`.
fn expected(mvs: &[String]) -> BTreeMap<String, (String, String)> {
    let all = expected_sums(corpus());
    mvs.iter()
        .map(|mv| (mv.clone(), all.get(mv).cloned().expect("a corpus version")))
        .collect()
}

/// Asserts a 401 that challenges for both Basic and Bearer.
fn assert_401(resp: &Resp, what: &str) {
    assert_eq!(resp.status, 401, "{what}: {}", resp.text());
    let challenge = resp.header("www-authenticate");
    assert!(
        challenge.contains("Basic realm=") && challenge.contains("Bearer realm="),
        "{what}: WWW-Authenticate {challenge:?}"
    );
}
