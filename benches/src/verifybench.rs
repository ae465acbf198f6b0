//! `cairn-bench verify`: what checksum verification costs (issue 9), measured against the same
//! work without it, in the same run.
//!
//! 1. **Cold misses.** `.info` misses of versions nobody asked for (cairn fetches `.info` and
//!    `.mod` upstream and, when verifying, looks the version up and proves it against the
//!    database's tiles alongside), on a node in `off` mode and on nodes in `require` mode. The
//!    fake database holds `--records` filler records plus the corpus (three tile levels at the
//!    default 70 000), and the corpus's records are adjacent, so after a node's first
//!    verification later ones share its tiles:
//!    - `require, tiles cold`: the first miss on a fresh node (lookup and every tile);
//!    - `require, tiles warm`: later misses on the same nodes (the lookup only);
//!    - `off`: the same misses without verification.
//! 2. **A whole dependency graph.** The go command with empty caches and `GOSUMDB` on downloads
//!    every version of the corpus straight from the upstream fixture and the database (each
//!    answer delayed `--delay-ms`, a stand-in for the round trip to a remote proxy), then through
//!    a warm three-node cluster behind a round-robin load balancer.
//!
//! Speed is measured, never asserted; results go to target/bench-verify.json.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use cairn_tests::cluster::{ClusterConfig, TestCluster};
use cairn_tests::corpus::{cluster_corpus, Corpus};
use cairn_tests::fixture::Fixture;
use cairn_tests::gocmd::{go, Go, GoEnv};
use cairn_tests::h1::escape;
use cairn_tests::lb::Lb;
use cairn_tests::node::{CairnNode, NodeOptions};
use cairn_tests::sumdb::{corpus_records, filler_records, FakeSumdb};
use serde_json::json;
use tokio::time::Instant;

use crate::stats::Summary;

/// Arguments of `cairn-bench verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Fresh `require` nodes (each gives one tiles-cold sample).
    #[arg(long, default_value_t = 8)]
    nodes: usize,
    /// Misses timed per node after its first (tiles warm), and on the `off` node per round.
    #[arg(long, default_value_t = 12)]
    misses: usize,
    /// Filler records in the fake database before the corpus.
    #[arg(long, default_value_t = 70_000)]
    records: usize,
    /// Delay of every upstream and database answer in the graph download, milliseconds.
    #[arg(long, default_value_t = 20)]
    delay_ms: u64,
    /// Graph downloads timed per side (fresh go caches each).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The cairn-node binary (default: target/release/cairn-node in the workspace).
    #[arg(long, env = "CAIRN_NODE_BIN")]
    pub node_bin: Option<PathBuf>,
    /// Where to write the JSON results (default: target/bench-verify.json in the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs both parts and prints a table.
pub async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let Some(go) = go("cairn-bench verify") else {
        bail!("the go command is required (on PATH, or CAIRN_GO_BIN)");
    };
    let corpus = cluster_corpus(&crate::workspace_root().join("target/bench-verify-corpus"));
    let versions: Vec<(String, String)> = corpus
        .entries
        .iter()
        .filter(|e| e.module.starts_with("example.com/gen/"))
        .map(|e| (e.module.clone(), e.version.clone()))
        .collect();
    ensure!(
        versions.len() > args.nodes * (args.misses + 1),
        "the corpus has too few versions for --nodes × (--misses + 1)"
    );
    let fixture = Fixture::start(Some(&corpus.root)).await?;
    let mut records = filler_records(args.records);
    records.extend(corpus_records(corpus));
    let db = FakeSumdb::start(records).await?;
    println!(
        "fake checksum database: {} records; {} versions to miss on",
        db.size(),
        versions.len()
    );

    let misses = cold_misses(&args, &fixture, &db, &versions).await?;
    let graph = graph(&args, &go, corpus, &fixture, &db).await?;
    let off = Summary::of(&misses.off);
    let warm = Summary::of(&misses.warm);
    let cold = Summary::of(&misses.cold);
    let lookup = Summary::of(&misses.db);
    println!("\ncold .info miss (ms)           n    p50     p90   vs off (p50 / p90)");
    for (name, s) in [
        ("database lookup alone", lookup),
        ("off", off),
        ("require, tiles warm", warm),
        ("require, tiles cold", cold),
    ] {
        println!(
            "{name:<28} {:>3} {:>6.2} {:>7.2}   {:.2}× / {:.2}×",
            s.n,
            s.p50,
            s.p90,
            s.p50 / off.p50,
            s.p90 / off.p90
        );
    }
    let (direct, cluster) = (Summary::of(&graph.direct), Summary::of(&graph.cluster));
    println!(
        "\nwhole graph ({} versions, {} ms per upstream answer)   p50 ms   p90 ms",
        graph.versions, args.delay_ms
    );
    println!(
        "go command straight from upstream + database   {:>7.0}  {:>7.0}",
        direct.p50, direct.p90
    );
    println!("go command through a warm 3-node cluster       {:>7.0}  {:>7.0}   ({:.2}× the direct time)", cluster.p50, cluster.p90, cluster.p50 / direct.p50);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| crate::workspace_root().join("target/bench-verify.json"));
    let doc = json!({
        "records": db.size(),
        "cold_miss": {"database_lookup_alone": lookup.json(), "off": off.json(), "require_tiles_warm": warm.json(), "require_tiles_cold": cold.json()},
        "graph": {"versions": graph.versions, "delay_ms": args.delay_ms, "direct": direct.json(), "warm_cluster": cluster.json()},
    });
    std::fs::write(&out, serde_json::to_vec_pretty(&doc)?)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("\nwrote {}", out.display());
    Ok(())
}

