//! `cairn-bench security`: what HTTPS, access checks and mutual TLS on the cluster port cost,
//! each measured against the same work without them, in the same run.
//!
//! 1. **HTTPS vs plain HTTP hits** (`https`). One `cairn-node` with `[tls]` (a server
//!    certificate for 127.0.0.1 from a CA the bench makes) and `tls.plain_listen`, so both
//!    listeners share one process and one cache. After warming the cache (and checking both
//!    listeners return the corpus bytes), each scenario (`zip100k`, `info`) is loaded at
//!    `--conns` connections on the plain and the HTTPS address alternately, `--repeat` times;
//!    the median run of each is reported with the HTTPS/plain ratio. Target (the issue's):
//!    ≥ 0.8× for 100 KiB zips at 64 connections. The load generator speaks HTTP/1.1 over TLS
//!    (rustls, ALPN `http/1.1`) on kept-alive connections; handshakes happen when connections
//!    open, inside the warm-up.
//! 2. **Access checks** (`auth`). Two plain-HTTP nodes, one with access off, one with access on
//!    (a tokens file, an ES256 JWK set, rule `*` → `authenticated`); `info` hits at `--conns`
//!    connections: off, a static token via Basic, a JWT via Bearer, alternating. In a closed
//!    loop req/s folds the cost into queueing, so the per-request cost is reported as the p50
//!    latency delta and the server CPU time per request delta against off.
//! 3. **In-process** (`micro`). `cairn_node::access::Access` built from the same files; µs per
//!    `authenticate` call for a Basic token, a Bearer token and a Bearer JWT, one thread.
//! 4. **Cluster port mTLS vs insecure** (`cluster`). Two 3-node clusters with the same Raft
//!    profile, one with mutual TLS (certificates per node), one with `cluster.insecure = true`,
//!    both up at once. Replication rounds (a cold `--big-mb` zip through node 1 of each, the same
//!    zip for both, order alternating) and failover rounds (kill -9 of the leader, alternating
//!    clusters) as in `cairn-bench cluster` ([`crate::replication`], [`crate::failover`]),
//!    reported side by side with the mtls/insecure ratio of the medians.
//!
//! Figures are printed and written to `target/bench-security.json`; node logs of the clusters
//! are copied to `target/bench-security-logs/`. Speed is measured, never asserted.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use hyper::header::AUTHORIZATION;
use hyper::StatusCode;
use rustls_pki_types::ServerName;
use serde_json::json;

use crate::cluster::{Cluster, Profile, DEFAULT_PROFILE, FAST_PROFILE};
use crate::corpus::{self, Target};
use crate::failover::{self, Probes};
use crate::load::{self, Client};
use crate::measure::{self, Subject, Timing};
use crate::replication;
use crate::report::Row;
use crate::securityparts::{self, Fixtures, Setup};
use crate::securityreport::{self, ClusterSide, Results};
use crate::servers::{self, Server};

/// Arguments of `cairn-bench security`.
#[derive(Debug, clap::Args)]
pub struct SecurityArgs {
    /// Parts to run: https, auth, micro, cluster.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "https,auth,micro,cluster"
    )]
    only: Vec<String>,
    /// Measurement window per load run, seconds.
    #[arg(long, default_value_t = 5.0)]
    duration_secs: f64,
    /// Warm-up before each window (connections open, TLS handshakes done), seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup_secs: f64,
    /// Idle pause between load runs, seconds.
    #[arg(long, default_value_t = 0.5)]
    pause_secs: f64,
    /// Concurrent connections of the load runs.
    #[arg(long, default_value_t = 64)]
    conns: usize,
    /// Scenarios of the HTTPS part: zip100k, info (zip10m works too).
    #[arg(long, value_delimiter = ',', default_value = "zip100k,info")]
    scenarios: Vec<String>,
    /// Load runs per (scenario, listener) and per access mode, alternating; the median by
    /// throughput is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// In-process `authenticate` calls timed per credential.
    #[arg(long, default_value_t = 20_000)]
    micro_calls: usize,
    /// Raft profile of the two clusters: default (node defaults) or fast (100/500/1000 ms).
    #[arg(long, default_value = "fast")]
    profile: String,
    /// Failover rounds per cluster.
    #[arg(long, default_value_t = 3)]
    failover_rounds: usize,
    /// During failover, a fresh-version probe is sent every this many ms.
    #[arg(long, default_value_t = 50)]
    probe_interval_ms: u64,
    /// Replication rounds (each a fresh zip, sent through both clusters).
    #[arg(long, default_value_t = 3)]
    replication_rounds: usize,
    /// Size of the replicated zip, MiB.
    #[arg(long, default_value_t = 50)]
    big_mb: usize,
    /// The cairn-node binary (default: target/release/cairn-node in the workspace).
    #[arg(long, env = "CAIRN_NODE_BIN")]
    node_bin: Option<PathBuf>,
    /// Extra environment for cairn-node, KEY=VALUE (repeatable).
    #[arg(long, value_parser = crate::parse_key_value)]
    cairn_env: Vec<(String, String)>,
    /// Where to write the JSON results (default: target/bench-security.json in the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl SecurityArgs {
    fn wants(&self, part: &str) -> bool {
        self.only.iter().any(|o| o == part)
    }

    fn timing(&self) -> Timing {
        Timing {
            warmup_secs: self.warmup_secs,
            duration_secs: self.duration_secs,
            pause_secs: self.pause_secs,
        }
    }

    fn profile(&self) -> anyhow::Result<Profile> {
        match self.profile.as_str() {
            "default" => Ok(DEFAULT_PROFILE),
            "fast" => Ok(FAST_PROFILE),
            other => bail!("unknown profile {other:?} (known: default, fast)"),
        }
    }
}

