//! `cairn-bench`: cache-hit throughput and latency of `cairn-node` against a static file server
//! serving the same bytes, in the same run, on 127.0.0.1.
//!
//! It generates a GOPROXY-layout corpus (an `.info`, a ≈100 KiB zip and a ≈10 MiB zip), starts
//! `cairn-node` with that corpus as its `file://` upstream and warms its cache, starts a reference
//! static server over the same directory (nginx if on `PATH`, else a minimal hyper file server,
//! see `static_server`), then for each scenario {info, zip100k, zip10m} × {64, 512} connections
//! × {cairn, static} runs a closed-loop keep-alive load (warm-up, then a measurement window) while
//! sampling the server's RSS and CPU. It prints a table with req/s, MB/s, latency percentiles,
//! errors, CPU, peak RSS and, for cairn rows, the ratio to the static server and PASS/MISS marks
//! against the targets (≥ 1.0× static req/s, p99 ≤ its; p99 < 10 ms at 64 connections; RSS not growing with
//! zip size), and writes the same as JSON to `target/bench-results.json`.
//!
//! Speed is only ever measured here, never asserted: missing a target still exits 0; a setup
//! failure exits non-zero.
//!
//! Run (about 90 s with the defaults):
//!
//! ```text
//! cargo build --release -p cairn-node -p cairn-benches && target/release/cairn-bench
//! target/release/cairn-bench --duration-secs 10 --conns 64 --scenarios zip100k
//! target/release/cairn-bench --cairn-env CAIRN_CACHE__VERIFY_ON_READ=false
//! ```
//!
//! `--against-no-atime` replaces the static server by a second cairn-node with
//! `disk.track_access = false`: the ratio column is then the cost of recording each hit's time
//! for LRU eviction (issue 12), measured in the same run.
//!
//! `cairn-node` is `$CAIRN_NODE_BIN`, else `target/release/cairn-node` in the workspace.
//! `CAIRN_*` variables in the environment reach `cairn-node` too.
//!
//! `cairn-bench cluster` runs the cluster benchmarks instead (leader failover time, blob
//! replication throughput, cold-miss latency of 3 nodes vs 1; see [`clusterbench`]):
//!
//! ```text
//! cargo build --release -p cairn-node -p cairn-benches && target/release/cairn-bench cluster
//! target/release/cairn-bench cluster --only failover --failover-rounds 3 --profiles fast
//! ```
//!
//! `cairn-bench verify` measures checksum verification: cold-miss latency in `require` vs `off`
//! mode with tiles cold and warm, and a whole graph through a warm cluster vs the go command
//! straight from the upstream (see [`verifybench`]; needs `go`; writes target/bench-verify.json).
//!
//! `cairn-bench direct` benchmarks the `direct` source (private modules from git): a cold fetch
//! through cairn against the go command's own `GOPROXY=direct` fetch of the same version, and a
//! second version of the same repository once cairn's mirror is there (see [`directbench`];
//! needs `go` and `git`; writes target/bench-direct.json; about a minute with the defaults):
//!
//! ```text
//! cargo build --release -p cairn-node -p cairn-benches && target/release/cairn-bench direct
//! target/release/cairn-bench direct --rounds 3 --files 2000 --mbytes 20 --commits 200
//! ```
//!
//! `cairn-bench backup` times `cairn backup` and `cairn restore` against a plain copy (with
//! fsync) of the same blob files, same run, and prints the ratios (see [`backupbench`]):
//!
//! ```text
//! cargo build --release --bins && target/release/cairn-bench backup --versions 60 --zip-mib 2
//! ```
//!
//! `cairn-bench security` measures what the security features cost, each against the same work
//! without them in the same run (see [`securitybench`]; writes target/bench-security.json; about
//! 3 minutes with the defaults): HTTPS vs plain HTTP hits on one node serving both (zip100k and
//! info at 64 connections, alternating, with a PASS/MISS against ≥ 0.8× for zip100k); info hits
//! with access off vs a static token (Basic) vs an ES256 JWT (Bearer), as p50 and CPU-per-request
//! deltas, plus `Access::authenticate` timed in-process; and replication and failover rounds on
//! two 3-node clusters, one with mutual TLS on the cluster port and one with `cluster.insecure`,
//! side by side. `cairn-bench cluster --mtls` runs the cluster benchmarks with mutual TLS too.
//!
//! ```text
//! cargo build --release -p cairn-node -p cairn-benches && target/release/cairn-bench security
//! target/release/cairn-bench security --only https --repeat 5 --duration-secs 10
//! target/release/cairn-bench security --only cluster --failover-rounds 5 --profile default
//! ```
//!
//! `cairn-bench regions` (root only: network namespaces) measures a cluster over three emulated
//! regions against one region under the same emulated network: cold fills and hits per region,
//! bytes per region boundary per new blob, and convergence after a cut (see [`regionsbench`];
//! writes target/bench-regions.json; about 9 minutes with the defaults, 5 of them the cut):
//!
//! ```text
//! cargo build --release -p cairn-node -p cairn-benches && target/release/cairn-bench regions
//! target/release/cairn-bench regions --cut-secs 30 --fill 200 --no-reference
//! ```
#![allow(clippy::unwrap_used)]

