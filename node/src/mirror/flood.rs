//! Misses at the flood watermark (issue 12): the zip is fetched into memory, validated and
//! checked exactly as a fill would (the go command's rules, the checksum database's `h1:`, the
//! committed record's sha256), and served without being stored.

use sha2::{Digest, Sha256};

use super::zip::ZipAnswer;
use super::{reject, Mirror, MirrorError, MirrorResult};
use crate::modzip::{self, ZipLimits};
use crate::upstream::UpstreamFile;

/// Zips held in memory at once by pass-through (each up to `limits.max_zip_bytes`).
const PARALLEL: usize = 4;

static PERMITS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(PARALLEL);

impl Mirror {
    /// Answers a zip miss without storing anything on this node.
    pub(super) async fn zip_passthrough(
        &self,
        module: &str,
        version: &str,
    ) -> MirrorResult<ZipAnswer> {
        let rec = self.version_routed(module, version, "zip", false).await?;
        let want_h1 = self.expected_zip_h1(&rec).await?;
        let _permit = PERMITS
            .acquire()
            .await
            .map_err(|e| MirrorError::Storage(e.to_string()))?;
        let limits = &self.inner.limits;
        let got = self
            .upstream_for(module)?
            .fetch(module, UpstreamFile::Zip(version), limits.max_zip_bytes)
            .await
            .map_err(MirrorError::from_upstream)?;
        let body = got.body;
        let zl = ZipLimits {
            max_zip_bytes: limits.max_zip_bytes,
            max_uncompressed_bytes: limits.max_uncompressed_bytes,
            ..ZipLimits::default()
        };
        let (b, m, v) = (body.clone(), module.to_string(), version.to_string());
        let summary = tokio::task::spawn_blocking(move || {
            modzip::check_zip(std::io::Cursor::new(b), &m, &v, &zl).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| MirrorError::Storage(e.to_string()))?
        .map_err(|reason| reject("zip", "bad_zip", format!("{module}@{version}: {reason}")))?;
        if let Some(want) = want_h1.filter(|w| *w != summary.h1) {
            return Err(MirrorError::Rejected {
                kind: "zip",
                reason: format!(
                    "{module}@{version}: upstream zip hashes to {}, the checksum database says {want}",
                    summary.h1
                ),
            });
        }
        let sha256 = hex::encode(Sha256::digest(&body));
        if let Some(z) = rec.zip.as_ref().filter(|z| z.sha256 != sha256) {
            return Err(MirrorError::Upstream(format!(
                "{module}@{version}: the upstream now serves different zip bytes (sha256 {sha256}) than the ones committed ({}); refusing them",
                z.sha256
            )));
        }
        ::metrics::counter!(crate::disk::metrics::FLOOD_PASSTHROUGH_TOTAL, "kind" => "zip")
            .increment(1);
        tracing::debug!(module, version, "disk full: zip served uncached");
        Ok(ZipAnswer {
            sha256,
            size: body.len() as u64,
            body: Some(body),
        })
    }
}
