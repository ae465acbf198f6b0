//! Identity-provider JWTs: the JWK set (from a file or a URL), decoding keys cached by `kid`,
//! and verification of signature, `iss`, `aud`, `exp` and `nbf`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Digest as _;
use tokio::sync::watch;
use tokio::time::Instant;

use super::error::{AccessError, AuthFailure, JwksError};
use super::metrics;
use super::reload::WatchedFile;
use super::settings::JwtSettings;

/// The only algorithms accepted: asymmetric ones. `none` and HMAC never verify.
const ALLOWED: &[(&str, Algorithm)] = &[
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
];
/// The least time between two fetches caused by an unknown `kid` (or by an empty key set).
const MISS_REFETCH: Duration = Duration::from_secs(30);
/// How long one JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest JWK set accepted.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// One usable verification key and the algorithms it may verify.
struct Key {
    decoding: DecodingKey,
    algs: Vec<Algorithm>,
}

/// The decoding keys of one JWK set, built once per load.
#[derive(Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Arc<Key>>,
    /// The key used for tokens without `kid`: only when the set holds exactly one key.
    sole: Option<Arc<Key>>,
    /// How many usable keys the set holds.
    count: usize,
}

impl KeySet {
    /// Parses a JWK set, skipping keys that cannot verify an allowed algorithm.
    pub(crate) fn parse(text: &str) -> Result<KeySet, JwksError> {
        #[derive(Deserialize)]
        struct Raw {
            keys: Vec<Value>,
        }
        let raw: Raw = serde_json::from_str(text)?;
        let mut set = KeySet::default();
        let mut usable = Vec::new();
        for value in raw.keys {
            // One odd key (an encryption key, a new key type) must not hide the others.
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            let Some(key) = usable_key(&jwk) else {
                continue;
            };
            let key = Arc::new(key);
            if let Some(kid) = &jwk.common.key_id {
                set.by_kid.insert(kid.clone(), key.clone());
            }
            usable.push(key);
        }
        set.count = usable.len();
        match usable.len() {
            0 => Err(JwksError::NoUsableKey),
            1 => {
                set.sole = usable.pop();
                Ok(set)
            }
            _ => Ok(set),
        }
    }

    /// How many usable keys the set holds.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    fn get(&self, kid: Option<&str>) -> Option<Arc<Key>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            None => self.sole.clone(),
        }
    }
}

fn usable_key(jwk: &Jwk) -> Option<Key> {
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let by_type: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
        ],
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            &[Algorithm::ES256]
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P384 => {
            &[Algorithm::ES384]
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            &[Algorithm::EdDSA]
        }
        _ => return None,
    };
    // A key that names its algorithm may verify only that one (RFC 7517 section 4.4).
    let algs: Vec<Algorithm> = match jwk.common.key_algorithm {
        Some(ka) => {
            let alg = Algorithm::try_from(ka).ok()?;
            by_type.contains(&alg).then(|| vec![alg])?
        }
        None => by_type.to_vec(),
    };
    let decoding = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key { decoding, algs })
}

/// Where the JWK set comes from.
enum KeySource {
    File(WatchedFile),
    Url {
        url: String,
        http: reqwest::Client,
        refresh: Duration,
        // Held across the fetch on purpose: it makes concurrent refreshes single-flight, and
        // whoever waited then sees the fresh attempt time and does not fetch again.
        last_attempt: tokio::sync::Mutex<Option<Instant>>,
    },
}

/// Verifies JWTs against the current key set.
pub(crate) struct JwtVerifier {
    name_claim: String,
    groups_claim: String,
    /// One validation per allowed algorithm, built once.
    validations: Vec<(Algorithm, Validation)>,
    // watch rather than RwLock: readers clone the Arc under a short borrow, there is no
    // poisoning, and the reloader swaps in a whole new set.
    keys: watch::Sender<Arc<KeySet>>,
    source: KeySource,
    /// Tokens already verified, by SHA-256, until they expire: the go command sends the same
    /// token with every request, and an ES256 check costs ~300 µs of CPU (measured with
    /// `cairn-bench security`) against ~1 µs for a lookup. Emptied when the keys change.
    verified: std::sync::Mutex<HashMap<[u8; 32], Verified>>,
}

