//! `@v/list` and `@latest`: mutable answers kept in the replicated state with their fetch time.
//! They are served at once, refreshed in the background once older than their TTL
//! (stale-while-revalidate), and served stale when the upstream fails (stale-if-error). A list
//! is the union of the upstream's list and the tagged versions cached here; pseudo-versions are
//! never listed.
//!
//! In a cluster a stale answer is refreshed once for the whole cluster, not by every node that
//! serves it (every region would otherwise fetch each list once per TTL): the refresh of a key
//! belongs to one owner, chosen by rendezvous among all live members
//! ([`super::cluster::ClusterOps::refresh_owner`]). Other nodes ask it (`Mirror/Refresh`) and
//! get the new answer through the replicated state; they refresh themselves only when the owner
//! cannot be reached.

use std::sync::Arc;

use bytes::Bytes;

use super::{count_cache, gone, now_ms, reject, Mirror, MirrorError, MirrorResult};
use crate::module;
use crate::store::meta::{ListRecord, MetaCmd};
use crate::upstream::UpstreamFile;

fn listable(module: &str, v: &str) -> bool {
    super::version::is_canonical_for(module, v) && !module::is_pseudo_version(v)
}

fn is_stale(fetched_at_ms: i64, ttl_secs: u64) -> bool {
    now_ms().saturating_sub(fetched_at_ms) > (ttl_secs as i64).saturating_mul(1000)
}

impl Mirror {
    /// Answers `@v/list`.
    pub async fn list(&self, module: &str) -> MirrorResult<Bytes> {
        self.check_allowed(module)?;
        let inner = &self.inner;
        let cached = self.cached_versions(module)?;
        if let Some(rec) = inner.meta.get_list(module).map_err(MirrorError::storage)? {
            count_cache("list", true);
            if is_stale(rec.fetched_at_ms, inner.cache.list_ttl_secs) {
                self.spawn_refresh(module, false);
            }
            return Ok(render(&rec.versions, cached));
        }
        count_cache("list", false);
        let neg_key = format!("{module}@v/list");
        if let Some(msg) = inner.negative.get(&neg_key) {
            return if cached.is_empty() {
                Err(MirrorError::NotFound(msg))
            } else {
                Ok(render(&[], cached))
            };
        }
        match self.fetch_list(module).await {
            Ok(rec) => Ok(render(&rec.versions, cached)),
            Err(MirrorError::NotFound(msg)) => {
                inner.negative.insert(neg_key, msg.clone());
                if cached.is_empty() {
                    Err(MirrorError::NotFound(msg))
                } else {
                    Ok(render(&[], cached))
                }
            }
            // Any held version — a pseudo-version too, which is never listed — shows the module
            // exists: answer the (maybe empty) list so the go command goes on to `@latest`
            // instead of failing (issue 9: pseudo-version-only modules with the upstream dead).
            Err(e) if !cached.is_empty() || self.holds_any_version(module)? => {
                ::metrics::counter!(super::metrics::STALE_SERVED_TOTAL, "kind" => "list")
                    .increment(1);
                tracing::warn!(module, error = %e, "upstream failed; listing the cached versions only");
                Ok(render(&[], cached))
            }
            Err(e) => Err(e),
        }
    }

    /// The tagged (non-pseudo) versions of `module` held in the state.
    fn cached_versions(&self, module: &str) -> MirrorResult<Vec<String>> {
        let all = self
            .inner
            .meta
            .module_versions(module)
            .map_err(MirrorError::storage)?;
        Ok(all.into_iter().filter(|v| listable(module, v)).collect())
    }

    /// Whether the state holds any version of `module`, pseudo-versions included.
    fn holds_any_version(&self, module: &str) -> MirrorResult<bool> {
        let all = self
            .inner
            .meta
            .module_versions(module)
            .map_err(MirrorError::storage)?;
        Ok(all
            .iter()
            .any(|v| super::version::is_canonical_for(module, v)))
    }

    fn spawn_refresh(&self, module: &str, latest: bool) {
        let this = self.clone();
        let module = module.to_string();
        tokio::spawn(async move {
            let result = this.refresh(&module, latest).await;
            let kind = if latest { "latest" } else { "list" };
            log_refresh(kind, &module, result.as_ref().err());
        });
    }

