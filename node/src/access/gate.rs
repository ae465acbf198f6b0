//! [`Access`]: authenticates requests and decides per module path, for the GOPROXY handler.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::credentials::{looks_like_jwt, Credential};
use super::error::{AccessError, AuthFailure, TokenFileError};
use super::identity::{AuthMethod, Authn, Identity};
use super::jwt::JwtVerifier;
use super::metrics;
use super::reload::WatchedFile;
use super::rules::{decide, Decision, Policy};
use super::settings::AccessSettings;
use super::tokens::{digest, digest_eq, parse_hash, TokenSet};

/// How often [`Access::spawn_reloader`] looks at the files (and whether a JWKS URL is due).
pub const RELOAD_POLL: Duration = Duration::from_secs(2);

/// Access control for the GOPROXY port. Cheap to clone: clones share one state.
#[derive(Clone)]
pub struct Access {
    /// `None` when disabled.
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("enabled", &self.enabled())
            .finish_non_exhaustive()
    }
}

struct Inner {
    policy: Policy,
    challenge: HeaderValue,
    metrics_hash: Option<[u8; 32]>,
    tokens: Option<TokenSource>,
    jwt: Option<JwtVerifier>,
}

/// The tokens file and the set loaded from it.
struct TokenSource {
    file: WatchedFile,
    // watch rather than RwLock: see `JwtVerifier::keys`.
    set: watch::Sender<Arc<TokenSet>>,
}

// === impl Access ===

impl Access {
    /// Access control switched off: every request is allowed and no header is looked at.
    pub fn disabled() -> Access {
        Access { inner: None }
    }

    /// Validates `settings` and loads the tokens file and the JWK set once.
    ///
    /// A tokens file or JWKS file that cannot be read or parsed is an error. A JWKS URL that
    /// cannot be fetched is not: it is logged, JWTs are refused with `UnknownKey` meanwhile, and
    /// the fetch is retried at most every 30 s (by the reloader, or by a request with an unknown
    /// `kid`). `http` is used only for the JWKS URL.
    pub async fn new(
        settings: &AccessSettings,
        http: reqwest::Client,
    ) -> Result<Access, Vec<AccessError>> {
        settings.validate()?;
        if !settings.enabled {
            return Ok(Access::disabled());
        }
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err(vec![AccessError::NoCryptoProvider]);
        }
        let mut errs = Vec::new();
        let tokens = match &settings.tokens_file {
            Some(path) => TokenSource::open(path)
                .await
                .map_err(|source| {
                    errs.push(AccessError::TokensFile {
                        path: path.clone(),
                        source,
                    })
                })
                .ok(),
            None => None,
        };
        let jwt = match &settings.jwt {
            Some(s) => JwtVerifier::new(s, http)
                .await
                .map_err(|e| errs.push(e))
                .ok(),
            None => None,
        };
        if !errs.is_empty() {
            return Err(errs);
        }
        let inner = Inner {
            policy: Policy::new(settings),
            challenge: challenge(settings.realm()),
            metrics_hash: settings
                .metrics_token_sha256
                .as_deref()
                .and_then(parse_hash),
            tokens,
            jwt,
        };
        Ok(Access {
            inner: Some(Arc::new(inner)),
        })
    }

    /// Whether access control is on.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Who sent `headers`. Never blocks on file I/O; may wait for one JWKS fetch when a JWT
    /// names an unknown `kid` (at most one fetch per 30 s, shared by concurrent requests).
    pub async fn authenticate(&self, headers: &HeaderMap) -> Authn {
        let Some(inner) = &self.inner else {
            return Authn::Anonymous;
        };
        let (authn, scheme, source) = match Credential::from_headers(headers) {
            Ok(cred) => inner.check(&cred).await,
            Err(f) => (Authn::Failed(f), "none", "none"),
        };
        let outcome = match &authn {
            Authn::Anonymous => "anonymous",
            Authn::Authenticated(_) => "ok",
            Authn::Failed(f) => {
                tracing::debug!(method = scheme, source, reason = %f, "authentication failed");
                f.as_str()
            }
        };
        metrics::attempt(scheme, source, outcome);
        authn
    }

    /// Whether `who` may read `module_path` (the unescaped module path, as for routing).
    pub fn authorize(&self, who: &Authn, module_path: &str) -> Decision {
        match &self.inner {
            None => Decision::Allow,
            Some(inner) => decide(who, inner.policy.allowed_for(module_path)),
        }
    }

    /// Whether `who` may read paths that name no module (checksum database tiles and
    /// `/latest`): decided by the `default` principals.
    pub fn authorize_any(&self, who: &Authn) -> Decision {
        match &self.inner {
            None => Decision::Allow,
            Some(inner) => decide(who, inner.policy.default_allowed()),
        }
    }

    /// Whether `/metrics` may be served: always, unless `metrics_token_sha256` is set, in which
    /// case `Authorization: Bearer` must carry that token.
    pub fn metrics_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(want) = self.inner.as_ref().and_then(|i| i.metrics_hash) else {
            return true;
        };
        match Credential::from_headers(headers) {
            Ok(Credential::Bearer(token)) => digest_eq(&digest(&token), &want),
            _ => false,
        }
    }

    /// The `WWW-Authenticate` value for 401 answers: a Basic and a Bearer challenge, both with
    /// the configured realm.
    pub fn www_authenticate(&self) -> HeaderValue {
        match &self.inner {
            Some(inner) => inner.challenge.clone(),
            None => challenge(super::settings::DEFAULT_REALM),
        }
    }

    /// Starts the task that re-reads changed token and JWKS files and re-fetches a JWKS URL,
    /// polling every [`RELOAD_POLL`] until `shutdown`. Without it, files are read only at
    /// startup. Call it once; a no-op when disabled.
    pub fn spawn_reloader(&self, shutdown: CancellationToken) {
        self.spawn_reloader_every(shutdown, RELOAD_POLL);
    }

    /// Runs one reload pass now (what the reloader does on each tick).
    #[cfg(test)]
    pub(crate) async fn poll_now(&self) {
        if let Some(inner) = &self.inner {
            inner.poll().await;
        }
    }

    /// [`Access::spawn_reloader`] with another poll period (tests use a short one).
    pub(crate) fn spawn_reloader_every(&self, shutdown: CancellationToken, every: Duration) {
        let Some(inner) = self.inner.clone() else {
            return;
        };
        if inner.tokens.is_none() && inner.jwt.is_none() {
            return;
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => inner.poll().await,
                }
            }
            tracing::debug!("access reloader stopped");
        });
    }
}

