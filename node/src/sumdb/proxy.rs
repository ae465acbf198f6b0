//! [`SumdbProxy`]: the checksum-database proxy under `/sumdb/<name>/`.
//!
//! `supported` is answered locally for configured databases; `latest`, `lookup/…` and `tile/…`
//! are forwarded byte for byte to the database's URL. Lookups and tiles are immutable and kept on
//! this node's disk; `latest` is kept for a short TTL and served stale if the database is down.
//! Everything is verified by the client, so the proxy need not be trusted; it must only never
//! alter bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::SumdbDatabase;
use crate::mirror::flight::Flights;
use crate::routing::Router;
use crate::upstream::{Upstream, UpstreamError};

use super::Checker;

/// Why a checksum-database request failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SumdbError {
    /// Not a database this node proxies, or not an endpoint of one.
    #[error("not found: {0}")]
    NotFound(String),
    /// The path is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The database could not be reached.
    #[error("checksum database failed: {0}")]
    Upstream(String),
    /// A lookup for a module path that a private routing rule matches: answered 404 here and
    /// never forwarded, so the path does not reach the (public) database.
    #[error("not found: {0}")]
    Private(String),
}

/// What a `/sumdb/` request is answered with.
#[derive(Debug, Clone)]
pub struct SumdbAnswer {
    /// The body, exactly as the database sent it.
    pub body: Bytes,
    /// Content type to send.
    pub content_type: &'static str,
    /// Whether downstream caches may keep it forever.
    pub immutable: bool,
}

/// Proxies the configured checksum databases.
#[derive(Clone)]
pub struct SumdbProxy {
    dbs: Vec<SumdbDatabase>,
    upstream: Upstream,
    /// Decides which module paths are private (their lookups are refused locally).
    router: Arc<Router>,
    cache_dir: PathBuf,
    latest_ttl: Duration,
    max_bytes: u64,
    /// Identical concurrent misses (by URL) share one request to the database.
    flights: Arc<Flights<String, Result<Bytes, SumdbError>>>,
    /// Verifies lookups of the verifying database before they are served or cached.
    checker: Option<Arc<Checker>>,
    /// Where each database without a `url` was found (through an upstream proxy or directly),
    /// and when; a std mutex, held only for a map operation.
    found: Arc<std::sync::Mutex<std::collections::HashMap<String, (String, tokio::time::Instant)>>>,
}

/// How long the choice between an upstream proxy and the database itself is kept.
const FOUND_TTL: Duration = Duration::from_secs(600);

