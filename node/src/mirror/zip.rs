//! Module zips: on a miss the zip is streamed from the upstream into a temp file, validated
//! with the go command's rules (which also yields its `h1:`), stored by sha256, and only then
//! committed into the version record. Nothing of a rejected zip is kept.

use std::path::PathBuf;
use std::sync::Arc;

use tracing::Instrument;

use super::cluster::CopySource;
use super::{count_cache, gone, reject, Mirror, MirrorError, MirrorResult};
use crate::modzip::{self, ZipLimits};
use crate::store::meta::{VersionRecord, ZipRef};
use crate::upstream::{UpstreamError, UpstreamFile};

/// A zip ready to be served: its blob address and size.
#[derive(Debug, Clone)]
pub struct ZipAnswer {
    /// sha256 of the zip (its blob address and its ETag).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The zip itself when it was passed through without storing (disk at flood): serve
    /// these bytes instead of the blob.
    pub body: Option<bytes::Bytes>,
}

/// A zip downloaded to a temp file and validated, its fsync under way, not yet in the store.
struct CheckedZip {
    tmp: TempFile,
    /// sha256 of the file, computed while it was downloaded.
    sha256: String,
    size: u64,
    /// Its `h1:` hash.
    h1: String,
    /// The fsync of the temp file, started when the download ended.
    sync: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Removes a temp file when dropped unless it was moved into the store.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Mirror {
    /// Answers `.zip` for a canonical version whose blob is on this node, filling it on a miss.
    pub async fn zip(&self, module: &str, version: &str) -> MirrorResult<ZipAnswer> {
        self.check_allowed(module)?;
        if !super::version::is_canonical_for(module, version) {
            return Err(MirrorError::NotFound(format!(
                "{module}@{version}: .zip is only served for canonical versions"
            )));
        }
        let inner = &self.inner;
        let local = inner.meta.get_version(module, version);
        if let Some(rec) = local.map_err(MirrorError::storage)? {
            if let Some(z) = rec.zip.as_ref().filter(|z| inner.blobs.servable(&z.sha256)) {
                count_cache("zip", true);
                inner.blobs.touch(&z.sha256);
                return Ok(answer(z));
            }
        }
        count_cache("zip", false);
        if inner.blobs.is_flooded() {
            return self.zip_passthrough(module, version).await;
        }
        let rec = self.zip_flight(module, version, true, None).await?;
        rec.zip
            .as_ref()
            .map(answer)
            .ok_or_else(|| MirrorError::Storage("zip fill finished without a zip".into()))
    }

    /// The hit path of [`Mirror::zip`]: the zip of a canonical version whose blob this node
    /// can serve, without awaiting anything; `None` when a fill is needed (call `zip`).
    pub fn zip_hit(&self, module: &str, version: &str) -> MirrorResult<Option<ZipAnswer>> {
        self.check_allowed(module)?;
        if !super::version::is_canonical_for(module, version) {
            return Ok(None);
        }
        let inner = &self.inner;
        let local = inner.meta.get_version(module, version);
        let Some(rec) = local.map_err(MirrorError::storage)? else {
            return Ok(None);
        };
        let Some(z) = rec.zip.as_ref().filter(|z| inner.blobs.servable(&z.sha256)) else {
            return Ok(None);
        };
        count_cache("zip", true);
        inner.blobs.touch(&z.sha256);
        Ok(Some(answer(z)))
    }

    /// Fills (module, version) on this node without routing to an owner: the owner's side of a
    /// cluster fill. With `zip`, the zip is fetched too, and one of its `min_copies` copies goes
    /// to `requester` (the node that asked, which must serve it) when it is given.
    pub async fn fill_here(
        &self,
        module: &str,
        version: &str,
        zip: bool,
        requester: Option<u64>,
    ) -> MirrorResult<VersionRecord> {
        self.check_allowed(module)?;
        if !super::version::is_canonical_for(module, version) {
            return Err(MirrorError::NotFound(format!(
                "{module}@{version}: not a canonical version"
            )));
        }
        let rec = if zip {
            self.zip_flight(module, version, false, requester).await?
        } else {
            self.version_routed(module, version, "info", false).await?
        };
        Ok((*rec).clone())
    }

    /// One zip fill per (module, version) on this node at a time (the first caller's
    /// `requester` is the one that gets a copy first).
    async fn zip_flight(
        &self,
        module: &str,
        version: &str,
        route: bool,
        requester: Option<u64>,
    ) -> MirrorResult<Arc<VersionRecord>> {
        let this = self.clone();
        let key = (module.to_string(), version.to_string());
        let span = tracing::info_span!("fill_zip", module, version);
        self.inner
            .zips
            .run(
                key.clone(),
                move || {
                    async move { this.fill_zip(&key.0, &key.1, route, requester).await }
                        .instrument(span)
                },
                Err(gone()),
            )
            .await
    }

    /// Makes the zip of (module, version) present here: from the local store, a peer, the
    /// version's owner, or the upstream, in that order of preference.
    async fn fill_zip(
        &self,
        module: &str,
        version: &str,
        route: bool,
        requester: Option<u64>,
    ) -> MirrorResult<Arc<VersionRecord>> {
        let local = self
            .inner
            .meta
            .get_version(module, version)
            .map_err(MirrorError::storage)?;
        if let Some(rec) = local.filter(|r| r.zip.is_some()) {
            if self.ensure_blob(&rec).await {
                return Ok(Arc::new(rec));
            }
        } else if let Some((c, owner)) = route
            .then(|| self.remote_owner(&format!("{module}@{version}")))
            .flatten()
        {
            match c.fill_remote(&owner, module, version, true).await {
                Ok(rec) if self.ensure_blob(&rec).await => return Ok(Arc::new(rec)),
                Ok(_) => tracing::warn!(
                    owner = owner.id,
                    "owner filled the zip but no peer could send it; fetching upstream"
                ),
                Err(e) if super::cluster::owner_unreachable(&e) => {
                    tracing::warn!(owner = owner.id, error = %e, "owner unreachable; filling here");
                }
                Err(e) => return Err(e),
            }
        }
        let rec = self.version_routed(module, version, "zip", route).await?;
        let expected = rec.zip.clone();
        if expected.is_some() && self.ensure_blob(&rec).await {
            return Ok(rec);
        }
        let want_h1 = self.expected_zip_h1(&rec).await?;
        let checked = self.fetch_zip(&rec, want_h1.as_deref()).await?;
        if let Some(z) = &expected {
            if z.sha256 != checked.sha256 {
                ::metrics::counter!(super::metrics::IMMUTABILITY_CONFLICTS_TOTAL, "kind" => "zip")
                    .increment(1);
                tracing::warn!(module, version, cached = %z.sha256, upstream = %checked.sha256,
                    "upstream zip differs from the committed one; not serving it");
                return Err(MirrorError::Upstream(format!(
                    "{module}@{version}: the upstream now serves different zip bytes than the ones committed; refusing them"
                )));
            }
        }
        let mut with_zip = (*rec).clone();
        with_zip.zip = Some(ZipRef {
            sha256: checked.sha256.clone(),
            size: checked.size,
            h1: checked.h1.clone(),
        });
        let (sha256, size) = (checked.sha256.clone(), checked.size);
        if let Some(c) = &self.inner.cluster {
            let copies = self
                .install_and_copy(c.as_ref(), checked, requester)
                .await?;
            if let Err(e) = copies {
                ::metrics::counter!(super::metrics::DEGRADED_PASSTHROUGH_TOTAL, "kind" => "zip")
                    .increment(1);
                tracing::warn!(module, version, error = %e,
                    "zip not durable on enough nodes; serving it uncommitted (degraded)");
                return Ok(Arc::new(with_zip));
            }
        } else {
            self.install(checked).await?;
        }
        tracing::debug!(sha256, size, "zip stored and durable on enough nodes");
        self.commit_version(with_zip, "zip").await
    }

    /// Moves a checked zip into the blob store once its fsync is done (rename, directory
    /// fsync).
    async fn install(&self, checked: CheckedZip) -> MirrorResult<()> {
        let CheckedZip {
            tmp,
            sha256,
            size,
            sync,
            ..
        } = checked;
        sync.await
            .map_err(|e| MirrorError::Storage(e.to_string()))?
            .map_err(MirrorError::storage)?;
        // Hashed while it was downloaded: the file is not read again.
        let blobs = &self.inner.blobs;
        blobs
            .commit_hashed_from(tmp.0.clone(), sha256, size, "upstream")
            .await
            .map_err(MirrorError::storage)?;
        Ok(())
    }

    /// Installs a checked zip here and makes it durable on `min_copies` nodes, the copies
    /// running while this node fsyncs and installs its own (issue 13): a small zip is pushed
    /// whole to the peers, a larger one is pulled by them from the checked temp file (or from
    /// the store once it is renamed there). The outer error is the local install's; the inner
    /// one the copies'.
    async fn install_and_copy(
        &self,
        c: &dyn super::cluster::ClusterOps,
        checked: CheckedZip,
        requester: Option<u64>,
    ) -> MirrorResult<MirrorResult<usize>> {
        let (sha256, size) = (checked.sha256.clone(), checked.size);
        let from = if size > super::cluster::PUSH_MAX_BYTES {
            CopySource::Staged(checked.tmp.0.clone())
        } else {
            let body = tokio::fs::read(&checked.tmp.0).await;
            CopySource::Whole(body.map_err(MirrorError::storage)?.into())
        };
        let (installed, copies) = tokio::join!(
            self.install(checked),
            c.replicate(&sha256, size, requester, from)
        );
        installed?;
        Ok(copies)
    }

    /// Whether the record's blob is here, fetching it from a peer if needed.
    async fn ensure_blob(&self, rec: &VersionRecord) -> bool {
        let Some(z) = &rec.zip else { return false };
        if self.inner.blobs.contains(&z.sha256) {
            return true;
        }
        let Some(c) = &self.inner.cluster else {
            return false;
        };
        match c.fetch_blob(&z.sha256, z.size).await {
            Ok(()) => self.inner.blobs.contains(&z.sha256),
            Err(e) if self.inner.blobs.is_evicted(&z.sha256) => {
                tracing::debug!(sha256 = %z.sha256, error = %e, "no peer holds an evicted blob; refilling from the upstream");
                false
            }
            Err(e) => {
                tracing::warn!(sha256 = %z.sha256, error = %e, "no peer could send the blob");
                false
            }
        }
    }

    /// Streams the upstream zip to a temp file (hashing it on the way), validates it while the
    /// file is fsynced, and checks its `h1:` against the checksum database's (`want_h1`). The
    /// caller installs it.
    async fn fetch_zip(
        &self,
        rec: &VersionRecord,
        want_h1: Option<&str>,
    ) -> MirrorResult<CheckedZip> {
        let (module, version) = (rec.module.as_str(), rec.version.as_str());
        let inner = &self.inner;
        let tmp = TempFile(inner.blobs.temp_path());
        let limit = inner.limits.max_zip_bytes;
        let fetched = self
            .upstream_for(module)?
            .fetch_to_file(module, UpstreamFile::Zip(version), &tmp.0, limit)
            .await
            .map_err(|e| zip_fetch_error(e, module, version))?;
        let limits = ZipLimits {
            max_zip_bytes: inner.limits.max_zip_bytes,
            max_uncompressed_bytes: inner.limits.max_uncompressed_bytes,
            ..ZipLimits::default()
        };
        let (path, m, v) = (tmp.0.clone(), module.to_string(), version.to_string());
        let check = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
            modzip::check_zip(std::io::BufReader::new(file), &m, &v, &limits)
                .map_err(|e| e.to_string())
        });
        // The fsync runs while the zip is checked and copied to the peers (issue 13): the file
        // is renamed into the store only if the check passes, once the fsync is done, and the
        // store's own fsync then finds nothing to do.
        let path = tmp.0.clone();
        let sync = tokio::task::spawn_blocking(move || {
            std::fs::File::open(&path).and_then(|f| f.sync_all())
        });
        let summary = check
            .await
            .map_err(|e| MirrorError::Storage(e.to_string()))?
            .map_err(|reason| reject("zip", "bad_zip", format!("{module}@{version}: {reason}")))?;
        if let Some(want) = want_h1.filter(|w| *w != summary.h1) {
            let db = crate::sumdb::DbHashes {
                db: self
                    .inner
                    .checker
                    .as_ref()
                    .and_then(|c| c.database())
                    .unwrap_or("the checksum database")
                    .to_owned(),
                zip_h1: want.to_owned(),
                mod_h1: rec.mod_h1.clone(),
            };
            return Err(super::verify::mismatch(rec, "zip", &summary.h1, &db));
        }
        Ok(CheckedZip {
            tmp,
            sha256: fetched.sha256,
            size: fetched.size,
            h1: summary.h1,
            sync,
        })
    }
}

fn answer(z: &ZipRef) -> ZipAnswer {
    ZipAnswer {
        sha256: z.sha256.clone(),
        size: z.size,
        body: None,
    }
}

/// Zip transfer failures that mean the upstream sent garbage (too large, cut short) are
/// counted as rejections; the rest are ordinary upstream errors.
fn zip_fetch_error(e: UpstreamError, module: &str, version: &str) -> MirrorError {
    match e.bad_body() {
        Some(reason) => reject("zip", reason, format!("{module}@{version}: {e}")),
        None => MirrorError::from_upstream(e),
    }
}
