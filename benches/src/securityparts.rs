//! The fixtures of `cairn-bench security` and its in-process part.
//!
//! [`Fixtures::make`] writes, into a work directory: a CA and an HTTPS server certificate for
//! 127.0.0.1 (`cairn_node::tls::pki`, as `cairn certs server 127.0.0.1` makes one); a static
//! token ([`cairn_node::access::new_token`]) and the tokens file holding its hash; an ES256 key
//! (ring), a JWT it signed (assembled by hand: base64url header and payload, the fixed-size
//! r‖s signature) and the JWK set with its public point. [`Fixtures::node_config`] renders the
//! node config of each setup, and [`micro`] times `Access::authenticate` on one thread.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use cairn_node::access::{self, Access, AccessRule, AccessSettings, JwtSettings};
use cairn_node::tls::pki;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::json;

/// The static token's identity name (the Basic login).
pub const TOKEN_NAME: &str = "bench";
/// `iss` of the JWT, required by `[access.jwt]`.
const ISSUER: &str = "https://idp.bench.invalid";
/// `aud` of the JWT, required by `[access.jwt]`.
const AUDIENCE: &str = "cairn";
/// The JWT's key id, named in its header and in the JWK set.
const KID: &str = "bench-es256";
/// The JWT stays valid this long: far longer than any run.
const JWT_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The files and credentials every setup is made from.
pub struct Fixtures {
    /// The CA that signed the server certificate (PEM), for the load generator's root store.
    pub ca_pem: String,
    server_cert: PathBuf,
    server_key: PathBuf,
    tokens_file: PathBuf,
    jwks_file: PathBuf,
    /// The static token (its SHA-256 is in the tokens file).
    pub token: String,
    /// An ES256 JWT for `bench-jwt`, valid for a day.
    pub jwt: String,
}

/// Which node configuration to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// `[tls]` with the server certificate and `tls.plain_listen`; access off.
    Https,
    /// Plain HTTP, access off.
    AccessOff,
    /// Plain HTTP, access on: the tokens file, the JWK set, rule `*` → `authenticated`.
    AccessOn,
}

impl Fixtures {
    /// Writes every fixture under `dir`.
    pub fn make(dir: &Path) -> anyhow::Result<Fixtures> {
        std::fs::create_dir_all(dir)?;
        let ca = pki::new_ca("cairn-bench HTTPS CA", 30)?;
        let server = pki::issue(&ca, &pki::Leaf::Server(vec!["127.0.0.1".into()]), 30)?;
        let (server_cert, server_key) = pki::write(dir, &server, "server.pem", "server-key.pem")?;
        let token = access::new_token();
        let tokens_file = dir.join("tokens.toml");
        std::fs::write(
            &tokens_file,
            format!(
                "[[token]]\nname = {TOKEN_NAME:?}\nsha256 = {:?}\ngroups = [\"bench\"]\n",
                access::hash_token(&token)
            ),
        )?;
        let (jwt, jwks) = es256_jwt()?;
        let jwks_file = dir.join("jwks.json");
        std::fs::write(&jwks_file, jwks.to_string())?;
        Ok(Fixtures {
            ca_pem: ca.cert_pem,
            server_cert,
            server_key,
            tokens_file,
            jwks_file,
            token,
            jwt,
        })
    }

    /// The node config file of `setup` (the sumdb is turned off by the caller's environment).
    pub fn node_config(&self, setup: Setup) -> String {
        let q = |p: &Path| format!("{:?}", p.display().to_string());
        match setup {
            Setup::Https => format!(
                "[tls]\ncert_file = {}\nkey_file = {}\nplain_listen = \"127.0.0.1:0\"\n",
                q(&self.server_cert),
                q(&self.server_key)
            ),
            Setup::AccessOff => String::new(),
            Setup::AccessOn => format!(
                "[access]\nenabled = true\ntokens_file = {}\n\n\
                 [access.jwt]\njwks_file = {}\nissuer = {ISSUER:?}\naudience = {AUDIENCE:?}\n\n\
                 [[access.rules]]\npattern = \"*\"\nallow = [\"authenticated\"]\n",
                q(&self.tokens_file),
                q(&self.jwks_file)
            ),
        }
    }

