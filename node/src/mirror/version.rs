//! `.info` and `.mod`: one immutable [`VersionRecord`] per canonical version, filled from the
//! upstream's `.info` and `.mod` (never its zip), plus pass-through resolution of non-canonical
//! `.info` queries such as a branch name or `v1.2`.

use std::sync::Arc;

use bytes::Bytes;
use tracing::Instrument;

use super::{count_cache, gone, now_ms, reject, Mirror, MirrorError, MirrorResult};
use crate::module;
use crate::store::meta::{MetaCmd, MetaResp, VersionRecord};
use crate::upstream::UpstreamFile;

/// What a `.info` request is answered with.
#[derive(Debug, Clone)]
pub struct InfoAnswer {
    /// The JSON body.
    pub body: Bytes,
    /// True for canonical versions (immutable, cacheable downstream forever).
    pub immutable: bool,
}

/// Whether `version` names a canonical version that belongs to `module` (so that its `.info`,
/// `.mod` and `.zip` are immutable and cacheable).
pub fn is_canonical_for(module: &str, version: &str) -> bool {
    module::is_canonical(version) && module::check(module, version).is_ok()
}

impl Mirror {
    /// Answers `.info` for a canonical version from its record, or resolves any other query
    /// through the upstream without caching it.
    pub async fn info(&self, module: &str, version: &str) -> MirrorResult<InfoAnswer> {
        self.check_allowed(module)?;
        if is_canonical_for(module, version) {
            let rec = self.version(module, version, "info").await?;
            return Ok(InfoAnswer {
                body: Bytes::from(rec.info.clone()),
                immutable: true,
            });
        }
        let body = self.query(module, version).await?;
        Ok(InfoAnswer {
            body,
            immutable: false,
        })
    }

    /// The hit path of [`Mirror::info`] and [`Mirror::gomod`]: the stored record of a
    /// canonical version, without awaiting anything; `None` when a fill (or a query, for a
    /// non-canonical version) is needed. Kept apart so a hit never builds the fill's large
    /// future (issue 13: moving it cost ~5% of a `.info` hit).
    pub fn version_hit(
        &self,
        module: &str,
        version: &str,
        kind: &'static str,
    ) -> MirrorResult<Option<VersionRecord>> {
        self.check_allowed(module)?;
        if !is_canonical_for(module, version) {
            return Ok(None);
        }
        let rec = self
            .inner
            .meta
            .get_version(module, version)
            .map_err(MirrorError::storage)?;
        if rec.is_some() {
            count_cache(kind, true);
        }
        Ok(rec)
    }

    /// Answers `.mod` for a canonical version; other versions are not found.
    pub async fn gomod(&self, module: &str, version: &str) -> MirrorResult<Bytes> {
        self.check_allowed(module)?;
        if !is_canonical_for(module, version) {
            return Err(MirrorError::NotFound(format!(
                "{module}@{version}: .mod is only served for canonical versions"
            )));
        }
        let rec = self.version(module, version, "mod").await?;
        Ok(Bytes::from(rec.gomod.clone()))
    }

    /// The record of a canonical version, filling it from the upstream on a miss.
    pub(super) async fn version(
        &self,
        module: &str,
        version: &str,
        kind: &'static str,
    ) -> MirrorResult<Arc<VersionRecord>> {
        self.version_routed(module, version, kind, true).await
    }

    /// Like [`Mirror::version`]; with `route`, a miss is filled by the version's owner node.
    pub(super) async fn version_routed(
        &self,
        module: &str,
        version: &str,
        kind: &'static str,
        route: bool,
    ) -> MirrorResult<Arc<VersionRecord>> {
        let inner = &self.inner;
        if let Some(rec) = inner
            .meta
            .get_version(module, version)
            .map_err(MirrorError::storage)?
        {
            count_cache(kind, true);
            return Ok(Arc::new(rec));
        }
        count_cache(kind, false);
        let neg_key = format!("{module}@{version}");
        if let Some(msg) = inner.negative.get(&neg_key) {
            return Err(MirrorError::NotFound(msg));
        }
        let this = self.clone();
        let key = (module.to_string(), version.to_string());
        let span = tracing::info_span!("fill_version", module, version);
        let result = inner
            .versions
            .run(
                key.clone(),
                move || {
                    async move { this.fill_version_routed(&key.0, &key.1, route).await }
                        .instrument(span)
                },
                Err(gone()),
            )
            .await;
        if let Err(MirrorError::NotFound(msg)) = &result {
            inner.negative.insert(neg_key, msg.clone());
        }
        result
    }