/// Runs the parts asked for and prints the report.
pub async fn run(args: SecurityArgs) -> anyhow::Result<()> {
    for o in &args.only {
        if !["https", "auth", "micro", "cluster"].contains(&o.as_str()) {
            bail!("unknown part {o:?} (known: https, auth, micro, cluster)");
        }
    }
    ensure!(args.conns > 0, "--conns must be at least 1");
    let profile = args.profile()?;
    // The load generator's TLS names its provider; this covers reqwest (the in-process
    // `Access`) and anything else that asks for the process default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bin = crate::resolve_node_bin(args.node_bin.clone())?;
    let work = tempfile::Builder::new()
        .prefix("cairn-bench-security-")
        .tempdir()?;
    let load_before = crate::loadavg();
    print_header(&args, &bin, &load_before);
    let started = std::time::Instant::now();
    let res = measure_parts(&args, profile, &bin, work.path()).await?;
    let load_after = crate::loadavg();
    let elapsed = started.elapsed().as_secs_f64();
    print!("{}", securityreport::render(&res, args.conns));
    println!("\nload average before: {load_before}; after: {load_after}; total {elapsed:.0} s");
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| crate::workspace_root().join("target/bench-security.json"));
    let meta = json!({
        "cpus": cpus(), "loadavg_before": load_before, "loadavg_after": load_after,
        "elapsed_secs": elapsed, "node_bin": bin.display().to_string(),
        "cairn_env": args.cairn_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "duration_secs": args.duration_secs, "warmup_secs": args.warmup_secs,
        "conns": args.conns, "repeat": args.repeat.max(1), "micro_calls": args.micro_calls,
        "profile": profile.name, "probe_interval_ms": args.probe_interval_ms,
        "big_zip_mb": args.big_mb,
    });
    securityreport::write_json(&out, &res, meta)?;
    println!("results written to {}", out.display());
    Ok(())
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

fn print_header(args: &SecurityArgs, bin: &Path, load: &str) {
    println!("cairn-bench security: {} CPUs, load average {load}", cpus());
    println!("cairn-node: {}", bin.display());
    if args.wants("https") || args.wants("auth") {
        println!(
            "load runs: {} s warm-up + {} s measured, {} connections, median of {} alternating run(s); progress on stderr",
            args.warmup_secs, args.duration_secs, args.conns, args.repeat.max(1)
        );
    }
}

/// The parts asked for, in order: https, auth, micro, cluster.
async fn measure_parts(
    args: &SecurityArgs,
    profile: Profile,
    bin: &Path,
    work: &Path,
) -> anyhow::Result<Results> {
    let fx = Fixtures::make(&work.join("fixtures"))?;
    let mut res = Results::default();
    let corpus_dir = work.join("corpus");
    let all_targets = corpus::generate(&corpus_dir).context("generating the corpus")?;
    if args.wants("https") {
        let targets = crate::select_targets(all_targets.clone(), &args.scenarios)?;
        res.https = https_part(args, bin, &fx, &corpus_dir, &targets, work).await?;
    }
    if args.wants("auth") {
        let info = info_target(&all_targets)?;
        res.auth = auth_part(args, bin, &fx, &corpus_dir, info, work).await?;
    }
    if args.wants("micro") {
        eprintln!(
            "in-process: Access::authenticate, {} calls each",
            args.micro_calls
        );
        res.micro = securityparts::micro(&fx, args.micro_calls).await?;
    }
    if args.wants("cluster") {
        let logs = crate::workspace_root().join("target/bench-security-logs");
        let measured = cluster_part(args, profile, bin, work).await;
        // Node logs outlive the temp directory, also when a round failed.
        crate::clusterbench::copy_logs(work, &logs);
        res.cluster =
            Some(measured.with_context(|| format!("node logs copied to {}", logs.display()))?);
    }
    Ok(res)
}

