//! Leader failover: how long after `kill -9` of the Raft leader the cluster accepts a committed
//! write again, and when the new leader shows in `/metrics`.
//!
//! One round: wait until the cluster converged (one leader all agree on, equal applied
//! indexes); note each survivor's `cairn_version_records` and `cairn_degraded_passthrough_total`;
//! SIGKILL the leader (t = 0). From then on:
//!
//! - a watcher scrapes the survivors' `/metrics` every 10 ms and notes when one of them reports
//!   `cairn_raft_is_leader 1` (*leader elected*), when every survivor reports that id as
//!   `cairn_raft_leader_id` (*leader known*), and when each survivor's record count rose;
//! - a prober sends, every `probe_interval`, a `GET /example.com/probe-<profile>/@v/<fresh>.info` for a
//!   version nobody has cached yet (written into the `file://` upstream just before), alternating
//!   between the survivors. Such a miss is filled from the upstream and its record proposed
//!   through Raft (forwarded to the leader, waiting during the election); the response is sent
//!   once the record is committed. Probing stops at the first 200.
//!
//! *First committed write* = the earliest completion of a 200 probe. A 200 is a committed write
//! unless the node served it as degraded pass-through (no leader for 2 × `election_max_ms`), so
//! the round also checks that the survivors' degraded counters did not move, and that each
//! survivor's record count rose by at least the number of 200 probes (the records appear
//! everywhere). Then the killed node is restarted and the round ends when it caught up (the
//! cluster converged again); that time is reported as *rejoin*.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use hyper::StatusCode;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cluster::{self, Cluster, Profile, RaftView};
use crate::corpus;
use crate::stats::Summary;

/// Probing gives up this long after the kill.
const WRITE_DEADLINE: Duration = Duration::from_secs(30);
/// One probe's own timeout (the node waits up to `propose_timeout_ms` = 10 s for a leader).
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the record counts get to reach their expected values after the probes ended.
const RECORDS_TIMEOUT: Duration = Duration::from_secs(10);

/// Hands out fresh versions of `example.com/probe-<tag>`, writing their `.info`/`.mod` into
/// the upstream.
pub struct Probes {
    root: PathBuf,
    module: String,
    next: u64,
}

impl Probes {
    /// Fresh versions written under `root` (the `file://` upstream).
    pub fn new(root: &Path, tag: &str) -> Probes {
        Probes {
            root: root.to_path_buf(),
            module: format!("example.com/probe-{tag}"),
            next: 0,
        }
    }

    /// The `.info` URL path of a version no node has seen.
    fn fresh_info(&mut self) -> anyhow::Result<String> {
        self.next += 1;
        let version = format!("v1.{}.0", self.next);
        corpus::write_version(&self.root, &self.module, &version, None, 0)?;
        Ok(format!("/{}/@v/{version}.info", self.module))
    }
}

/// What one failover round measured (times in ms since the kill).
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// Raft profile name.
    pub profile: &'static str,
    /// 1-based round number.
    pub round: usize,
    /// The killed leader.
    pub killed: u64,
    /// The leader elected after it.
    pub new_leader: Option<u64>,
    /// A survivor reported `cairn_raft_is_leader 1`.
    pub leader_elected_ms: Option<f64>,
    /// Every survivor reported the new leader's id.
    pub leader_known_ms: Option<f64>,
    /// The first 200 probe completed (committed write).
    pub first_write_ms: Option<f64>,
    /// When that probe had been sent.
    pub first_write_sent_ms: Option<f64>,
    /// The survivor that answered it.
    pub first_write_via: Option<u64>,
    /// Every survivor's record count had risen.
    pub records_visible_ms: Option<f64>,
    /// Probes sent / answered 200 / failed (non-200 or error).
    pub probes: (usize, usize, usize),
    /// First failure seen, if any.
    pub first_failure: Option<String>,
    /// Increase of `cairn_degraded_passthrough_total` on the survivors (0 = all 200s committed).
    pub degraded: f64,
    /// Each survivor's record count rose by at least the number of 200 probes.
    pub records_confirmed: bool,
    /// Restart of the killed node → cluster converged again.
    pub rejoin_ms: Option<f64>,
}

impl Round {
    /// Whether the round measured a committed write.
    pub fn ok(&self) -> bool {
        self.first_write_ms.is_some() && self.degraded == 0.0 && self.records_confirmed
    }

    /// As JSON.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "profile": self.profile, "round": self.round, "killed": self.killed,
            "new_leader": self.new_leader,
            "leader_elected_ms": self.leader_elected_ms, "leader_known_ms": self.leader_known_ms,
            "first_committed_write_ms": self.first_write_ms,
            "first_committed_write_sent_ms": self.first_write_sent_ms,
            "first_committed_write_via": self.first_write_via,
            "records_visible_ms": self.records_visible_ms,
            "probes_sent": self.probes.0, "probes_ok": self.probes.1, "probes_failed": self.probes.2,
            "first_failure": self.first_failure,
            "degraded_passthrough": self.degraded, "records_confirmed": self.records_confirmed,
            "rejoin_ms": self.rejoin_ms, "valid": self.ok(),
        })
    }
}