mod atimebench;
mod cluster;
mod clusterbench;
mod coldmiss;
mod corpus;
mod directbench;
mod directparts;
mod directrepo;
mod directreport;
mod failover;
mod graphbench;
mod load;
mod measure;
mod prefetchbench;
mod procstat;
mod promtext;
mod regionparts;
mod regionsbench;
mod replication;
mod report;
mod scalebench;
mod securitybench;
mod securityparts;
mod securityreport;
mod servers;
mod stability;
mod static_server;
mod stats;
mod verifybench;
// --- backup ---
mod backupbench;
mod wrk;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::json;

use corpus::Target;
use report::Row;
use servers::{Server, StaticChoice};

/// Cache-hit benchmark of cairn-node against a static file server.
#[derive(Debug, Parser)]
#[command(name = "cairn-bench")]
struct Args {
    /// Measurement window per run, seconds.
    #[arg(long, env = "CAIRN_BENCH_DURATION_SECS", default_value_t = 5.0)]
    duration_secs: f64,
    /// Warm-up before each window (connections open, nothing counted), seconds.
    #[arg(long, env = "CAIRN_BENCH_WARMUP_SECS", default_value_t = 1.0)]
    warmup_secs: f64,
    /// Idle pause between runs, so one run's tail does not overlap the next, seconds.
    #[arg(long, env = "CAIRN_BENCH_PAUSE_SECS", default_value_t = 0.5)]
    pause_secs: f64,
    /// Connection counts to run.
    #[arg(
        long,
        env = "CAIRN_BENCH_CONNS",
        value_delimiter = ',',
        default_value = "64,512"
    )]
    conns: Vec<usize>,
    /// Scenarios to run: info, zip100k, zip10m.
    #[arg(
        long,
        env = "CAIRN_BENCH_SCENARIOS",
        value_delimiter = ',',
        default_value = "info,zip100k,zip10m"
    )]
    scenarios: Vec<String>,
    /// Runs per (scenario, connections, server); the median by throughput is reported.
    #[arg(long, env = "CAIRN_BENCH_REPEAT", default_value_t = 1)]
    repeat: usize,
    /// Reference static server.
    #[arg(long, value_enum, default_value_t = StaticChoice::Auto)]
    static_server: StaticChoice,
    /// Load generator: `inproc` (this process's hyper client, exact latency distribution) or
    /// `wrk` (external, 2 threads; installed with apt-get when missing and possible).
    #[arg(long, value_enum, default_value_t = LoadChoice::Inproc)]
    load: LoadChoice,
    /// The cairn-node binary (default: target/release/cairn-node in the workspace).
    #[arg(long, env = "CAIRN_NODE_BIN")]
    node_bin: Option<PathBuf>,
    /// Extra environment for cairn-node, KEY=VALUE (repeatable).
    #[arg(long, value_parser = parse_key_value)]
    cairn_env: Vec<(String, String)>,
    /// Compare against a second cairn-node with access-time tracking off
    /// (`disk.track_access = false`) instead of a static server: the ratio column is then the
    /// cost of recording last-served times on hits (issue 12).
    #[arg(long)]
    against_no_atime: bool,
    /// Where to write the JSON results (default: target/bench-results.json in the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Internal: run as the hyper static file server over this directory.
    #[arg(long, hide = true)]
    serve_static: Option<PathBuf>,
    /// Without a subcommand: the cache-hit benchmark above.
    #[command(subcommand)]
    command: Option<Cmd>,
}

