//! The offline half of backups: `cairn backup verify DIR` and `cairn restore`. Neither talks to
//! a node; both read the directory `cairn backup` wrote (format: `cairn_node::backup`).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use cairn_node::backup::{self, RestoreSummary, Verified};

use crate::backup_progress::bytes;

/// Checks the backup in `dir` (blocking work on a worker thread).
pub async fn verify(dir: &Path) -> Result<Verified> {
    let d = dir.to_path_buf();
    let v = tokio::task::spawn_blocking(move || backup::verify(&d)).await??;
    Ok(v)
}

/// The text report of a verification.
pub fn render_verified(dir: &Path, v: &Verified) -> String {
    let m = &v.manifest;
    let mut out = String::new();
    for p in &v.problems {
        out.push_str(&format!("problem: {p}\n"));
    }
    out.push_str(&format!(
        "{}: backup of node {} at log index {} (term {}), {} ({}), {} versions, {} of {} blobs included; {} blobs ({}) verified; {} problem(s)\n",
        dir.display(),
        m.source.node_id,
        m.applied.index,
        m.applied.term,
        m.created_at,
        serde_json::to_value(m.mode).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        m.counts.versions,
        m.counts.blobs_included,
        m.counts.blobs,
        v.blobs_ok,
        bytes(v.bytes_ok),
        v.problems.len()
    ));
    out
}

/// The `--json` report of a verification.
pub fn verified_json(v: &Verified) -> serde_json::Value {
    let m = &v.manifest;
    serde_json::json!({
        "ok": v.is_sound(),
        "applied_index": m.applied.index,
        "applied_term": m.applied.term,
        "node_id": m.source.node_id,
        "created_at": m.created_at,
        "mode": m.mode,
        "versions": m.counts.versions,
        "blobs_total": m.counts.blobs,
        "blobs_included": m.counts.blobs_included,
        "blobs_verified": v.blobs_ok,
        "bytes_verified": v.bytes_ok,
        "problems": v.problems.iter().map(|p| serde_json::json!({"file": p.file, "problem": p.problem})).collect::<Vec<_>>(),
    })
}

/// What `cairn restore` was asked to do.
#[derive(Debug, Clone)]
pub struct RestoreArgs {
    /// The backup directory.
    pub from: PathBuf,
    /// The new data directory.
    pub data_dir: PathBuf,
    /// The restored node's id.
    pub node_id: u64,
    /// Its cluster address as its future peers will dial it.
    pub cluster_addr: String,
}

/// Restores; the error names every problem of a damaged backup.
pub async fn restore(a: &RestoreArgs) -> Result<RestoreSummary> {
    eprintln!(
        "restore: verifying every file of {} before writing anything",
        a.from.display()
    );
    backup::restore(&a.from, &a.data_dir, a.node_id, &a.cluster_addr)
        .await
        .map_err(|e| anyhow!("restore refused or failed: {e}"))
}

/// The text report of a restore, with what to do next.
pub fn render_restored(s: &RestoreSummary) -> String {
    format!(
        "restored {} versions and {} blobs ({}) into {} as node {} of a new cluster, continuing after log index {} (term {}); {} blobs were not in the backup and will be fetched again on demand\n\
         next: start cairn-node --data-dir {} --node-id {} --cluster-listen {} (no --peers), then start the other nodes empty and add each with `cairn members add ID ADDR`\n",
        s.versions,
        s.blobs,
        bytes(s.bytes),
        s.data_dir.display(),
        s.node_id,
        s.applied.index,
        s.applied.term,
        s.blobs_not_included,
        s.data_dir.display(),
        s.node_id,
        s.cluster_addr,
    )
}

/// The `--json` report of a restore.
pub fn restored_json(s: &RestoreSummary) -> serde_json::Value {
    serde_json::json!({
        "data_dir": s.data_dir,
        "node_id": s.node_id,
        "cluster_addr": s.cluster_addr,
        "applied_index": s.applied.index,
        "applied_term": s.applied.term,
        "versions": s.versions,
        "blobs": s.blobs,
        "bytes": s.bytes,
        "blobs_not_included": s.blobs_not_included,
    })
}