fn info_target(all: &[Target]) -> anyhow::Result<&Target> {
    all.iter()
        .find(|t| t.scenario == "info")
        .context("the corpus has no info target")
}

/// Starts a node over `corpus` with the config of `setup` in `work/<dir>`.
async fn start_node(
    args: &SecurityArgs,
    bin: &Path,
    fx: &Fixtures,
    corpus: &Path,
    work: &Path,
    setup: Setup,
) -> anyhow::Result<Server> {
    let dir = work.join(format!("{setup:?}").to_lowercase());
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("cairn.toml");
    std::fs::write(&config, fx.node_config(setup))?;
    servers::start_cairn_with(bin, corpus, &dir, &args.cairn_env, Some(&config)).await
}

/// GETs every target through each (address, client) and checks status and bytes: warms the
/// cache through the first, and proves the others serve the same.
async fn warm(
    ways: &[(std::net::SocketAddr, &Client, &str)],
    targets: &[Target],
) -> anyhow::Result<()> {
    for t in targets {
        for (addr, client, name) in ways {
            let (status, body) = load::fetch(*addr, client, &t.path)
                .await
                .with_context(|| format!("GET {} via {name}", t.path))?;
            if status != StatusCode::OK || body.len() as u64 != t.bytes {
                bail!(
                    "GET {} via {name}: {status}, {} bytes (expected 200, {} bytes)",
                    t.path,
                    body.len(),
                    t.bytes
                );
            }
        }
    }
    Ok(())
}

/// Part 1: the plain and the HTTPS listener of one node, alternately.
async fn https_part(
    args: &SecurityArgs,
    bin: &Path,
    fx: &Fixtures,
    corpus: &Path,
    targets: &[Target],
    work: &Path,
) -> anyhow::Result<Vec<Row>> {
    let node = start_node(args, bin, fx, corpus, work, Setup::Https).await?;
    let https = node
        .https
        .context("the node wrote no plain_http address: is tls.plain_listen set?")?;
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let tls = load::Tls::new(
        securityparts::roots(&fx.ca_pem)?,
        ServerName::IpAddress(ip.into()),
    )?;
    let plain_client = Client::default();
    let tls_client = Client {
        tls: Some(tls),
        header: None,
    };
    println!(
        "https node: plain http://{} and https://{https} (pid {})",
        node.addr, node.pid
    );
    warm(
        &[
            (node.addr, &plain_client, "plain HTTP"),
            (https, &tls_client, "HTTPS"),
        ],
        targets,
    )
    .await?;
    let subjects = [
        (subject("plain", &node, node.addr), plain_client),
        (subject("https", &node, https), tls_client),
    ];
    let mut rows = Vec::new();
    for target in targets {
        rows.extend(alternate(args, &subjects, target).await?);
    }
    Ok(rows)
}

fn subject(name: &str, server: &Server, addr: std::net::SocketAddr) -> Subject {
    Subject {
        name: name.into(),
        pid: server.pid,
        addr,
    }
}

/// Part 2: `info` hits with access off, a Basic token and a Bearer JWT, alternately.
async fn auth_part(
    args: &SecurityArgs,
    bin: &Path,
    fx: &Fixtures,
    corpus: &Path,
    info: &Target,
    work: &Path,
) -> anyhow::Result<Vec<Row>> {
    let off = start_node(args, bin, fx, corpus, work, Setup::AccessOff).await?;
    let on = start_node(args, bin, fx, corpus, work, Setup::AccessOn).await?;
    let with = |value| Client {
        tls: None,
        header: Some((AUTHORIZATION, value)),
    };
    let (none, basic, jwt) = (
        Client::default(),
        with(fx.basic()?),
        with(Fixtures::bearer(&fx.jwt)?),
    );
    // Access must really be on: without credentials the second node refuses.
    let (status, _) = load::fetch(on.addr, &none, &info.path).await?;
    if status != StatusCode::UNAUTHORIZED {
        bail!("access-on node answered {status} without credentials, expected 401");
    }
    let targets = std::slice::from_ref(info);
    warm(&[(off.addr, &none, "access off")], targets).await?;
    warm(
        &[
            (on.addr, &basic, "Basic token"),
            (on.addr, &jwt, "Bearer JWT"),
        ],
        targets,
    )
    .await?;
    let subjects = [
        (subject("off", &off, off.addr), none),
        (subject("token", &on, on.addr), basic),
        (subject("jwt", &on, on.addr), jwt),
    ];
    alternate(args, &subjects, info).await
}

