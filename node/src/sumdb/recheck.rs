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
use super::{Checker, DbHashes, Verdict};
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
}

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
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if consensus.status().state != RaftRole::Leader {
                continue;
            }
            let stats = pass(&checker, &consensus).await;
            if stats.checked > 0 {
                tracing::info!(
                    checked = stats.checked,
                    verified = stats.verified,
                    quarantined = stats.quarantined,
                    "sumdb-recheck pass"
                );
            }
        }
    });
}

/// Checks every stored unverified version once.
pub async fn pass(checker: &Checker, consensus: &Consensus) -> PassStats {
    let mut stats = PassStats::default();
    for rec in consensus.reader().versions() {
        let Ok(rec) = rec else { continue };
        if rec.sumdb_verified {
            continue;
        }
        let h = match checker.check(&rec.module, &rec.version).await {
            Ok(Verdict::Verified(h)) => h,
            Ok(Verdict::NotChecked) => continue,
            Ok(Verdict::Unverified { .. }) | Err(_) => {
                stats.unsettled += 1;
                continue;
            }
        };
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
