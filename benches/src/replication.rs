//! Blob replication throughput: a 50 MB incompressible module zip requested cold through node 1,
//! timed until the blob file is complete on every node's disk, against raw copies of the same
//! bytes.
//!
//! A round writes a fresh version of `example.com/big` into the `file://` upstream (a stored zip
//! of pseudo-random data, so its size is what moves), then at t = 0 sends
//! `GET /example.com/big/@v/<v>.zip` to node 1 and polls every 2 ms each node's
//! `blobs/<aa>/<sha256>` (cairn renames a blob into place only once it is complete and fsynced;
//! the size is checked too). It records the response head and last body byte on node 1, the
//! time each node's copy appeared, and so the time until `min_copies` (2) nodes and all 3 hold
//! it. Afterwards every copy and the response body are hashed and compared with the upstream
//! file (outside the timing). The owner fills (upstream → temp file → zip check → fsync →
//! rename), copies to one peer before committing the record, and the third node pulls it after
//! the commit; the deltas of the nodes' duration histograms over the round show where the time
//! went.
//!
//! Baselines, same file, same disk: a loopback TCP sender/receiver (256 KiB chunks, the receiver
//! writes a temp file, fsyncs, renames and fsyncs the directory, like a blob commit), a plain
//! file copy with the same durability, and one SHA-256 pass over the bytes.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;
use sha2::Digest;
use tokio::time::Instant;

use crate::cluster::{self, Cluster};
use crate::corpus;
use crate::promtext::Scrape;
use crate::stats::Summary;

/// The module holding the large zips.
const BIG_MODULE: &str = "example.com/big";
/// Chunk size of the raw copies (a plain copy loop, independent of cairn's `transfer_chunk_bytes`).
const CHUNK: usize = 256 * 1024;
/// A round gives up after this long.
const ROUND_TIMEOUT: Duration = Duration::from_secs(120);
/// Counters whose deltas explain a round (failed or retried transfers show here).
const COUNTERS: &[&str] = &[
    "cairn_blob_replications_total",
    "cairn_peer_fetches_total",
    "cairn_repairs_total",
    "cairn_owner_fills_total",
];
/// Histograms whose deltas explain a round.
const HISTOGRAMS: &[&str] = &[
    "cairn_upstream_request_duration_seconds",
    "cairn_blob_replication_duration_seconds",
    "cairn_blob_transfer_duration_seconds",
    "cairn_raft_propose_duration_seconds",
    "cairn_http_request_duration_seconds",
];

/// A large zip in the upstream.
#[derive(Debug, Clone)]
pub struct BigZip {
    /// URL path of the zip.
    pub path: String,
    /// The file in the upstream tree.
    pub file: PathBuf,
    /// Its size.
    pub size: u64,
    /// Its sha256 (hex): the blob address.
    pub sha256: String,
}

/// Writes version `v1.0.<n>` of [`BIG_MODULE`] with a zip of about `bytes` bytes.
pub fn write_big(root: &Path, n: u64, bytes: usize) -> anyhow::Result<BigZip> {
    let version = format!("v1.0.{n}");
    let (path, size) = corpus::write_version(
        root,
        BIG_MODULE,
        &version,
        Some((bytes, (bytes >> 20).max(1))),
        1000 + n,
    )?;
    let file = root.join(&path[1..]);
    let sha256 = sha256_file(&file)?;
    Ok(BigZip {
        path,
        file,
        size,
        sha256,
    })
}

/// Hex sha256 of a file.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(cairn_tests::h1::hex(&hasher.finalize()))
}

/// Raw-copy baselines (ms, median of `reps`).
#[derive(Debug, Clone, Default)]
pub struct Baselines {
    /// Loopback TCP send + receive to a file + fsync + rename + dir fsync.
    pub tcp_copy: Summary,
    /// File read + write + fsync + rename + dir fsync.
    pub file_copy: Summary,
    /// One SHA-256 pass over the bytes (page cache).
    pub sha256: Summary,
    /// Bytes copied.
    pub bytes: u64,
}

impl Baselines {
    /// As JSON.
    pub fn json(&self) -> serde_json::Value {
        json!({ "bytes": self.bytes, "tcp_copy_fsync": self.tcp_copy.json(),
                "file_copy_fsync": self.file_copy.json(), "sha256": self.sha256.json() })
    }
}

