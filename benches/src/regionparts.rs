//! The pieces `cairn-bench regions` is made of: its corpus, clients that run inside a region's
//! namespace, and the accounting of bytes on the emulated links.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context};
use cairn_tests::corpus::{pseudo_random_bytes, time_n, Corpus, Entry, ModuleSpec, VersionSpec};
use cairn_tests::netns::deploy::Deployment;
use cairn_tests::netns::{Regions, ROOT};
use futures_util::stream::{self, StreamExt};
use serde_json::json;
use tokio::time::Instant;

use crate::load::{self, Client, LoadSpec};
use crate::stats::{ms_since, Summary};

/// The versions each phase uses, written once per shape under `target/bench-regions-corpus`.
pub struct BenchCorpus {
    /// The tree (the upstream fixture serves it).
    pub corpus: Corpus,
    /// Cold-fill samples, one group per region of the three-region cluster (the single-region
    /// cluster, a separate one, reuses group 0).
    pub cold: Vec<Vec<Entry>>,
    /// Large incompressible versions for the bytes-per-boundary figure.
    pub big: Vec<Entry>,
    /// The versions filled while a region is cut.
    pub fill: Vec<Entry>,
}

/// Versions per generated module of the fill set.
const FILL_PER_MODULE: usize = 10;

impl BenchCorpus {
    /// Generates (or reuses) the corpus: `groups` × `samples` cold versions, `big` versions of
    /// `big_mib` MiB each, `fill` small versions.
    pub fn load(
        base: &Path,
        groups: usize,
        samples: usize,
        big: usize,
        big_mib: usize,
        fill: usize,
    ) -> anyhow::Result<BenchCorpus> {
        let mut n = 0u32;
        let mut time = || {
            n += 1;
            time_n(n)
        };
        let mut specs = Vec::new();
        for g in 0..groups {
            let path = format!("bench.example/regions/cold/g{g}");
            let mut m = ModuleSpec::new(&path);
            for i in 0..samples {
                m = m.version(&format!("v1.0.{i}"), &time());
            }
            specs.push(m);
        }
        for i in 0..big {
            let path = format!("bench.example/regions/big/b{i}");
            let data = pseudo_random_bytes(0x5eed_0000 + i as u64, big_mib << 20);
            let v = VersionSpec::new(&path, "v1.0.0", &time()).with_file("data.bin", data);
            specs.push(ModuleSpec::new(&path).with(v));
        }
        for k in 0..fill.div_ceil(FILL_PER_MODULE) {
            let path = format!("bench.example/regions/fill/f{k:04}");
            let mut m = ModuleSpec::new(&path);
            for i in 0..FILL_PER_MODULE.min(fill - k * FILL_PER_MODULE) {
                m = m.version(&format!("v1.0.{i}"), &time());
            }
            specs.push(m);
        }
        let corpus = Corpus::load_or_write(base, &specs)
            .with_context(|| format!("writing the corpus under {}", base.display()))?;
        let of = |prefix: &str| -> Vec<Entry> {
            corpus
                .entries
                .iter()
                .filter(|e| e.module.starts_with(prefix))
                .cloned()
                .collect()
        };
        let cold = (0..groups)
            .map(|g| of(&format!("bench.example/regions/cold/g{g}")))
            .collect();
        let (big, fill) = (
            of("bench.example/regions/big/"),
            of("bench.example/regions/fill/"),
        );
        Ok(BenchCorpus {
            corpus,
            cold,
            big,
            fill,
        })
    }
}

/// `module@version` of every entry (the go command's arguments).
pub fn mvs(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| format!("{}@{}", e.module, e.version))
        .collect()
}

/// The sha256 of every entry's zip (the blob names).
pub fn shas(entries: &[Entry]) -> BTreeSet<String> {
    entries.iter().map(|e| e.zip_sha256.clone()).collect()
}

/// `http://127.0.0.1:<port>` → the address.
pub fn addr_of(url: &str) -> anyhow::Result<SocketAddr> {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .with_context(|| format!("{url} is not http://<ip>:<port>"))
}

/// The URL path of `entry`'s `.info`, `.mod` or `.zip`.
fn path_of(e: &Entry, ext: &str) -> String {
    cairn_tests::h1::version_path(&e.module, &e.version, ext)
}

/// GETs `.info`, `.mod` and `.zip` of `e` at `addr` (each on a fresh connection, as a new
/// client would), checks the bodies against the corpus, and returns the `.info` time (the
/// request that fills the version) and the whole version's time, in ms.
pub async fn fetch_version(addr: SocketAddr, e: &Entry) -> anyhow::Result<(f64, f64)> {
    let client = Client::default();
    let start = Instant::now();
    let mut info_ms = 0.0;
    for ext in ["info", "mod", "zip"] {
        let path = path_of(e, ext);
        let (status, body) = load::fetch(addr, &client, &path).await?;
        ensure!(status == 200, "GET {path}: {status}");
        let ok = match ext {
            "info" => body == e.info.as_bytes(),
            "mod" => body == e.go_mod.as_bytes(),
            _ => cairn_tests::h1::sha256_hex(&body) == e.zip_sha256,
        };
        ensure!(ok, "GET {path}: the body differs from the upstream's");
        if ext == "info" {
            info_ms = ms_since(start);
        }
    }
    Ok((info_ms, ms_since(start)))
}