/// A parsed request inside one database.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint<'a> {
    Supported,
    Latest,
    Lookup(&'a str),
    Tile(&'a str),
}

impl SumdbProxy {
    /// A proxy for `dbs`, caching under `cache_dir`; lookups of paths that `router` calls
    /// private are refused.
    pub fn new(
        dbs: Vec<SumdbDatabase>,
        upstream: Upstream,
        router: Arc<Router>,
        cache_dir: &Path,
        latest_ttl: Duration,
        max_bytes: u64,
    ) -> Self {
        Self {
            dbs,
            upstream,
            router,
            cache_dir: cache_dir.to_path_buf(),
            latest_ttl,
            max_bytes,
            flights: Arc::new(Flights::new("sumdb")),
            checker: None,
            found: Arc::default(),
        }
    }

    /// The base URL of `db`: its `url`, else (as the go command does) the first upstream proxy
    /// whose `<proxy>/sumdb/<name>/supported` answers 200, else `https://<name>`.
    pub(crate) async fn base_url(&self, db: &SumdbDatabase) -> String {
        if let Some(url) = &db.url {
            return url.trim_end_matches('/').to_owned();
        }
        let now = tokio::time::Instant::now();
        if let Some((url, at)) = self.found_lock().get(&db.name).cloned() {
            if now.duration_since(at) < FOUND_TTL {
                return url;
            }
        }
        let mut chosen = format!("https://{}", db.name);
        for base in self.upstream.http_bases() {
            let candidate = format!("{base}/sumdb/{}", db.name);
            if self
                .upstream
                .get_url(&format!("{candidate}/supported"), 1024)
                .await
                .is_ok()
            {
                chosen = candidate;
                break;
            }
        }
        tracing::info!(db = %db.name, url = %chosen, "checksum database reached at");
        self.found_lock()
            .insert(db.name.clone(), (chosen.clone(), now));
        chosen
    }

    fn found_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (String, tokio::time::Instant)>>
    {
        self.found
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// This proxy with client lookups of `checker`'s database verified before they are served.
    pub fn with_checker(mut self, checker: Arc<Checker>) -> Self {
        self.checker = Some(checker);
        self
    }

    /// The configured databases.
    pub fn databases(&self) -> &[SumdbDatabase] {
        &self.dbs
    }

    /// Whether lookups of `module` may go to a public database (no private routing rule).
    pub(super) fn is_public(&self, module: &str) -> bool {
        self.router.sumdb_allowed(module)
    }

    /// A cached immutable answer (`lookup/…`, `tile/…`) of `db`, if this node holds one.
    pub(super) async fn cached(&self, db: &SumdbDatabase, path: &str) -> Option<Bytes> {
        tokio::fs::read(self.cache_path(db, path))
            .await
            .ok()
            .map(Bytes::from)
    }

    /// Caches an immutable answer (after it was verified); a failure only costs a refetch.
    pub(super) async fn keep(&self, db: &SumdbDatabase, path: &str, body: &[u8]) {
        if let Err(e) = write_atomic(&self.cache_path(db, path), body).await {
            tracing::warn!(path, error = %e, "could not cache checksum database answer");
        }
    }

    /// Answers `/sumdb/<rest>` where `rest` is `<name>/<endpoint>` (already percent-decoded).
    pub async fn get(&self, rest: &str) -> Result<SumdbAnswer, SumdbError> {
        let (db, ep) = self.parse(rest)?;
        match ep {
            Endpoint::Supported => Ok(SumdbAnswer {
                body: Bytes::new(),
                content_type: "text/plain; charset=utf-8",
                immutable: false,
            }),
            Endpoint::Latest => self.latest(db).await,
            Endpoint::Lookup(p) => {
                self.check_public(p)?;
                match &self.checker {
                    Some(c) if c.verifies(&db.name) => Ok(SumdbAnswer {
                        body: c.client_lookup(p).await?,
                        content_type: "text/plain; charset=utf-8",
                        immutable: true,
                    }),
                    _ => self.immutable(db, p, "text/plain; charset=utf-8").await,
                }
            }
            Endpoint::Tile(p) => {
                let ct = if p.contains("/data/") {
                    "text/plain; charset=utf-8"
                } else {
                    "application/octet-stream"
                };
                self.immutable(db, p, ct).await
            }
        }
    }

    fn parse<'a>(&'a self, rest: &'a str) -> Result<(&'a SumdbDatabase, Endpoint<'a>), SumdbError> {
        let (db, ep) = self
            .dbs
            .iter()
            .find_map(|db| {
                rest.strip_prefix(db.name.as_str())
                    .and_then(|r| r.strip_prefix('/'))
                    .map(|ep| (db, ep))
            })
            .ok_or_else(|| {
                SumdbError::NotFound(format!("checksum database {rest:?} is not proxied here"))
            })?;
        let ep = match ep {
            "supported" => Endpoint::Supported,
            "latest" => Endpoint::Latest,
            p if p.starts_with("lookup/") => {
                check_lookup(&p["lookup/".len()..])?;
                Endpoint::Lookup(p)
            }
            p if p.starts_with("tile/") => {
                check_tile(&p["tile/".len()..])?;
                Endpoint::Tile(p)
            }
            p => {
                return Err(SumdbError::NotFound(format!(
                    "unknown checksum database endpoint {p:?}"
                )))
            }
        };
        Ok((db, ep))
    }

    /// Refuses `lookup/<escaped path>@<version>` when the path is private (or cannot be
    /// unescaped, so it cannot be routed).
    fn check_public(&self, lookup: &str) -> Result<(), SumdbError> {
        let escaped = lookup
            .strip_prefix("lookup/")
            .and_then(|l| l.rsplit_once('@'))
            .map_or("", |(path, _)| path);
        let module = crate::module::unescape_path(escaped)
            .map_err(|e| SumdbError::BadRequest(format!("malformed lookup: {e}")))?;
        if self.router.sumdb_allowed(&module) {
            return Ok(());
        }
        metrics::counter!("cairn_sumdb_requests_total", "result" => "private").increment(1);
        Err(SumdbError::Private(format!(
            "{module} is a private module path; its checksum is not looked up in a public database (set GONOSUMDB or GOPRIVATE for it)"
        )))
    }

    fn cache_path(&self, db: &SumdbDatabase, path: &str) -> PathBuf {
        self.cache_dir.join(db.name.replace('/', "_")).join(path)
    }

    /// GETs `path` of `db` (single flight per URL), without caching.
    pub(super) async fn fetch(&self, db: &SumdbDatabase, path: &str) -> Result<Bytes, SumdbError> {
        let url = format!("{}/{}", self.base_url(db).await, path);
        let (upstream, max) = (self.upstream.clone(), self.max_bytes);
        let work = move || async move {
            match upstream.get_url(&url, max).await {
                Ok(f) => Ok(f.body),
                Err(UpstreamError::NotFound { message }) => Err(SumdbError::NotFound(message)),
                Err(e) => Err(SumdbError::Upstream(e.to_string())),
            }
        };
        let gone = Err(SumdbError::Upstream(
            "the fetch task ended without a result".into(),
        ));
        let key = format!("{}/{}", db.name, path);
        self.flights.run(key, work, gone).await
    }

    async fn immutable(
        &self,
        db: &SumdbDatabase,
        path: &str,
        content_type: &'static str,
    ) -> Result<SumdbAnswer, SumdbError> {
        if let Some(body) = self.cached(db, path).await {
            metrics::counter!("cairn_sumdb_requests_total", "result" => "hit").increment(1);
            return Ok(SumdbAnswer {
                body,
                content_type,
                immutable: true,
            });
        }
        metrics::counter!("cairn_sumdb_requests_total", "result" => "miss").increment(1);
        let body = self.fetch(db, path).await?;
        self.keep(db, path, &body).await;
        Ok(SumdbAnswer {
            body,
            content_type,
            immutable: true,
        })
    }

    async fn latest(&self, db: &SumdbDatabase) -> Result<SumdbAnswer, SumdbError> {
        let file = self.cache_path(db, "latest");
        let fresh = tokio::fs::metadata(&file)
            .await
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < self.latest_ttl);
        let ct = "text/plain; charset=utf-8";
        if fresh {
            if let Ok(body) = tokio::fs::read(&file).await {
                return Ok(SumdbAnswer {
                    body: Bytes::from(body),
                    content_type: ct,
                    immutable: false,
                });
            }
        }
        match self.fetch(db, "latest").await {
            Ok(body) => {
                if let Err(e) = write_atomic(&file, &body).await {
                    tracing::warn!(error = %e, "could not cache checksum database latest");
                }
                Ok(SumdbAnswer {
                    body,
                    content_type: ct,
                    immutable: false,
                })
            }
            Err(SumdbError::Upstream(e)) => match tokio::fs::read(&file).await {
                Ok(body) => {
                    tracing::warn!(error = %e, "checksum database failed; serving the stale tree head");
                    Ok(SumdbAnswer {
                        body: Bytes::from(body),
                        content_type: ct,
                        immutable: false,
                    })
                }
                Err(_) => Err(SumdbError::Upstream(e)),
            },
            Err(e) => Err(e),
        }
    }
}