    async fn fill_version_routed(
        &self,
        module: &str,
        version: &str,
        route: bool,
    ) -> MirrorResult<Arc<VersionRecord>> {
        let local = self.inner.meta.get_version(module, version);
        if let Some(rec) = local.map_err(MirrorError::storage)? {
            return Ok(Arc::new(rec));
        }
        let key = format!("{module}@{version}");
        if let Some((c, owner)) = route.then(|| self.remote_owner(&key)).flatten() {
            match c.fill_remote(&owner, module, version, false).await {
                Ok(rec) => return Ok(Arc::new(rec)),
                Err(e) if super::cluster::owner_unreachable(&e) => {
                    tracing::warn!(owner = owner.id, error = %e, "owner unreachable; filling here");
                }
                Err(e) => return Err(e),
            }
        }
        self.fill_version(module, version).await
    }

    async fn fill_version(&self, module: &str, version: &str) -> MirrorResult<Arc<VersionRecord>> {
        let inner = &self.inner;
        let upstream = self.upstream_for(module)?;
        // The checksum-database lookup runs alongside the upstream fetches: on a miss it costs
        // no extra round trip. Upstream errors (not found above all) still take precedence.
        let answers = crate::sumdb::Pending::default();
        let (info, gomod, verdict) = tokio::join!(
            upstream.fetch(
                module,
                UpstreamFile::Info(version),
                inner.limits.max_info_bytes
            ),
            upstream.fetch(
                module,
                UpstreamFile::Mod(version),
                inner.limits.max_mod_bytes
            ),
            self.verdict_deferred(module, version, &answers),
        );
        let built = async {
            let info = info.map_err(MirrorError::from_upstream)?;
            let gomod = gomod.map_err(MirrorError::from_upstream)?;
            check_info(&info.body, Some(version), module)
                .map_err(|r| reject("info", "bad_info", r))?;
            let mut rec = VersionRecord {
                module: module.to_string(),
                version: version.to_string(),
                mod_h1: crate::modzip::hash_gomod(&gomod.body),
                info: info.body.to_vec(),
                gomod: gomod.body.to_vec(),
                zip: None,
                source: info.source,
                cached_at_ms: now_ms(),
                sumdb_verified: false,
                sumdb_zip_h1: None,
            };
            self.apply_verdict(&mut rec, verdict?)?;
            Ok(rec)
        }
        .await;
        let rec = match built {
            Ok(rec) => rec,
            Err(e) => {
                // What the database answered is valid whatever the upstream did: keep it (the
                // tree head it recorded needs its tiles).
                self.keep_answers(answers).await;
                return Err(e);
            }
        };
        // The answers that verified it go into the same log entry: one flush, not two.
        let answers = answers.take();
        let db = self.inner.checker.as_ref().and_then(|c| c.database());
        let evidence = db
            .filter(|_| !answers.is_empty())
            .map(|db| (db.to_owned(), answers));
        self.commit_version_with(rec, "info", evidence).await
    }

    /// Proposes a version record and returns what the state holds afterwards. Without a
    /// quorum the record is returned uncommitted (degraded pass-through).
    pub(super) async fn commit_version(
        &self,
        rec: VersionRecord,
        kind: &'static str,
    ) -> MirrorResult<Arc<VersionRecord>> {
        self.commit_version_with(rec, kind, None).await
    }

