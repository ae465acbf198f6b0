//! The `sumdb-recheck` worker: versions stored without verification — in `best-effort` while
//! the database was away, or before verification was turned on — are checked again every
//! `sumdb.recheck_interval_secs`. A version the database vouches for is marked verified (its
//! zip is then checked against the recorded hash whenever it is fetched); one it disagrees with
//! is quarantined: taken out of service for the whole cluster, logged at ERROR and counted.
//! Only the leader runs passes, so each version is looked up once per pass cluster-wide.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::metrics::{self, MISMATCHES_TOTAL, QUARANTINED_TOTAL};
use super::{Checker, DbHashes, VerifyError};
use crate::raft::{Consensus, RaftRole};
use crate::store::meta::{MetaCmd, VersionRecord};

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    /// Unverified versions looked up.
    pub checked: u64,
    /// Versions now verified.
    pub verified: u64,
    /// Versions quarantined.
    pub quarantined: u64,
    /// Versions the database could not vouch for this time (unreachable, no record): still
    /// served, checked again next pass.
    pub unsettled: u64,
    /// The pass stopped early: the database was unreachable for [`UNREACHABLE_IN_A_ROW`]
    /// lookups in a row. The next pass resumes after them.
    pub stopped: bool,
}

/// Lookups in a row that may find the database unreachable before a pass stops: with the
/// database down, a pass would otherwise look up (and time out on) every unverified version.
pub const UNREACHABLE_IN_A_ROW: u32 = 5;

/// Where the next pass starts: the number of version records to skip (records are visited in
/// key order; versions added since only shift it slightly, so at worst a version is checked a
/// pass later or twice).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(pub u64);

/// Spawns the worker; it stops when `shutdown` is cancelled. `every` of zero disables it.
pub fn spawn(
    checker: Arc<Checker>,
    consensus: Consensus,
    every: Duration,
    shutdown: CancellationToken,
) {
    if every.is_zero() || checker.database().is_none() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cursor = Cursor::default();
        let mut was_stopped = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if consensus.status().state != RaftRole::Leader {
                continue;
            }
            let stats = pass(&checker, &consensus, &mut cursor).await;
            if stats.stopped {
                // Once per outage, not once per pass: the pass is retried every interval.
                if !was_stopped {
                    tracing::warn!(
                        db = checker.database().unwrap_or(""),
                        unreachable_in_a_row = UNREACHABLE_IN_A_ROW,
                        resume_at = cursor.0,
                        "sumdb-recheck: the checksum database is unreachable; passes stop at \
                         the first failures and resume after them until it answers"
                    );
                }
            } else if was_stopped {
                tracing::info!("sumdb-recheck: the checksum database answers again");
            }
            was_stopped = stats.stopped;
            if stats.checked > 0 || stats.unsettled > 0 {
                tracing::info!(
                    checked = stats.checked,
                    verified = stats.verified,
                    quarantined = stats.quarantined,
                    unsettled = stats.unsettled,
                    stopped = stats.stopped,
                    "sumdb-recheck pass"
                );
            }
        }
    });
}

/// Checks the stored unverified versions once, starting at `cursor`: to the end, then from
/// the start up to where it began, or until the database has been unreachable for
/// [`UNREACHABLE_IN_A_ROW`] lookups in a row, leaving `cursor` just after them (during an
/// outage each pass tries the next few, so every version keeps being tried).
pub async fn pass(checker: &Checker, consensus: &Consensus, cursor: &mut Cursor) -> PassStats {
    let mut stats = PassStats::default();
    let start = cursor.0;
    let mut in_a_row = 0u32;
    // Records from the cursor on, then the ones before it.
    let later = consensus
        .reader()
        .versions()
        .skip(start as usize)
        .zip(start..);
    let earlier = consensus.reader().versions().take(start as usize).zip(0..);
    for (rec, index) in later.chain(earlier) {
        let Ok(rec) = rec else { continue };
        if rec.sumdb_verified {
            continue;
        }
        let h = match checker.recheck_lookup(&rec.module, &rec.version).await {
            Ok(Some(h)) => h,
            Ok(None) => continue,
            Err(e) => {
                stats.unsettled += 1;
                if matches!(e, VerifyError::Unreachable { .. }) {
                    in_a_row += 1;
                    if in_a_row >= UNREACHABLE_IN_A_ROW {
                        // Resume after them: versions whose own lookups keep failing (a module
                        // the database cannot answer for) must not stall every later one.
                        *cursor = Cursor(index + 1);
                        stats.stopped = true;
                        return stats;
                    }
                } else {
                    in_a_row = 0;
                }
                continue;
            }
        };
        in_a_row = 0;
        stats.checked += 1;
        let cmd = match disagreement(&rec, &h) {
            None => {
                stats.verified += 1;
                MetaCmd::MarkVerified {
                    module: rec.module.clone(),
                    version: rec.version.clone(),
                    mod_h1: h.mod_h1.clone(),
                    zip_h1: h.zip_h1.clone(),
                }
            }
            Some((kind, reason)) => {
                stats.quarantined += 1;
                ::metrics::counter!(MISMATCHES_TOTAL, "kind" => kind).increment(1);
                ::metrics::counter!(QUARANTINED_TOTAL).increment(1);
                metrics::verification("mismatch");
                tracing::error!(module = %rec.module, version = %rec.version, upstream = %rec.source, reason = %reason,
                    "SECURITY: a version stored unverified does not match the checksum database; quarantined");
                MetaCmd::Quarantine {
                    module: rec.module.clone(),
                    version: rec.version.clone(),
                    reason,
                }
            }
        };
        if let Err(e) = consensus.propose(cmd).await {
            tracing::warn!(module = %rec.module, version = %rec.version, error = %e, "could not record the recheck; next pass");
        }
    }
    *cursor = Cursor::default();
    stats
}

/// Which file of `rec` the database disagrees with, and how.
fn disagreement(rec: &VersionRecord, h: &DbHashes) -> Option<(&'static str, String)> {
    let gomod = crate::modzip::hash_gomod(&rec.gomod);
    if gomod != h.mod_h1 || rec.mod_h1 != h.mod_h1 {
        return Some((
            "mod",
            format!("go.mod hashes to {gomod}, {} says {}", h.db, h.mod_h1),
        ));
    }
    match &rec.zip {
        Some(z) if z.h1 != h.zip_h1 => Some((
            "zip",
            format!("zip hashes to {}, {} says {}", z.h1, h.db, h.zip_h1),
        )),
        _ => None,
    }
}