// === impl Inner ===

impl Inner {
    /// Authenticates one credential; also returns the metric `method` and `source` labels.
    async fn check(&self, cred: &Credential) -> (Authn, &'static str, &'static str) {
        let (result, method) = match cred {
            Credential::None => return (Authn::Anonymous, "none", "none"),
            Credential::Basic { password, .. } if self.is_jwt(password) => {
                (self.jwt(password).await, AuthMethod::BasicJwt)
            }
            Credential::Bearer(token) if self.is_jwt(token) => {
                (self.jwt(token).await, AuthMethod::BearerJwt)
            }
            Credential::Basic { login, password } => (
                self.token(|set| set.basic(login, password)),
                AuthMethod::BasicToken,
            ),
            Credential::Bearer(token) => {
                (self.token(|set| set.bearer(token)), AuthMethod::BearerToken)
            }
        };
        let authn = match result {
            Ok((name, groups)) => Authn::Authenticated(Identity {
                name,
                groups,
                method,
            }),
            Err(f) => Authn::Failed(f),
        };
        (authn, cred.scheme(), method.source())
    }

    fn is_jwt(&self, secret: &str) -> bool {
        self.jwt.is_some() && looks_like_jwt(secret)
    }

    async fn jwt(&self, token: &str) -> Result<(String, Vec<String>), AuthFailure> {
        match &self.jwt {
            Some(v) => v.verify(token).await,
            None => Err(AuthFailure::UnknownToken),
        }
    }

    fn token(
        &self,
        find: impl FnOnce(&TokenSet) -> Result<&super::tokens::TokenEntry, AuthFailure>,
    ) -> Result<(String, Vec<String>), AuthFailure> {
        let set = match &self.tokens {
            Some(t) => t.set.borrow().clone(),
            None => Arc::new(TokenSet::default()),
        };
        find(&set).map(|e| (e.name.clone(), e.groups.clone()))
    }

    async fn poll(&self) {
        if let Some(t) = &self.tokens {
            t.poll().await;
        }
        if let Some(j) = &self.jwt {
            j.poll().await;
        }
    }
}

// === impl TokenSource ===

impl TokenSource {
    async fn open(path: &std::path::Path) -> Result<TokenSource, TokenFileError> {
        let (file, text) = WatchedFile::open(path).await?;
        let set = TokenSet::parse(&text)?;
        metrics::loaded("tokens", set.len());
        Ok(TokenSource {
            file,
            set: watch::Sender::new(Arc::new(set)),
        })
    }

    async fn poll(&self) {
        let path = self.file.path().display();
        let parsed = match self.file.read_if_changed().await {
            Ok(None) => return,
            Ok(Some(text)) => TokenSet::parse(&text),
            Err(e) => Err(TokenFileError::Read(e)),
        };
        match parsed {
            Ok(set) => {
                tracing::info!(path = %path, tokens = set.len(), "tokens file reloaded");
                metrics::reload("tokens_file", "ok");
                metrics::loaded("tokens", set.len());
                self.set.send_replace(Arc::new(set));
            }
            Err(error) => {
                metrics::reload("tokens_file", "error");
                tracing::error!(path = %path, %error, "tokens file refused; keeping the previous tokens");
            }
        }
    }
}

/// `Basic realm="<realm>", Bearer realm="<realm>"`; the realm was validated as quotable.
fn challenge(realm: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "Basic realm=\"{realm}\", Bearer realm=\"{realm}\""
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"cairn\", Bearer realm=\"cairn\""))
}