/// A verified token's identity and expiry.
#[derive(Clone)]
struct Verified {
    name: String,
    groups: Vec<String>,
    /// `exp`, Unix seconds (no leeway: a cached token is never used past its own expiry).
    exp: u64,
}

/// Most verified tokens remembered; past this the memory is cleared (they verify again).
const MAX_VERIFIED: usize = 10_000;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl JwtVerifier {
    /// Loads the key set once. A JWKS file that cannot be loaded is an error; a JWKS URL that
    /// cannot be fetched is logged and retried (every 30 s, by the reloader or on a request).
    pub(crate) async fn new(s: &JwtSettings, http: reqwest::Client) -> Result<Self, AccessError> {
        let (source, initial) = match (&s.jwks_file, &s.jwks_url) {
            (Some(path), _) => {
                let err = |source| AccessError::JwksFile {
                    path: path.clone(),
                    source,
                };
                let (file, text) = WatchedFile::open(path)
                    .await
                    .map_err(|e| err(JwksError::Read(e)))?;
                let set = KeySet::parse(&text).map_err(err)?;
                (KeySource::File(file), set)
            }
            (None, Some(url)) => {
                let source = KeySource::Url {
                    url: url.clone(),
                    http,
                    refresh: Duration::from_secs(s.jwks_refresh_secs),
                    last_attempt: tokio::sync::Mutex::new(None),
                };
                (source, KeySet::default())
            }
            (None, None) => return Err(AccessError::JwtKeySource),
        };
        metrics::loaded("jwks", initial.len());
        let verifier = JwtVerifier {
            name_claim: s.name_claim.clone(),
            groups_claim: s.groups_claim.clone(),
            validations: validations(s),
            keys: watch::Sender::new(Arc::new(initial)),
            source,
            verified: std::sync::Mutex::default(),
        };
        if let KeySource::Url { .. } = verifier.source {
            verifier.refetch_if_older(Duration::ZERO).await;
        }
        Ok(verifier)
    }

    /// Verifies `token` (or finds it verified before and not yet expired) and returns its name
    /// and groups.
    pub(crate) async fn verify(&self, token: &str) -> Result<(String, Vec<String>), AuthFailure> {
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = now_secs();
        if let Some(v) = self.lock_verified().get(&digest).filter(|v| now < v.exp) {
            return Ok((v.name.clone(), v.groups.clone()));
        }
        let (claims, exp) = self.verify_fully(token).await?;
        let (name, groups) = self.identity(&claims)?;
        if let Some(exp) = exp {
            let mut cache = self.lock_verified();
            if cache.len() >= MAX_VERIFIED {
                cache.clear();
            }
            let entry = Verified {
                name: name.clone(),
                groups: groups.clone(),
                exp,
            };
            cache.insert(digest, entry);
        }
        Ok((name, groups))
    }

    fn lock_verified(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Verified>> {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks the signature and claims of `token`: its claims and `exp`.
    async fn verify_fully(
        &self,
        token: &str,
    ) -> Result<(Map<String, Value>, Option<u64>), AuthFailure> {
        let header = peek_header(token)?;
        let alg = ALLOWED
            .iter()
            .find(|(name, _)| *name == header.alg)
            .map(|(_, alg)| *alg)
            .ok_or(AuthFailure::BadAlgorithm)?;
        let kid = header.kid.as_deref();
        let key = match self.key(kid) {
            Some(key) => key,
            None => {
                // A URL's keys may have rotated; a concurrent fetch may also just have finished,
                // so look again whether or not this call fetched.
                self.refetch_if_older(MISS_REFETCH).await;
                self.key(kid).ok_or(AuthFailure::UnknownKey)?
            }
        };
        if !key.algs.contains(&alg) {
            return Err(AuthFailure::BadAlgorithm);
        }
        let validation = self
            .validations
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, v)| v)
            .ok_or(AuthFailure::BadAlgorithm)?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, validation)
            .map_err(|e| failure_of(e.kind()))?;
        let exp = data.claims.get("exp").and_then(Value::as_u64);
        Ok((data.claims, exp))
    }

    fn key(&self, kid: Option<&str>) -> Option<Arc<Key>> {
        self.keys.borrow().get(kid)
    }

    fn identity(&self, claims: &Map<String, Value>) -> Result<(String, Vec<String>), AuthFailure> {
        let name = claims
            .get(&self.name_claim)
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or(AuthFailure::Malformed)?;
        let groups = match claims.get(&self.groups_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(g)) => vec![g.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(_) => return Err(AuthFailure::Malformed),
        };
        Ok((name.to_string(), groups))
    }

    /// Re-reads a changed JWKS file, or re-fetches the URL when due. Called by the reloader.
    pub(crate) async fn poll(&self) {
        match &self.source {
            KeySource::File(file) => self.poll_file(file).await,
            KeySource::Url { refresh, .. } => {
                let empty = self.keys.borrow().len() == 0;
                let due = if empty { MISS_REFETCH } else { *refresh };
                self.refetch_if_older(due).await;
            }
        }
    }

    async fn poll_file(&self, file: &WatchedFile) {
        let path = file.path().display();
        let parsed = match file.read_if_changed().await {
            Ok(None) => return,
            Ok(Some(text)) => KeySet::parse(&text),
            Err(e) => Err(JwksError::Read(e)),
        };
        match parsed {
            Ok(set) => {
                tracing::info!(path = %path, keys = set.len(), "jwks file reloaded");
                self.install(set, "jwks_file");
            }
            Err(error) => {
                metrics::reload("jwks_file", "error");
                tracing::error!(path = %path, %error, "jwks file refused; keeping the previous keys");
            }
        }
    }

    /// Fetches the JWKS URL unless the last attempt is younger than `min_age`. A no-op for a
    /// file source.
    async fn refetch_if_older(&self, min_age: Duration) {
        let KeySource::Url {
            url,
            http,
            last_attempt,
            ..
        } = &self.source
        else {
            return;
        };
        let mut last = last_attempt.lock().await;
        if last.is_some_and(|t| t.elapsed() < min_age) {
            return;
        }
        *last = Some(Instant::now());
        match fetch(http, url).await.and_then(|text| KeySet::parse(&text)) {
            Ok(set) => {
                tracing::debug!(url = %url, keys = set.len(), "jwks fetched");
                self.install(set, "jwks_url");
            }
            Err(error) => {
                metrics::reload("jwks_url", "error");
                tracing::warn!(url = %url, %error, "jwks fetch failed; keeping the previous keys");
            }
        }
    }

    fn install(&self, set: KeySet, source: &'static str) {
        metrics::reload(source, "ok");
        metrics::loaded("jwks", set.len());
        self.keys.send_replace(Arc::new(set));
        // A token verified with a key that is gone must verify again.
        self.lock_verified().clear();
    }
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<String, JwksError> {
    let mut resp = http.get(url).timeout(FETCH_TIMEOUT).send().await?;
    if !resp.status().is_success() {
        return Err(JwksError::Status(resp.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge(MAX_JWKS_BYTES));
        }
    }
    String::from_utf8(body).map_err(|e| JwksError::Read(std::io::Error::other(e)))
}

