//! [`Audit`]: `cairn verify` — every stored public version checked again against the
//! verifying checksum database: the record's hashes, the go.mod bytes it holds, and the zip file
//! on this node's disk (hashed afresh), so a version poisoned while the database was away
//! (`best-effort`) or altered on disk after it was stored is found. It reports; it changes no
//! version (what it fetches from the database is stored like any verification's answers).

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Checker, DbHashes, Verdict};
use crate::modzip::{self, ZipLimits};
use crate::raft::MetaReader;
use crate::store::blob::BlobStore;
use crate::store::meta::VersionRecord;

/// How many versions are checked between two progress messages.
const PROGRESS_EVERY: u64 = 16;

/// One stored version that does not match, or could not be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Module path.
    pub module: String,
    /// Version.
    pub version: String,
    /// What is wrong.
    pub problem: String,
}

/// A progress report; the last one has `done` set.
#[derive(Debug, Clone, Default)]
pub struct AuditProgress {
    /// Versions looked at so far.
    pub checked: u64,
    /// Versions stored when the run started.
    pub total: u64,
    /// Versions skipped so far because their paths are private.
    pub skipped_private: u64,
    /// Problems found since the previous report.
    pub findings: Vec<Finding>,
    /// The run is over.
    pub done: bool,
    /// The verifying database.
    pub database: String,
}

/// Why an audit cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// No configured database verifies versions.
    #[error("no checksum database verifies versions here (every sumdb.databases entry has verify = \"off\" or no key)")]
    NoDatabase,
    /// Reading the state failed.
    #[error("reading the stored versions failed: {0}")]
    Storage(String),
}

/// Re-checks stored versions against the verifying database.
pub struct Audit {
    checker: Arc<Checker>,
    meta: MetaReader,
    blobs: BlobStore,
    /// The node's zip limits (a stored zip was accepted under them).
    limits: ZipLimits,
}

impl Audit {
    /// An audit of the versions `meta` holds, with zips read from `blobs` under `limits`.
    pub fn new(
        checker: Arc<Checker>,
        meta: MetaReader,
        blobs: BlobStore,
        limits: ZipLimits,
    ) -> Audit {
        Audit {
            checker,
            meta,
            blobs,
            limits,
        }
    }

    /// Checks every stored version, sending progress to `tx`; stops early when the receiver is
    /// gone (the operator pressed Ctrl-C).
    pub async fn run(&self, tx: mpsc::Sender<AuditProgress>) -> Result<(), AuditError> {
        let database = self
            .checker
            .database()
            .ok_or(AuditError::NoDatabase)?
            .to_owned();
        let mut progress = AuditProgress {
            total: self.meta.version_count(),
            database,
            ..AuditProgress::default()
        };
        for rec in self.meta.versions() {
            let rec = rec.map_err(|e| AuditError::Storage(e.to_string()))?;
            match self.check(&rec).await {
                None => progress.skipped_private += 1,
                Some(problems) => progress
                    .findings
                    .extend(problems.into_iter().map(|problem| Finding {
                        module: rec.module.clone(),
                        version: rec.version.clone(),
                        problem,
                    })),
            }
            progress.checked += 1;
            if progress.checked.is_multiple_of(PROGRESS_EVERY) || !progress.findings.is_empty() {
                let sent = AuditProgress {
                    findings: std::mem::take(&mut progress.findings),
                    ..progress.clone()
                };
                if tx.send(sent).await.is_err() {
                    return Ok(());
                }
            }
        }
        progress.done = true;
        let _ = tx.send(progress).await;
        Ok(())
    }

    /// The problems of one version; `None` when its path is private (not checked).
    async fn check(&self, rec: &VersionRecord) -> Option<Vec<String>> {
        match self.checker.check(&rec.module, &rec.version).await {
            Ok(Verdict::NotChecked) => None,
            Ok(Verdict::Verified(h)) => Some(self.compare(rec, &h).await),
            Ok(Verdict::Unverified { reason })
            | Err(super::VerifyError::Unreachable { reason, .. }) => {
                Some(vec![format!("not verified: {reason}")])
            }
            Err(e) => Some(vec![format!("not verified: {e}")]),
        }
    }

    async fn compare(&self, rec: &VersionRecord, h: &DbHashes) -> Vec<String> {
        let mut problems = Vec::new();
        let gomod = modzip::hash_gomod(&rec.gomod);
        if gomod != h.mod_h1 {
            problems.push(format!(
                "go.mod: the stored bytes hash to {gomod}, {} says {}",
                h.db, h.mod_h1
            ));
        } else if rec.mod_h1 != h.mod_h1 {
            problems.push(format!(
                "go.mod: the record says {}, {} says {}",
                rec.mod_h1, h.db, h.mod_h1
            ));
        }
        let Some(zip) = &rec.zip else {
            return problems;
        };
        if zip.h1 != h.zip_h1 {
            problems.push(format!(
                "zip: the record says {}, {} says {}",
                zip.h1, h.db, h.zip_h1
            ));
        }
        match self.zip_h1_on_disk(rec, &zip.sha256).await {
            Some(Ok(on_disk)) if on_disk != h.zip_h1 => {
                problems.push(format!(
                    "zip: the file on this node hashes to {on_disk}, {} says {}",
                    h.db, h.zip_h1
                ));
            }
            Some(Err(e)) => problems.push(format!(
                "zip: the file on this node is not a valid module zip: {e}"
            )),
            _ => {}
        }
        problems
    }

    /// The `h1:` of the zip file on this node (`None` when this node holds no copy).
    async fn zip_h1_on_disk(
        &self,
        rec: &VersionRecord,
        sha256: &str,
    ) -> Option<Result<String, String>> {
        let path = self.blobs.path_of(sha256).ok().filter(|p| p.is_file())?;
        let (module, version, limits) = (rec.module.clone(), rec.version.clone(), self.limits);
        let hashed = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
            modzip::check_zip(std::io::BufReader::new(file), &module, &version, &limits)
                .map(|s| s.h1)
                .map_err(|e| e.to_string())
        })
        .await;
        Some(hashed.unwrap_or_else(|e| Err(e.to_string())))
    }
}