/// `lookup/<escaped path>@<escaped version>`: conservative character set, no `..`.
fn check_lookup(p: &str) -> Result<(), SumdbError> {
    let bad = || SumdbError::BadRequest(format!("malformed lookup {p:?}"));
    let (path, version) = p.rsplit_once('@').ok_or_else(bad)?;
    let ok_chars = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!+/".contains(&b))
    };
    if path.is_empty()
        || version.is_empty()
        || !ok_chars(path)
        || !ok_chars(version)
        || version.contains('/')
    {
        return Err(bad());
    }
    if path
        .split('/')
        .any(|e| e.is_empty() || e == "." || e == "..")
    {
        return Err(bad());
    }
    Ok(())
}

/// `tile/<H>/<L or data>/<NNN…>[.p/<W>]` with the canonical base-1000 index encoding.
fn check_tile(p: &str) -> Result<(), SumdbError> {
    let bad = || SumdbError::BadRequest(format!("malformed tile path {p:?}"));
    let mut parts: Vec<&str> = p.split('/').collect();
    if parts.len() < 3 {
        return Err(bad());
    }
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    let h = parts[0];
    if !digits(h, 2) || !(1..=30).contains(&h.parse::<u32>().map_err(|_| bad())?) {
        return Err(bad());
    }
    if parts[1] != "data" && !digits(parts[1], 2) {
        return Err(bad());
    }
    let last = parts.len() - 1;
    if parts.len() >= 4 && parts[last - 1].ends_with(".p") {
        if !digits(parts[last], 4) {
            return Err(bad());
        }
        parts.truncate(last);
        let l = parts.len() - 1;
        parts[l] = parts[l].trim_end_matches(".p");
    }
    let index = &parts[2..];
    let (head, tail) = index.split_at(index.len() - 1);
    let ok = head
        .iter()
        .all(|s| s.len() == 4 && s.starts_with('x') && digits(&s[1..], 3))
        && tail.iter().all(|s| s.len() == 3 && digits(s, 3));
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

async fn write_atomic(file: &Path, body: &[u8]) -> std::io::Result<()> {
    let dir = file
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent directory"))?;
    tokio::fs::create_dir_all(dir).await?;
    let n: u64 = rand::random();
    let tmp = dir.join(format!(".{n:016x}.tmp"));
    let (tmp2, body) = (tmp.clone(), body.to_vec());
    let res = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp2)?;
        f.write_all(&body)?;
        f.sync_all()
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r);
    if let Err(e) = res {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    tokio::fs::rename(&tmp, file).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_paths() {
        assert!(check_lookup("golang.org/x/text@v0.3.2").is_ok());
        assert!(check_lookup("github.com/!azure/x@v1.0.0-!r!c1").is_ok());
        assert!(check_lookup("../etc@v1").is_err());
        assert!(check_lookup("a/b").is_err());
        assert!(check_lookup("a@b/c").is_err());
    }

    #[test]
    fn tile_paths() {
        for ok in [
            "8/0/000",
            "8/0/x113/281.p/187",
            "8/data/x113/281.p/187",
            "8/1/442.p/129",
            "8/3/000.p/1",
            "8/2/x001/x234/067",
        ] {
            assert!(check_tile(ok).is_ok(), "{ok}");
        }
        for bad in [
            "8/0",
            "8/0/1",
            "99/0/000",
            "8/0/../000",
            "8/x/000",
            "8/0/x1/000",
            "8/0/000.p/",
            "8/0/0000",
        ] {
            assert!(check_tile(bad).is_err(), "{bad}");
        }
    }
}