    /// [`Self::commit_version`], storing `evidence` (a database and the answers that verified
    /// the version) in the same log entry.
    async fn commit_version_with(
        &self,
        rec: VersionRecord,
        kind: &'static str,
        evidence: Option<(String, Vec<crate::store::meta::SumdbItem>)>,
    ) -> MirrorResult<Arc<VersionRecord>> {
        let inner = &self.inner;
        if inner.blobs.is_flooded() {
            // Disk at its flood watermark (issue 12): this node stores nothing new.
            ::metrics::counter!(crate::disk::metrics::FLOOD_PASSTHROUGH_TOTAL, "kind" => kind)
                .increment(1);
            tracing::debug!(module = %rec.module, version = %rec.version, "disk full: serving uncached");
            return Ok(Arc::new(rec));
        }
        let cmd = match evidence {
            Some((db, answers)) => MetaCmd::PutVerifiedVersion {
                record: rec.clone(),
                db,
                answers,
            },
            None => MetaCmd::PutVersion(rec.clone()),
        };
        match inner.consensus.propose(cmd).await {
            Ok(MetaResp::Conflict { reason }) => {
                // An operator purged the version while this fill ran (issue 12): the fill is
                // refused for good, not an immutability conflict to wait out.
                let purged = inner.meta.tombstone(&rec.module, &rec.version);
                if let Some(t) = purged.map_err(MirrorError::storage)? {
                    return Err(MirrorError::NotFound(format!(
                        "{}@{} was purged from this mirror: {}",
                        rec.module, rec.version, t.reason
                    )));
                }
                ::metrics::counter!(super::metrics::IMMUTABILITY_CONFLICTS_TOTAL, "kind" => kind)
                    .increment(1);
                tracing::warn!(module = %rec.module, version = %rec.version, reason = %reason,
                    "upstream bytes differ from the cached immutable version; keeping the cached bytes");
                self.stored_after_commit(&rec).await.map(Arc::new)
            }
            // Committed with exactly these bytes. This node may not have applied the entry
            // yet (a follower that forwarded the write), so the proposal itself is the answer
            // unless the local state already holds a fuller record (with the zip).
            Ok(_) => {
                let local = self.inner.meta.get_version(&rec.module, &rec.version);
                let local = local.map_err(MirrorError::storage)?;
                Ok(Arc::new(local.filter(|l| l.zip.is_some()).unwrap_or(rec)))
            }
            Err(e) => {
                ::metrics::counter!(super::metrics::DEGRADED_PASSTHROUGH_TOTAL, "kind" => kind)
                    .increment(1);
                tracing::warn!(module = %rec.module, version = %rec.version, error = %e,
                    "could not commit; serving uncached (degraded)");
                Ok(Arc::new(rec))
            }
        }
    }

    /// The committed record of `rec`'s version, waiting (bounded) for this node to apply it.
    async fn stored_after_commit(&self, rec: &VersionRecord) -> MirrorResult<VersionRecord> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut applied = self.inner.consensus.raft().metrics();
        loop {
            let local = self.inner.meta.get_version(&rec.module, &rec.version);
            if let Some(stored) = local.map_err(MirrorError::storage)? {
                return Ok(stored);
            }
            match tokio::time::timeout_at(deadline, applied.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    return Err(MirrorError::Storage(
                        "the committed version record did not reach this node in time".into(),
                    ))
                }
            }
        }
    }

    /// Resolves a non-canonical `.info` query (branch, tag, hash, `v1.2`) through the upstream.
    async fn query(&self, module: &str, query: &str) -> MirrorResult<Bytes> {
        count_cache("info", false);
        let neg_key = format!("{module}@{query}");
        if let Some(msg) = self.inner.negative.get(&neg_key) {
            return Err(MirrorError::NotFound(msg));
        }
        let this = self.clone();
        let key = (module.to_string(), query.to_string());
        let result = self
            .inner
            .queries
            .run(
                key.clone(),
                move || async move {
                    let limit = this.inner.limits.max_info_bytes;
                    let got = this
                        .upstream_for(&key.0)?
                        .fetch(&key.0, UpstreamFile::Info(&key.1), limit)
                        .await
                        .map_err(MirrorError::from_upstream)?;
                    check_info(&got.body, None, &key.0)
                        .map_err(|r| reject("info", "bad_info", r))?;
                    Ok(got.body)
                },
                Err(gone()),
            )
            .await;
        if let Err(MirrorError::NotFound(msg)) = &result {
            self.inner.negative.insert(neg_key, msg.clone());
        }
        result
    }
}