/// Cold-miss samples, milliseconds.
struct Misses {
    off: Vec<f64>,
    warm: Vec<f64>,
    cold: Vec<f64>,
    /// A lookup straight from the database (the round trip verification adds at least).
    db: Vec<f64>,
}

fn node_config(db: &FakeSumdb, mode: &str) -> String {
    format!(
        "[[sumdb.databases]]\nname = \"{}\"\nurl = \"{}\"\nkey = \"{}\"\nverify = \"{mode}\"\n",
        db.name(),
        db.url(),
        db.verifier_key()
    )
}

async fn timed_info(node: &CairnNode, (module, version): &(String, String)) -> anyhow::Result<f64> {
    let path = format!("/{}/@v/{}.info", escape(module), escape(version));
    let start = Instant::now();
    let r = node.get(&path).await?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    ensure!(r.status == 200, "GET {path}: {} {}", r.status, r.text());
    Ok(ms)
}

async fn cold_misses(
    args: &VerifyArgs,
    fixture: &Fixture,
    db: &FakeSumdb,
    versions: &[(String, String)],
) -> anyhow::Result<Misses> {
    let mut m = Misses {
        off: Vec::new(),
        warm: Vec::new(),
        cold: Vec::new(),
        db: Vec::new(),
    };
    // A fresh connection each (raw HTTP/1.1); cairn's client keeps its connections.
    for (module, version) in versions.iter().take(args.nodes * (args.misses + 1)) {
        let target = format!("/lookup/{}@{}", escape(module), escape(version));
        let start = Instant::now();
        let r = cairn_tests::raw::request(db.addr(), "GET", &target, &[], Duration::from_secs(10))
            .await?;
        ensure!(r.status == 200, "GET {target}: {}", r.status_line);
        m.db.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let per_node = args.misses + 1;
    let off_node =
        CairnNode::start(NodeOptions::new(&fixture.url()).config(&node_config(db, "off"))).await?;
    for v in versions.iter().take(args.nodes * per_node) {
        m.off.push(timed_info(&off_node, v).await?);
    }
    for batch in versions.chunks(per_node).take(args.nodes) {
        let node =
            CairnNode::start(NodeOptions::new(&fixture.url()).config(&node_config(db, "require")))
                .await?;
        m.cold.push(timed_info(&node, &batch[0]).await?);
        for v in &batch[1..] {
            m.warm.push(timed_info(&node, v).await?);
        }
    }
    Ok(m)
}

/// Whole-graph samples, milliseconds.
struct Graph {
    versions: usize,
    direct: Vec<f64>,
    cluster: Vec<f64>,
}

async fn graph(
    args: &VerifyArgs,
    go: &Go,
    corpus: &Corpus,
    fixture: &Fixture,
    db: &FakeSumdb,
) -> anyhow::Result<Graph> {
    let all = corpus.module_versions();
    let key = db.verifier_key();
    let config = ClusterConfig::fast()
        .set(
            "sumdb",
            "databases",
            format!(
                "[{{ name = \"{}\", url = \"{}\", key = \"{key}\", verify = \"require\" }}]",
                db.name(),
                db.url()
            ),
        )
        .set("sumdb", "latest_ttl_secs", 3600);
    let cl = TestCluster::start(3, &fixture.url(), &config).await?;
    let lb = Lb::start(cl.http_addrs()).await?;
    let delay = Duration::from_millis(args.delay_ms);
    fixture.set_delay(delay);
    db.set_delay(delay);
    let through = GoEnv::new(go, &lb.url())?.with_sumdb(&key);
    through
        .mod_download_ok(&all)
        .await
        .context("warming the cluster")?;
    cl.wait_converged().await?;
    let mut g = Graph {
        versions: all.len(),
        direct: Vec::new(),
        cluster: Vec::new(),
    };
    let direct_sumdb = format!("{key} {}", db.url());
    for _ in 0..args.rounds {
        let env = GoEnv::new(go, &fixture.url())?.with_sumdb(&direct_sumdb);
        let start = Instant::now();
        env.mod_download_ok(&all)
            .await
            .context("go command straight from the upstream")?;
        g.direct.push(start.elapsed().as_secs_f64() * 1000.0);
        let env = through.fresh()?;
        let start = Instant::now();
        env.mod_download_ok(&all)
            .await
            .context("go command through the warm cluster")?;
        g.cluster.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    fixture.set_delay(Duration::ZERO);
    db.set_delay(Duration::ZERO);
    Ok(g)
}
