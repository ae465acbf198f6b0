//! `cairn-bench regions`: a cluster over three emulated regions (issue 14) against a
//! single-region cluster under the same emulated network, in one run.
//!
//! Regions are Linux network namespaces joined by the test harness's link emulator
//! (`cairn_tests::netns`): `--rtt-ms` round trip between regions, `--upstream-ms` one way to
//! the root namespace where the upstream fixture lives. Root only (namespaces, TUN devices).
//! Every client runs inside its region's namespace, as a developer there would.
//!
//! 1. **One region** (the reference): three voters in one namespace behind one load balancer.
//!    Cold fills of `--samples` versions (`.info`, `.mod`, `.zip` one after another), the go
//!    command downloading them again (hits, hashes checked), hit latency of `.info` and `.zip`.
//! 2. **Three regions** × two nodes (one voter each, the other a learner), one balancer per
//!    region: the same figures per region, plus the cross-region serving requests made while
//!    only hits were served (issue 14 says none), and the go command straight from the upstream
//!    in each region as the download reference.
//! 3. **Bytes per boundary:** `--big` versions of `--big-mib` MiB filled in one region; the
//!    bytes the emulator delivered across each boundary until every node of every region holds
//!    them, less the idle traffic (Raft heartbeats, liveness probes) measured just before, per
//!    MiB of new blobs. One crossing into each other region is 1.0.
//! 4. **Cut and converge:** a region without the leader is cut; `--fill` new versions are filled
//!    in the leader's region; the cut is held `--cut-secs` (from the cut), then healed; the time
//!    until the cut region's nodes have applied every record and hold every new blob, and then
//!    a check that the cut region serves a sample of them without the upstream.
//!
//! Speed is measured, never asserted; wrong bytes or a failed command fail the run. Results
//! go to target/bench-regions.json.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use cairn_tests::cluster::ClusterConfig;
use cairn_tests::corpus::Entry;
use cairn_tests::fixture::Fixture;
use cairn_tests::gocmd::{go, Go, GoEnv};
use cairn_tests::netns::deploy::{config, upstream, Deployment};
use cairn_tests::netns::{Delays, Regions};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::regionparts::{
    addr_of, cold_fills, cross_region_serving, cross_region_total, fetch_version, fill, hits,
    into_regions, link_delta, metric_bytes_in, mib, mvs, shas, BenchCorpus, HitFigures,
};
use crate::stats::{ms_since, Summary};

