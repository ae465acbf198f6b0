//! `cairn-bench cluster`: the cluster benchmarks — cold-miss latency through a 3-node cluster
//! vs a single node ([`crate::coldmiss`]), blob replication throughput of a 50 MB zip against raw
//! loopback copies ([`crate::replication`]), and leader failover time with the default and a
//! fast Raft profile ([`crate::failover`]). Everything runs on 127.0.0.1 with a `file://`
//! upstream in a temp directory; figures are printed and written as JSON to
//! `target/bench-cluster.json`. About 1–2 minutes with the defaults.
//!
//! Order: start a single node and a 3-node cluster (default Raft timings); cold misses
//! (alternating between the two); the single node's 50 MB fill (a reference); the raw-copy
//! baselines; the replication rounds; stop the single node; failover rounds on the cluster;
//! then a fresh cluster with the fast profile for its failover rounds.
//!
//! The clusters' cluster ports run with `cluster.insecure = true` (a multi-node cluster refuses
//! to start without mutual TLS otherwise), or with mutual TLS under `--mtls`; `cairn-bench
//! security` compares the two side by side.
//!
//! Node logs (JSON, level warn) are copied to `target/bench-cluster-logs/` after every run,
//! also a failed one; `--keep` keeps the whole work directory (data directories included).
//!
//! Like the hit benchmark, speed is measured, never asserted: the exit status is non-zero only
//! when something could not be set up or a result could not be verified at all.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;

use crate::cluster::{Cluster, Profile, DEFAULT_PROFILE, FAST_PROFILE};
use crate::coldmiss::{self, Series};
use crate::failover::{self, Probes, ProfileSummary};
use crate::replication::{self, Baselines};
use crate::servers;
use crate::stability::{self, Stability};
use crate::stats::Summary;

/// Cluster benchmarks: failover time, blob replication throughput, cold-miss latency.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// Benchmarks to run: coldmiss, replication, failover, stability (not by default: it runs
    /// `--stability-secs` of full hit load on a 3-node cluster and counts elections).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "coldmiss,replication,failover"
    )]
    only: Vec<String>,
    /// Length of the stability run, seconds (the bar is 600).
    #[arg(long, default_value_t = 600.0)]
    stability_secs: f64,
    /// Connections of the stability run, spread over the three nodes.
    #[arg(long, default_value_t = 96)]
    stability_conns: usize,
    /// Failover rounds per Raft profile.
    #[arg(long, default_value_t = 5)]
    failover_rounds: usize,
    /// Raft profiles for failover: default (node defaults), fast (100/500/1000 ms).
    #[arg(long, value_delimiter = ',', default_value = "default,fast")]
    profiles: Vec<String>,
    /// During failover, a fresh-version probe is sent every this many ms.
    #[arg(long, default_value_t = 50)]
    probe_interval_ms: u64,
    /// Replication rounds (each with a fresh zip).
    #[arg(long, default_value_t = 3)]
    replication_rounds: usize,
    /// Size of the replicated zip, MiB.
    #[arg(long, default_value_t = 50)]
    big_mb: usize,
    /// Repetitions of each raw-copy baseline.
    #[arg(long, default_value_t = 3)]
    baseline_reps: usize,
    /// Distinct cold versions per kind (zip, info).
    #[arg(long, default_value_t = 30)]
    cold_versions: usize,
    /// Size of each cold-miss zip, KiB.
    #[arg(long, default_value_t = 32)]
    cold_zip_kib: usize,
    /// The cairn-node binary (default: target/release/cairn-node in the workspace).
    #[arg(long, env = "CAIRN_NODE_BIN")]
    node_bin: Option<PathBuf>,
    /// Extra environment for cairn-node, KEY=VALUE (repeatable).
    #[arg(long, value_parser = crate::parse_key_value)]
    cairn_env: Vec<(String, String)>,
    /// Where to write the JSON results (default: target/bench-cluster.json in the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the work directory (data dirs, node logs) and print its path.
    #[arg(long)]
    keep: bool,
    /// Mutual TLS on the clusters' cluster ports (certificates made per node); without it they
    /// run with `cluster.insecure = true`.
    #[arg(long)]
    mtls: bool,
}

impl ClusterArgs {
    fn wants(&self, what: &str) -> bool {
        self.only.iter().any(|o| o == what)
    }
}

