//! `cairn backup --out DIR`: a consistent copy of the replicated state plus the blobs it
//! references, streamed from one node (`Admin.BackupState`, `Admin.BackupBlob`).
//!
//! Order of writing, so that an interrupted run is never taken for a finished one: the old
//! `backup.json` (if any) is removed first, then `state.json` and the blobs are written (each to a
//! temp name, fsynced, renamed), and `backup.json` last, by atomic rename. Every blob is checked
//! (size and sha256) while it is written. A re-run into the same directory copies only blobs not
//! already there (same name and size; `--verify-existing` re-hashes them too).
//!
//! The format is `cairn_node::backup`'s; `cairn backup verify` and `cairn restore` read it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use cairn_node::backup::{
    blob_manifest, blob_path, rfc3339_ms, AppliedId, BlobEntry, Counts, Manifest, ManifestMember,
    Mode, SourceNode, StateFile, FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE, STATE_FILE,
};
use cairn_proto::v1::admin_client::AdminClient;
use cairn_proto::v1::{BackupBlobRequest, BackupStateHeader, BackupStateRequest};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tonic::transport::Channel;

use crate::backup_progress::{Counter, Progress};
use crate::client;

/// What to back up and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The backup directory.
    pub out: PathBuf,
    /// Which blobs.
    pub mode: Mode,
    /// Re-hash blobs already present instead of trusting name and size.
    pub verify_existing: bool,
    /// Blobs in flight at once.
    pub concurrency: usize,
    /// Delete blob files the new manifest does not include, once it is written.
    pub prune: bool,
}

/// The outcome of a finished backup.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The manifest written.
    pub manifest: Manifest,
    /// Blobs copied by this run.
    pub copied: u64,
    /// Their bytes.
    pub copied_bytes: u64,
    /// Included blobs that were already in the directory.
    pub present: u64,
    /// Refetchable blobs no live node held, left out (marked not included).
    pub unavailable: u64,
    /// Blob files deleted by `--prune`.
    pub pruned: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Runs a backup from `node` into `opts.out`.
