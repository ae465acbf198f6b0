//! `cairn-bench scale`: cairn with a million version records (issue 13).
//!
//! 1. **Generate** `--records` version records (10 versions per module) through the real write
//!    path: a `Consensus` (openraft + sled, the node's own code) in this process on a fresh data
//!    directory, every record one `PutVersion` proposal, `--concurrency` in flight, snapshots and
//!    log purges as the node's defaults make them. Every `--sample-every` records the sled
//!    directory's size and this process's RSS are sampled: the write soak, reported as growth
//!    per million writes. `--overwrite-secs` then keeps writing (`PutList` rewrites of the same
//!    modules: state size constant, log and snapshots churning) and samples the same.
//!    A `--baseline-records` data directory is generated the same way.
//! 2. **Restart**: `cairn-node` (the release binary) is started on each data directory,
//!    `--restarts` times; the time from spawn to `/readyz` = 200 and the RSS once ready are
//!    reported.
//! 3. **Hits**: closed-loop keep-alive `.info` and `.mod` hits on records spread over the whole
//!    key space, on the 1M node and on the baseline node, in the same run: req/s, p50/p99 and
//!    peak RSS, with the 1M/baseline ratio.
//! 4. **Catch-up**: a second, empty node joins the big one as a learner (`cairn members add
//!    --learner`, which returns once the learner has caught up: by snapshot, since the log is
//!    purged); the time and both nodes' peak RSS are reported.
//!
//! Nothing is asserted; the figures go to stdout and `target/bench-scale.json`.
//!
//! ```text
//! cargo build --release --bins && target/release/cairn-bench scale
//! target/release/cairn-bench scale --records 100000 --overwrite-secs 60
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use cairn_node::raft::{Consensus, NodeAddr, RaftSettings};
use cairn_node::store::meta::{MetaCmd, VersionRecord};
use serde_json::json;
use tokio::time::Instant;

use crate::load::{self, LoadSpec};
use crate::procstat;
use crate::servers::{self, Server};
use crate::stats;

/// The scale benchmark's options.
#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// Version records in the big state.
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// Version records in the baseline state the hits are compared with.
    #[arg(long, default_value_t = 1_000)]
    baseline_records: usize,
    /// Proposals in flight while generating.
    #[arg(long, default_value_t = 512)]
    concurrency: usize,
    /// Sample disk use and RSS every this many records.
    #[arg(long, default_value_t = 100_000)]
    sample_every: usize,
    /// After generating, keep rewriting lists for this long (log and snapshot churn at a
    /// constant state size), sampling disk use and RSS.
    #[arg(long, default_value_t = 0)]
    overwrite_secs: u64,
    /// Restarts measured per data directory.
    #[arg(long, default_value_t = 2)]
    restarts: usize,
    /// Seconds of hit load per server.
    #[arg(long, default_value_t = 10)]
    hit_secs: u64,
    /// Connections of the hit load.
    #[arg(long, default_value_t = 64)]
    conns: usize,
    /// Keep the generated data directories here (and reuse them when present) instead of a
    /// temporary directory.
    #[arg(long)]
    keep: Option<PathBuf>,
    /// The cairn-node binary (default: target/release/cairn-node in the workspace); the
    /// `cairn` CLI is taken from the same directory.
    #[arg(long, env = "CAIRN_NODE_BIN")]
    node_bin: Option<PathBuf>,
}

/// The module and version of record `i`: 10 versions per module.
fn key(i: usize) -> (String, String) {
    (
        format!("example.com/scale/m{}", i / 10),
        format!("v1.0.{}", i % 10),
    )
}