/// Times the raw copies of `src` into `scratch`, `reps` times each.
pub fn baselines(src: &Path, scratch: &Path, reps: usize) -> anyhow::Result<Baselines> {
    std::fs::create_dir_all(scratch)?;
    let (mut tcp, mut file, mut sha) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..reps.max(1) {
        let dst = scratch.join(format!("tcp-{i}"));
        tcp.push(ms(tcp_copy(src, &dst)?));
        std::fs::remove_file(&dst)?;
        let dst = scratch.join(format!("file-{i}"));
        file.push(ms(file_copy(src, &dst)?));
        std::fs::remove_file(&dst)?;
        let t = std::time::Instant::now();
        std::hint::black_box(sha256_file(src)?);
        sha.push(ms(t.elapsed()));
    }
    Ok(Baselines {
        tcp_copy: Summary::of(&tcp),
        file_copy: Summary::of(&file),
        sha256: Summary::of(&sha),
        bytes: std::fs::metadata(src)?.len(),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Writes `from` into `dst` durably: a temp file next to it, fsync, rename, directory fsync.
fn write_durably(from: &mut impl Read, dst: &Path) -> anyhow::Result<u64> {
    let tmp = dst.with_extension("tmp");
    let mut out = std::fs::File::create(&tmp)?;
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, dst)?;
    if let Some(dir) = dst.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(total)
}

/// Sends `src` over a loopback TCP connection to a receiver thread that writes it durably.
fn tcp_copy(src: &Path, dst: &Path) -> anyhow::Result<Duration> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let dst = dst.to_path_buf();
    let start = std::time::Instant::now();
    let receiver = std::thread::spawn(move || -> anyhow::Result<u64> {
        let (mut stream, _) = listener.accept()?;
        write_durably(&mut stream, &dst)
    });
    let mut stream = std::net::TcpStream::connect(addr)?;
    let mut file = std::fs::File::open(src)?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        stream.write_all(&buf[..n])?;
    }
    drop(stream);
    let got = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("the receiver thread panicked"))??;
    let took = start.elapsed();
    if got != std::fs::metadata(src)?.len() {
        bail!("tcp copy received {got} bytes");
    }
    Ok(took)
}

fn file_copy(src: &Path, dst: &Path) -> anyhow::Result<Duration> {
    let start = std::time::Instant::now();
    write_durably(&mut std::fs::File::open(src)?, dst)?;
    Ok(start.elapsed())
}

/// One replication round (ms since the request was sent).
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// 1-based round number.
    pub round: usize,
    /// Zip size.
    pub bytes: u64,
    /// Response head from node 1.
    pub head_ms: f64,
    /// Last body byte from node 1.
    pub body_ms: f64,
    /// When each node's copy was complete: (node id, ms), in order of appearance.
    pub copies: Vec<(u64, f64)>,
    /// Every copy and the response body hash to the upstream zip's sha256.
    pub verified: bool,
    /// Per node, histogram sum/count deltas over the round: (node, series, Σ seconds, count).
    pub breakdown: Vec<(u64, String, f64, f64)>,
}

impl Round {
    /// Time until `k` nodes held the blob.
    pub fn copies_ms(&self, k: usize) -> Option<f64> {
        self.copies.get(k.wrapping_sub(1)).map(|c| c.1)
    }

    /// As JSON.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "round": self.round, "bytes": self.bytes,
            "response_head_ms": self.head_ms, "response_body_ms": self.body_ms,
            "copies": self.copies.iter().map(|(id, ms)| json!({"node": id, "ms": ms})).collect::<Vec<_>>(),
            "first_copy_ms": self.copies_ms(1), "min_copies_ms": self.copies_ms(2),
            "all_copies_ms": self.copies_ms(3), "verified": self.verified,
            "breakdown": self.breakdown.iter().map(|(id, s, sum, n)| json!({
                "node": id, "series": s,
                "sum_seconds": if sum.is_nan() { None } else { Some(sum) },
                "count": n })).collect::<Vec<_>>(),
        })
    }
}

/// Runs one cold 50 MB miss through node 1 of `cluster` and times the copies.
pub async fn cluster_round(cluster: &Cluster, zip: &BigZip, round: usize) -> anyhow::Result<Round> {
    let ids = cluster.up_ids();
    let addrs: Vec<(u64, SocketAddr)> = ids.iter().map(|&id| (id, cluster.node(id).http)).collect();
    let before = scrape_addrs(&addrs).await?;
    let paths: Vec<(u64, PathBuf)> = ids
        .iter()
        .map(|&id| (id, cluster.node(id).blob_path(&zip.sha256)))
        .collect();
    let addr = cluster.node(1).http;
    let path = zip.path.clone();
    let start = Instant::now();
    let get = tokio::spawn(async move { cluster::timed_get(addr, &path, ROUND_TIMEOUT).await });
    let copies = poll_copies(&paths, zip.size, start).await;
    let got = get.await.context("the request task panicked")??;
    if got.status != hyper::StatusCode::OK {
        bail!("GET {} on node 1 answered {}", zip.path, got.status);
    }
    let after = scrape_addrs(&addrs).await?;
    let mut verified = got.body.len() as u64 == zip.size
        && cairn_tests::h1::sha256_hex(&got.body) == zip.sha256
        && copies.len() == paths.len();
    for (_, p) in &paths {
        verified &= sha256_file(p).is_ok_and(|h| h == zip.sha256);
    }
    Ok(Round {
        round,
        bytes: zip.size,
        head_ms: ms(got.head),
        body_ms: ms(got.done),
        copies,
        verified,
        breakdown: deltas(&before, &after),
    })
}

