//! `cairn-bench prefetch`: warming a cluster from a go.sum (issue 12), against the go command
//! downloading the same versions straight from the same upstream, in the same run.
//!
//! The go.sum names every version of the cluster corpus (standard + generated modules: about
//! 150 versions, 300 lines). The upstream fixture delays every answer `--delay-ms` (a stand-in
//! for the round trip to a remote proxy). Each round:
//! - the go command with empty caches runs `go mod download` of every version straight from
//!   the upstream (the reference: what a developer's first build costs without a mirror);
//! - `cairn prefetch` of the go.sum fills a fresh three-node cluster through a round-robin load
//!   balancer (cold: every version is a miss, filled, committed through Raft and replicated);
//! - the same prefetch again (warm: every answer is a hit, nothing reaches the upstream).
//!
//! Speed is measured, never asserted; results go to target/bench-prefetch.json.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use cairn_tests::cluster::{cli_bin, ClusterConfig, TestCluster};
use cairn_tests::corpus::cluster_corpus;
use cairn_tests::fixture::Fixture;
use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::lb::Lb;
use serde_json::json;
use tokio::time::Instant;

use crate::stats::{ms_since, Summary};

/// Arguments of `cairn-bench prefetch`.
#[derive(Debug, clap::Args)]
pub struct PrefetchArgs {
    /// Delay of every upstream answer, milliseconds.
    #[arg(long, default_value_t = 20)]
    delay_ms: u64,
    /// Rounds per side (fresh go caches and a fresh cluster each).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// `cairn prefetch --concurrency`.
    #[arg(long, default_value_t = 8)]
    concurrency: u32,
    /// The cairn-node binary (default: target/release/cairn-node in the workspace); the `cairn`
    /// CLI is taken from beside it (or `CAIRN_CLI_BIN`).
    #[arg(long, env = "CAIRN_NODE_BIN")]
    pub node_bin: Option<PathBuf>,
    /// Where to write the JSON results (default: target/bench-prefetch.json in the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs the rounds and prints a table.
pub async fn run(args: PrefetchArgs) -> anyhow::Result<()> {
    let Some(go) = go("cairn-bench prefetch") else {
        bail!("the go command is required (on PATH, or CAIRN_GO_BIN)");
    };
    let corpus = cluster_corpus(&crate::workspace_root().join("target/bench-verify-corpus"));
    let all = corpus.module_versions();
    let dir = tempfile::tempdir()?;
    let sum_path = dir.path().join("go.sum");
    let text = corpus.go_sum();
    std::fs::write(&sum_path, &text)?;
    let lines = text.lines().count();
    println!(
        "go.sum: {lines} lines, {} versions; upstream delay {} ms",
        all.len(),
        args.delay_ms
    );
    let fixture = Fixture::start(Some(&corpus.root)).await?;
    let delay = Duration::from_millis(args.delay_ms);
    let (mut direct, mut cold, mut warm) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        fixture.set_delay(delay);
        let env = GoEnv::new(&go, &fixture.url())?;
        let start = Instant::now();
        env.mod_download_ok(&all)
            .await
            .context("go mod download straight from the upstream")?;
        direct.push(ms_since(start));

        fixture.set_delay(Duration::ZERO);
        let cl = TestCluster::start(3, &fixture.url(), &ClusterConfig::fast()).await?;
        let lb = Lb::start(cl.http_addrs()).await?;
        fixture.set_delay(delay);
        fixture.reset_log();
        let start = Instant::now();
        prefetch(&lb.url(), &sum_path, args.concurrency).await?;
        cold.push(ms_since(start));
        let upstream_zips = fixture
            .requests()
            .iter()
            .filter(|r| r.path.ends_with(".zip"))
            .count();
        ensure!(
            upstream_zips == all.len(),
            "the cold prefetch fetched {upstream_zips} zips from the upstream for {} versions",
            all.len()
        );
        fixture.reset_log();
        let start = Instant::now();
        prefetch(&lb.url(), &sum_path, args.concurrency).await?;
        warm.push(ms_since(start));
        ensure!(
            fixture.total() == 0,
            "the warm prefetch reached the upstream {} times",
            fixture.total()
        );
        println!(
            "round {round}: go mod download {:.0} ms, prefetch cold {:.0} ms, warm {:.0} ms",
            direct[round - 1],
            cold[round - 1],
            warm[round - 1]
        );
        drop(lb);
        drop(cl);
    }
    let (d, c, w) = (Summary::of(&direct), Summary::of(&cold), Summary::of(&warm));
    println!(
        "\n{lines}-line go.sum ({} versions, {} ms per upstream answer)      p50 ms   p90 ms",
        all.len(),
        args.delay_ms
    );
    println!(
        "go mod download straight from the upstream          {:>7.0}  {:>7.0}",
        d.p50, d.p90
    );
    println!(
        "cairn prefetch into a cold 3-node cluster (c={:<3})   {:>7.0}  {:>7.0}   ({:.2}× go)",
        args.concurrency,
        c.p50,
        c.p90,
        c.p50 / d.p50
    );
    println!(
        "cairn prefetch again (all hits)                     {:>7.0}  {:>7.0}   ({:.2}× go)",
        w.p50,
        w.p90,
        w.p50 / d.p50
    );
    let doc = json!({
        "go_sum_lines": lines,
        "versions": all.len(),
        "delay_ms": args.delay_ms,
        "concurrency": args.concurrency,
        "go_mod_download_direct": d.json(),
        "prefetch_cold_cluster": c.json(),
        "prefetch_warm": w.json(),
    });
    crate::stats::write_results(args.out.as_deref(), "bench-prefetch.json", &doc)
}

/// Runs `cairn prefetch --proxy URL --json GO.SUM` and checks nothing failed.
async fn prefetch(proxy: &str, sum: &std::path::Path, concurrency: u32) -> anyhow::Result<()> {
    let out = tokio::process::Command::new(cli_bin())
        .args(["--json", "prefetch", "--proxy", proxy, "--concurrency"])
        .arg(concurrency.to_string())
        .arg(sum)
        .output()
        .await
        .context("running cairn prefetch")?;
    ensure!(
        out.status.success(),
        "cairn prefetch failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