fn record(i: usize) -> VersionRecord {
    let (module, version) = key(i);
    let gomod = format!("module {module}\n\ngo 1.21\n").into_bytes();
    VersionRecord {
        info: format!(r#"{{"Version":"{version}","Time":"2024-01-01T00:00:00Z"}}"#).into_bytes(),
        mod_h1: cairn_node::modzip::hash_gomod(&gomod),
        gomod,
        zip: None,
        source: "https://proxy.golang.org".to_string(),
        cached_at_ms: 1_700_000_000_000 + i as i64,
        sumdb_verified: false,
        sumdb_zip_h1: None,
        module,
        version,
    }
}

/// Total size of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// One disk/RSS sample of the write soak.
#[derive(Debug, Clone, Copy)]
struct Sample {
    writes: usize,
    secs: f64,
    disk_bytes: u64,
    rss_kib: u64,
}

impl Sample {
    fn json(&self) -> serde_json::Value {
        json!({"writes": self.writes, "secs": self.secs, "disk_bytes": self.disk_bytes, "rss_kib": self.rss_kib})
    }
}

fn sample(meta: &Path, writes: usize, started: Instant) -> Sample {
    let (rss_kib, _) = procstat::tree_memory_kib(&[std::process::id()]);
    Sample {
        writes,
        secs: started.elapsed().as_secs_f64(),
        disk_bytes: dir_bytes(meta),
        rss_kib,
    }
}

/// What generating one data directory measured.
struct Generated {
    cluster_addr: String,
    secs: f64,
    samples: Vec<Sample>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Proposes records `0..n` into a new single-node state at `data/meta`; then, for
/// `overwrite_secs`, list rewrites. Reuses `data` when a previous run left it complete.
async fn generate(
    data: &Path,
    n: usize,
    args: &ScaleArgs,
    overwrite_secs: u64,
) -> anyhow::Result<Generated> {
    let done_marker = data.join("bench-generated.json");
    if let Ok(text) = std::fs::read_to_string(&done_marker) {
        let v: serde_json::Value = serde_json::from_str(&text)?;
        if v["records"].as_u64() == Some(n as u64) {
            println!("  reusing {} ({n} records)", data.display());
            return Ok(Generated {
                cluster_addr: v["cluster_addr"].as_str().unwrap_or_default().to_string(),
                secs: v["secs"].as_f64().unwrap_or(0.0),
                samples: Vec::new(),
            });
        }
    }
    if data.exists() {
        std::fs::remove_dir_all(data)?;
    }
    std::fs::create_dir_all(data)?;
    let cluster_addr = format!("127.0.0.1:{}", free_port()?);
    let meta = data.join("meta");
    let peers = BTreeMap::from([(1, NodeAddr::at(cluster_addr.clone()))]);
    let consensus = Consensus::start(1, peers, &meta, &RaftSettings::default())
        .await
        .context("starting consensus")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while consensus.status().leader_id != Some(1) {
        if Instant::now() > deadline {
            bail!("the single node did not become leader");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        let (c, next, done) = (consensus.clone(), next.clone(), done.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                c.propose(MetaCmd::PutVersion(record(i)))
                    .await
                    .with_context(|| format!("proposing record {i}"))?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let mut samples = vec![sample(&meta, 0, started)];
    let mut next_sample = args.sample_every.max(1);
    let mut last_print = Instant::now();
    loop {
        tokio::select! {
            r = tasks.join_next() => match r {
                None => break,
                Some(r) => r??,
            },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let d = done.load(Ordering::Relaxed);
        if d >= next_sample {
            samples.push(sample(&meta, d, started));
            next_sample += args.sample_every.max(1);
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            last_print = Instant::now();
            println!(
                "  {d}/{n} records, {:.0}/s, sled {:.0} MiB",
                d as f64 / started.elapsed().as_secs_f64(),
                dir_bytes(&meta) as f64 / 1048576.0
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    samples.push(sample(&meta, n, started));
    if overwrite_secs > 0 {
        let until = Instant::now() + Duration::from_secs(overwrite_secs);
        let mut w = 0usize;
        let modules = n.div_ceil(10).max(1);
        while Instant::now() < until {
            let mut batch = tokio::task::JoinSet::new();
            for _ in 0..args.concurrency.max(1) {
                let c = consensus.clone();
                let m = w % modules;
                w += 1;
                batch.spawn(async move {
                    c.propose(MetaCmd::PutList {
                        module: format!("example.com/scale/m{m}"),
                        versions: (0..10).map(|v| format!("v1.0.{v}")).collect(),
                        fetched_at_ms: 1_700_000_000_000 + w as i64,
                    })
                    .await
                });
            }
            while let Some(r) = batch.join_next().await {
                r?.context("proposing a list rewrite")?;
            }
            if w % args.sample_every.max(1) < args.concurrency.max(1) {
                samples.push(sample(&meta, n + w, started));
            }
        }
        samples.push(sample(&meta, n + w, started));
    }
    consensus.shutdown().await.context("stopping consensus")?;
    std::fs::write(
        &done_marker,
        json!({"records": n, "cluster_addr": cluster_addr, "secs": secs}).to_string(),
    )?;
    Ok(Generated {
        cluster_addr,
        secs,
        samples,
    })
}

/// Starts `cairn-node` as node 1 on `data`, its cluster port where the membership says.
async fn start_node(
    bin: &Path,
    data: &Path,
    id: u64,
    cluster_addr: &str,
    peers: &str,
) -> anyhow::Result<(Server, f64)> {
    let upstream = data.with_extension("upstream");
    std::fs::create_dir_all(&upstream)?;
    let args: Vec<OsString> = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--cluster-listen".into(),
        cluster_addr.into(),
        "--node-id".into(),
        id.to_string().into(),
        "--peers".into(),
        peers.into(),
        "--upstream".into(),
        format!("file://{}", upstream.display()).into(),
    ];
    // The generated records are stored unverified and no checksum database is reachable:
    // without this, the node's sumdb-recheck pass would look up every one of them in the
    // background while the hits are measured.
    let env = [
        ("CAIRN_CLUSTER__INSECURE".to_string(), "true".to_string()),
        (
            "CAIRN_SUMDB__RECHECK_INTERVAL_SECS".to_string(),
            "0".to_string(),
        ),
    ];
    let _ = std::fs::remove_file(data.join("listen-addrs.json"));
    let t = Instant::now();
    let server = servers::spawn_cairn(bin, data, &args, &env, Duration::from_secs(300)).await?;
    Ok((server, stats::ms_since(t)))
}

fn rss_mib(pid: u32) -> f64 {
    procstat::tree_memory_kib(&procstat::tree(pid)).0 as f64 / 1024.0
}

/// Hit load on `.info` and `.mod` of records spread over `0..n`.
async fn hits(addr: SocketAddr, pid: u32, n: usize, args: &ScaleArgs) -> serde_json::Value {
    let mut rows = Vec::new();
    for (kind, ext) in [("info", "info"), ("mod", "mod")] {
        let picks = [n / 7, n / 2, n - 1];
        let mut lat: Vec<u32> = Vec::new();
        let (mut requests, mut errors, mut window) = (0u64, 0u64, 0.0f64);
        let sampler = procstat::Sampler::start(procstat::tree(pid), Duration::from_millis(100));
        for i in picks {
            let (module, version) = key(i);
            let body = match ext {
                "info" => record(i).info,
                _ => record(i).gomod,
            };
            let secs = (args.hit_secs / picks.len() as u64).max(1);
            let from = Instant::now() + Duration::from_millis(500);
            let r = load::run(LoadSpec {
                addr,
                path: format!("/{module}/@v/{version}.{ext}"),
                expected_bytes: body.len() as u64,
                conns: args.conns,
                measure_from: from,
                measure_to: from + Duration::from_secs(secs),
                client: load::Client::default(),
            })
            .await;
            requests += r.requests;
            errors += r.errors;
            window += secs as f64;
            lat.extend(r.latencies_us);
            if let Some(e) = r.first_error {
                println!("    first error ({kind}): {e}");
            }
        }
        let peak = sampler.finish().await;
        lat.sort_unstable();
        let q = |q: f64| {
            lat.get(((lat.len() as f64 - 1.0) * q).round() as usize)
                .map_or(0.0, |v| *v as f64 / 1000.0)
        };
        rows.push(json!({
            "kind": kind, "req_s": requests as f64 / window, "errors": errors,
            "p50_ms": q(0.5), "p99_ms": q(0.99), "peak_rss_mib": peak.peak_rss_kib as f64 / 1024.0,
        }));
    }
    json!(rows)
}

/// Runs the benchmark.
pub async fn run(args: ScaleArgs) -> anyhow::Result<()> {
    let bin = crate::resolve_node_bin(args.node_bin.clone())?;
    let cli = bin.with_file_name("cairn");
    if !cli.is_file() {
        bail!("the cairn CLI is not next to {}", bin.display());
    }
    let tmp = tempfile::Builder::new()
        .prefix("cairn-bench-scale-")
        .tempdir()?;
    let root = args
        .keep
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&root)?;
    let mut out = serde_json::Map::new();
    let mut gens = Vec::new();
    for (label, n, overwrite) in [
        ("baseline", args.baseline_records, 0),
        ("big", args.records, args.overwrite_secs),
    ] {
        println!("generating {label}: {n} records through the apply path");
        let data = root.join(format!("node-{label}"));
        let g = generate(&data, n, &args, overwrite).await?;
        println!(
            "  {n} records in {:.1} s ({:.0}/s)",
            g.secs,
            n as f64 / g.secs.max(1e-9)
        );
        let soak = soak_report(&g.samples, n);
        if !soak.is_null() {
            println!("  write soak: {soak}");
        }
        out.insert(
            format!("generate_{label}"),
            json!({"records": n, "secs": g.secs, "samples": g.samples.iter().map(Sample::json).collect::<Vec<_>>(), "soak": soak}),
        );
        gens.push((label, n, data, g.cluster_addr));
    }
    // Restarts and hits.
    let mut hit_rows = BTreeMap::new();
    for (label, n, data, addr) in &gens {
        let mut starts = Vec::new();
        let mut last = None;
        for r in 0..args.restarts.max(1) {
            drop(last.take());
            let (server, ms) = start_node(&bin, data, 1, addr, &format!("1={addr}")).await?;
            let rss = rss_mib(server.pid);
            println!(
                "{label}: start {} to ready in {ms:.0} ms, RSS {rss:.0} MiB",
                r + 1
            );
            starts.push(json!({"ready_ms": ms, "rss_mib": rss}));
            last = Some(server);
        }
        let Some(server) = last else { continue };
        let h = hits(server.addr, server.pid, *n, &args).await;
        println!("{label}: hits {h}");
        hit_rows.insert(label.to_string(), h.clone());
        out.insert(
            format!("node_{label}"),
            json!({"starts": starts, "hits": h, "disk_bytes": dir_bytes(&data.join("meta"))}),
        );
        if *label == "big" {
            out.insert(
                "catch_up".into(),
                catch_up(&bin, &cli, &server, addr, &root).await?,
            );
        }
    }
    if let (Some(b), Some(s)) = (hit_rows.get("big"), hit_rows.get("baseline")) {
        for i in 0..2 {
            let ratio = |k: &str| {
                b[i][k].as_f64().unwrap_or(0.0) / s[i][k].as_f64().unwrap_or(1.0).max(1e-9)
            };
            println!(
                "hits {}: 1M/baseline req/s {:.2}x, p99 {:.2}x",
                b[i]["kind"],
                ratio("req_s"),
                ratio("p99_ms")
            );
        }
    }
    stats::write_results(None, "bench-scale.json", &serde_json::Value::Object(out))
}

/// Growth of disk use and RSS per million writes between the first and last samples.
fn soak_report(samples: &[Sample], records: usize) -> serde_json::Value {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return serde_json::Value::Null;
    };
    if last.writes == first.writes {
        return serde_json::Value::Null;
    }
    let per_m = 1e6 / (last.writes - first.writes) as f64;
    let after_records = samples.iter().find(|s| s.writes >= records).copied();
    json!({
        "writes": last.writes,
        "disk_mib_per_million_writes": (last.disk_bytes as f64 - first.disk_bytes as f64) / 1048576.0 * per_m,
        "rss_mib_per_million_writes": (last.rss_kib as f64 - first.rss_kib as f64) / 1024.0 * per_m,
        "disk_mib_at_end": last.disk_bytes as f64 / 1048576.0,
        "disk_mib_after_records": after_records.map(|s| s.disk_bytes as f64 / 1048576.0),
        "rss_mib_at_end": last.rss_kib as f64 / 1024.0,
    })
}

/// A second, empty node joins `big` as a learner; `cairn members add` returns once it caught up.
async fn catch_up(
    bin: &Path,
    cli: &Path,
    big: &Server,
    big_cluster: &str,
    root: &Path,
) -> anyhow::Result<serde_json::Value> {
    let data = root.join("node-joiner");
    if data.exists() {
        std::fs::remove_dir_all(&data)?;
    }
    let addr2 = format!("127.0.0.1:{}", free_port()?);
    // A new id per run: a kept data directory remembers the joiners of earlier runs.
    let id = 2 + u64::from(std::process::id());
    let peers = format!("1={big_cluster},{id}={addr2}");
    let (joiner, _) = start_node(bin, &data, id, &addr2, &peers).await?;
    let pids: Vec<u32> = [big.pid, joiner.pid].to_vec();
    let s1 = procstat::Sampler::start(procstat::tree(big.pid), Duration::from_millis(100));
    let s2 = procstat::Sampler::start(procstat::tree(joiner.pid), Duration::from_millis(100));
    let t = Instant::now();
    let out = tokio::process::Command::new(cli)
        .args([
            "--node",
            big_cluster,
            "members",
            "add",
            &id.to_string(),
            &addr2,
            "--learner",
        ])
        .output()
        .await?;
    let ms = stats::ms_since(t);
    let (p1, p2) = (s1.finish().await, s2.finish().await);
    if !out.status.success() {
        bail!(
            "cairn members add failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = pids;
    println!(
        "catch-up by snapshot: {ms:.0} ms; peak RSS leader {:.0} MiB, learner {:.0} MiB",
        p1.peak_rss_kib as f64 / 1024.0,
        p2.peak_rss_kib as f64 / 1024.0
    );
    Ok(json!({
        "ms": ms,
        "leader_peak_rss_mib": p1.peak_rss_kib as f64 / 1024.0,
        "learner_peak_rss_mib": p2.peak_rss_kib as f64 / 1024.0,
        "learner_disk_bytes": dir_bytes(&data.join("meta")),
    }))
}