pub async fn run(node: &str, timeout: Duration, opts: &Options) -> Result<Summary> {
    let started = Instant::now();
    let out = &opts.out;
    std::fs::create_dir_all(out.join("blobs"))
        .with_context(|| format!("cannot create {}", out.display()))?;
    remove_if_present(&out.join(MANIFEST_FILE))?;
    let mut client = client::connect(node, timeout)
        .await?
        .max_decoding_message_size(8 << 20);
    let (header, state) = fetch_state(&mut client).await?;
    write_atomically(&out.join(STATE_FILE), &state).await?;
    let versions = cairn_node::raft::backup::state_versions(&state)
        .map_err(|e| anyhow!("the node sent a state this CLI cannot read: {e}"))?;
    let mut blobs = blob_manifest(&versions, opts.mode);
    let wanted: Vec<&BlobEntry> = blobs.iter().filter(|b| b.included).collect();
    let (todo, present) = split_present(out, &wanted, opts.verify_existing).await?;
    let progress = Progress::new(
        "backup",
        todo.len() as u64,
        todo.iter().map(|b| b.size).sum(),
    );
    progress.note(&format!(
        "state at log index {} ({} bytes, {} versions) from node {}; {} blobs to copy, {} already present",
        header.applied_index,
        state.len(),
        versions.len(),
        header.node_id,
        todo.len(),
        present
    ));
    let copy = copy_blobs(&client, out, &todo, opts.concurrency, &progress.counter()).await;
    progress.finish();
    let mut failures = copy.failures;
    let mut left_out = Vec::new();
    for b in copy.unavailable {
        if b.refetchable {
            eprintln!(
                "backup: warning: no live node holds blob {} ({} bytes, zip of {}); left out of the backup (refetchable: a restored cluster fetches it again from the upstream)",
                b.sha256,
                b.size,
                b.versions.join(", ")
            );
            left_out.push(b.sha256.clone());
        } else {
            failures.push(format!(
                "  {} ({} bytes, zip of {}): no live node holds it, and it cannot be fetched again",
                b.sha256,
                b.size,
                b.versions.join(", ")
            ));
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} blob(s) could not be backed up; the backup is incomplete (no {MANIFEST_FILE} written):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    let done: Vec<&BlobEntry> = todo
        .iter()
        .filter(|b| !left_out.contains(&b.sha256))
        .copied()
        .collect();
    sync_shards(out, &done).await?;
    let copied = done.len() as u64;
    let copied_bytes = done.iter().map(|b| b.size).sum();
    let unavailable = left_out.len() as u64;
    for b in blobs.iter_mut().filter(|b| left_out.contains(&b.sha256)) {
        b.included = false;
    }
    let manifest = manifest(
        node,
        &header,
        &state,
        versions.len() as u64,
        blobs,
        opts.mode,
    );
    let json = serde_json::to_vec_pretty(&manifest)?;
    write_atomically(&out.join(MANIFEST_FILE), &json).await?;
    let pruned = match opts.prune {
        true => {
            let (dir, keep) = (out.clone(), manifest.blobs.clone());
            tokio::task::spawn_blocking(move || prune(&dir, &keep)).await??
        }
        false => 0,
    };
    Ok(Summary {
        manifest,
        copied,
        copied_bytes,
        present,
        unavailable,
        pruned,
        elapsed: started.elapsed(),
    })
}

/// Deletes every file under `out/blobs/` that is not an included blob of `keep` (old blobs,
/// temp files of interrupted runs); returns how many. Only 2-character shard directories are
/// looked into, and emptied ones are removed.
fn prune(out: &Path, keep: &[BlobEntry]) -> Result<u64> {
    let keep: std::collections::BTreeSet<&str> = keep
        .iter()
        .filter(|b| b.included)
        .map(|b| b.sha256.as_str())
        .collect();
    let root = out.join("blobs");
    let mut removed = 0;
    for shard in std::fs::read_dir(&root).with_context(|| format!("reading {}", root.display()))? {
        let shard = shard?;
        if shard.file_name().len() != 2 || !shard.file_type()?.is_dir() {
            continue;
        }
        let mut left = 0;
        for f in std::fs::read_dir(shard.path())? {
            let f = f?;
            let name = f.file_name();
            if f.file_type()?.is_file() && !keep.contains(name.to_string_lossy().as_ref()) {
                std::fs::remove_file(f.path())
                    .with_context(|| format!("pruning {}", f.path().display()))?;
                removed += 1;
            } else {
                left += 1;
            }
        }
        if left == 0 {
            let _ = std::fs::remove_dir(shard.path());
        }
    }
    Ok(removed)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove the old {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// The longest a backup stream may stay silent (the first state message can wait for a
/// follower's catch-up, up to 30 s on the node) before the backup fails.
const STALL: Duration = Duration::from_secs(90);

/// Awaits one step of a backup stream, failing after [`STALL`] of silence.
async fn stalled<T>(step: impl std::future::Future<Output = T>) -> Result<T> {
    tokio::time::timeout(STALL, step)
        .await
        .map_err(|_| anyhow!("the node sent nothing for {STALL:?}; giving up"))
}

/// Streams the state; checks its size and sha256 against the header.
async fn fetch_state(client: &mut AdminClient<Channel>) -> Result<(BackupStateHeader, Vec<u8>)> {
    let failed = |s: tonic::Status| anyhow!("backup failed: {}", client::describe_status(&s));
    let mut stream = stalled(client.backup_state(BackupStateRequest {}))
        .await?
        .map_err(failed)?
        .into_inner();
    let mut header = None;
    let mut data = Vec::new();
    while let Some(msg) = stalled(stream.message()).await?.map_err(failed)? {
        if let Some(h) = msg.header {
            data.reserve(usize::try_from(h.size).unwrap_or(0));
            header = Some(h);
        }
        data.extend_from_slice(&msg.data);
    }
    let header = header.context("the node sent no backup header")?;
    let sha = hex::encode(Sha256::digest(&data));
    if data.len() as u64 != header.size || sha != header.sha256 {
        bail!(
            "the state arrived damaged: {} bytes with sha256 {sha}, the node announced {} bytes with sha256 {}",
            data.len(),
            header.size,
            header.sha256
        );
    }
    Ok((header, data))
}

/// Splits the wanted blobs into those to copy and the count of those already present.
async fn split_present<'a>(
    out: &Path,
    wanted: &[&'a BlobEntry],
    verify_existing: bool,
) -> Result<(Vec<&'a BlobEntry>, u64)> {
    let mut todo = Vec::new();
    let mut present = 0;
    for b in wanted {
        let path = blob_path(out, &b.sha256);
        let same_size = std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == b.size);
        let sound = same_size
            && (!verify_existing || {
                let p = path.clone();
                let hashed =
                    tokio::task::spawn_blocking(move || cairn_node::store::blob::hash_file(&p))
                        .await?;
                hashed.is_ok_and(|(sha, _)| sha == b.sha256)
            });
        if sound {
            present += 1;
        } else {
            todo.push(*b);
        }
    }
    Ok((todo, present))
}

/// What [`copy_blobs`] could not copy.
struct CopyOutcome<'a> {
    /// One line per blob that failed for another reason than absence.
    failures: Vec<String>,
    /// Blobs no live node holds (`NOT_FOUND`).
    unavailable: Vec<&'a BlobEntry>,
}

/// The node answered `NOT_FOUND`: no live node holds the blob.
#[derive(Debug)]
struct Unavailable(String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}

/// The error of a failed `BackupBlob` call or stream.
fn blob_status(s: tonic::Status) -> anyhow::Error {
    match s.code() {
        tonic::Code::NotFound => anyhow::Error::new(Unavailable(client::describe_status(&s))),
        _ => anyhow!(client::describe_status(&s)),
    }
}

/// Copies `todo`, `concurrency` at a time.
async fn copy_blobs<'a>(
    client: &AdminClient<Channel>,
    out: &Path,
    todo: &[&'a BlobEntry],
    concurrency: usize,
    progress: &Counter,
) -> CopyOutcome<'a> {
    let copies = todo.iter().map(|b| {
        let client = client.clone();
        async move { (b, copy_blob(client, out, b, progress).await) }
    });
    let mut stream = futures_util::stream::iter(copies).buffer_unordered(concurrency.max(1));
    let mut failures = Vec::new();
    let mut unavailable = Vec::new();
    while let Some((b, res)) = stream.next().await {
        match res {
            Ok(()) => progress.item(),
            Err(e) if e.downcast_ref::<Unavailable>().is_some() => unavailable.push(*b),
            Err(e) => failures.push(format!(
                "  {} ({} bytes, zip of {}): {e:#}",
                b.sha256,
                b.size,
                b.versions.join(", ")
            )),
        }
    }
    CopyOutcome {
        failures,
        unavailable,
    }
}