    /// The `[access]` settings of [`Setup::AccessOn`], for the in-process [`Access`].
    fn access_settings(&self) -> AccessSettings {
        AccessSettings {
            enabled: true,
            tokens_file: Some(self.tokens_file.clone()),
            jwt: Some(JwtSettings {
                jwks_file: Some(self.jwks_file.clone()),
                issuer: ISSUER.into(),
                audience: AUDIENCE.into(),
                ..JwtSettings::default()
            }),
            rules: vec![AccessRule {
                pattern: "*".into(),
                allow: vec!["authenticated".into()],
            }],
            ..AccessSettings::default()
        }
    }

    /// `Authorization: Basic <name:token>` for the static token.
    pub fn basic(&self) -> anyhow::Result<HeaderValue> {
        let creds = STANDARD.encode(format!("{TOKEN_NAME}:{}", self.token));
        Ok(HeaderValue::from_str(&format!("Basic {creds}"))?)
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(token: &str) -> anyhow::Result<HeaderValue> {
        Ok(HeaderValue::from_str(&format!("Bearer {token}"))?)
    }
}

/// A fresh P-256 key, a JWT signed with it (ES256), and the JWK set holding its public key.
fn es256_jwt() -> anyhow::Result<(String, serde_json::Value)> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow!("generating a P-256 key failed"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|e| anyhow!("loading the P-256 key: {e}"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let header = json!({ "alg": "ES256", "typ": "JWT", "kid": KID });
    let claims = json!({
        "sub": "bench-jwt", "groups": ["bench"], "iss": ISSUER, "aud": AUDIENCE,
        "iat": now - 10, "nbf": now - 10, "exp": now + JWT_LIFETIME.as_secs(),
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    // FIXED signing yields r‖s (64 bytes), the JWS encoding of ES256 (RFC 7518 section 3.4).
    let sig = pair
        .sign(&rng, signing_input.as_bytes())
        .map_err(|_| anyhow!("signing the JWT failed"))?;
    let jwt = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()));
    let point = pair.public_key().as_ref(); // 0x04 ‖ x ‖ y
    if point.len() != 65 {
        bail!("unexpected P-256 public key length {}", point.len());
    }
    let jwks = json!({ "keys": [{
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": KID,
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }]});
    Ok((jwt, jwks))
}

/// One in-process case: µs per `Access::authenticate` call.
#[derive(Debug, Clone)]
pub struct Micro {
    /// `basic token`, `bearer token`, `bearer jwt`.
    pub name: &'static str,
    /// Timed calls.
    pub calls: usize,
    /// Mean wall time per call, microseconds.
    pub us_per_call: f64,
}

/// Builds `Access` from the fixtures and times `calls` sequential `authenticate` calls per
/// credential (after `calls / 10` untimed ones), on the calling task: one thread. No metrics
/// recorder is installed here, so the node's per-attempt counter costs a little more than this.
pub async fn micro(fx: &Fixtures, calls: usize) -> anyhow::Result<Vec<Micro>> {
    let access = Access::new(&fx.access_settings(), reqwest::Client::new())
        .await
        .map_err(|errs| {
            let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            anyhow!("building Access: {}", all.join("; "))
        })?;
    let cases = [
        ("basic token", fx.basic()?),
        ("bearer token", Fixtures::bearer(&fx.token)?),
        ("bearer jwt", Fixtures::bearer(&fx.jwt)?),
    ];
    let mut out = Vec::new();
    for (name, value) in cases {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value);
        let who = access.authenticate(&headers).await;
        if who.identity().is_none() {
            bail!("in-process {name}: not authenticated ({who:?})");
        }
        for _ in 0..calls / 10 {
            std::hint::black_box(access.authenticate(&headers).await);
        }
        let start = std::time::Instant::now();
        for _ in 0..calls.max(1) {
            std::hint::black_box(access.authenticate(std::hint::black_box(&headers)).await);
        }
        let us_per_call = start.elapsed().as_secs_f64() * 1e6 / calls.max(1) as f64;
        out.push(Micro {
            name,
            calls: calls.max(1),
            us_per_call,
        });
    }
    Ok(out)
}

/// The root store holding the bench CA.
pub fn roots(ca_pem: &str) -> anyhow::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    let der = CertificateDer::from_pem_slice(ca_pem.as_bytes()).context("parsing the bench CA")?;
    roots.add(der)?;
    Ok(roots)
}