    /// Refreshes the stale list (or `@latest`) of `module` for the cluster: asks the refresh
    /// owner when it is another live node, else (or when it cannot be reached) fetches here.
    /// One refresh per key at a time on this node.
    async fn refresh(&self, module: &str, latest: bool) -> MirrorResult<()> {
        let key = refresh_key(module, latest);
        let this = self.clone();
        let m = module.to_string();
        self.inner
            .refreshes
            .run(
                key.clone(),
                move || async move {
                    let remote = this.inner.cluster.as_deref().and_then(|c| {
                        c.refresh_owner(&key).map(|o| (c, o))
                    });
                    if let Some((c, owner)) = remote {
                        match c.refresh_remote(&owner, &m, latest).await {
                            Err(e) if super::cluster::owner_unreachable(&e) => {
                                tracing::debug!(module = %m, owner = owner.id, error = %e, "refresh owner unreachable; refreshing here");
                            }
                            other => return other,
                        }
                    }
                    this.fetch_here(&m, latest).await
                },
                Err(gone()),
            )
            .await
    }

    /// Refreshes the list (or `@latest`) of `module` on this node when its copy is missing or
    /// stale (the `Mirror/Refresh` RPC of the refresh owner); a no-op when it is fresh, so a
    /// node whose state lagged behind the owner's refresh does not cause a second fetch.
    pub async fn refresh_here(&self, module: &str, latest: bool) -> MirrorResult<()> {
        self.check_allowed(module)?;
        let (fetched_at_ms, ttl) = if latest {
            let rec = self
                .inner
                .meta
                .get_latest(module)
                .map_err(MirrorError::storage)?;
            (
                rec.map(|r| r.fetched_at_ms),
                self.inner.cache.latest_ttl_secs,
            )
        } else {
            let rec = self
                .inner
                .meta
                .get_list(module)
                .map_err(MirrorError::storage)?;
            (rec.map(|r| r.fetched_at_ms), self.inner.cache.list_ttl_secs)
        };
        if fetched_at_ms.is_some_and(|at| !is_stale(at, ttl)) {
            return Ok(());
        }
        self.fetch_here(module, latest).await
    }

    /// Fetches the list (or `@latest`) of `module` from the upstream here and commits it.
    async fn fetch_here(&self, module: &str, latest: bool) -> MirrorResult<()> {
        if latest {
            self.fetch_latest(module).await.map(|_| ())
        } else {
            self.fetch_list(module).await.map(|_| ())
        }
    }

    /// Fetches, filters and commits the upstream's list (single flight per module).
    async fn fetch_list(&self, module: &str) -> MirrorResult<Arc<ListRecord>> {
        let this = self.clone();
        let key = module.to_string();
        self.inner
            .lists
            .run(
                key.clone(),
                move || async move {
                    let limit = this.inner.limits.max_list_bytes;
                    let got = this
                        .upstream_for(&key)?
                        .fetch(&key, UpstreamFile::List, limit)
                        .await
                        .map_err(MirrorError::from_upstream)?;
                    let text = std::str::from_utf8(&got.body).map_err(|_| {
                        reject("list", "bad_list", format!("{key}: list is not UTF-8"))
                    })?;
                    let versions: Vec<String> = text
                        .lines()
                        .filter_map(|l| l.split_whitespace().next())
                        .filter(|v| listable(&key, v))
                        .map(str::to_string)
                        .collect();
                    let fetched_at_ms = now_ms();
                    let cmd = MetaCmd::PutList {
                        module: key.clone(),
                        versions: versions.clone(),
                        fetched_at_ms,
                    };
                    this.propose_mutable(cmd, "list").await;
                    Ok(Arc::new(ListRecord {
                        versions,
                        fetched_at_ms,
                    }))
                },
                Err(gone()),
            )
            .await
    }