/// Polls `paths` every 2 ms until each file exists with `size` bytes (or the round times out);
/// returns (node, ms since `start`) in order of appearance.
async fn poll_copies(paths: &[(u64, PathBuf)], size: u64, start: Instant) -> Vec<(u64, f64)> {
    let mut seen: Vec<(u64, f64)> = Vec::new();
    while seen.len() < paths.len() && start.elapsed() < ROUND_TIMEOUT {
        for (id, p) in paths {
            if seen.iter().any(|(s, _)| s == id) {
                continue;
            }
            if std::fs::metadata(p).is_ok_and(|m| m.len() == size) {
                seen.push((*id, ms(start.elapsed())));
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    seen
}

/// Scrapes by node id.
pub type Histos = Vec<(u64, Scrape)>;

/// Scrapes `/metrics` of each (id, address).
pub async fn scrape_addrs(addrs: &[(u64, SocketAddr)]) -> anyhow::Result<Histos> {
    let mut out = Vec::new();
    for &(id, addr) in addrs {
        let (status, body) = tokio::time::timeout(
            Duration::from_secs(5),
            crate::servers::get(addr, "/metrics"),
        )
        .await
        .context("GET /metrics timed out")??;
        if status != hyper::StatusCode::OK {
            bail!("GET /metrics on node {id}: {status}");
        }
        out.push((id, Scrape::parse(&String::from_utf8_lossy(&body))));
    }
    Ok(out)
}

/// Non-zero `_sum`/`_count` deltas of [`HISTOGRAMS`] (seconds, count) and of [`COUNTERS`]
/// (NaN, count), per node and label set.
pub fn deltas(before: &Histos, after: &Histos) -> Vec<(u64, String, f64, f64)> {
    let mut out = Vec::new();
    for ((id, b), (_, a)) in before.iter().zip(after) {
        for name in COUNTERS {
            for (labels, now) in a.series(name) {
                let old = b
                    .series(name)
                    .into_iter()
                    .find(|(l, _)| *l == labels)
                    .map_or(0.0, |(_, v)| v);
                if now > old {
                    let short = name.trim_start_matches("cairn_");
                    out.push((*id, format!("{short}{{{labels}}}"), f64::NAN, now - old));
                }
            }
        }
        for name in HISTOGRAMS {
            let sum_name = format!("{name}_sum");
            let count_name = format!("{name}_count");
            for (labels, sum) in a.series(&sum_name) {
                let old = |n: &str| {
                    b.series(n)
                        .into_iter()
                        .find(|(l, _)| *l == labels)
                        .map_or(0.0, |(_, v)| v)
                };
                let count = a
                    .series(&count_name)
                    .into_iter()
                    .find(|(l, _)| *l == labels)
                    .map_or(0.0, |(_, v)| v);
                let (ds, dc) = (sum - old(&sum_name), count - old(&count_name));
                if dc > 0.0 {
                    let short = name
                        .trim_start_matches("cairn_")
                        .trim_end_matches("_seconds");
                    let series = if labels.is_empty() {
                        short.to_owned()
                    } else {
                        format!("{short}{{{labels}}}")
                    };
                    out.push((*id, series, ds, dc));
                }
            }
        }
    }
    out
}

/// A cold miss of `zip` on a single node (`addr`, blobs under `data`): response head/body and
/// when the blob file was complete (ms).
pub async fn single_node_fill(
    addr: SocketAddr,
    data: &Path,
    zip: &BigZip,
) -> anyhow::Result<Round> {
    let before = scrape_addrs(&[(0, addr)]).await?;
    let blob = data.join("blobs").join(&zip.sha256[..2]).join(&zip.sha256);
    let path = zip.path.clone();
    let start = Instant::now();
    let get = tokio::spawn(async move { cluster::timed_get(addr, &path, ROUND_TIMEOUT).await });
    let copies = poll_copies(&[(0, blob.clone())], zip.size, start).await;
    let got = get.await.context("the request task panicked")??;
    if got.status != hyper::StatusCode::OK {
        bail!(
            "GET {} on the single node answered {}",
            zip.path,
            got.status
        );
    }
    let verified = got.body.len() as u64 == zip.size
        && sha256_file(&blob).is_ok_and(|h| h == zip.sha256)
        && cairn_tests::h1::sha256_hex(&got.body) == zip.sha256;
    let after = scrape_addrs(&[(0, addr)]).await?;
    Ok(Round {
        round: 1,
        bytes: zip.size,
        head_ms: ms(got.head),
        body_ms: ms(got.done),
        copies,
        verified,
        breakdown: deltas(&before, &after),
    })
}
