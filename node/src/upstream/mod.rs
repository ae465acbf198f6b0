//! Upstream sources: fetching module files from the configured chain of GOPROXY servers,
//! `file://` trees, `direct` (git, through [`crate::direct`]) and `off`, with the go command's fallback rules.
//!
//! [`Upstream`] is the entry point: built from a GOPROXY-syntax list and [`UpstreamSettings`], it
//! fetches small files into memory ([`Upstream::fetch`]), zips into a file
//! ([`Upstream::fetch_to_file`]) and arbitrary checksum-database URLs ([`Upstream::get_url`]).
//! Every HTTP request goes through one client with connect / first-byte / transfer timeouts,
//! retries with jittered backoff, a global concurrency cap and a circuit breaker per upstream.
//!
//! - `chain` parses the list and walks it (`,` vs `|`, error preference);
//! - `proxy` is the HTTP source and transport, `file` the `file://` source;
//! - `request` builds escaped request paths, `sink` holds bodies under the size cap;
//! - `retry`, `breaker` and [`metrics`] are the resilience and observability pieces.

mod breaker;
mod chain;
mod error;
mod file;
pub mod metrics;
mod proxy;
mod request;
mod retry;
mod settings;
mod sink;
mod vcs;

#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use reqwest::Url;
use tokio::time::Instant;

use crate::direct::Direct;
use breaker::Breaker;
use chain::{Chain, Entry, Source, Walk};
use proxy::{HttpSource, Request, Transport};
use request::Kind;
use sink::Sink;

pub use error::{ConfigProblem, UpstreamConfigError, UpstreamError};
pub(crate) use proxy::{redacted, redirect_policy_checking};
pub use request::UpstreamFile;
pub use settings::{UpstreamSettings, MAX_RETRIES};

/// Distinct origins given their own breaker by [`Upstream::get_url`]; past this, URLs outside the
/// chain get a fresh breaker per call so a caller bug cannot grow the map without bound.
const MAX_ORIGIN_BREAKERS: usize = 64;

/// A small file fetched into memory.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The complete body.
    pub body: Bytes,
    /// Base URL of the entry that answered (password redacted).
    pub source: String,
}

/// A large file streamed to disk.
#[derive(Debug, Clone)]
pub struct FetchedFile {
    /// Bytes written to the destination.
    pub size: u64,
    /// Hex sha256 of those bytes, computed while they were written.
    pub sha256: String,
    /// Base URL of the entry that answered (password redacted).
    pub source: String,
}

