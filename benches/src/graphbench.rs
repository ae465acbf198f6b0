//! `cairn-bench graph`: a whole dependency graph fetched by the go command through a cold
//! three-node cluster behind a load balancer — quietly, and with the Raft leader killed a few
//! seconds in — against the same go command straight from the same upstream (issue 13).
//!
//! The graph is every version of the cluster corpus (standard + generated modules, about 150
//! versions). The upstream fixture delays every answer `--delay-ms` (50 ms stands in for a
//! remote proxy across a WAN). Each round, with fresh go caches each time:
//! - `direct`: `go mod download` of the graph straight from the upstream (the reference);
//! - `cluster`: the same through a fresh 3-node cluster (default Raft timings) behind a
//!   round-robin balancer that replays a request a dying backend left unanswered;
//! - `cluster, leader killed`: the same with `kill -9` of the leader `--kill-after-secs` in.
//!
//! Every side must succeed with the go command's hashes equal to the corpus's. Speed is
//! measured, never asserted; results go to target/bench-graph.json.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use cairn_tests::cluster::{ClusterConfig, TestCluster};
use cairn_tests::corpus::cluster_corpus;
use cairn_tests::fixture::Fixture;
use cairn_tests::gocmd::{go, Go, GoEnv};
use cairn_tests::lb::Lb;
use serde_json::json;
use tokio::time::Instant;

use crate::stats::{ms_since, Summary};

/// Arguments of `cairn-bench graph`.
#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// Delay of every upstream answer, milliseconds.
    #[arg(long, default_value_t = 50)]
    delay_ms: u64,
    /// Rounds (each: direct, cluster, cluster with the leader killed).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// When the leader is killed, seconds after the go command starts.
    #[arg(long, default_value_t = 3.0)]
    kill_after_secs: f64,
    /// The cairn-node binary (default: target/release/cairn-node in the workspace).
    #[arg(long, env = "CAIRN_NODE_BIN")]
    pub node_bin: Option<PathBuf>,
    /// Where to write the JSON results (default: target/bench-graph.json in the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The node defaults for Raft (what the ratio is about), the test harness's quick liveness
/// probes and repair (they only matter after the kill).
fn config() -> ClusterConfig {
    let raft = cairn_node::raft::RaftSettings::default();
    ClusterConfig::fast()
        .insecure()
        .set("raft", "heartbeat_ms", raft.heartbeat_ms)
        .set("raft", "election_min_ms", raft.election_min_ms)
        .set("raft", "election_max_ms", raft.election_max_ms)
}

/// Runs the rounds and prints a table.
pub async fn run(args: GraphArgs) -> anyhow::Result<()> {
    let Some(go) = go("cairn-bench graph") else {
        bail!("the go command is required (on PATH, or CAIRN_GO_BIN)");
    };
    let corpus = cluster_corpus(&crate::workspace_root().join("target/bench-verify-corpus"));
    let all = corpus.module_versions();
    let want: BTreeMap<String, (String, String)> = corpus
        .entries
        .iter()
        .map(|e| {
            (
                format!("{}@{}", e.module, e.version),
                (e.zip_h1.clone(), e.mod_h1.clone()),
            )
        })
        .collect();
    println!(
        "graph: {} versions; upstream delay {} ms; leader killed {} s in",
        all.len(),
        args.delay_ms,
        args.kill_after_secs
    );
    let fixture = Fixture::start(Some(&corpus.root)).await?;
    let delay = Duration::from_millis(args.delay_ms);
    let (mut direct, mut quiet, mut killed) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        fixture.set_delay(delay);
        let env = GoEnv::new(&go, &fixture.url())?;
        let start = Instant::now();
        let got = env
            .mod_download_ok(&all)
            .await
            .context("go mod download straight from the upstream")?;
        direct.push(ms_since(start));
        check(&want, &got, "direct")?;

        quiet.push(through_cluster(&go, &fixture, &all, &want, delay, None).await?);
        killed.push(
            through_cluster(
                &go,
                &fixture,
                &all,
                &want,
                delay,
                Some(Duration::from_secs_f64(args.kill_after_secs)),
            )
            .await?,
        );
        println!(
            "round {round}: direct {:.0} ms, cluster {:.0} ms, cluster with the leader killed {:.0} ms",
            direct[round - 1],
            quiet[round - 1],
            killed[round - 1]
        );
    }
    let (d, q, k) = (
        Summary::of(&direct),
        Summary::of(&quiet),
        Summary::of(&killed),
    );
    println!(
        "\ngo mod download of {} versions, {} ms per upstream answer        p50 ms   p90 ms",
        all.len(),
        args.delay_ms
    );
    println!(
        "straight from the upstream                                 {:>7.0}  {:>7.0}",
        d.p50, d.p90
    );
    println!(
        "through a cold 3-node cluster                              {:>7.0}  {:>7.0}   ({:.2}× direct; target ≤ 1.2×)",
        q.p50,
        q.p90,
        q.p50 / d.p50
    );
    println!(
        "through a cold 3-node cluster, leader killed {:.0} s in       {:>7.0}  {:>7.0}   ({:.2}× direct; target ≤ 1.5×)",
        args.kill_after_secs,
        k.p50,
        k.p90,
        k.p50 / d.p50
    );
    let doc = json!({
        "versions": all.len(),
        "delay_ms": args.delay_ms,
        "kill_after_secs": args.kill_after_secs,
        "direct": d.json(),
        "cluster": q.json(),
        "cluster_leader_killed": k.json(),
    });
    crate::stats::write_results(args.out.as_deref(), "bench-graph.json", &doc)
}

fn check(
    want: &BTreeMap<String, (String, String)>,
    got: &[cairn_tests::gocmd::Download],
    side: &str,
) -> anyhow::Result<()> {
    for d in got {
        let key = format!("{}@{}", d.path, d.version);
        let ok = want
            .get(&key)
            .is_some_and(|(zip, gomod)| *zip == d.sum && *gomod == d.go_mod_sum);
        ensure!(ok, "{side}: {key}: the go command got different hashes");
    }
    Ok(())
}

/// One download of the graph through a fresh cluster; with `kill`, the leader is killed that
/// long after the go command starts. Returns the go command's time in ms.
async fn through_cluster(
    go: &Go,
    fixture: &Fixture,
    all: &[String],
    want: &BTreeMap<String, (String, String)>,
    delay: Duration,
    kill: Option<Duration>,
) -> anyhow::Result<f64> {
    fixture.set_delay(Duration::ZERO);
    let mut cl = TestCluster::start(3, &fixture.url(), &config()).await?;
    let lb = Lb::start_replaying(cl.http_addrs()).await?;
    let leader = cl.wait_for_leader().await?;
    fixture.set_delay(delay);
    let env = GoEnv::new(go, &lb.url())?;
    let list = all.to_vec();
    let start = Instant::now();
    let download = tokio::spawn(async move { env.mod_download_ok(&list).await });
    if let Some(after) = kill {
        tokio::time::sleep(after).await;
        cl.kill9(leader).await;
    }
    let got = download
        .await?
        .with_context(|| format!("go mod download through the cluster (kill: {kill:?})"))?;
    let took = ms_since(start);
    check(want, &got, "through the cluster")?;
    drop(lb);
    drop(cl);
    Ok(took)
}
