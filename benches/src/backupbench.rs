//! `cairn-bench backup`: backup and restore throughput against a plain copy of the same blob
//! files, in the same run.
//!
//! One node (`file://` upstream in a temp directory) is filled with `--versions` versions of
//! about `--zip-mib` MiB each (incompressible, stored zips). Then, `--rounds` times and
//! alternating: `cairn backup --out` into a fresh directory (state export, streaming every blob
//! over loopback gRPC, hashing, fsync + rename each file, manifest last); `cp -r` of the node's
//! blob directory (no fsync); a durable plain copy of the node's blob files (read, write to a
//! temp file, fsync, rename, directory fsync per shard: the least any durable copy does);
//! `cairn restore` of that backup into a fresh data directory (which re-hashes the whole backup
//! before writing anything, then copies with fsync); `cp -r` of the backup directory; and the
//! durable plain copy of the backup's blob files. Page cache warm for every contender (nothing
//! is dropped). The median of each is reported with MiB/s and its speed relative to both plain
//! copies.
//! JSON goes to `target/bench-backup.json`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

use crate::corpus;
use crate::servers;

/// Backup and restore throughput vs a plain copy.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// Versions (one blob each).
    #[arg(long, default_value_t = 60)]
    versions: usize,
    /// Size of each zip, MiB.
    #[arg(long, default_value_t = 2)]
    zip_mib: usize,
    /// Rounds of each measurement (median reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The cairn-node binary (default: target/release/cairn-node in the workspace); the
    /// `cairn` CLI is taken from the same directory.
    #[arg(long, env = "CAIRN_NODE_BIN")]
    node_bin: Option<PathBuf>,
}

