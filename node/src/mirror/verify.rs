//! Checking what the upstream sent against the checksum database before anything is stored
//! (DESIGN.md promise 2, "never wrong bytes"; issue 9). The go.mod is checked when `.info`/`.mod`
//! are filled, and the database's zip hash is recorded with them, so the zip — fetched later,
//! perhaps by another node — is checked before its blob is committed.

use super::{metrics, Mirror, MirrorError, MirrorResult};
use crate::store::meta::VersionRecord;
use crate::sumdb::{DbHashes, Pending, Verdict, VerifyError};

impl Mirror {
    /// Checks a new record's go.mod against the database's hashes (`None`: not checked) and
    /// records the database's zip hash in it; a mismatch refuses the version.
    pub(super) fn apply_verdict(
        &self,
        rec: &mut VersionRecord,
        db: Option<DbHashes>,
    ) -> MirrorResult<()> {
        if let Some(h) = db {
            if h.mod_h1 != rec.mod_h1 {
                return Err(mismatch(rec, "mod", &rec.mod_h1, &h));
            }
            rec.sumdb_verified = true;
            rec.sumdb_zip_h1 = Some(h.zip_h1);
        }
        Ok(())
    }

    /// The zip `h1:` the database vouches for: recorded with the version, or looked up now for
    /// a version stored unverified. `None` when nothing is checked (off, private, best-effort
    /// with the database away).
    pub(super) async fn expected_zip_h1(
        &self,
        rec: &VersionRecord,
    ) -> MirrorResult<Option<String>> {
        if let Some(h1) = &rec.sumdb_zip_h1 {
            return Ok(Some(h1.clone()));
        }
        match self.verdict(&rec.module, &rec.version).await? {
            Some(h) if h.mod_h1 != rec.mod_h1 => Err(mismatch(rec, "mod", &rec.mod_h1, &h)),
            Some(h) => Ok(Some(h.zip_h1)),
            None => Ok(None),
        }
    }

    /// The database's hashes for `module@version`: `None` when not checked (off, private,
    /// best-effort with the database away); an error when it cannot vouch for it in `require`.
    pub(super) async fn verdict(
        &self,
        module: &str,
        version: &str,
    ) -> MirrorResult<Option<DbHashes>> {
        let Some(checker) = &self.inner.checker else {
            return Ok(None);
        };
        served_hashes(module, version, checker.check(module, version).await)
    }

    /// Stores the checksum-database answers a verification collected.
    pub(super) async fn keep_answers(&self, pending: Pending) {
        if let Some(checker) = &self.inner.checker {
            checker.keep(pending.take()).await;
        }
    }

    /// [`Self::verdict`], leaving the answers to store in `pending`.
    pub(super) async fn verdict_deferred(
        &self,
        module: &str,
        version: &str,
        pending: &Pending,
    ) -> MirrorResult<Option<DbHashes>> {
        let Some(checker) = &self.inner.checker else {
            return Ok(None);
        };
        let verdict = checker.check_deferred(module, version, pending).await;
        served_hashes(module, version, verdict)
    }
}

/// A verification's outcome as the mirror acts on it: the hashes to check against, nothing to
/// check, or a refusal.
fn served_hashes(
    module: &str,
    version: &str,
    verdict: Result<Verdict, VerifyError>,
) -> MirrorResult<Option<DbHashes>> {
    match verdict {
        Ok(Verdict::Verified(h)) => Ok(Some(h)),
        Ok(Verdict::Unverified { .. } | Verdict::NotChecked) => Ok(None),
        Err(e) => Err(MirrorError::Upstream(format!(
            "{module}@{version} is not served because it cannot be verified: {e}"
        ))),
    }
}

/// The refusal of a file whose hash differs from the database's: counted, logged at error
/// level with the module, version and upstream, and an error naming both hashes.
pub(super) fn mismatch(
    rec: &VersionRecord,
    kind: &'static str,
    got: &str,
    db: &DbHashes,
) -> MirrorError {
    let want = if kind == "zip" {
        &db.zip_h1
    } else {
        &db.mod_h1
    };
    let file = if kind == "zip" { "zip" } else { "go.mod" };
    ::metrics::counter!(crate::sumdb::metrics::MISMATCHES_TOTAL, "kind" => kind).increment(1);
    crate::sumdb::metrics::verification("mismatch");
    tracing::error!(module = %rec.module, version = %rec.version, upstream = %rec.source, file, upstream_h1 = got, sumdb_h1 = %want, db = %db.db,
        "SECURITY: upstream file does not match the checksum database; refused, not stored");
    ::metrics::counter!(metrics::FILL_REJECTED_TOTAL, "kind" => kind, "reason" => "sumdb_mismatch")
        .increment(1);
    MirrorError::Rejected {
        kind,
        reason: format!(
            "checksum mismatch for {}@{} ({file}): the upstream {} sent {got}, but checksum database {} says {want}; refused and not stored",
            rec.module, rec.version, rec.source, db.db
        ),
    }
}