/// Runs `target` on every subject `--repeat` times, rotating which goes first, and keeps each
/// subject's median run by body bytes delivered in the window.
async fn alternate(
    args: &SecurityArgs,
    subjects: &[(Subject, Client)],
    target: &Target,
) -> anyhow::Result<Vec<Row>> {
    let n = subjects.len();
    let mut runs: Vec<Vec<Row>> = vec![Vec::new(); n];
    for rep in 0..args.repeat.max(1) {
        for k in 0..n {
            let i = (rep + k) % n;
            let (subject, client) = &subjects[i];
            let row =
                measure::run(args.timing(), subject, target, args.conns, client.clone()).await?;
            eprintln!(
                "  {:<8} {:>4} conns {:<6} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}",
                row.scenario,
                args.conns,
                row.server,
                row.rps(),
                row.load.quantile_ms(0.5),
                row.load.quantile_ms(0.99),
                row.load.errors
            );
            runs[i].push(row);
        }
    }
    Ok(runs
        .into_iter()
        .map(|mut v| {
            v.sort_by_key(|r| r.load.bytes);
            v.swap_remove(v.len() / 2)
        })
        .collect())
}

/// Part 4: two clusters (insecure, mutual TLS) up at once; replication then failover rounds,
/// alternating between them.
async fn cluster_part(
    args: &SecurityArgs,
    profile: Profile,
    bin: &Path,
    work: &Path,
) -> anyhow::Result<Vec<ClusterSide>> {
    let upstream_dir = work.join("upstream");
    std::fs::create_dir_all(&upstream_dir)?;
    let upstream = format!("file://{}", upstream_dir.display());
    let mut clusters = Vec::new();
    let mut sides = Vec::new();
    for mtls in [false, true] {
        let p = profile.with_mtls(mtls);
        eprintln!(
            "starting a 3-node cluster ({}, cluster port {})",
            p.describe,
            p.security()
        );
        let dir = work.join(format!("cluster-{}", p.security()));
        clusters.push(Cluster::start(bin, 3, &upstream, &dir, &p, &args.cairn_env).await?);
        sides.push(ClusterSide::new(p));
    }
    replication_rounds(args, &upstream_dir, &clusters, &mut sides).await?;
    failover_rounds(args, &upstream_dir, &mut clusters, &mut sides).await?;
    Ok(sides)
}

/// Each round writes a fresh zip and misses it through node 1 of both clusters, the order
/// alternating between rounds.
async fn replication_rounds(
    args: &SecurityArgs,
    upstream_dir: &Path,
    clusters: &[Cluster],
    sides: &mut [ClusterSide],
) -> anyhow::Result<()> {
    let bytes = args.big_mb << 20;
    eprintln!(
        "replication: {} MiB zips, {} rounds",
        args.big_mb, args.replication_rounds
    );
    for r in 1..=args.replication_rounds {
        let zip = replication::write_big(upstream_dir, r as u64, bytes)?;
        for k in 0..clusters.len() {
            let i = (r + k) % clusters.len();
            // Let the page-cache writeback of the new upstream file (and of the previous
            // round's blobs) settle a little.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let round = replication::cluster_round(&clusters[i], &zip, r).await?;
            eprintln!(
                "  {:<8} round {r}: node 1 answered {:.0} ms; copies {:?}; verified {}",
                sides[i].profile.security(),
                round.body_ms,
                round.copies,
                round.verified
            );
            sides[i].replication.push(round);
        }
    }
    Ok(())
}

/// One failover round on each cluster per round number, the order alternating.
async fn failover_rounds(
    args: &SecurityArgs,
    upstream_dir: &Path,
    clusters: &mut [Cluster],
    sides: &mut [ClusterSide],
) -> anyhow::Result<()> {
    let interval = Duration::from_millis(args.probe_interval_ms.max(1));
    let mut probes: Vec<Probes> = sides
        .iter()
        .map(|s| Probes::new(upstream_dir, s.profile.security()))
        .collect();
    for r in 1..=args.failover_rounds {
        for k in 0..clusters.len() {
            let i = (r + k) % clusters.len();
            let profile = sides[i].profile;
            let rounds =
                failover::run(&mut clusters[i], &mut probes[i], &profile, 1, interval).await?;
            sides[i]
                .failover
                .extend(rounds.into_iter().map(|mut round| {
                    round.round = r;
                    round
                }));
        }
    }
    Ok(())
}