/// Everything measured, for the report and the JSON.
#[derive(Default)]
struct Results {
    zip: Option<Series>,
    info: Option<Series>,
    baselines: Option<Baselines>,
    single_fill: Option<replication::Round>,
    replication: Vec<replication::Round>,
    failover: Vec<(Profile, Vec<failover::Round>)>,
    stability: Option<Stability>,
}

/// Runs the cluster benchmarks.
pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    for o in &args.only {
        if !["coldmiss", "replication", "failover", "stability"].contains(&o.as_str()) {
            bail!("unknown benchmark {o:?} (known: coldmiss, replication, failover, stability)");
        }
    }
    let profiles = args
        .profiles
        .iter()
        .map(|p| match p.as_str() {
            "default" => Ok(DEFAULT_PROFILE.with_mtls(args.mtls)),
            "fast" => Ok(FAST_PROFILE.with_mtls(args.mtls)),
            other => bail!("unknown profile {other:?} (known: default, fast)"),
        })
        .collect::<anyhow::Result<Vec<Profile>>>()?;
    let bin = crate::resolve_node_bin(args.node_bin.clone())?;
    let work = tempfile::Builder::new()
        .prefix("cairn-bench-cluster-")
        .tempdir()?;
    let upstream_dir = work.path().join("upstream");
    std::fs::create_dir_all(&upstream_dir)?;
    let load_before = crate::loadavg();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("cairn-bench cluster: {cpus} CPUs, load average {load_before}");
    println!("cairn-node: {}", bin.display());
    println!("work directory: {}", work.path().display());
    println!("upstream: file://{}", upstream_dir.display());
    println!(
        "cluster port: {}",
        if args.mtls {
            "mutual TLS"
        } else {
            "insecure (cluster.insecure = true)"
        }
    );
    let started = std::time::Instant::now();
    let logs = crate::workspace_root().join("target/bench-cluster-logs");
    let measured = measure(&args, &profiles, &bin, work.path(), &upstream_dir).await;
    // Node logs (JSON, level warn) outlive the temp directory, also when a phase failed.
    copy_logs(work.path(), &logs);
    let res = measured.with_context(|| format!("node logs copied to {}", logs.display()))?;

    let load_after = crate::loadavg();
    let elapsed = started.elapsed().as_secs_f64();
    print!("{}", report(&args, &res));
    println!("\nload average before: {load_before}; after: {load_after}; total {elapsed:.0} s");
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| crate::workspace_root().join("target/bench-cluster.json"));
    let meta = json!({
        "cpus": cpus, "loadavg_before": load_before, "loadavg_after": load_after,
        "elapsed_secs": elapsed, "node_bin": bin.display().to_string(),
        "cairn_env": args.cairn_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "probe_interval_ms": args.probe_interval_ms, "cold_zip_kib": args.cold_zip_kib,
        "big_zip_mb": args.big_mb, "cluster_port": if args.mtls { "mtls" } else { "insecure" },
    });
    write_json(&out, &res, meta)?;
    println!("results written to {}", out.display());
    if args.keep {
        let kept = work.keep();
        println!("work directory kept: {}", kept.display());
    }
    Ok(())
}