/// Runs the benchmark.
pub async fn run(args: BackupArgs) -> anyhow::Result<()> {
    let bin = crate::resolve_node_bin(args.node_bin.clone())?;
    let cli = bin.with_file_name("cairn");
    if !cli.is_file() {
        bail!(
            "the cairn CLI is not next to {} (cargo build --release -p cairn-cli)",
            bin.display()
        );
    }
    let work = tempfile::Builder::new()
        .prefix("cairn-bench-backup-")
        .tempdir()?;
    let root = work.path().join("corpus");
    let mut urls = Vec::new();
    let mut total = 0u64;
    for i in 0..args.versions {
        let module = format!("example.com/backup/m{i}");
        let (url, size) = corpus::write_version(
            &root,
            &module,
            corpus::VERSION,
            Some((args.zip_mib << 20, 4)),
            1000 + i as u64,
        )?;
        urls.push(url);
        total += size;
    }
    let node = servers::start_cairn(&bin, &root, work.path(), &[]).await?;
    for url in &urls {
        let (status, _) = servers::get(node.addr, url).await?;
        if !status.is_success() {
            bail!("warming {url}: {status}");
        }
    }
    let data = work.path().join("cairn-data");
    let cluster = cluster_addr(&data)?;
    println!(
        "backup bench: {} blobs, {:.1} MiB, node at {cluster}",
        urls.len(),
        mib(total)
    );
    let mut rows: Vec<(&str, Vec<Duration>)> = vec![
        ("cairn backup", Vec::new()),
        ("cp -r (node blobs)", Vec::new()),
        ("copy+fsync (node blobs)", Vec::new()),
        ("cairn restore", Vec::new()),
        ("cp -r (backup dir)", Vec::new()),
        ("copy+fsync (backup blobs)", Vec::new()),
    ];
    for r in 0..args.rounds {
        let out = work.path().join(format!("backup-{r}"));
        rows[0]
            .1
            .push(timed_cli(&cli, &cluster, &["backup", "--out", &s(&out)])?);
        let scratch = [
            work.path().join(format!("cp-{r}")),
            work.path().join(format!("plain-{r}")),
            work.path().join(format!("restored-{r}")),
            work.path().join(format!("cp-b-{r}")),
            work.path().join(format!("plain-b-{r}")),
        ];
        rows[1].1.push(cp_r(&data.join("blobs"), &scratch[0])?);
        rows[2]
            .1
            .push(plain_copy(&data.join("blobs"), &scratch[1])?);
        let restore = ["restore", "--from", &s(&out), "--data-dir", &s(&scratch[2])];
        rows[3].1.push(timed_cli(&cli, &cluster, &restore)?);
        rows[4].1.push(cp_r(&out, &scratch[3])?);
        rows[5].1.push(plain_copy(&out.join("blobs"), &scratch[4])?);
        for d in scratch.iter().chain([&out]) {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    drop(node);
    report(&rows, total, urls.len())
}

/// Prints and writes the medians; each cairn row is compared with the `cp -r` and the
/// copy+fsync of the same files (backup: the node's blobs; restore: the backup directory).
fn report(rows: &[(&str, Vec<Duration>)], total: u64, blobs: usize) -> anyhow::Result<()> {
    let med: Vec<f64> = rows.iter().map(|(_, t)| median(t)).collect();
    println!(
        "{:<28} {:>10} {:>10} {:>12} {:>14}",
        "", "median s", "MiB/s", "vs cp -r", "vs copy+fsync"
    );
    let mut out = Vec::new();
    for (i, (name, times)) in rows.iter().enumerate() {
        let group = if i < 3 { 0 } else { 3 };
        let (vs_cp, vs_fsync) = (med[group + 1] / med[i], med[group + 2] / med[i]);
        println!(
            "{name:<28} {:>10.3} {:>10.1} {:>11.2}x {:>13.2}x",
            med[i],
            mib(total) / med[i],
            vs_cp,
            vs_fsync
        );
        out.push(
            json!({"name": name, "median_s": med[i], "mib_per_s": mib(total) / med[i],
            "speed_vs_cp_r": vs_cp, "speed_vs_copy_fsync": vs_fsync,
            "rounds_s": times.iter().map(Duration::as_secs_f64).collect::<Vec<_>>()}),
        );
    }
    println!(
        "(speed ratio = the plain copy's time / this time; 1.00x = as fast as the plain copy)"
    );
    let path = crate::workspace_root().join("target/bench-backup.json");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let body = json!({"blobs": blobs, "bytes": total, "results": out});
    std::fs::write(&path, serde_json::to_vec_pretty(&body)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("JSON: {}", path.display());
    Ok(())
}

/// `cp -r FROM TO` (no fsync: what an operator's ad-hoc copy does); returns the time taken.
fn cp_r(from: &Path, to: &Path) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .stdin(Stdio::null())
        .status()?;
    let took = start.elapsed();
    if !status.success() {
        bail!("cp -r {} {} failed: {status}", from.display(), to.display());
    }
    Ok(took)
}

fn cluster_addr(data: &Path) -> anyhow::Result<String> {
    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("listen-addrs.json"))?)?;
    j["cluster"]
        .as_str()
        .map(str::to_owned)
        .context("listen-addrs.json has no cluster address")
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn median(t: &[Duration]) -> f64 {
    let mut v: Vec<f64> = t.iter().map(Duration::as_secs_f64).collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs `cairn --node ADDR args…` and times it; fails with its output unless it succeeds.
fn timed_cli(cli: &Path, node: &str, args: &[&str]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let out = std::process::Command::new(cli)
        .arg("--node")
        .arg(node)
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!(
            "cairn {} failed: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

/// Copies every `<aa>/<sha256>` file under `from` into `to`: temp file, fsync, rename, then
/// one fsync per shard directory. Returns the time taken.
fn plain_copy(from: &Path, to: &Path) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for shard in std::fs::read_dir(from)?.flatten() {
        let name = shard.file_name();
        if name.len() != 2 || !shard.path().is_dir() {
            continue;
        }
        let dest_dir = to.join(&name);
        std::fs::create_dir_all(&dest_dir)?;
        for f in std::fs::read_dir(shard.path())?.flatten() {
            let fname = f.file_name();
            if fname.len() != 64 {
                continue;
            }
            let tmp = dest_dir.join(format!(".{}.tmp", fname.to_string_lossy()));
            std::fs::copy(f.path(), &tmp)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, dest_dir.join(&fname))?;
        }
        std::fs::File::open(&dest_dir)?.sync_all()?;
    }
    Ok(start.elapsed())
}