/// Streams one blob into `blobs/<aa>/<sha256>` via a temp file, checking size and sha256.
async fn copy_blob(
    mut client: AdminClient<Channel>,
    out: &Path,
    b: &BlobEntry,
    progress: &Counter,
) -> Result<()> {
    let dest = blob_path(out, &b.sha256);
    let dir = dest.parent().context("blob path without a directory")?;
    tokio::fs::create_dir_all(dir).await?;
    let tmp = dir.join(format!(".{}.tmp{:08x}", b.sha256, std::process::id()));
    let res = stream_to(&mut client, b, &tmp, progress).await;
    if res.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
        return res;
    }
    tokio::fs::rename(&tmp, &dest)
        .await
        .with_context(|| format!("renaming into {}", dest.display()))
}

async fn stream_to(
    client: &mut AdminClient<Channel>,
    b: &BlobEntry,
    tmp: &Path,
    progress: &Counter,
) -> Result<()> {
    let req = BackupBlobRequest {
        sha256: b.sha256.clone(),
        size: b.size,
    };
    let mut stream = stalled(client.backup_blob(req))
        .await?
        .map_err(blob_status)?
        .into_inner();
    let mut file = tokio::fs::File::create(tmp)
        .await
        .with_context(|| format!("creating {}", tmp.display()))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stalled(stream.message()).await?.map_err(blob_status)? {
        hasher.update(&chunk.data);
        size += chunk.data.len() as u64;
        if size > b.size {
            bail!("the node sent more than the recorded {} bytes", b.size);
        }
        file.write_all(&chunk.data).await?;
        progress.bytes(chunk.data.len() as u64);
    }
    let sha = hex::encode(hasher.finalize());
    if size != b.size || sha != b.sha256 {
        bail!("received {size} bytes hashing to {sha}: not the recorded blob (corrupt copy on the node?)");
    }
    file.sync_all().await?;
    Ok(())
}

/// Fsyncs the shard directories the new blobs were renamed into.
async fn sync_shards(out: &Path, copied: &[&BlobEntry]) -> Result<()> {
    let mut shards: Vec<PathBuf> = copied
        .iter()
        .filter_map(|b| blob_path(out, &b.sha256).parent().map(Path::to_path_buf))
        .collect();
    shards.sort();
    shards.dedup();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        for d in shards {
            std::fs::File::open(&d)?.sync_all()?;
        }
        Ok(())
    })
    .await??;
    Ok(())
}

/// Writes `bytes` to `path` through a temp file: fsync, rename, fsync the directory.
async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let (p, t, data) = (path.to_path_buf(), tmp.clone(), bytes.to_vec());
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&t)?;
        std::io::Write::write_all(&mut f, &data)?;
        f.sync_all()?;
        std::fs::rename(&t, &p)?;
        if let Some(dir) = p.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })
    .await?
    .with_context(|| format!("cannot write {}", path.display()))
}