/// The benchmark phases, in the order described in the module docs.
async fn measure(
    args: &ClusterArgs,
    profiles: &[Profile],
    bin: &Path,
    work: &Path,
    upstream_dir: &Path,
) -> anyhow::Result<Results> {
    let mut res = Results::default();
    let upstream = format!("file://{}", upstream_dir.display());
    let default = DEFAULT_PROFILE.with_mtls(args.mtls);

    let needs_default_cluster = args.wants("coldmiss")
        || args.wants("replication")
        || args.wants("stability")
        || (args.wants("failover") && profiles.iter().any(|p| p.name == "default"));
    if needs_default_cluster {
        let mut single = if args.wants("coldmiss") || args.wants("replication") {
            let dir = work.join("single");
            std::fs::create_dir_all(&dir)?;
            Some(servers::start_cairn(bin, upstream_dir, &dir, &args.cairn_env).await?)
        } else {
            None
        };
        eprintln!(
            "starting a 3-node cluster ({}, cluster port {})",
            default.describe,
            default.security()
        );
        let mut cluster = Cluster::start(
            bin,
            3,
            &upstream,
            &work.join("cluster-default"),
            &default,
            &args.cairn_env,
        )
        .await?;
        if let (true, Some(s)) = (args.wants("coldmiss"), &single) {
            run_coldmiss(args, upstream_dir, s.addr, &cluster, &mut res).await?;
        }
        if let (true, Some(s)) = (args.wants("replication"), &single) {
            let data = work.join("single/cairn-data");
            run_replication(args, upstream_dir, (s.addr, &data), &cluster, &mut res).await?;
        }
        single.take();
        if args.wants("stability") {
            eprintln!(
                "stability: {} s of hits with {} connections",
                args.stability_secs, args.stability_conns
            );
            let s = stability::run(
                &mut cluster,
                upstream_dir,
                args.stability_secs,
                args.stability_conns,
            )
            .await?;
            eprintln!("  {}", s.line());
            res.stability = Some(s);
        }
        if args.wants("failover") && profiles.iter().any(|p| p.name == "default") {
            run_failover(args, &mut cluster, upstream_dir, &default, &mut res).await?;
        }
    }
    if args.wants("failover") {
        for profile in profiles.iter().filter(|p| p.name != "default") {
            eprintln!(
                "starting a 3-node cluster ({}, cluster port {})",
                profile.describe,
                profile.security()
            );
            let dir = work.join(format!("cluster-{}", profile.name));
            let mut cluster =
                Cluster::start(bin, 3, &upstream, &dir, profile, &args.cairn_env).await?;
            run_failover(args, &mut cluster, upstream_dir, profile, &mut res).await?;
        }
    }

    Ok(res)
}

/// Copies every `*.log` under `work` to `dest`, keeping relative paths (best effort).
pub(crate) fn copy_logs(work: &Path, dest: &Path) {
    let _ = std::fs::remove_dir_all(dest);
    let mut stack = vec![work.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "log") {
                if let Ok(rel) = path.strip_prefix(work) {
                    let to = dest.join(rel);
                    if let Some(parent) = to.parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    let _ = std::fs::copy(&path, &to);
                }
            }
        }
    }
}

async fn run_coldmiss(
    args: &ClusterArgs,
    upstream: &std::path::Path,
    single: std::net::SocketAddr,
    cluster: &Cluster,
    res: &mut Results,
) -> anyhow::Result<()> {
    eprintln!(
        "cold misses: {} zips of {} KiB and {} .info, single node vs cluster node 1",
        args.cold_versions, args.cold_zip_kib, args.cold_versions
    );
    let (zips, infos) =
        coldmiss::write_versions(upstream, args.cold_versions, args.cold_zip_kib << 10)?;
    res.zip = Some(coldmiss::run("zip", &zips, single, cluster).await?);
    res.info = Some(coldmiss::run("info", &infos, single, cluster).await?);
    Ok(())
}

