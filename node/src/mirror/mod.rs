//! The heart of cairn: answer a GOPROXY request from the local metadata and blobs, or fill the
//! cache from the upstream.
//!
//! - [`version`]: `.info` and `.mod` of canonical versions (one immutable record each), and
//!   non-canonical `.info` queries (resolved upstream, never cached as canonical).
//! - [`zip`]: module zips: fetched to a temp file, validated, hashed, stored, committed.
//! - [`lists`]: `@v/list` and `@latest`, served at once and refreshed in the background.
//! - [`flight`]: single flight, so N identical misses cause one upstream fetch.
//! - [`negative`]: the short memory of not-found answers.

pub mod cluster;
pub mod flight;
mod flood;
pub mod lists;
pub mod metrics;
pub mod negative;
mod verify;
pub mod version;
pub mod zip;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{CacheSettings, Limits};
use crate::raft::{Consensus, MetaReader};
use crate::routing::Router;
use crate::store::blob::BlobStore;
use crate::store::meta::{ListRecord, VersionRecord};
use crate::upstream::{Upstream, UpstreamError};

use flight::Flights;
use negative::NegativeCache;

/// Why a request could not be answered. Cloneable so single-flight waiters share it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// The module or version does not exist (here or upstream). HTTP 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// The upstream could not be reached or failed. HTTP `upstream_error_status`.
    #[error("upstream failed: {0}")]
    Upstream(String),
    /// The upstream answered with something invalid; it was not cached.
    #[error("upstream sent an invalid {kind}: {reason}")]
    Rejected {
        /// Which file (`zip`, `info`, `mod`, `list`, `latest`).
        kind: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// Local storage failed. HTTP 500.
    #[error("storage error: {0}")]
    Storage(String),
    /// A routing rule refuses the module path. HTTP 403, so the go command does not fall
    /// through to another proxy.
    #[error("forbidden: {0}")]
    Denied(String),
}

impl MirrorError {
    /// Maps an upstream error: not-found stays not-found, `off` is not-found too (nothing
    /// more to ask), everything else is an upstream failure.
    fn from_upstream(e: UpstreamError) -> MirrorError {
        match e {
            UpstreamError::NotFound { message } => MirrorError::NotFound(message),
            UpstreamError::Off => {
                MirrorError::NotFound("module lookup disabled by upstream=off".to_string())
            }
            other => MirrorError::Upstream(other.to_string()),
        }
    }

    fn storage(e: impl std::fmt::Display) -> MirrorError {
        MirrorError::Storage(e.to_string())
    }
}

/// The result type of mirror operations.
pub type MirrorResult<T> = Result<T, MirrorError>;

/// Answers GOPROXY requests. Cheap to clone.
#[derive(Clone)]
pub struct Mirror {
    inner: Arc<Inner>,
}

struct Inner {
    consensus: Consensus,
    meta: MetaReader,
    blobs: BlobStore,
    router: Arc<Router>,
    cache: CacheSettings,
    limits: Limits,
    negative: NegativeCache,
    versions: Flights<(String, String), MirrorResult<Arc<VersionRecord>>>,
    zips: Flights<(String, String), MirrorResult<Arc<VersionRecord>>>,
    queries: Flights<(String, String), MirrorResult<bytes::Bytes>>,
    lists: Flights<String, MirrorResult<Arc<ListRecord>>>,
    latest: Flights<String, MirrorResult<bytes::Bytes>>,
    /// Background refreshes of stale lists/`@latest` (asked of their owner or done here), one
    /// per key on this node.
    refreshes: Flights<String, MirrorResult<()>>,
    cluster: Option<Arc<dyn cluster::ClusterOps>>,
    /// Verifies versions against the checksum database before they are stored.
    checker: Option<Arc<crate::sumdb::Checker>>,
}

impl Mirror {
    /// Builds the mirror over the node's consensus, blob store and routing rules (which hold
    /// one upstream per rule).
    pub fn new(
        consensus: Consensus,
        blobs: BlobStore,
        router: Arc<Router>,
        cache: CacheSettings,
        limits: Limits,
        cluster: Option<Arc<dyn cluster::ClusterOps>>,
        checker: Option<Arc<crate::sumdb::Checker>>,
    ) -> Mirror {
        let negative = NegativeCache::new(
            Duration::from_secs(cache.negative_ttl_secs),
            cache.negative_max_entries,
        );
        Mirror {
            inner: Arc::new(Inner {
                meta: consensus.reader(),
                consensus,
                blobs,
                router,
                cache,
                limits,
                negative,
                versions: Flights::new("version"),
                zips: Flights::new("zip"),
                queries: Flights::new("query"),
                lists: Flights::new("list"),
                latest: Flights::new("latest"),
                refreshes: Flights::new("refresh"),
                cluster,
                checker,
            }),
        }
    }

    /// The blob store (for serving zips).
    pub fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }

    /// The owner of `key` when another live node should fill it.
    fn remote_owner(&self, key: &str) -> Option<(&dyn cluster::ClusterOps, cluster::RemoteOwner)> {
        let c = self.inner.cluster.as_deref()?;
        c.remote_owner(key).map(|o| (c, o))
    }

    /// Refuses a module path that a deny rule matches, before any cache or upstream is
    /// consulted.
    fn check_allowed(&self, module: &str) -> MirrorResult<()> {
        self.upstream_for(module).map(|_| ())
    }

    /// The upstream of the rule `module` matches: the only source ever asked about it.
    fn upstream_for(&self, module: &str) -> MirrorResult<&Upstream> {
        self.inner.router.upstream_for(module).ok_or_else(|| {
            let rule = self.inner.router.route(module).name;
            MirrorError::Denied(format!(
                "module path {module} is refused by this proxy (routing rule {rule})"
            ))
        })
    }

    /// When blobs are re-hashed while they are served.
    pub fn verify_on_read(&self) -> crate::config::VerifyPolicy {
        self.inner.cache.verify_on_read
    }
}

use crate::store::now_ms;

tokio::task_local! {
    /// Whether the request being served was a cache hit (see [`observe_cache`]).
    static CACHE_OUTCOME: std::cell::Cell<Option<bool>>;
}

/// Runs `f` (serving one request) and reports whether the mirror answered it from its cache
/// (`Some(true)`), had to fill it (`Some(false)`), or did not say (`None`), for the audit trail.
pub async fn observe_cache<F: std::future::Future>(f: F) -> (F::Output, Option<bool>) {
    CACHE_OUTCOME
        .scope(std::cell::Cell::new(None), async {
            let out = f.await;
            (out, CACHE_OUTCOME.with(std::cell::Cell::get))
        })
        .await
}

fn count_cache(kind: &'static str, hit: bool) {
    // Outside a request (a background refresh), there is no outcome to report.
    let _ = CACHE_OUTCOME.try_with(|c| c.set(Some(hit)));
    let result = if hit { "hit" } else { "miss" };
    ::metrics::counter!(metrics::CACHE_REQUESTS_TOTAL, "kind" => kind, "result" => result)
        .increment(1);
}

fn reject(kind: &'static str, reason: &'static str, detail: String) -> MirrorError {
    ::metrics::counter!(metrics::FILL_REJECTED_TOTAL, "kind" => kind, "reason" => reason)
        .increment(1);
    tracing::warn!(kind, reason, detail = %detail, "rejected invalid upstream answer");
    MirrorError::Rejected {
        kind,
        reason: detail,
    }
}

fn gone() -> MirrorError {
    MirrorError::Storage("the fill task ended without a result".to_string())
}