/// Checks an `.info`/`@latest` JSON body: an object whose `Version` is a canonical version
/// valid for `module` (and equal to `expected` when given), with an RFC 3339 `Time` if any.
pub fn check_info(body: &[u8], expected: Option<&str>, module: &str) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let obj = value.as_object().ok_or("not a JSON object")?;
    let version = obj
        .get("Version")
        .and_then(|v| v.as_str())
        .ok_or("no \"Version\" string")?;
    if let Some(exp) = expected {
        if version != exp {
            return Err(format!(
                "names version {version:?} instead of requested {exp:?}"
            ));
        }
    }
    if !module::is_canonical(version) || module::check(module, version).is_err() {
        return Err(format!(
            "version {version:?} is not a canonical version of {module}"
        ));
    }
    match obj.get("Time") {
        None | Some(serde_json::Value::Null) => Ok(()),
        Some(serde_json::Value::String(t)) if looks_like_rfc3339(t) => Ok(()),
        Some(t) => Err(format!("\"Time\" {t} is not an RFC 3339 timestamp")),
    }
}

/// Whether `t` is a timestamp the go command accepts (`time.Parse(time.RFC3339)`, strict as
/// in `Time.UnmarshalJSON`): `YYYY-MM-DDTHH:MM:SS`, optional fraction (`.` or `,`), then `Z` or `±HH:MM`,
/// with every field in range (a month 13 or a February 30 is refused by the go command, so it
/// must not be cached as an immutable record).
fn looks_like_rfc3339(t: &str) -> bool {
    let b = t.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let fields = (|| {
        let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
        let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
        let seps = at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':');
        let valid = seps
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour <= 23
            && minute <= 59
            && second <= 59;
        valid.then_some(())
    })();
    if fields.is_none() {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') || at(i, b',') {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        i += 1 + digits;
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            i + 6 == b.len()
                && at(i + 3, b':')
                && num(i + 1, 2).is_some_and(|h| h <= 23)
                && num(i + 4, 2).is_some_and(|m| m <= 59)
        }
        _ => false,
    }
}

/// Days in `month` (1–12) of `year` (Gregorian).
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_checks() {
        let ok = br#"{"Version":"v1.0.0","Time":"2023-01-02T03:04:05Z"}"#;
        assert!(check_info(ok, Some("v1.0.0"), "example.com/m").is_ok());
        assert!(check_info(ok, Some("v1.0.1"), "example.com/m").is_err());
        assert!(check_info(ok, None, "example.com/m/v2").is_err());
        assert!(check_info(b"garbage", None, "example.com/m").is_err());
        assert!(check_info(
            br#"{"Version":"v1.0.0","Time":"yesterday"}"#,
            None,
            "example.com/m"
        )
        .is_err());
        assert!(check_info(br#"{"Version":"v1.0"}"#, None, "example.com/m").is_err());
        for good in [
            "2023-01-02T03:04:05Z",
            "2024-02-29T23:59:59Z",
            "2019-03-20T18:14:49.123456789Z",
            "2019-03-20T18:14:49+01:00",
            "2019-03-20T18:14:49.5-07:30",
        ] {
            assert!(looks_like_rfc3339(good), "{good}");
        }
        for bad in [
            "2023-13-15T12:00:00Z",
            "2023-02-29T12:00:00Z",
            "2023-04-31T12:00:00Z",
            "2023-01-00T12:00:00Z",
            "2023-01-02T24:00:00Z",
            "2023-01-02T12:60:00Z",
            "2023-01-02t12:00:00Z",
            "2023-01-02T12:00:00",
            "2023-01-02T12:00:00.Z",
            "2023-01-02T12:00:00Zjunk",
            "2023-01-02T12:00:00+1:00",
            "2023-01-02T12:00:00+24:00",
            "2023-1-02T12:00:00Z",
        ] {
            assert!(!looks_like_rfc3339(bad), "{bad}");
        }
        assert!(check_info(
            br#"{"Version":"v2.0.0+incompatible"}"#,
            None,
            "example.com/m"
        )
        .is_ok());
    }
}