/// min/median/max of the rounds' figures.
pub struct ProfileSummary {
    /// Profile name.
    pub profile: &'static str,
    /// Leader elected.
    pub elected: Summary,
    /// Leader known everywhere.
    pub known: Summary,
    /// First committed write.
    pub write: Summary,
    /// Killed node restarted → caught up.
    pub rejoin: Summary,
    /// Rounds that measured a verified committed write / all rounds.
    pub valid: (usize, usize),
}

impl ProfileSummary {
    /// Summarizes the rounds of one profile.
    pub fn of(profile: &'static str, rounds: &[Round]) -> ProfileSummary {
        let pick = |f: fn(&Round) -> Option<f64>| -> Summary {
            Summary::of(
                &rounds
                    .iter()
                    .filter(|r| r.ok())
                    .filter_map(f)
                    .collect::<Vec<_>>(),
            )
        };
        ProfileSummary {
            profile,
            elected: pick(|r| r.leader_elected_ms),
            known: pick(|r| r.leader_known_ms),
            write: pick(|r| r.first_write_ms),
            rejoin: pick(|r| r.rejoin_ms),
            valid: (rounds.iter().filter(|r| r.ok()).count(), rounds.len()),
        }
    }

    /// As JSON.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "profile": self.profile, "valid_rounds": self.valid.0, "rounds": self.valid.1,
            "leader_elected": self.elected.json(), "leader_known": self.known.json(),
            "first_committed_write": self.write.json(), "rejoin": self.rejoin.json(),
        })
    }
}

/// Runs `rounds` failover rounds on `cluster`.
pub async fn run(
    cluster: &mut Cluster,
    probes: &mut Probes,
    profile: &Profile,
    rounds: usize,
    probe_interval: Duration,
) -> anyhow::Result<Vec<Round>> {
    let mut out = Vec::new();
    for round in 1..=rounds {
        let r = one_round(cluster, probes, profile, round, probe_interval).await?;
        let f = |v: Option<f64>| v.map_or("n/a".to_owned(), |ms| format!("{ms:.0} ms"));
        eprintln!(
            "  failover {} ({}) round {round}: killed {} -> leader {:?} elected {}, known {}, first committed write {} (via {:?}), rejoin {}{}",
            profile.name,
            profile.security(),
            r.killed,
            r.new_leader,
            f(r.leader_elected_ms),
            f(r.leader_known_ms),
            f(r.first_write_ms),
            r.first_write_via,
            f(r.rejoin_ms),
            if r.ok() { "" } else { "  (NOT VERIFIED)" }
        );
        out.push(r);
    }
    Ok(out)
}

/// Outcome of one probe (times since the kill).
struct ProbeOut {
    via: u64,
    sent: Duration,
    done: Duration,
    result: Result<StatusCode, String>,
}

/// What the watcher saw (times since the kill).
#[derive(Default, Clone)]
struct Seen {
    elected: Option<(Duration, u64)>,
    known: Option<Duration>,
    records_rose: BTreeMap<u64, Duration>,
}