/// The configured upstream chain. Cheap to clone: clones share the HTTP client, the concurrency
/// cap and the breakers.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    chain: Chain,
    transport: Transport,
    settings: UpstreamSettings,
    /// Breakers for `get_url` targets outside the chain, by origin. A `std` mutex: held only for a
    /// map lookup, never across an `.await`.
    origin_breakers: Mutex<HashMap<String, Arc<Breaker>>>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("chain", &self.describe())
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// Builds the chain from `list` in GOPROXY syntax: entries `https://…`, `http://…`,
    /// `file:///abs/dir`, `direct`, `off`, joined by `,` or `|`. Entries without a scheme that
    /// contain `.`, `:` or `/` get `https://`. Every problem in the list and the settings is
    /// reported at once.
    pub fn new(list: &str, settings: &UpstreamSettings) -> Result<Upstream, UpstreamConfigError> {
        Upstream::with_direct(list, settings, None)
    }

    /// Like [`Upstream::new`], with `direct` entries answered by the node's direct source
    /// (without one they fail with [`UpstreamError::DirectUnsupported`]).
    pub fn with_direct(
        list: &str,
        settings: &UpstreamSettings,
        direct: Option<&Arc<Direct>>,
    ) -> Result<Upstream, UpstreamConfigError> {
        let mut problems = Vec::new();
        let chain = Chain::parse(list, settings, direct)
            .map_err(|p| problems.extend(p))
            .ok();
        problems.extend(settings.problems());
        let chain = match chain {
            Some(chain) if problems.is_empty() => chain,
            _ => return Err(UpstreamConfigError::Invalid { problems }),
        };
        let transport = Transport::new(settings)?;
        let inner = Inner {
            chain,
            transport,
            settings: settings.clone(),
            origin_breakers: Mutex::new(HashMap::new()),
        };
        Ok(Upstream {
            inner: Arc::new(inner),
        })
    }

    /// Fetches a small file (list, latest, info, mod) into memory. A body over `max_bytes` is an
    /// error, never a truncation.
    pub async fn fetch(
        &self,
        module: &str,
        file: UpstreamFile<'_>,
        max_bytes: u64,
    ) -> Result<Fetched, UpstreamError> {
        let mut sink = Sink::memory(max_bytes);
        let source = self.walk(module, &file, &mut sink).await?;
        Ok(Fetched {
            body: sink.into_bytes(),
            source,
        })
    }

    /// Streams a large file (zip) to `dest`, created or truncated at every attempt and not
    /// fsynced (the caller does that, and removes `dest` on error). A body over `max_bytes`, or
    /// cut short (fewer bytes than `Content-Length`, connection reset), is an error.
    pub async fn fetch_to_file(
        &self,
        module: &str,
        file: UpstreamFile<'_>,
        dest: &Path,
        max_bytes: u64,
    ) -> Result<FetchedFile, UpstreamError> {
        let mut sink = Sink::file(dest, max_bytes);
        let source = self.walk(module, &file, &mut sink).await?;
        Ok(FetchedFile {
            size: sink.len(),
            sha256: sink.sha256_hex().unwrap_or_default(),
            source,
        })
    }

    /// GETs an arbitrary `http(s)` URL for the checksum-database proxy, with the same client,
    /// timeouts, retries, concurrency cap and breakers (the entry's, when the URL lies under a
    /// chain entry, else one per origin). 404/410 give [`UpstreamError::NotFound`].
    pub async fn get_url(&self, url: &str, max_bytes: u64) -> Result<Fetched, UpstreamError> {
        let url = parse_absolute(url)?;
        let mut sink = Sink::memory(max_bytes);
        let start = Instant::now();
        let result = self.get_absolute(url, &mut sink).await;
        observe(Kind::Sumdb, start, &result, sink.len());
        Ok(Fetched {
            source: result?,
            body: sink.into_bytes(),
        })
    }

    /// The chain in GOPROXY syntax for logs and status, e.g. `https://proxy.golang.org,direct`
    /// (passwords redacted).
    pub fn describe(&self) -> String {
        self.inner.chain.describe()
    }

    /// The base URLs (without credentials) of the chain's `http(s)://` entries, in order: where
    /// the go command would look for a checksum-database proxy (`<base>/sumdb/<name>`).
    pub fn http_bases(&self) -> Vec<String> {
        self.inner
            .chain
            .entries()
            .iter()
            .filter_map(|e| match &e.source {
                Source::Http(src) => Some(src.base()),
                _ => None,
            })
            .collect()
    }

    /// The settings this upstream was built with.
    pub fn settings(&self) -> &UpstreamSettings {
        &self.inner.settings
    }

    /// Walks the chain for one file; returns the display name of the entry that answered.
    async fn walk(
        &self,
        module: &str,
        file: &UpstreamFile<'_>,
        sink: &mut Sink<'_>,
    ) -> Result<String, UpstreamError> {
        let rel = request::relative_path(module, file)?;
        let escaped = request::path_escape(&rel);
        let mut walk = Walk::default();
        for entry in self.inner.chain.entries() {
            match self
                .consult(entry, module, file, &rel, &escaped, sink)
                .await
            {
                Ok(()) => return Ok(entry.display().to_owned()),
                Err(err) => {
                    if !walk.record(err, entry.fallback_on_error) {
                        break;
                    }
                }
            }
        }
        Err(walk.finish())
    }

    /// Asks one entry for the file.
    async fn consult(
        &self,
        entry: &Entry,
        module: &str,
        file: &UpstreamFile<'_>,
        rel: &str,
        escaped: &str,
        sink: &mut Sink<'_>,
    ) -> Result<(), UpstreamError> {
        let kind = file.kind();
        let start = Instant::now();
        let result = match &entry.source {
            Source::Off => return Err(UpstreamError::Off),
            Source::Direct(None) => return Err(UpstreamError::DirectUnsupported),
            Source::Direct(Some(direct)) => vcs::get(direct, module, file, sink).await,
            Source::Http(src) => {
                let req = src.request(escaped, kind);
                self.inner.transport.get(&req, sink).await
            }
            Source::File(src) => src.get(rel, &self.inner.transport, sink).await,
        };
        observe(kind, start, &result, sink.len());
        result
    }

    /// GETs `url` through the chain entry containing it, or else its origin's breaker.
    async fn get_absolute(&self, url: Url, sink: &mut Sink<'_>) -> Result<String, UpstreamError> {
        if let Some(src) = self.entry_containing(&url) {
            let req = src.request_for(url, Kind::Sumdb);
            self.inner.transport.get(&req, sink).await?;
            return Ok(src.display().to_owned());
        }
        let (url, auth) = proxy::split_userinfo(url);
        let origin = url.origin().ascii_serialization();
        let breaker = self.origin_breaker(&origin);
        let req = Request {
            url,
            auth: auth.as_ref(),
            source: &origin,
            breaker: &breaker,
            kind: Kind::Sumdb,
        };
        self.inner.transport.get(&req, sink).await?;
        Ok(origin)
    }

    fn entry_containing(&self, url: &Url) -> Option<&HttpSource> {
        self.inner
            .chain
            .entries()
            .iter()
            .find_map(|entry| match &entry.source {
                Source::Http(src) if src.contains(url) => Some(&**src),
                _ => None,
            })
    }

    fn origin_breaker(&self, origin: &str) -> Arc<Breaker> {
        let settings = &self.inner.settings;
        let new_breaker = || {
            let cooldown = settings.breaker_cooldown();
            Arc::new(Breaker::new(
                origin.to_owned(),
                settings.breaker_failures,
                cooldown,
            ))
        };
        let mut map = self
            .inner
            .origin_breakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(breaker) = map.get(origin) {
            return Arc::clone(breaker);
        }
        if map.len() >= MAX_ORIGIN_BREAKERS {
            return new_breaker();
        }
        Arc::clone(map.entry(origin.to_owned()).or_insert_with(new_breaker))
    }
}

/// Parses a URL for [`Upstream::get_url`]: absolute `http(s)` with a host and no fragment.
fn parse_absolute(url: &str) -> Result<Url, UpstreamError> {
    let invalid = |reason: String| UpstreamError::InvalidRequest { reason };
    let parsed = Url::parse(url).map_err(|e| invalid(format!("bad url {url:?}: {e}")))?;
    let http = matches!(parsed.scheme(), "http" | "https");
    if !http || parsed.host_str().is_none_or(str::is_empty) || parsed.fragment().is_some() {
        return Err(invalid(format!(
            "url {url:?} must be http(s) with a host and no fragment"
        )));
    }
    Ok(parsed)
}

/// Records metrics for one finished request to an entry.
fn observe<T>(kind: Kind, start: Instant, result: &Result<T, UpstreamError>, bytes: u64) {
    metrics::request_done(kind, start.elapsed(), result);
    if result.is_ok() {
        metrics::bytes(kind, bytes);
    }
}
