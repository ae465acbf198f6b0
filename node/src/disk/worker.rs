//! The disk worker's loop: measure, publish, persist access times, evict when above high.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::level::{assess, Assessment, Level, Usage};
use super::plan::{self, Candidate, Keep};
use super::{metrics, pins, Shared};
use crate::store::atime::now_ms;

/// Measures every `check_interval` and whenever a store crossed the budget's high mark.
pub(super) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(shared.policy.check_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut persisted_ms = now_ms();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
            () = shared.blobs.over_high() => {}
        }
        let since = persisted_ms;
        persisted_ms = now_ms();
        shared.persist_atimes(since).await;
        shared.pass().await;
    }
    shared.persist_atimes(persisted_ms).await;
    tracing::debug!("disk worker stopped");
}

/// Per-blob facts gathered from the version records.
#[derive(Default)]
struct Refs {
    size: u64,
    pinned: bool,
    refetchable: bool,
}

// === impl Shared ===

impl Shared {
    /// Loads persisted access times and evicted marks (blocking).
    pub(super) fn restore(&self) {
        match self.local.atimes() {
            Ok(times) => {
                for (sha, ms) in times {
                    self.blobs.access_times().touch_at(&sha, ms);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the stored access times"),
        }
        match self.local.evicted() {
            Ok(shas) => {
                let (back, gone): (Vec<_>, Vec<_>) =
                    shas.into_iter().partition(|s| self.blobs.contains(s));
                if !back.is_empty() {
                    let _ = self.local.unmark_evicted(&back);
                }
                self.blobs.restore_evicted(gone);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the evicted marks"),
        }
    }

    fn usage(&self) -> Usage {
        let fs = match super::level::volume(&self.data_dir) {
            Ok(space) => Some(space),
            Err(e) => {
                tracing::warn!(path = %self.data_dir.display(), error = %e, "statvfs of the data directory failed");
                None
            }
        };
        Usage {
            fs,
            blob_bytes: self.blobs.bytes(),
        }
    }

    /// Measures, publishes the gauges, and sets or clears the flood flag.
    pub(super) fn measure_and_publish(&self) -> Assessment {
        let usage = self.usage();
        let a = assess(&self.policy, &usage);
        if let Some(fs) = usage.fs {
            ::metrics::gauge!(metrics::USED_BYTES).set(fs.capacity.saturating_sub(fs.free) as f64);
        }
        ::metrics::gauge!(metrics::WATERMARK_STATE).set(a.level as u8 as f64);
        let before = Level::from_u8(self.level.swap(a.level as u8, Ordering::Relaxed));
        let flood = a.level == Level::Flood;
        if self.blobs.is_flooded() != flood {
            self.blobs.set_flooded(flood);
        }
        if before != a.level {
            let (fs_free, blob_bytes) = (usage.fs.map(|f| f.free), usage.blob_bytes);
            if flood {
                tracing::warn!(
                    from = before.name(),
                    fs_free,
                    blob_bytes,
                    "disk at flood watermark: serving hits, passing misses through uncached"
                );
            } else {
                tracing::info!(
                    from = before.name(),
                    to = a.level.name(),
                    fs_free,
                    blob_bytes,
                    "disk watermark state changed"
                );
            }
        }
        a
    }

    /// Writes the access times touched since `since_ms` to the local tree.
    pub(super) async fn persist_atimes(self: &Arc<Self>, since_ms: u64) {
        let this = self.clone();
        let res = tokio::task::spawn_blocking(move || {
            let touched = this.blobs.access_times().touched_since(since_ms);
            this.local.save_atimes(&touched)
        })
        .await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot persist access times"),
            Err(e) => tracing::warn!(error = %e, "access-time task failed"),
        }
    }

    /// One check: evict when at or above high, then measure again.
    pub(super) async fn pass(self: &Arc<Self>) {
        let a = self.measure_and_publish();
        if a.level < Level::High || !self.policy.evict || a.excess == 0 {
            return;
        }
        let this = self.clone();
        let chosen = match tokio::task::spawn_blocking(move || this.choose(a.excess)).await {
            Ok(Ok(chosen)) => chosen,
            Ok(Err(e)) => return tracing::warn!(error = %e, "cannot plan eviction"),
            Err(e) => return tracing::warn!(error = %e, "eviction planning failed"),
        };
        let confirmed = self.confirm(chosen).await;
        let this = self.clone();
        let _ = tokio::task::spawn_blocking(move || this.evict_all(&confirmed, a.excess)).await;
        self.measure_and_publish();
    }

    /// The blobs to evict, least recently served first (blocking: walks the records).
    fn choose(&self, need: u64) -> Result<Vec<Candidate>, crate::raft::MetaError> {
        let reader = self.consensus.reader();
        let patterns: Vec<String> = reader.pins()?.into_iter().map(|p| p.pattern).collect();
        let mut refs: HashMap<String, Refs> = HashMap::new();
        for rec in reader.versions() {
            let rec = match rec {
                Ok(r) => r,
                Err(crate::raft::MetaError::Corrupt { key, .. }) => {
                    tracing::warn!(key, "skipping a corrupt version record");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(zip) = &rec.zip else { continue };
            let r = refs.entry(zip.sha256.clone()).or_insert(Refs {
                size: zip.size,
                pinned: false,
                refetchable: true,
            });
            r.pinned |= pins::any_matches(
                patterns.iter().map(String::as_str),
                &rec.module,
                &rec.version,
            );
            r.refetchable &= plan::refetchable(&rec.source);
        }
        let voters: Vec<u64> = self
            .consensus
            .status()
            .members
            .iter()
            .filter(|m| m.voter)
            .map(|m| m.id)
            .collect();
        let times = self.blobs.access_times();
        let cands = refs
            .into_iter()
            .filter_map(|(sha, r)| {
                let path = self.blobs.path_of(&sha).ok()?;
                let meta = std::fs::metadata(path).ok()?;
                let stored_ms = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as u64);
                let last_ms = times.get(&sha).unwrap_or(stored_ms);
                let keep = plan::classify(
                    &sha,
                    r.pinned,
                    r.refetchable,
                    self.self_id,
                    &voters,
                    self.min_copies,
                );
                Some(Candidate {
                    sha256: sha,
                    size: meta.len().max(r.size),
                    last_ms,
                    keep,
                })
            })
            .collect();
        let idle_before = now_ms().saturating_sub(self.policy.min_idle_ms);
        Ok(plan::plan(cands, need, idle_before))
    }

    /// Keeps the refetchable candidates, and the others whose keepers all confirm a copy.
    async fn confirm(&self, chosen: Vec<Candidate>) -> Vec<Candidate> {
        let mut asks: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for c in &chosen {
            if let Keep::IfKeepersHold(ks) = &c.keep {
                for k in ks {
                    asks.entry(*k).or_default().push(c.sha256.clone());
                }
            }
        }
        let members = self.consensus.status().members;
        let mut held: HashMap<(u64, String), bool> = HashMap::new();
        for (id, shas) in asks {
            let Some(addr) = members.iter().find(|m| m.id == id).map(|m| m.addr.clone()) else {
                continue;
            };
            match self.transfer.has_blobs(&addr, &shas).await {
                Ok(flags) => held.extend(shas.into_iter().zip(flags).map(|(s, f)| ((id, s), f))),
                Err(e) => {
                    tracing::warn!(peer = id, error = %e, "keeper could not confirm its copies; keeping ours")
                }
            }
        }
        chosen
            .into_iter()
            .filter(|c| match &c.keep {
                Keep::Evictable => true,
                Keep::IfKeepersHold(ks) => {
                    let ok = ks
                        .iter()
                        .all(|k| held.get(&(*k, c.sha256.clone())) == Some(&true));
                    if !ok {
                        ::metrics::counter!(metrics::EVICTIONS_DEFERRED_TOTAL).increment(1);
                    }
                    ok
                }
                Keep::Pinned | Keep::Keeper => false,
            })
            .collect()
    }

    /// Marks the blobs evicted (durably first, so the repair worker never re-pulls one after a
    /// crash), then removes them (blocking).
    fn evict_all(&self, chosen: &[Candidate], need: u64) {
        if chosen.is_empty() {
            tracing::warn!(need, "above the high watermark but nothing may be evicted (pinned, non-refetchable, or recently served)");
            return;
        }
        let shas: Vec<String> = chosen.iter().map(|c| c.sha256.clone()).collect();
        if let Err(e) = self.local.mark_evicted(&shas, now_ms()) {
            return tracing::warn!(error = %e, "cannot record evictions; evicting nothing");
        }
        let (mut n, mut bytes) = (0u64, 0u64);
        for c in chosen {
            match self.blobs.evict(&c.sha256) {
                Ok(0) => {}
                Ok(size) => {
                    n += 1;
                    bytes += size;
                    tracing::debug!(sha256 = %c.sha256, size, last_served_ms = c.last_ms, "blob evicted");
                }
                Err(e) => tracing::warn!(sha256 = %c.sha256, error = %e, "cannot evict a blob"),
            }
        }
        ::metrics::counter!(metrics::EVICTIONS_TOTAL).increment(n);
        ::metrics::counter!(metrics::EVICTED_BYTES_TOTAL).increment(bytes);
        tracing::info!(
            blobs = n,
            bytes,
            need,
            "evicted least recently served blobs"
        );
    }
}