fn manifest(
    node: &str,
    h: &BackupStateHeader,
    state: &[u8],
    versions: u64,
    blobs: Vec<BlobEntry>,
    mode: Mode,
) -> Manifest {
    let now = cairn_node::store::now_ms();
    Manifest {
        format: FORMAT_NAME.to_string(),
        format_version: FORMAT_VERSION,
        created_at_ms: now,
        created_at: rfc3339_ms(now),
        cairn_version: env!("CARGO_PKG_VERSION").to_string(),
        source: SourceNode {
            node_id: h.node_id,
            node_addr: node.to_string(),
            version: h.version.clone(),
            leader_id: h.leader_id,
            members: h
                .members
                .iter()
                .map(|m| ManifestMember {
                    id: m.id,
                    addr: m.addr.clone(),
                    voter: m.voter,
                })
                .collect(),
        },
        applied: AppliedId {
            index: h.applied_index,
            term: h.applied_term,
            leader: h.applied_leader,
        },
        mode,
        state: StateFile {
            file: STATE_FILE.to_string(),
            size: state.len() as u64,
            sha256: h.sha256.clone(),
        },
        counts: Counts::of(versions, &blobs),
        blobs,
    }
}

impl Summary {
    /// The `--json` form.
    pub fn to_json(&self) -> serde_json::Value {
        let m = &self.manifest;
        let secs = self.elapsed.as_secs_f64();
        serde_json::json!({
            "applied_index": m.applied.index,
            "applied_term": m.applied.term,
            "node_id": m.source.node_id,
            "mode": m.mode,
            "versions": m.counts.versions,
            "blobs_total": m.counts.blobs,
            "blobs_included": m.counts.blobs_included,
            "bytes_included": m.counts.bytes_included,
            "blobs_copied": self.copied,
            "bytes_copied": self.copied_bytes,
            "blobs_present": self.present,
            "blobs_unavailable": self.unavailable,
            "blobs_pruned": self.pruned,
            "seconds": secs,
            "bytes_per_second": if secs > 0.0 { self.copied_bytes as f64 / secs } else { 0.0 },
            "state_sha256": m.state.sha256,
        })
    }

    /// The text form.
    pub fn render(&self) -> String {
        let m = &self.manifest;
        format!(
            "backup complete: log index {} (term {}) from node {}, {} versions; {} of {} blobs included ({}), {} copied now ({}), {} already present{}{}; {:.1}s\n",
            m.applied.index,
            m.applied.term,
            m.source.node_id,
            m.counts.versions,
            m.counts.blobs_included,
            m.counts.blobs,
            crate::backup_progress::bytes(m.counts.bytes_included),
            self.copied,
            crate::backup_progress::bytes(self.copied_bytes),
            self.present,
            match self.unavailable {
                0 => String::new(),
                n => format!(", {n} held by no live node and left out (refetchable)"),
            },
            match self.pruned {
                0 => String::new(),
                n => format!(", {n} old blob file(s) pruned"),
            },
            self.elapsed.as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sha: &str, included: bool) -> BlobEntry {
        BlobEntry {
            sha256: sha.to_string(),
            size: 1,
            versions: Vec::new(),
            refetchable: true,
            included,
        }
    }

    #[test]
    fn prune_keeps_only_the_included_blobs() {
        let out = std::env::temp_dir().join(format!("cairn-prune-{}", std::process::id()));
        let (a, b, c) = ("aa".repeat(32), "ab".repeat(32), "bb".repeat(32));
        for sha in [&a, &b, &c] {
            let p = blob_path(&out, sha);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let tmp = blob_path(&out, &a).with_file_name(format!(".{a}.tmp0000002a"));
        std::fs::write(&tmp, b"x").unwrap();
        std::fs::write(out.join("state.json"), b"{}").unwrap();
        let keep = [entry(&a, true), entry(&b, false)];
        assert_eq!(
            prune(&out, &keep).unwrap(),
            3,
            "b (not included), c, the temp file"
        );
        assert!(blob_path(&out, &a).is_file());
        assert!(!blob_path(&out, &b).exists() && !tmp.exists());
        assert!(
            !out.join("blobs").join("bb").exists(),
            "emptied shard removed"
        );
        assert!(out.join("state.json").is_file(), "only blobs/ is pruned");
        std::fs::remove_dir_all(&out).unwrap();
    }
}