/// Cold-fill timings of `entries` fetched one after another through `lb` inside `region`:
/// (`.info` times, whole-version times).
pub async fn cold_fills(
    net: &Regions,
    region: &str,
    lb: SocketAddr,
    entries: Vec<Entry>,
) -> anyhow::Result<(Summary, Summary)> {
    net.run_async_in(region, move || async move {
        let (mut info, mut whole) = (Vec::new(), Vec::new());
        for e in &entries {
            let (i, w) = fetch_version(lb, e).await?;
            info.push(i);
            whole.push(w);
        }
        Ok::<_, anyhow::Error>((Summary::of(&info), Summary::of(&whole)))
    })
    .await?
}

/// Fetches every entry through `lb` inside `region`, `concurrency` at a time; returns the
/// wall time in seconds.
pub async fn fill(
    net: &Regions,
    region: &str,
    lb: SocketAddr,
    entries: Vec<Entry>,
    concurrency: usize,
) -> anyhow::Result<f64> {
    net.run_async_in(region, move || async move {
        let start = Instant::now();
        let results: Vec<anyhow::Result<(f64, f64)>> = stream::iter(entries.iter())
            .map(|e| fetch_version(lb, e))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for r in results {
            r?;
        }
        Ok::<_, anyhow::Error>(start.elapsed().as_secs_f64())
    })
    .await?
}

/// Hit latency of one path at one node, measured from inside its region.
#[derive(Debug, Clone, Copy)]
pub struct HitFigures {
    /// Requests per second over the window.
    pub rps: f64,
    /// Median latency, ms.
    pub p50: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Failed requests.
    pub errors: u64,
}

impl HitFigures {
    /// As JSON.
    pub fn json(&self) -> serde_json::Value {
        json!({ "rps": self.rps, "p50_ms": self.p50, "p99_ms": self.p99, "errors": self.errors })
    }
}

/// A closed-loop keep-alive load of `conns` connections on `path` at `addr`, from inside
/// `region`, for `secs` after a one-second warm-up.
pub async fn hits(
    net: &Regions,
    region: &str,
    addr: SocketAddr,
    path: String,
    expected_bytes: u64,
    conns: usize,
    secs: f64,
) -> anyhow::Result<HitFigures> {
    net.run_async_in(region, move || async move {
        let from = Instant::now() + Duration::from_secs(1);
        let spec = LoadSpec {
            addr,
            path,
            expected_bytes,
            conns,
            measure_from: from,
            measure_to: from + Duration::from_secs_f64(secs),
            client: Client::default(),
        };
        let r = load::run(spec).await;
        let q = |q: f64| {
            let v = &r.latencies_us;
            match v.len() {
                0 => f64::NAN,
                n => f64::from(v[((q * n as f64) as usize).min(n - 1)]) / 1000.0,
            }
        };
        HitFigures {
            rps: r.requests as f64 / secs,
            p50: q(0.5),
            p99: q(0.99),
            errors: r.errors,
        }
    })
    .await
}

/// Bytes on the emulated links between two readings, by (from, to).
pub fn link_delta(
    before: &BTreeMap<(String, String), u64>,
    after: &BTreeMap<(String, String), u64>,
) -> BTreeMap<(String, String), u64> {
    after
        .iter()
        .map(|(k, n)| (k.clone(), n - before.get(k).copied().unwrap_or(0)))
        .collect()
}

/// Bytes that crossed between regions (the root namespace, where the upstream lives, left out).
pub fn cross_region_total(delta: &BTreeMap<(String, String), u64>) -> u64 {
    delta
        .iter()
        .filter(|((s, d), _)| s != ROOT && d != ROOT)
        .map(|(_, n)| n)
        .sum()
}

/// Bytes each region received from the other regions (the root namespace left out).
pub fn into_regions(delta: &BTreeMap<(String, String), u64>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for ((s, d), n) in delta {
        if s != ROOT && d != ROOT {
            *out.entry(d.clone()).or_insert(0) += n;
        }
    }
    out
}

/// Bytes cairn's nodes say they received from other regions
/// (`cairn_cluster_cross_region_bytes_total{direction="received"}`), summed by the nodes' region.
pub async fn metric_bytes_in(d: &Deployment) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for (id, region) in &d.region_of {
        let m = d.cluster.metrics(*id).await?;
        let n = m.sum(
            cairn_tests::netns::deploy::CROSS_REGION_BYTES,
            &[("direction", "received")],
        );
        *out.entry(region.clone()).or_insert(0.0) += n;
    }
    Ok(out)
}

/// Serving requests the nodes sent to other regions so far (housekeeping excluded), in total.
pub async fn cross_region_serving(d: &Deployment) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for (id, region) in &d.region_of {
        let m = d.cluster.metrics(*id).await?;
        total += cairn_tests::netns::deploy::cross_region_requests(&m, region)
            .map_err(anyhow::Error::msg)?;
    }
    Ok(total)
}

/// Mebibytes, for tables.
pub fn mib(bytes: f64) -> f64 {
    bytes / f64::from(1u32 << 20)
}