async fn run_replication(
    args: &ClusterArgs,
    upstream: &std::path::Path,
    (single, single_data): (std::net::SocketAddr, &std::path::Path),
    cluster: &Cluster,
    res: &mut Results,
) -> anyhow::Result<()> {
    let bytes = args.big_mb << 20;
    eprintln!("replication: {} MiB zips", args.big_mb);
    let reference = replication::write_big(upstream, 0, bytes)?;
    let fill = replication::single_node_fill(single, single_data, &reference).await?;
    eprintln!(
        "  single node cold fill: blob on disk {:.0} ms, response done {:.0} ms",
        fill.copies_ms(1).unwrap_or(f64::NAN),
        fill.body_ms
    );
    res.single_fill = Some(fill);
    let scratch = upstream
        .parent()
        .unwrap_or(upstream)
        .join("baseline-scratch");
    let base = tokio::task::spawn_blocking({
        let (src, scratch, reps) = (reference.file.clone(), scratch, args.baseline_reps);
        move || replication::baselines(&src, &scratch, reps)
    })
    .await
    .context("the baseline thread panicked")??;
    eprintln!(
        "  raw copies: tcp+fsync median {:.0} ms, file+fsync {:.0} ms, sha256 {:.0} ms",
        base.tcp_copy.p50, base.file_copy.p50, base.sha256.p50
    );
    res.baselines = Some(base);
    for r in 1..=args.replication_rounds {
        let zip = replication::write_big(upstream, r as u64, bytes)?;
        // Let the page cache writeback of the new upstream file settle a little.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let round = replication::cluster_round(cluster, &zip, r).await?;
        eprintln!(
            "  round {r}: node 1 answered {:.0} ms; copies {:?}; verified {}",
            round.body_ms, round.copies, round.verified
        );
        res.replication.push(round);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

async fn run_failover(
    args: &ClusterArgs,
    cluster: &mut Cluster,
    upstream: &std::path::Path,
    profile: &Profile,
    res: &mut Results,
) -> anyhow::Result<()> {
    eprintln!(
        "failover ({}): {} rounds, a probe every {} ms",
        profile.describe, args.failover_rounds, args.probe_interval_ms
    );
    let mut probes = Probes::new(upstream, profile.name);
    let rounds = failover::run(
        cluster,
        &mut probes,
        profile,
        args.failover_rounds,
        Duration::from_millis(args.probe_interval_ms.max(1)),
    )
    .await?;
    res.failover.push((*profile, rounds));
    Ok(())
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() {
        format!("{:.2}x", a / b)
    } else {
        "n/a".into()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |x| format!("{x:.0}"))
}

/// `series  Σ ms (count)` for a histogram, `series  +count` for a counter (NaN sum).
fn breakdown_line(series: &str, sum: f64, n: f64) -> String {
    if sum.is_nan() {
        format!("{series:<52} {:>+8.0}", n)
    } else {
        format!("{series:<52} {:>8.0} ms ({n})", sum * 1e3)
    }
}

fn report(args: &ClusterArgs, res: &Results) -> String {
    let mut out = String::new();
    if let Some(s) = &res.stability {
        let _ = writeln!(
            out,
            "\n== Stability under full hit load (default Raft timings; any election is spurious) ==\n{}",
            s.line()
        );
        if let Some(e) = &s.first_error {
            let _ = writeln!(out, "first error: {e}");
        }
    }
    if let (Some(zip), Some(info)) = (&res.zip, &res.info) {
        let _ = writeln!(
            out,
            "\n== Cold-miss latency: {} distinct uncached versions each, one request at a time (connect -> last byte, ms) ==",
            args.cold_versions
        );
        let _ = writeln!(
            out,
            "{:<5} {:<32} {:>3} {:>8} {:>8} {:>8}   ratio to single node (p50 / p90 / max)",
            "kind", "through", "n", "p50", "p90", "max"
        );
        for s in [zip, info] {
            let single = Summary::of(&s.single);
            let kind = if s.kind == "zip" {
                format!("zip ({} KiB)", args.cold_zip_kib)
            } else {
                ".info".into()
            };
            let _ = writeln!(out, "{kind}");
            let mut row = |name: &str, m: Summary, with_ratio: bool| {
                let r = if with_ratio {
                    format!(
                        "{} / {} / {}",
                        ratio(m.p50, single.p50),
                        ratio(m.p90, single.p90),
                        ratio(m.max, single.max)
                    )
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "{:<5} {:<32} {:>3} {:>8.2} {:>8.2} {:>8.2}   {r}",
                    "", name, m.n, m.p50, m.p90, m.max
                );
            };
            row("single node", single, false);
            row("3-node cluster, node 1", s.cluster_all(), true);
            row("  owner = node 1", s.cluster_where(|o| o == 1), true);
            row("  owner = node 2 or 3", s.cluster_where(|o| o != 1), true);
            if !s.all_copies.is_empty() {
                row(
                    "  (until the blob is on all 3)",
                    Summary::of(&s.all_copies),
                    false,
                );
            }
            let _ = writeln!(
                out,
                "      where the time went (per node, over this series):"
            );
            for line in s.costs.lines() {
                let _ = writeln!(out, "        {line}");
            }
            if s.owner_mismatches > 0 {
                let _ = writeln!(
                    out,
                    "      note: for {} versions node 1's cairn_owner_fills_total disagreed with the computed owner",
                    s.owner_mismatches
                );
            }
        }
    }
    if let Some(b) = &res.baselines {
        let mb = b.bytes as f64 / 1e6;
        let _ = writeln!(
            out,
            "\n== Blob replication: {:.1} MB ({} MiB) incompressible zip, cold miss on node 1 (ms since the request) ==",
            mb, args.big_mb
        );
        let _ = writeln!(
            out,
            "raw loopback baselines (min / median / max of {}): TCP send -> file + fsync {} ms ({:.0} MB/s); \
             file copy + fsync {} ms ({:.0} MB/s); one sha256 pass {} ms",
            b.tcp_copy.n,
            b.tcp_copy.min_med_max(),
            mb / (b.tcp_copy.p50 / 1e3),
            b.file_copy.min_med_max(),
            mb / (b.file_copy.p50 / 1e3),
            b.sha256.min_med_max()
        );
        if let Some(f) = &res.single_fill {
            let _ = writeln!(
                out,
                "single-node cold fill (upstream -> checked, fsynced blob): blob on disk {} ms, response head {:.0} ms, last byte {:.0} ms{}",
                opt(f.copies_ms(1)),
                f.head_ms,
                f.body_ms,
                if f.verified { "" } else { "  NOT VERIFIED" }
            );
            for (_, series, sum, n) in &f.breakdown {
                if !series.contains("endpoint=metrics") {
                    let _ = writeln!(out, "    single node  {}", breakdown_line(series, *sum, *n));
                }
            }
        }
        let _ = writeln!(
            out,
            "{:<5} {:>9} {:>9} {:>16} {:>16} {:>16} {:>10} {:>9}",
            "round",
            "head",
            "last byte",
            "1st copy (node)",
            "2 copies (node)",
            "3 copies (node)",
            "3 vs TCP",
            "verified"
        );
        for r in &res.replication {
            let copy = |k: usize| {
                r.copies
                    .get(k)
                    .map_or("n/a".into(), |(id, ms)| format!("{ms:.0} ({id})"))
            };
            let _ = writeln!(
                out,
                "{:<5} {:>9.0} {:>9.0} {:>16} {:>16} {:>16} {:>10} {:>9}",
                r.round,
                r.head_ms,
                r.body_ms,
                copy(0),
                copy(1),
                copy(2),
                ratio(r.copies_ms(3).unwrap_or(f64::NAN), b.tcp_copy.p50),
                r.verified
            );
        }
        let pick = |f: fn(&replication::Round) -> Option<f64>| {
            Summary::of(&res.replication.iter().filter_map(f).collect::<Vec<_>>())
        };
        let (one, two, three) = (
            pick(|r| r.copies_ms(1)),
            pick(|r| r.copies_ms(2)),
            pick(|r| r.copies_ms(3)),
        );
        let body = pick(|r| Some(r.body_ms));
        let _ = writeln!(
            out,
            "median: 1st copy {:.0} ms, min_copies (2) {:.0} ms, all 3 {:.0} ms ({:.0} MB/s end to end), node 1 answered in {:.0} ms",
            one.p50,
            two.p50,
            three.p50,
            mb / (three.p50 / 1e3),
            body.p50
        );
        let _ = writeln!(
            out,
            "ratios (median): all 3 copies / one raw TCP copy+fsync = {}; 2 copies / TCP = {}; \
             3rd copy alone (3 - 2) / TCP = {}; 1st copy / single-node fill = {}",
            ratio(three.p50, b.tcp_copy.p50),
            ratio(two.p50, b.tcp_copy.p50),
            ratio(three.p50 - two.p50, b.tcp_copy.p50),
            ratio(
                one.p50,
                res.single_fill
                    .as_ref()
                    .and_then(|f| f.copies_ms(1))
                    .unwrap_or(f64::NAN)
            ),
        );
        let slowest = res.replication.iter().max_by(|a, b| {
            let all = |r: &replication::Round| r.copies_ms(3).unwrap_or(f64::INFINITY);
            all(a).total_cmp(&all(b))
        });
        if let Some(r) = slowest {
            let _ = writeln!(
                out,
                "where the time went in the slowest round ({}): per node, histogram sum deltas (count) and counter deltas:",
                r.round
            );
            for (id, series, sum, n) in &r.breakdown {
                if !series.contains("endpoint=metrics") {
                    let _ = writeln!(out, "    node {id}  {}", breakdown_line(series, *sum, *n));
                }
            }
        }
    }
    if !res.failover.is_empty() {
        let _ = writeln!(
            out,
            "\n== Leader failover: kill -9 of the leader at t = 0 (ms; a fresh-.info probe every {} ms through the survivors) ==",
            args.probe_interval_ms
        );
        let _ = writeln!(
            out,
            "{:<8} {:>5} {:>6} {:>6} {:>8} {:>8} {:>14} {:>9} {:>8} {:>12}  verified",
            "profile",
            "round",
            "killed",
            "leader",
            "elected",
            "known",
            "1st write(via)",
            "records",
            "rejoin",
            "probes ok/n",
        );
        for (p, rounds) in &res.failover {
            for r in rounds {
                let _ = writeln!(
                    out,
                    "{:<8} {:>5} {:>6} {:>6} {:>8} {:>8} {:>14} {:>9} {:>8} {:>12}  {}",
                    p.name,
                    r.round,
                    r.killed,
                    r.new_leader.map_or("?".into(), |l| l.to_string()),
                    opt(r.leader_elected_ms),
                    opt(r.leader_known_ms),
                    format!(
                        "{} ({})",
                        opt(r.first_write_ms),
                        r.first_write_via.map_or("-".into(), |v| v.to_string())
                    ),
                    opt(r.records_visible_ms),
                    opt(r.rejoin_ms),
                    format!("{}/{}", r.probes.1, r.probes.0),
                    if r.ok() {
                        "yes".to_owned()
                    } else {
                        format!(
                            "NO (degraded {}, records {}, {})",
                            r.degraded,
                            r.records_confirmed,
                            r.first_failure.as_deref().unwrap_or("-")
                        )
                    }
                );
            }
        }
        let _ = writeln!(
            out,
            "\n{:<8} {:<28} {:>22} {:>22} {:>26} {:>20}",
            "profile",
            "raft timings",
            "leader elected",
            "leader known",
            "first committed write",
            "rejoin"
        );
        for (p, rounds) in &res.failover {
            let s = ProfileSummary::of(p.name, rounds);
            let timing = match p.raft {
                Some((hb, a, b)) => format!("{hb} ms / {a}-{b} ms"),
                None => {
                    let d = cairn_node::raft::RaftSettings::default();
                    format!(
                        "defaults ({} / {}-{})",
                        d.heartbeat_ms, d.election_min_ms, d.election_max_ms
                    )
                }
            };
            let _ = writeln!(
                out,
                "{:<8} {:<28} {:>22} {:>22} {:>26} {:>20}",
                p.name,
                timing,
                s.elected.min_med_max(),
                s.known.min_med_max(),
                s.write.min_med_max(),
                s.rejoin.min_med_max()
            );
            if s.valid.0 < s.valid.1 {
                let _ = writeln!(
                    out,
                    "         ({} of {} rounds verified; the others are left out)",
                    s.valid.0, s.valid.1
                );
            }
        }
        let _ = writeln!(
            out,
            "(min / median / max over rounds; elected = a survivor reports cairn_raft_is_leader 1; known = every \
             survivor reports its id; first committed write = the earliest 200 to a fresh-version .info probe, \
             verified by the survivors' record counts and zero degraded pass-throughs; records = both survivors' \
             cairn_version_records rose; rejoin = restart of the killed node -> converged again)"
        );
    }
    out
}

fn write_json(
    path: &std::path::Path,
    res: &Results,
    meta: serde_json::Value,
) -> anyhow::Result<()> {
    let reps: Vec<serde_json::Value> = res.replication.iter().map(|r| r.json()).collect();
    let failover: Vec<serde_json::Value> = res
        .failover
        .iter()
        .map(|(p, rounds)| {
            json!({
                "profile": p.name, "raft": p.describe,
                "summary": ProfileSummary::of(p.name, rounds).json(),
                "rounds": rounds.iter().map(|r| r.json()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let doc = json!({
        "meta": meta,
        "cold_miss": {
            "zip": res.zip.as_ref().map(Series::json),
            "info": res.info.as_ref().map(Series::json),
        },
        "replication": {
            "baselines": res.baselines.as_ref().map(Baselines::json),
            "single_node_fill": res.single_fill.as_ref().map(|r| r.json()),
            "rounds": reps,
        },
        "failover": failover,
        "stability": res.stability.as_ref().map(Stability::json),
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("writing {}", path.display()))
}
