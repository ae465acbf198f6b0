//! [`SumdbProxy`]: the checksum-database proxy under `/sumdb/<name>/`.
//!
//! `supported` is answered locally for configured databases; `latest`, `lookup/…` and `tile/…`
//! are forwarded byte for byte to the database's URL. Lookups and tiles are immutable and kept on
//! this node's disk; `latest` is kept for a short TTL and served stale if the database is down.
//! Everything is verified by the client, so the proxy need not be trusted; it must only never
//! alter bytes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::SumdbDatabase;
use crate::mirror::flight::Flights;
use crate::routing::Router;
use crate::upstream::{Upstream, UpstreamError};

use super::store::AnswerStore;
use super::Checker;
use crate::store::meta::SumdbItem;

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

/// An answer to store.
pub(super) fn item(path: &str, body: &[u8]) -> SumdbItem {
    SumdbItem {
        path: path.to_owned(),
        body: body.to_vec(),
    }
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
    store: AnswerStore,
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
    /// A proxy for `dbs`, keeping answers in `store`; lookups of paths that `router` calls
    /// private are refused.
    pub fn new(
        dbs: Vec<SumdbDatabase>,
        upstream: Upstream,
        router: Arc<Router>,
        store: AnswerStore,
        latest_ttl: Duration,
        max_bytes: u64,
    ) -> Self {
        Self {
            dbs,
            upstream,
            router,
            store,
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

    /// A stored immutable answer (`lookup/…`, `tile/…`) of `db`: replicated, or on this node.
    pub(super) async fn cached(&self, db: &SumdbDatabase, path: &str) -> Option<Bytes> {
        self.store.get(&db.name, path).await
    }

    /// Stores immutable answers (after they were verified) for the whole cluster.
    pub(super) async fn keep(&self, db: &SumdbDatabase, items: Vec<SumdbItem>) {
        self.store.put(&db.name, items).await;
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
                    _ => {
                        self.immutable(db, p, "text/plain; charset=utf-8", true)
                            .await
                    }
                }
            }
            Endpoint::Tile(p) => {
                let ct = if p.contains("/data/") {
                    "text/plain; charset=utf-8"
                } else {
                    "application/octet-stream"
                };
                // Tiles of the verifying database are stored only once a verification
                // authenticated them: a tile the upstream forged must not stick.
                let verified_only = matches!(&self.checker, Some(c) if c.verifies(&db.name));
                self.immutable(db, p, ct, !verified_only).await
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

    /// An immutable answer from the store, else from the database (stored if `store`).
    async fn immutable(
        &self,
        db: &SumdbDatabase,
        path: &str,
        content_type: &'static str,
        store: bool,
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
        if store {
            self.keep(db, vec![item(path, &body)]).await;
        }
        Ok(SumdbAnswer {
            body,
            content_type,
            immutable: true,
        })
    }

    /// `latest`: the replicated tree head while it is fresh, else the database (kept on this
    /// node for the TTL); with the database unreachable, the replicated head or this node's
    /// last copy, whichever it has.
    async fn latest(&self, db: &SumdbDatabase) -> Result<SumdbAnswer, SumdbError> {
        let answer = |body: Bytes| SumdbAnswer {
            body,
            content_type: "text/plain; charset=utf-8",
            immutable: false,
        };
        let head = self.store.head(&db.name);
        let head_age = head.as_ref().map(|h| {
            Duration::from_millis(
                crate::store::now_ms()
                    .saturating_sub(h.recorded_at_ms)
                    .max(0) as u64,
            )
        });
        if let (Some(h), Some(age)) = (&head, head_age) {
            if age < self.latest_ttl {
                return Ok(answer(Bytes::from(h.note.clone())));
            }
        }
        let local = self.store.local_latest(&db.name).await;
        if let Some((body, age)) = &local {
            if *age < self.latest_ttl {
                return Ok(answer(body.clone()));
            }
        }
        match self.fetch(db, "latest").await {
            Ok(body) => {
                self.store.write_local(&db.name, "latest", &body).await;
                Ok(answer(body))
            }
            Err(SumdbError::Upstream(e)) => {
                let fallback = head.map(|h| Bytes::from(h.note)).or(local.map(|(b, _)| b));
                match fallback {
                    Some(body) => {
                        tracing::warn!(error = %e, "checksum database failed; serving the last verified tree head");
                        Ok(answer(body))
                    }
                    None => Err(SumdbError::Upstream(e)),
                }
            }
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