/// Other benchmarks.
#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Cluster benchmarks: leader failover time, blob replication throughput, cold-miss
    /// latency through 3 nodes vs 1 (writes target/bench-cluster.json).
    Cluster(clusterbench::ClusterArgs),
    /// The direct (git) source: a cold private fetch through cairn vs the go command's direct
    /// fetch, and a second version with the mirror present (writes target/bench-direct.json).
    Direct(directbench::DirectArgs),
    /// Checksum verification: cold-miss cost in require vs off mode (tiles cold and warm), and
    /// a whole graph through a warm cluster vs the go command straight from the upstream
    /// (writes target/bench-verify.json).
    Verify(verifybench::VerifyArgs),
    /// Security costs: HTTPS vs plain hits on one node, token and JWT checks vs access off
    /// (over HTTP and in-process), failover and replication with cluster mTLS vs insecure
    /// (writes target/bench-security.json).
    Security(securitybench::SecurityArgs),
    /// Warm-up: `cairn prefetch` of a 300-line go.sum into a cold 3-node cluster (and again,
    /// warm) vs `go mod download` of the same versions straight from a slow upstream (writes
    /// target/bench-prefetch.json).
    Prefetch(prefetchbench::PrefetchArgs),
    /// A whole dependency graph through a cold 3-node cluster behind a load balancer, quiet
    /// and with the leader killed, vs the go command straight from a slow upstream (writes
    /// target/bench-graph.json).
    Graph(graphbench::GraphArgs),
    /// Backup and restore throughput against a plain copy (fsync) of the same blob files
    /// (writes target/bench-backup.json).
    Backup(backupbench::BackupArgs),
    /// A million version records: generation through the apply path with a write soak,
    /// restart to ready, hit latency against a small state, and a new node catching up by
    /// snapshot (writes target/bench-scale.json).
    Scale(scalebench::ScaleArgs),
    /// Three emulated regions against one (root only: network namespaces): cold fills and
    /// hits per region, bytes per region boundary per new blob, convergence after a cut
    /// (writes target/bench-regions.json).
    Regions(regionsbench::RegionsArgs),
}

/// Which load generator drives the hit benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LoadChoice {
    /// The in-process closed-loop hyper client ([`load`]).
    Inproc,
    /// wrk as a child process ([`wrk`]).
    Wrk,
}