fn validations(s: &JwtSettings) -> Vec<(Algorithm, Validation)> {
    ALLOWED
        .iter()
        .map(|(_, alg)| {
            let mut v = Validation::new(*alg);
            v.leeway = s.leeway_secs;
            v.validate_nbf = true;
            v.set_issuer(&[&s.issuer]);
            v.set_audience(&[&s.audience]);
            v.set_required_spec_claims(&["exp", "iss", "aud"]);
            (*alg, v)
        })
        .collect()
}

/// The two header fields needed before verification.
#[derive(Deserialize)]
struct Peek {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

fn peek_header(token: &str) -> Result<Peek, AuthFailure> {
    let (header, _) = token.split_once('.').ok_or(AuthFailure::Malformed)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthFailure::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| AuthFailure::Malformed)
}

/// The safe reason for a `jsonwebtoken` error.
fn failure_of(kind: &ErrorKind) -> AuthFailure {
    match kind {
        ErrorKind::InvalidSignature => AuthFailure::BadSignature,
        ErrorKind::ExpiredSignature => AuthFailure::Expired,
        ErrorKind::ImmatureSignature => AuthFailure::NotYetValid,
        ErrorKind::InvalidIssuer => AuthFailure::WrongIssuer,
        ErrorKind::InvalidAudience => AuthFailure::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) if c == "iss" => AuthFailure::WrongIssuer,
        ErrorKind::MissingRequiredClaim(c) if c == "aud" => AuthFailure::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => AuthFailure::BadAlgorithm,
        _ => AuthFailure::Malformed,
    }
}