    /// Answers `@latest`.
    pub async fn latest(&self, module: &str) -> MirrorResult<Bytes> {
        self.check_allowed(module)?;
        let inner = &self.inner;
        if let Some(rec) = inner
            .meta
            .get_latest(module)
            .map_err(MirrorError::storage)?
        {
            count_cache("latest", true);
            if is_stale(rec.fetched_at_ms, inner.cache.latest_ttl_secs) {
                self.spawn_refresh(module, true);
            }
            return Ok(Bytes::from(rec.info));
        }
        count_cache("latest", false);
        let neg_key = format!("{module}@latest");
        if let Some(msg) = inner.negative.get(&neg_key) {
            return Err(MirrorError::NotFound(msg));
        }
        match self.fetch_latest(module).await {
            Err(MirrorError::NotFound(msg)) => {
                inner.negative.insert(neg_key, msg.clone());
                Err(MirrorError::NotFound(msg))
            }
            Err(e @ (MirrorError::Upstream(_) | MirrorError::Rejected { .. })) => {
                match self.latest_from_cache(module)? {
                    Some(body) => {
                        ::metrics::counter!(super::metrics::STALE_SERVED_TOTAL, "kind" => "latest")
                            .increment(1);
                        tracing::warn!(module, error = %e, "upstream failed; answering @latest from cached versions");
                        Ok(body)
                    }
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    async fn fetch_latest(&self, module: &str) -> MirrorResult<Bytes> {
        let this = self.clone();
        let key = module.to_string();
        self.inner
            .latest
            .run(
                key.clone(),
                move || async move {
                    let limit = this.inner.limits.max_info_bytes;
                    let got = this
                        .upstream_for(&key)?
                        .fetch(&key, UpstreamFile::Latest, limit)
                        .await
                        .map_err(MirrorError::from_upstream)?;
                    super::version::check_info(&got.body, None, &key)
                        .map_err(|r| reject("latest", "bad_info", format!("{key}@latest: {r}")))?;
                    let cmd = MetaCmd::PutLatest {
                        module: key.clone(),
                        info: got.body.to_vec(),
                        fetched_at_ms: now_ms(),
                    };
                    this.propose_mutable(cmd, "latest").await;
                    Ok(got.body)
                },
                Err(gone()),
            )
            .await
    }

    /// The `.info` of the highest cached version (release, else pre-release, else
    /// pseudo-version), for answering `@latest` while the upstream is down.
    fn latest_from_cache(&self, module: &str) -> MirrorResult<Option<Bytes>> {
        let mut all = self
            .inner
            .meta
            .module_versions(module)
            .map_err(MirrorError::storage)?;
        all.retain(|v| super::version::is_canonical_for(module, v));
        let rank = |v: &String| match (
            module::is_pseudo_version(v),
            module::semver::is_prerelease(v),
        ) {
            (true, _) => 0,
            (false, true) => 1,
            (false, false) => 2,
        };
        let best = all.iter().max_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then_with(|| module::semver::compare(a, b))
        });
        let Some(best) = best else { return Ok(None) };
        let rec = self
            .inner
            .meta
            .get_version(module, best)
            .map_err(MirrorError::storage)?;
        Ok(rec.map(|r| Bytes::from(r.info)))
    }

    /// Commits a list/latest answer; failing to (no quorum) only means it is served uncached.
    async fn propose_mutable(&self, cmd: MetaCmd, kind: &'static str) {
        if let Err(e) = self.inner.consensus.propose(cmd).await {
            ::metrics::counter!(super::metrics::DEGRADED_PASSTHROUGH_TOTAL, "kind" => kind)
                .increment(1);
            tracing::warn!(kind, error = %e, "could not commit; serving uncached (degraded)");
        }
    }
}

/// The rendezvous key of a list or `@latest` refresh (the request path it answers).
fn refresh_key(module: &str, latest: bool) -> String {
    if latest {
        format!("{module}@latest")
    } else {
        format!("{module}@v/list")
    }
}

fn log_refresh(kind: &'static str, module: &str, err: Option<&MirrorError>) {
    let result = match err {
        None => "ok",
        Some(MirrorError::NotFound(_)) => "not_found",
        Some(_) => "error",
    };
    ::metrics::counter!(super::metrics::REFRESH_TOTAL, "kind" => kind, "result" => result)
        .increment(1);
    if let Some(e) = err {
        tracing::warn!(kind, module, error = %e, "background refresh failed; serving the stale copy");
    }
}

/// The union of both version sets, sorted and deduplicated, one per line.
fn render(upstream: &[String], cached: Vec<String>) -> Bytes {
    let mut all: Vec<String> = upstream.iter().cloned().chain(cached).collect();
    module::sort_versions(&mut all);
    all.dedup();
    let mut out = String::new();
    for v in all {
        out.push_str(&v);
        out.push('\n');
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_unions_and_sorts() {
        let body = render(
            &["v1.10.0".into(), "v1.2.0".into()],
            vec!["v1.2.0".into(), "v1.3.0-rc.1".into()],
        );
        assert_eq!(&body[..], b"v1.2.0\nv1.3.0-rc.1\nv1.10.0\n");
        assert!(render(&[], vec![]).is_empty());
    }

    #[test]
    fn pseudo_versions_are_not_listable() {
        assert!(!listable(
            "example.com/m",
            "v0.0.0-20230102030405-abcdefabcdef"
        ));
        assert!(listable("example.com/m", "v1.0.0"));
        assert!(!listable("example.com/m", "v1.0"));
        assert!(!listable("example.com/m/v2", "v1.0.0"));
    }
}