/// The load generator resolved for a run: wrk needs its binary and Lua hook.
enum Loader {
    Inproc,
    Wrk { bin: PathBuf, script: PathBuf },
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    Ok((k.to_owned(), v.to_owned()))
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    if let Some(root) = args.serve_static {
        let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
        return match static_server::serve_blocking(root, listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cairn-bench --serve-static: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let command = args.command.take();
    // Benchmarks that start nodes through the test harness export the node binary before any
    // thread exists (see `directbench::export_bin`).
    let export = match &command {
        Some(Cmd::Direct(a)) => Some(("direct", a.node_bin.clone())),
        Some(Cmd::Graph(a)) => Some(("graph", a.node_bin.clone())),
        Some(Cmd::Prefetch(a)) => Some(("prefetch", a.node_bin.clone())),
        Some(Cmd::Regions(a)) => Some(("regions", a.node_bin.clone())),
        Some(Cmd::Verify(a)) => Some(("verify", a.node_bin.clone())),
        _ => None,
    };
    let direct_bin = match export {
        None => PathBuf::new(),
        Some((name, given)) => match directbench::export_bin(given) {
            Ok(bin) => bin,
            Err(e) => {
                eprintln!("cairn-bench {name}: {e:#}");
                return ExitCode::FAILURE;
            }
        },
    };
    // The load generator gets the default runtime: one worker per core, like each server.
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cairn-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (what, result) = match command {
        Some(Cmd::Cluster(cluster_args)) => (
            "cairn-bench cluster: failed",
            runtime.block_on(clusterbench::run(cluster_args)),
        ),
        Some(Cmd::Direct(direct_args)) => (
            "cairn-bench direct: failed",
            runtime.block_on(directbench::run(direct_args, direct_bin)),
        ),
        Some(Cmd::Verify(verify_args)) => (
            "cairn-bench verify: failed",
            runtime.block_on(verifybench::run(verify_args)),
        ),
        Some(Cmd::Graph(graph_args)) => (
            "cairn-bench graph: failed",
            runtime.block_on(graphbench::run(graph_args)),
        ),
        Some(Cmd::Prefetch(prefetch_args)) => (
            "cairn-bench prefetch: failed",
            runtime.block_on(prefetchbench::run(prefetch_args)),
        ),
        Some(Cmd::Security(security_args)) => (
            "cairn-bench security: failed",
            runtime.block_on(securitybench::run(security_args)),
        ),
        Some(Cmd::Backup(backup_args)) => (
            "cairn-bench backup: failed",
            runtime.block_on(backupbench::run(backup_args)),
        ),
        Some(Cmd::Regions(regions_args)) => (
            "cairn-bench regions: failed",
            runtime.block_on(regionsbench::run(regions_args)),
        ),
        Some(Cmd::Scale(scale_args)) => (
            "cairn-bench scale: failed",
            runtime.block_on(scalebench::run(scale_args)),
        ),
        None => ("cairn-bench: setup failed", runtime.block_on(bench(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{what}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn node_bin(args: &Args) -> anyhow::Result<PathBuf> {
    resolve_node_bin(args.node_bin.clone())
}

/// `given`, else `target/release/cairn-node` in the workspace; fails if it is not a file.
fn resolve_node_bin(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let bin = given.unwrap_or_else(|| workspace_root().join("target/release/cairn-node"));
    if !bin.is_file() {
        bail!(
            "cairn-node not found at {}; build it with `cargo build --release -p cairn-node` \
             (or point CAIRN_NODE_BIN at a binary)",
            bin.display()
        );
    }
    Ok(bin)
}

fn select_targets(all: Vec<Target>, wanted: &[String]) -> anyhow::Result<Vec<Target>> {
    for w in wanted {
        if !all.iter().any(|t| t.scenario == w) {
            bail!("unknown scenario {w:?} (known: info, zip100k, zip10m)");
        }
    }
    Ok(all
        .into_iter()
        .filter(|t| wanted.iter().any(|w| w == t.scenario))
        .collect())
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let bin = node_bin(&args)?;
    let work = tempfile::Builder::new().prefix("cairn-bench-").tempdir()?;
    let corpus_dir = work.path().join("corpus");
    let targets = corpus::generate(&corpus_dir).context("generating the corpus")?;
    let targets = select_targets(targets, &args.scenarios)?;
    if targets.is_empty() || args.conns.is_empty() {
        bail!("nothing to run: give at least one scenario and one connection count");
    }
    let loader = match args.load {
        LoadChoice::Inproc => Loader::Inproc,
        LoadChoice::Wrk => Loader::Wrk {
            bin: wrk::find()?,
            script: wrk::write_script(work.path())?,
        },
    };
    let load_before = loadavg();
    let sha_mbps = sha256_mb_per_sec();

    let cairn = servers::start_cairn(&bin, &corpus_dir, work.path(), &args.cairn_env).await?;
    let static_srv = if args.against_no_atime {
        let dir = work.path().join("no-atime");
        std::fs::create_dir_all(&dir)?;
        let mut env = args.cairn_env.clone();
        env.push(("CAIRN_DISK__TRACK_ACCESS".into(), "false".into()));
        let mut srv = servers::start_cairn(&bin, &corpus_dir, &dir, &env).await?;
        srv.name = "cairn-no-atime".into();
        srv
    } else {
        servers::start_static(
            args.static_server,
            &corpus_dir,
            work.path(),
            &targets[0].path,
        )
        .await?
    };
    warm_and_compare(&cairn, &static_srv, &targets).await?;
    print_header(&args, &bin, &cairn, &static_srv, &targets, &load_before);
    if args.against_no_atime {
        atimebench::report();
    }
    println!("sha256 on one core (sha2 crate): {sha_mbps:.0} MB/s");

    let mut rows = Vec::new();
    for target in &targets {
        for &conns in &args.conns {
            let [a, b] = run_pair(&args, &loader, [&cairn, &static_srv], target, conns).await?;
            rows.extend([a, b]);
        }
    }
    let load_after = loadavg();
    print!("\n{}", report::table(&rows));
    println!("\nMemory (peak summed VmRSS sampled every 100 ms; HWM since the run started):");
    print!("{}", report::memory(&rows));
    for row in rows.iter().filter(|r| r.load.first_error.is_some()) {
        let err = row.load.first_error.as_deref().unwrap_or_default();
        println!(
            "first error, {} {} conns {}: {err}",
            row.scenario, row.conns, row.server
        );
    }
    println!("\nload average before: {load_before}; after: {load_after}");
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| workspace_root().join("target/bench-results.json"));
    let meta = json!({
        "reference_server": static_srv.name,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "loadavg_before": load_before, "loadavg_after": load_after,
        "duration_secs": args.duration_secs, "warmup_secs": args.warmup_secs,
        "repeat": args.repeat.max(1),
        "load_generator": format!("{:?}", args.load).to_lowercase(),
        "cairn_env": cairn_env_summary(&args),
        "sha256_mb_per_sec_one_core": sha_mbps,
    });
    report::write_json(&out, &rows, meta)?;
    println!("results written to {}", out.display());
    Ok(())
}

/// Requests every target once from cairn (filling its cache) and checks the static server
/// returns the very same bytes.
async fn warm_and_compare(
    cairn: &Server,
    reference: &Server,
    targets: &[Target],
) -> anyhow::Result<()> {
    for t in targets {
        let (status, from_cairn) = servers::get(cairn.addr, &t.path).await?;
        if status != hyper::StatusCode::OK {
            bail!(
                "warming cairn: GET {} answered {status}; log: {}",
                t.path,
                cairn.log.display()
            );
        }
        let (status, from_static) = servers::get(reference.addr, &t.path).await?;
        if status != hyper::StatusCode::OK {
            bail!("{}: GET {} answered {status}", reference.name, t.path);
        }
        if from_cairn != from_static || from_cairn.len() as u64 != t.bytes {
            bail!(
                "GET {}: cairn sent {} bytes, {} sent {}, the file has {}; they must match",
                t.path,
                from_cairn.len(),
                reference.name,
                from_static.len(),
                t.bytes
            );
        }
    }
    Ok(())
}

/// Runs `target` at `conns` on both servers `--repeat` times, alternating which goes first, and
/// keeps each server's median run by throughput (body bytes delivered in the window).
async fn run_pair(
    args: &Args,
    loader: &Loader,
    servers: [&Server; 2],
    target: &Target,
    conns: usize,
) -> anyhow::Result<[Row; 2]> {
    let mut runs: [Vec<Row>; 2] = [Vec::new(), Vec::new()];
    for rep in 0..args.repeat.max(1) {
        let order = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let row = run_one(args, loader, servers[i], target, conns).await?;
            eprintln!(
                "  {:<8} {:>4} conns {:<12} {:>9.0} req/s  p99 {:>8.2} ms  errors {}",
                row.scenario,
                conns,
                row.server,
                row.rps(),
                row.load.quantile_ms(0.99),
                row.load.errors
            );
            runs[i].push(row);
        }
    }
    let [a, b] = runs.map(|mut v| {
        v.sort_by_key(|r| r.load.bytes);
        v.swap_remove(v.len() / 2)
    });
    Ok([a, b])
}

/// One run: load on `server` while sampling its memory and the CPU of it and of this process.
async fn run_one(
    args: &Args,
    loader: &Loader,
    server: &Server,
    target: &Target,
    conns: usize,
) -> anyhow::Result<Row> {
    let timing = measure::Timing {
        warmup_secs: args.warmup_secs,
        duration_secs: args.duration_secs,
        pause_secs: args.pause_secs,
    };
    let subject = measure::Subject {
        name: server.name.clone(),
        pid: server.pid,
        addr: server.addr,
    };
    match loader {
        Loader::Inproc => {
            measure::run(timing, &subject, target, conns, load::Client::default()).await
        }
        Loader::Wrk { bin, script } => {
            measure::run_wrk(timing, &subject, target, conns, bin, script).await
        }
    }
}

/// Single-core SHA-256 throughput of this machine (MB/s), with the `sha2` crate cairn uses: the
/// cost of verify-on-read is about one hash of the body per response. Timed by this thread's CPU
/// time (`/proc/thread-self/schedstat`, ns), so other load on the machine does not skew it.
fn sha256_mb_per_sec() -> f64 {
    use sha2::Digest;
    let cpu_ns = || -> Option<u64> {
        let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        text.split_whitespace().next()?.parse().ok()
    };
    let buf = vec![0x5au8; 16 << 20];
    let (wall, cpu) = (std::time::Instant::now(), cpu_ns());
    let mut hasher = sha2::Sha256::new();
    for _ in 0..8 {
        hasher.update(&buf);
    }
    std::hint::black_box(hasher.finalize());
    let secs = match (cpu, cpu_ns()) {
        (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
        _ => wall.elapsed().as_secs_f64(),
    };
    (8 * buf.len()) as f64 / secs / 1e6
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `CAIRN_*` settings that reach cairn-node: inherited ones and `--cairn-env` ones.
fn cairn_env_summary(args: &Args) -> Vec<String> {
    let inherited =
        std::env::vars().filter(|(k, _)| k.starts_with("CAIRN_") && !k.starts_with("CAIRN_BENCH_"));
    inherited
        .chain(args.cairn_env.iter().cloned())
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

fn print_header(
    args: &Args,
    bin: &Path,
    cairn: &Server,
    reference: &Server,
    targets: &[Target],
    load: &str,
) {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!("cairn-bench: {cpus} CPUs, load average {load}");
    println!(
        "cairn-node: {} at {} (pid {})",
        bin.display(),
        cairn.addr,
        cairn.pid
    );
    println!("cairn-node environment: {:?}", cairn_env_summary(args));
    println!(
        "reference static server: {} at {} (pid {})",
        reference.name, reference.addr, reference.pid
    );
    for t in targets {
        println!("target {:<8} {} ({} bytes)", t.scenario, t.path, t.bytes);
    }
    println!(
        "load generator: {}",
        match args.load {
            LoadChoice::Inproc => "in-process hyper client".to_owned(),
            LoadChoice::Wrk => format!("wrk, {} threads", wrk::THREADS),
        }
    );
    println!(
        "each run: {} s warm-up + {} s measured, connections {:?}, median of {} run(s); progress on stderr",
        args.warmup_secs,
        args.duration_secs,
        args.conns,
        args.repeat.max(1)
    );
}