/// Arguments of `cairn-bench regions`.
#[derive(Debug, clap::Args)]
pub struct RegionsArgs {
    /// Round trip between two regions, milliseconds.
    #[arg(long, default_value_t = 100)]
    rtt_ms: u64,
    /// One-way delay between any region and the upstream, milliseconds.
    #[arg(long, default_value_t = 10)]
    upstream_ms: u64,
    /// Cold versions timed per region.
    #[arg(long, default_value_t = 15)]
    samples: usize,
    /// Hit load: seconds per (region, path).
    #[arg(long, default_value_t = 3.0)]
    hit_secs: f64,
    /// Hit load: connections.
    #[arg(long, default_value_t = 8)]
    hit_conns: usize,
    /// Large versions for the bytes-per-boundary figure.
    #[arg(long, default_value_t = 4)]
    big: usize,
    /// Size of each large version's payload, MiB.
    #[arg(long, default_value_t = 4)]
    big_mib: usize,
    /// New versions filled while a region is cut.
    #[arg(long, default_value_t = 1000)]
    fill: usize,
    /// Concurrent version fetches of the fill.
    #[arg(long, default_value_t = 16)]
    fill_concurrency: usize,
    /// How long the region stays cut, seconds from the cut.
    #[arg(long, default_value_t = 300)]
    cut_secs: u64,
    /// Skip the single-region reference (phase 1).
    #[arg(long)]
    no_reference: bool,
    /// The cairn-node binary (default: target/release/cairn-node in the workspace).
    #[arg(long, env = "CAIRN_NODE_BIN")]
    pub node_bin: Option<PathBuf>,
    /// Where to write the JSON results (default: target/bench-regions.json in the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The regions of the multi-region cluster.
const REGIONS: [&str; 3] = ["a", "b", "c"];
/// How long the cut region may take to converge before the run fails.
const CONVERGE_DEADLINE: Duration = Duration::from_secs(900);

/// Node defaults throughout (Raft timings, repair period, liveness probes), but two copies of a
/// blob inside a region before a fill answers, as the README's multi-region deployment has.
fn bench_config() -> ClusterConfig {
    config()
        .unset("raft", "propose_timeout_ms")
        .unset("cluster", "repair_interval_secs")
        .unset("cluster", "liveness_interval_ms")
        .unset("cluster", "liveness_failures")
        .unset("upstream_http", "retries")
        .unset("upstream_http", "backoff_base_ms")
}

/// What phases 1 and 2 measure in one region.
struct RegionFigures {
    cold_info: Summary,
    cold_version: Summary,
    go_hits_ms: f64,
    info: HitFigures,
    zip: HitFigures,
}

impl RegionFigures {
    fn json(&self) -> Value {
        json!({
            "cold_info": self.cold_info.json(),
            "cold_version": self.cold_version.json(),
            "go_mod_download_hits_ms": self.go_hits_ms,
            "hit_info": self.info.json(),
            "hit_zip": self.zip.json(),
        })
    }
}

/// Runs the phases and prints the tables.
pub async fn run(args: RegionsArgs) -> anyhow::Result<()> {
    let Some(go) = go("cairn-bench regions") else {
        bail!("the go command is required (on PATH, or CAIRN_GO_BIN)");
    };
    let bc = BenchCorpus::load(
        &crate::workspace_root().join("target/bench-regions-corpus"),
        REGIONS.len(),
        args.samples,
        args.big,
        args.big_mib,
        args.fill,
    )?;
    let delays = Delays {
        region_to_region: Duration::from_millis(args.rtt_ms / 2),
        root_to_region: Duration::from_millis(args.upstream_ms),
    };
    println!(
        "regions: {} ms round trip between regions, {} ms one way to the upstream; {} cold \
         versions per region, {} × {} MiB for bytes per boundary, {} versions during a {} s cut",
        args.rtt_ms,
        args.upstream_ms,
        args.samples,
        args.big,
        args.big_mib,
        args.fill,
        args.cut_secs
    );
    let reference = match args.no_reference {
        true => None,
        false => Some(one_region(&args, &go, &bc, delays).await?),
    };
    let net = Regions::new(&REGIONS, 2, delays).context("building the emulated regions")?;
    let upstream = upstream(&net, &bc.corpus.root).await?;
    let d = Deployment::try_start(&net, 2, 1, &upstream.url(), true, &bench_config()).await?;
    let leader = d.cluster.wait_for_leader().await?;
    let leader_region = d.region(leader).to_string();
    println!("\nthree regions × two nodes: the leader is node {leader} in region {leader_region}");

    let mut per_region = BTreeMap::new();
    for (g, r) in REGIONS.iter().enumerate() {
        let lb = addr_of(d.lbs[*r].url())?;
        let (ci, cv) = cold_fills(&net, r, lb, bc.cold[g].clone()).await?;
        per_region.insert(r.to_string(), (ci, cv));
    }
    let all_cold: Vec<Entry> = bc.cold.iter().flatten().cloned().collect();
    d.cluster.wait_blobs_everywhere(&shas(&all_cold)).await?;
    let serving_before = cross_region_serving(&d).await?;
    let upstream_before = upstream.total();
    let mut figures = BTreeMap::new();
    let mut direct = BTreeMap::new();
    for (g, r) in REGIONS.iter().enumerate() {
        let (cold_info, cold_version) = per_region[*r];
        let lb = d.lbs[*r].url().to_string();
        let go_hits_ms = go_download(&go, &lb, &net, r, &bc.cold[g]).await?;
        let node = d.cluster.http_addr(d.nodes_in(r)[0]);
        let (info, zip) = hit_load(&args, &net, r, node, &bc.cold[g][0]).await?;
        figures.insert(
            r.to_string(),
            RegionFigures {
                cold_info,
                cold_version,
                go_hits_ms,
                info,
                zip,
            },
        );
    }
    let serving_during_hits = cross_region_serving(&d).await? - serving_before;
    let upstream_during_hits = upstream.total() - upstream_before;
    for (g, r) in REGIONS.iter().enumerate() {
        let ms = go_download(&go, &upstream.url(), &net, r, &bc.cold[g]).await?;
        direct.insert(r.to_string(), ms);
    }
    print_latency(
        &args,
        reference.as_ref(),
        &figures,
        &direct,
        &leader_region,
        serving_during_hits,
        upstream_during_hits,
    );

    let bytes = bytes_per_boundary(&net, &d, &bc, &leader_region).await?;
    let converge = cut_and_converge(&args, &go, &net, &d, &upstream, &bc, &leader_region).await?;

    let doc = json!({
        "rtt_ms": args.rtt_ms,
        "upstream_one_way_ms": args.upstream_ms,
        "samples": args.samples,
        "leader_region": leader_region,
        "one_region": reference.as_ref().map(RegionFigures::json),
        "three_regions": figures.iter().map(|(r, f)| (r.clone(), f.json())).collect::<BTreeMap<_, _>>(),
        "go_direct_from_upstream_ms": direct,
        "cross_region_serving_requests_during_hits": serving_during_hits,
        "upstream_requests_during_hits": upstream_during_hits,
        "bytes_per_boundary": bytes,
        "cut_and_converge": converge,
    });
    drop(d);
    drop(net);
    crate::stats::write_results(args.out.as_deref(), "bench-regions.json", &doc)
}

/// Phase 1: the same figures on three voters in one region.
async fn one_region(
    args: &RegionsArgs,
    go: &Go,
    bc: &BenchCorpus,
    delays: Delays,
) -> anyhow::Result<RegionFigures> {
    let net = Regions::new(&["solo"], 3, delays).context("building the emulated region")?;
    let upstream = upstream(&net, &bc.corpus.root).await?;
    let d = Deployment::try_start(&net, 3, 3, &upstream.url(), false, &bench_config()).await?;
    d.cluster.wait_for_leader().await?;
    let lb = d.lbs["solo"].url().to_string();
    let (cold_info, cold_version) =
        cold_fills(&net, "solo", addr_of(&lb)?, bc.cold[0].clone()).await?;
    d.cluster.wait_blobs_everywhere(&shas(&bc.cold[0])).await?;
    let go_hits_ms = go_download(go, &lb, &net, "solo", &bc.cold[0]).await?;
    let node = d.cluster.http_addr(1);
    let (info, zip) = hit_load(args, &net, "solo", node, &bc.cold[0][0]).await?;
    Ok(RegionFigures {
        cold_info,
        cold_version,
        go_hits_ms,
        info,
        zip,
    })
}

/// `go mod download` of `entries` through `goproxy` inside `region` with a fresh module cache,
/// hashes checked against the corpus; returns its time in ms.
async fn go_download(
    go: &Go,
    goproxy: &str,
    net: &Regions,
    region: &str,
    entries: &[Entry],
) -> anyhow::Result<f64> {
    let env = GoEnv::new(go, goproxy)?.with_prefix(net.exec_prefix(region));
    let start = Instant::now();
    let got = env
        .mod_download_ok(&mvs(entries))
        .await
        .with_context(|| format!("go mod download in region {region} through {goproxy}"))?;
    let took = ms_since(start);
    for e in entries {
        let ok = got.iter().any(|g| {
            g.path == e.module && g.version == e.version && g.sum == e.zip_h1 && {
                g.go_mod_sum == e.mod_h1
            }
        });
        ensure!(
            ok,
            "go mod download in region {region}: {}@{} came with other hashes",
            e.module,
            e.version
        );
    }
    Ok(took)
}

/// Hit latency of `e`'s `.info` and `.zip` at `node`, from inside `region`.
async fn hit_load(
    args: &RegionsArgs,
    net: &Regions,
    region: &str,
    node: SocketAddr,
    e: &Entry,
) -> anyhow::Result<(HitFigures, HitFigures)> {
    let path = |ext| cairn_tests::h1::version_path(&e.module, &e.version, ext);
    let info = hits(
        net,
        region,
        node,
        path("info"),
        e.info.len() as u64,
        args.hit_conns,
        args.hit_secs,
    )
    .await?;
    let zip = hits(
        net,
        region,
        node,
        path("zip"),
        e.zip_len,
        args.hit_conns,
        args.hit_secs,
    )
    .await?;
    Ok((info, zip))
}

fn print_latency(
    args: &RegionsArgs,
    reference: Option<&RegionFigures>,
    figures: &BTreeMap<String, RegionFigures>,
    direct: &BTreeMap<String, f64>,
    leader_region: &str,
    serving_during_hits: f64,
    upstream_during_hits: usize,
) {
    println!(
        "\ncold fills ({} versions each, fetched one after another from inside the region; ms)",
        args.samples
    );
    println!(
        "{:<26} {:>9} {:>9} {:>9}   {:>12} {:>12}",
        "where", ".info p50", ".info p90", ".info max", "version p50", "vs one region"
    );
    let base = reference.map(|r| r.cold_info.p50);
    let row = |name: String, f: &RegionFigures| {
        let vs = base
            .map(|b| format!("{:+.0} ms", f.cold_info.p50 - b))
            .unwrap_or_default();
        println!(
            "{name:<26} {:>9.0} {:>9.0} {:>9.0}   {:>12.0} {:>12}",
            f.cold_info.p50, f.cold_info.p90, f.cold_info.max, f.cold_version.p50, vs
        );
    };
    if let Some(r) = reference {
        row("one region (3 voters)".into(), r);
    }
    for (r, f) in figures {
        let tag = if r == leader_region { " (leader)" } else { "" };
        row(format!("three regions: {r}{tag}"), f);
    }
    println!(
        "\nhits from inside the region ({} connections, {} s; ms) and the go command",
        args.hit_conns, args.hit_secs
    );
    println!(
        "{:<26} {:>8} {:>8} {:>9}   {:>8} {:>8} {:>9}   {:>10} {:>10}",
        "where",
        "info p50",
        "info p99",
        "info r/s",
        "zip p50",
        "zip p99",
        "zip r/s",
        "go (hits)",
        "go direct"
    );
    let hit_row = |name: String, f: &RegionFigures, direct: Option<f64>| {
        println!(
            "{name:<26} {:>8.2} {:>8.2} {:>9.0}   {:>8.2} {:>8.2} {:>9.0}   {:>10.0} {:>10}",
            f.info.p50,
            f.info.p99,
            f.info.rps,
            f.zip.p50,
            f.zip.p99,
            f.zip.rps,
            f.go_hits_ms,
            direct.map(|d| format!("{d:.0}")).unwrap_or_default()
        );
    };
    if let Some(r) = reference {
        hit_row("one region (3 voters)".into(), r, None);
    }
    for (r, f) in figures {
        hit_row(format!("three regions: {r}"), f, direct.get(r).copied());
    }
    println!(
        "while only hits were served: {serving_during_hits} serving requests crossed a region \
         boundary (issue 14: 0), {upstream_during_hits} reached the upstream"
    );
}

/// Phase 3: bytes across each boundary per MiB of new blobs filled in `origin`.
async fn bytes_per_boundary(
    net: &Regions,
    d: &Deployment,
    bc: &BenchCorpus,
    origin: &str,
) -> anyhow::Result<Value> {
    let idle_secs = 5.0;
    let idle_start = net.link_bytes();
    tokio::time::sleep(Duration::from_secs_f64(idle_secs)).await;
    let idle = cross_region_total(&link_delta(&idle_start, &net.link_bytes())) as f64 / idle_secs;

    let blob_bytes: u64 = bc.big.iter().map(|e| e.zip_len).sum();
    let before = net.link_bytes();
    let metric_before = metric_bytes_in(d).await?;
    let start = Instant::now();
    let lb = addr_of(d.lbs[origin].url())?;
    fill(net, origin, lb, bc.big.clone(), 1).await?;
    let filled = start.elapsed().as_secs_f64();
    d.cluster.wait_blobs_everywhere(&shas(&bc.big)).await?;
    let secs = start.elapsed().as_secs_f64();
    let delta = link_delta(&before, &net.link_bytes());
    let metric_after = metric_bytes_in(d).await?;
    let into = into_regions(&delta);
    let per_region_idle = idle * secs / (REGIONS.len() as f64);
    println!(
        "\nbytes per boundary: {} new blobs, {:.1} MiB, filled in region {origin} in {filled:.1} s, \
         in every node of every region after {secs:.1} s; idle cross-region traffic {:.1} KiB/s \
         subtracted",
        bc.big.len(),
        mib(blob_bytes as f64),
        idle / 1024.0
    );
    println!(
        "{:<8} {:>14} {:>16} {:>22}",
        "region", "wire in, MiB", "per MiB of blob", "cairn's count, per MiB"
    );
    let mut rows = BTreeMap::new();
    for r in REGIONS {
        let wire = (into.get(r).copied().unwrap_or(0) as f64 - per_region_idle).max(0.0);
        let counted = metric_after.get(r).copied().unwrap_or(0.0)
            - metric_before.get(r).copied().unwrap_or(0.0);
        let per = wire / blob_bytes as f64;
        let counted_per = counted / blob_bytes as f64;
        println!(
            "{r:<8} {:>14.2} {:>16.2} {:>22.2}",
            mib(wire),
            per,
            counted_per
        );
        rows.insert(
            r.to_string(),
            json!({ "wire_in_bytes": wire, "per_blob_byte": per, "cairn_received_per_blob_byte": counted_per }),
        );
    }
    let upstream_out: u64 = delta
        .iter()
        .filter(|((s, _), _)| s == cairn_tests::netns::ROOT)
        .map(|(_, n)| n)
        .sum();
    println!(
        "(the origin region's row is what came back to it; the others should be ≈ 1.0: one \
         crossing each.) From the upstream: {:.2} MiB ({:.2} per MiB of blob)",
        mib(upstream_out as f64),
        upstream_out as f64 / blob_bytes as f64
    );
    Ok(json!({
        "origin": origin,
        "blob_bytes": blob_bytes,
        "fill_secs": filled,
        "everywhere_secs": secs,
        "idle_cross_region_bytes_per_sec": idle,
        "regions": rows,
        "upstream_bytes_per_blob_byte": upstream_out as f64 / blob_bytes as f64,
    }))
}

/// Phase 4: cut a region without the leader, fill new versions elsewhere, hold, heal, time the
/// catch-up.
async fn cut_and_converge(
    args: &RegionsArgs,
    go: &Go,
    net: &Regions,
    d: &Deployment,
    upstream: &Fixture,
    bc: &BenchCorpus,
    leader_region: &str,
) -> anyhow::Result<Value> {
    let cut = REGIONS
        .into_iter()
        .find(|r| *r != leader_region)
        .context("no region without the leader")?;
    let cut_nodes = d.nodes_in(cut);
    let others: Vec<u64> = d
        .cluster
        .ids()
        .into_iter()
        .filter(|id| !cut_nodes.contains(id))
        .collect();
    println!(
        "\ncut and converge: region {cut} (nodes {cut_nodes:?}) cut; {} versions filled in region \
         {leader_region}; healed {} s after the cut",
        bc.fill.len(),
        args.cut_secs
    );
    let mut start_index = 0;
    for id in &others {
        start_index = start_index.max(d.cluster.applied(*id).await?);
    }
    let term_before = d
        .cluster
        .raft(d.cluster.wait_for_leader().await?)
        .await?
        .term;
    let t_cut = Instant::now();
    net.cut(cut);
    let lb = addr_of(d.lbs[leader_region].url())?;
    let fill_secs = fill(
        net,
        leader_region,
        lb,
        bc.fill.clone(),
        args.fill_concurrency,
    )
    .await
    .context("filling while the region is cut")?;
    let mut target = 0;
    for id in &others {
        target = target.max(d.cluster.applied(*id).await?);
    }
    println!(
        "  filled {} versions in {fill_secs:.1} s ({:.0} versions/s): {} log entries",
        bc.fill.len(),
        bc.fill.len() as f64 / fill_secs,
        target - start_index
    );
    let heal_at = t_cut + Duration::from_secs(args.cut_secs);
    while Instant::now() < heal_at {
        let left = heal_at - Instant::now();
        println!(
            "  cut held {:.0} s, {:.0} s to go",
            t_cut.elapsed().as_secs_f64(),
            left.as_secs_f64()
        );
        tokio::time::sleep(left.min(Duration::from_secs(30))).await;
    }
    let before = net.link_bytes();
    net.heal(cut);
    let healed = Instant::now();
    let want = shas(&bc.fill);
    let (mut records_at, mut blobs_at) = (None, None);
    let mut last_print = Instant::now();
    while records_at.is_none() || blobs_at.is_none() {
        if healed.elapsed() > CONVERGE_DEADLINE {
            bail!("region {cut} did not converge within {CONVERGE_DEADLINE:?} of the heal");
        }
        let mut applied = Vec::new();
        for id in &cut_nodes {
            applied.push(d.cluster.applied(*id).await.unwrap_or(0));
        }
        if records_at.is_none() && applied.iter().all(|a| *a >= target) {
            records_at = Some(healed.elapsed().as_secs_f64());
        }
        let missing: usize = cut_nodes
            .iter()
            .map(|id| want.difference(&d.cluster.blob_set(*id)).count())
            .sum();
        if blobs_at.is_none() && missing == 0 {
            blobs_at = Some(healed.elapsed().as_secs_f64());
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            println!(
                "  {:.0} s after the heal: applied {applied:?} of {target}, {missing} blobs missing",
                healed.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (records_secs, blobs_secs) = (records_at.unwrap_or(0.0), blobs_at.unwrap_or(0.0));
    let leader_after = d.cluster.wait_for_leader().await?;
    let term_after = d.cluster.raft(leader_after).await?.term;
    println!(
        "  Raft term {term_before} before the cut, {term_after} after the heal (leader now node \
         {leader_after} in region {})",
        d.region(leader_after)
    );
    let delta = link_delta(&before, &net.link_bytes());
    let into_cut = into_regions(&delta).get(cut).copied().unwrap_or(0);
    let from: BTreeMap<String, u64> = delta
        .iter()
        .filter(|((_, dst), _)| dst == cut)
        .map(|((src, _), n)| (src.clone(), *n))
        .collect();
    println!("  bytes into region {cut} after the heal, by source: {from:?}");
    let fill_bytes: u64 = bc.fill.iter().map(|e| e.zip_len).sum();
    // The cut region now serves the new versions itself: no upstream request, right hashes.
    let sample: Vec<Entry> = bc.fill.iter().step_by(50).cloned().collect();
    let upstream_before = upstream.total();
    let cut_lb = addr_of(d.lbs[cut].url())?;
    for e in &sample {
        net.run_async_in(cut, {
            let e = e.clone();
            move || async move { fetch_version(cut_lb, &e).await }
        })
        .await??;
    }
    go_download(go, d.lbs[cut].url(), net, cut, &sample).await?;
    let upstream_after = upstream.total() - upstream_before;
    println!(
        "  after the heal: records applied in {records_secs:.1} s, every blob held in \
         {blobs_secs:.1} s; {:.2} MiB crossed into region {cut} ({:.2} per byte of new blob); \
         {} sample versions served there with {upstream_after} upstream requests",
        mib(into_cut as f64),
        into_cut as f64 / fill_bytes as f64,
        sample.len()
    );
    Ok(json!({
        "cut_region": cut,
        "fill_region": leader_region,
        "versions": bc.fill.len(),
        "log_entries": target - start_index,
        "fill_secs": fill_secs,
        "cut_secs": args.cut_secs,
        "records_converged_secs": records_secs,
        "term_before_cut": term_before,
        "term_after_heal": term_after,
        "blobs_converged_secs": blobs_secs,
        "bytes_into_cut_region": into_cut,
        "new_blob_bytes": fill_bytes,
        "upstream_requests_for_sample": upstream_after,
    }))
}
