//! [`Discovery`]: the order of the steps, the `[[direct.hosts]]` mappings and the answer cache.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, instrument};

use super::error::not_found;
use super::go_get::build_client;
use super::{static_rules, DiscoverError, RepoRoot};
use crate::direct::config::{DirectConfig, HostMapping};
use crate::direct::credentials::Credentials;
use crate::direct::netguard::NetGuard;
use crate::routing::match_prefix_patterns;

/// Tuning of [`Discovery`]; [`DiscoveryOptions::new`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    /// Deadline of one `?go-get=1` request, body included.
    pub timeout: Duration,
    /// Fixed addresses for hosts (DNS overrides), from `direct.resolve`.
    pub resolve: Vec<(String, SocketAddr)>,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Use the proxies `[egress]` took from the environment.
    pub system_proxy: bool,
    /// Trust and proxies.
    pub egress: crate::egress::Egress,
    /// How long a found repository is remembered.
    pub success_ttl: Duration,
    /// How long "no such repository" (and bad metadata) is remembered.
    pub failure_ttl: Duration,
    /// How long a transient failure is remembered.
    pub retry_ttl: Duration,
    /// Most answers remembered at once.
    pub max_entries: usize,
    /// The addresses client-named hosts may be reached at (`direct.allow_networks`).
    pub guard: Arc<NetGuard>,
}

impl DiscoveryOptions {
    /// The defaults with `timeout`, and the `resolve` entries of `cfg`.
    pub fn new(cfg: &DirectConfig, timeout: Duration) -> DiscoveryOptions {
        DiscoveryOptions {
            timeout,
            resolve: cfg.resolve_entries(),
            user_agent: concat!("cairn/", env!("CARGO_PKG_VERSION")).to_owned(),
            system_proxy: true,
            egress: crate::egress::Egress::default(),
            success_ttl: Duration::from_secs(600),
            failure_ttl: Duration::from_secs(30),
            retry_ttl: Duration::from_secs(5),
            max_entries: 10_000,
            guard: Arc::new(NetGuard::new(cfg)),
        }
    }
}

/// Resolves module paths to repositories. Shareable between tasks (`Send + Sync`); it caches
/// discovery answers.
pub struct Discovery {
    /// Host mappings, longest prefix first.
    hosts: Vec<HostMapping>,
    discovery: bool,
    insecure: String,
    pub(super) creds: Arc<Credentials>,
    /// Verifies TLS and refuses https → http redirects.
    pub(super) client: reqwest::Client,
    /// For `insecure` paths: skips TLS verification (and `fetch` may use plain http), like
    /// GOINSECURE.
    pub(super) insecure_client: reqwest::Client,
    pub(super) opts: DiscoveryOptions,
    /// A std mutex: it is held only to read or insert an entry, never across an await.
    pub(super) cache: Mutex<HashMap<String, Cached>>,
}

/// One remembered answer.
pub(super) struct Cached {
    answer: Result<RepoRoot, DiscoverError>,
    expires: Instant,
}

impl Discovery {
    /// A discovery for `[direct]` with HTTP requests limited to `timeout` each.
    pub fn new(
        cfg: &DirectConfig,
        creds: Arc<Credentials>,
        timeout: Duration,
        egress: &crate::egress::Egress,
    ) -> Result<Discovery, DiscoverError> {
        let opts = DiscoveryOptions {
            egress: egress.clone(),
            ..DiscoveryOptions::new(cfg, timeout)
        };
        Discovery::with_options(cfg, creds, opts)
    }