async fn one_round(
    cluster: &mut Cluster,
    probes: &mut Probes,
    profile: &Profile,
    round: usize,
    probe_interval: Duration,
) -> anyhow::Result<Round> {
    let leader = cluster.wait_converged(cluster::FORM_TIMEOUT).await?;
    // Let the followers see a few heartbeats after the previous round's rejoin.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let survivors: Vec<u64> = cluster
        .up_ids()
        .into_iter()
        .filter(|&id| id != leader)
        .collect();
    let mut before = BTreeMap::new();
    for &id in &survivors {
        let m = cluster.scrape(id).await?;
        before.insert(
            id,
            (
                m.sum("cairn_version_records", &[]),
                m.sum("cairn_degraded_passthrough_total", &[]),
            ),
        );
    }
    let addrs: Vec<(u64, std::net::SocketAddr)> = survivors
        .iter()
        .map(|&id| (id, cluster.node(id).http))
        .collect();

    cluster.kill(leader);
    let t0 = Instant::now();

    let (stop_tx, stop_rx) = watch::channel(false);
    let records_before: BTreeMap<u64, f64> = before.iter().map(|(k, v)| (*k, v.0)).collect();
    let watcher = tokio::spawn(watch_survivors(
        addrs.clone(),
        leader,
        records_before,
        t0,
        stop_rx,
    ));

    let outs = probe_until_write(&addrs, probes, t0, probe_interval).await?;
    let ok: Vec<&ProbeOut> = outs
        .iter()
        .filter(|p| matches!(p.result, Ok(StatusCode::OK)))
        .collect();
    let first = ok.iter().min_by_key(|p| p.done);
    let first_failure = outs.iter().find_map(|p| match &p.result {
        Ok(StatusCode::OK) => None,
        Ok(s) => Some(format!("node {}: status {s}", p.via)),
        Err(e) => Some(format!("node {}: {e}", p.via)),
    });

    // Every 200 probe is one new record: wait until each survivor holds them all.
    let deadline = Instant::now() + RECORDS_TIMEOUT;
    let (mut degraded, mut confirmed);
    loop {
        degraded = 0.0;
        confirmed = true;
        for &id in &survivors {
            let m = cluster.scrape(id).await?;
            let (rec0, deg0) = before[&id];
            degraded += m.sum("cairn_degraded_passthrough_total", &[]) - deg0;
            confirmed &= m.sum("cairn_version_records", &[]) >= rec0 + ok.len() as f64;
        }
        if (confirmed && !ok.is_empty()) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let seen = watcher.await.context("the failover watcher panicked")?;

    let restart_at = Instant::now();
    cluster.restart(leader)?;
    let rejoin = cluster
        .wait_converged(cluster::FORM_TIMEOUT)
        .await
        .map(|_| restart_at.elapsed())
        .with_context(|| format!("node {leader} did not rejoin after its restart"))?;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let records_visible = (seen.records_rose.len() == survivors.len())
        .then(|| seen.records_rose.values().max().copied())
        .flatten();
    Ok(Round {
        profile: profile.name,
        round,
        killed: leader,
        new_leader: seen.elected.map(|(_, id)| id),
        leader_elected_ms: seen.elected.map(|(d, _)| ms(d)),
        leader_known_ms: seen.known.map(ms),
        first_write_ms: first.map(|p| ms(p.done)),
        first_write_sent_ms: first.map(|p| ms(p.sent)),
        first_write_via: first.map(|p| p.via),
        records_visible_ms: records_visible.map(ms),
        probes: (outs.len(), ok.len(), outs.len() - ok.len()),
        first_failure,
        degraded,
        records_confirmed: confirmed && !ok.is_empty(),
        rejoin_ms: Some(ms(rejoin)),
    })
}

/// Sends a fresh-version probe every `interval`, alternating between `addrs`, until one answers
/// 200 (or [`WRITE_DEADLINE`]); then waits for the probes still in flight. Returns them all.
async fn probe_until_write(
    addrs: &[(u64, std::net::SocketAddr)],
    probes: &mut Probes,
    t0: Instant,
    interval: Duration,
) -> anyhow::Result<Vec<ProbeOut>> {
    let mut set = JoinSet::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut outs = Vec::new();
    let mut done = false;
    let mut sent = 0usize;
    loop {
        tokio::select! {
            _ = tick.tick(), if !done => {
                if t0.elapsed() > WRITE_DEADLINE {
                    done = true;
                    continue;
                }
                let (via, addr) = addrs[sent % addrs.len()];
                sent += 1;
                let path = probes.fresh_info()?;
                set.spawn(async move {
                    let sent = t0.elapsed();
                    let result = cluster::timed_get(addr, &path, PROBE_TIMEOUT)
                        .await
                        .map(|t| t.status)
                        .map_err(|e| format!("{e:#}"));
                    ProbeOut { via, sent, done: t0.elapsed(), result }
                });
            }
            Some(out) = set.join_next(), if !set.is_empty() => {
                let out = out.context("a probe panicked")?;
                done |= matches!(out.result, Ok(StatusCode::OK));
                outs.push(out);
            }
            else => break,
        }
    }
    Ok(outs)
}

/// Scrapes the survivors every 10 ms until `stop`, noting when the new leader shows and when
/// each survivor's record count first rises.
async fn watch_survivors(
    addrs: Vec<(u64, std::net::SocketAddr)>,
    killed: u64,
    records_before: BTreeMap<u64, f64>,
    t0: Instant,
    mut stop: watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen::default();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let scrapes = futures_util::future::join_all(addrs.iter().map(|&(id, addr)| async move {
            let got = tokio::time::timeout(
                Duration::from_secs(1),
                crate::servers::get(addr, "/metrics"),
            )
            .await;
            let scrape = match got {
                Ok(Ok((StatusCode::OK, body))) => Some(crate::promtext::Scrape::parse(
                    &String::from_utf8_lossy(&body),
                )),
                _ => None,
            };
            (id, scrape)
        }))
        .await;
        let at = t0.elapsed();
        let mut views = Vec::new();
        for (id, scrape) in scrapes {
            let Some(m) = scrape else { continue };
            let view = RaftView::of(&m);
            if view.is_leader && seen.elected.is_none() {
                seen.elected = Some((at, id));
            }
            if m.sum("cairn_version_records", &[]) > records_before[&id] {
                seen.records_rose.entry(id).or_insert(at);
            }
            views.push((id, view));
        }
        let leaders: Vec<u64> = views
            .iter()
            .filter(|(_, v)| v.is_leader)
            .map(|(id, _)| *id)
            .collect();
        if let ([leader], None) = (&leaders[..], seen.known) {
            let all_agree =
                views.len() == addrs.len() && views.iter().all(|(_, v)| v.leader_id == *leader);
            if *leader != killed && all_agree {
                seen.known = Some(at);
            }
        }
    }
    seen
}