    /// [`Self::new`] with every option explicit.
    pub fn with_options(
        cfg: &DirectConfig,
        creds: Arc<Credentials>,
        opts: DiscoveryOptions,
    ) -> Result<Discovery, DiscoverError> {
        let mut hosts = cfg.hosts.clone();
        hosts.sort_by_key(|h| std::cmp::Reverse(h.prefix.len()));
        Ok(Discovery {
            hosts,
            discovery: cfg.discovery,
            insecure: cfg.insecure.clone(),
            creds,
            client: build_client(&opts, false)?,
            insecure_client: build_client(&opts, true)?,
            opts,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Resolves `module` (an unescaped, already validated module path): host mappings first
    /// (longest prefix wins), then the go command's static rules, then, if `discovery` is on,
    /// `?go-get=1` (see the module docs).
    #[instrument(skip_all, fields(module = %module))]
    pub async fn repo_root(&self, module: &str) -> Result<RepoRoot, DiscoverError> {
        if let Some(answer) = self.mapped(module) {
            debug!(source = "mapping", "repository found");
            return answer;
        }
        if let Some(answer) = static_rules::lookup(module, self.is_insecure(module)) {
            debug!(source = "static", "repository found");
            // `10.0.0.1/x.git` names its repository host without any page in between.
            return answer.and_then(|root| self.check_repo_host(module, root));
        }
        if !self.discovery {
            return Err(not_found(
                module,
                "no [[direct.hosts]] mapping or known-host rule covers it, and discovery is off",
            ));
        }
        if let Some(answer) = self.cached(module) {
            debug!(source = "cache", ok = answer.is_ok(), "discovery answer");
            return answer;
        }
        let answer = self.discover(module).await;
        debug!(source = "go-get", ok = answer.is_ok(), "discovery answer");
        self.remember(module, &answer);
        answer
    }

    /// Whether `module` matches `direct.insecure`.
    pub(super) fn is_insecure(&self, module: &str) -> bool {
        !self.insecure.is_empty() && match_prefix_patterns(&self.insecure, module)
    }

    // === mappings ===

    fn mapped(&self, module: &str) -> Option<Result<RepoRoot, DiscoverError>> {
        let host = self
            .hosts
            .iter()
            .find(|h| has_path_prefix(module, &h.prefix))?;
        let rest = module[host.prefix.len()..].trim_start_matches('/');
        let elems: Vec<&str> = rest.split('/').filter(|e| !e.is_empty()).collect();
        if elems.len() < host.depth {
            return Some(Err(not_found(
                module,
                &format!(
                    "the mapping for {} names repositories by {} path element(s) after it",
                    host.prefix, host.depth
                ),
            )));
        }
        let repo = elems[..host.depth].join("/");
        let base = &host.url;
        let sep = if base.ends_with('/') || base.ends_with(':') {
            ""
        } else {
            "/"
        };
        Some(Ok(RepoRoot {
            root: format!("{}/{repo}", host.prefix),
            url: format!("{base}{sep}{repo}{}", host.suffix),
            subdir: String::new(),
        }))
    }

    // === cache ===

    fn cached(&self, module: &str) -> Option<Result<RepoRoot, DiscoverError>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let entry = cache.get(module)?;
        (entry.expires > Instant::now()).then(|| entry.answer.clone())
    }

    fn remember(&self, module: &str, answer: &Result<RepoRoot, DiscoverError>) {
        let ttl = match answer {
            Ok(_) => self.opts.success_ttl,
            Err(DiscoverError::Credential { .. } | DiscoverError::Client { .. }) => return,
            Err(DiscoverError::Failed { .. }) => self.opts.retry_ttl,
            Err(_) => self.opts.failure_ttl,
        };
        if ttl.is_zero() || self.opts.max_entries == 0 {
            return;
        }
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= self.opts.max_entries && !cache.contains_key(module) {
            cache.retain(|_, c| c.expires > now);
            if cache.len() >= self.opts.max_entries {
                // Still full of live entries: drop the one closest to expiry.
                let oldest = cache
                    .iter()
                    .min_by_key(|(_, c)| c.expires)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    cache.remove(&oldest);
                }
            }
        }
        cache.insert(
            module.to_owned(),
            Cached {
                answer: answer.clone(),
                expires: now + ttl,
            },
        );
    }
}

/// Go's `str.HasPathPrefix`: `prefix` is `s` or a whole-element prefix of it.
pub(crate) fn has_path_prefix(s: &str, prefix: &str) -> bool {
    match s.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'),
        None => false,
    }
}
