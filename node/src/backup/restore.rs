//! `cairn restore`: a new data directory from a backup, which `cairn-node` starts as a new
//! single-node cluster. The backup is verified completely first; a backup with any problem is
//! refused before anything is written.

use std::path::{Path, PathBuf};

use super::format::blob_path;
use super::verify::{verify, Problem, VerifyError};
use super::AppliedId;
use crate::raft::backup::restore_state;
use crate::raft::ConsensusError;
use crate::store::blob::{BlobError, BlobStore};

/// What a restore built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreSummary {
    /// The new data directory.
    pub data_dir: PathBuf,
    /// The restored node's id.
    pub node_id: u64,
    /// Its cluster address in the new membership.
    pub cluster_addr: String,
    /// The log position the new cluster continues from.
    pub applied: AppliedId,
    /// Version records restored.
    pub versions: u64,
    /// Blobs copied into the blob store.
    pub blobs: u64,
    /// Their total size.
    pub bytes: u64,
    /// Blobs the state references that the backup did not include (fetched again on demand).
    pub blobs_not_included: u64,
}

/// A restore was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The backup cannot be read.
    #[error("{0}")]
    Verify(#[from] VerifyError),
    /// The backup has problems; nothing was written.
    #[error("the backup is damaged; nothing was written:\n{}", list(.0))]
    Damaged(Vec<Problem>),
    /// The target data directory is not empty.
    #[error("{0} is not empty: restore builds a fresh data directory (stop the node and give a new or empty one)")]
    NotEmpty(PathBuf),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The state could not be installed.
    #[error("{0}")]
    Consensus(#[from] ConsensusError),
    /// No `--cluster-addr` was given and the backed-up membership has no address for the node.
    #[error("node {0} was not a member of the backed-up cluster: give the address its peers will reach it at (--cluster-addr HOST:PORT)")]
    NoClusterAddr(u64),
    /// A blob could not be stored.
    #[error("blob store: {0}")]
    Blobs(#[from] BlobError),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Builds `data_dir` (absent or empty) from the backup in `from`: node `node_id`, which its
/// future peers reach at `cluster_addr`, sole member of a new cluster. An empty
/// `cluster_addr` means the address `node_id` had in the backed-up membership (hosts rebuilt
/// under their old names).
pub async fn restore(
    from: &Path,
    data_dir: &Path,
    node_id: u64,
    cluster_addr: &str,
) -> Result<RestoreSummary, RestoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RestoreError::Io { path, source }
    };
    if !is_empty_dir(data_dir).map_err(io(data_dir))? {
        return Err(RestoreError::NotEmpty(data_dir.to_path_buf()));
    }
    let dir = from.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || verify(&dir))
        .await
        .map_err(|e| RestoreError::Consensus(ConsensusError::Task(e)))??;
    if !checked.is_sound() {
        return Err(RestoreError::Damaged(checked.problems));
    }
    let m = &checked.manifest;
    let cluster_addr = match cluster_addr {
        "" => m
            .source
            .members
            .iter()
            .find(|mm| mm.id == node_id)
            .map(|mm| mm.addr.clone())
            .ok_or(RestoreError::NoClusterAddr(node_id))?,
        given => given.to_string(),
    };
    let existed = data_dir.exists();
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    let filled = fill(from, data_dir, node_id, &cluster_addr, &checked).await;
    let (blobs, bytes) = match filled {
        Ok(done) => done,
        Err(e) => {
            // Leave the directory as it was (absent or empty), so the restore can be re-run.
            let _ = std::fs::remove_dir_all(data_dir.join("meta"));
            let _ = std::fs::remove_dir_all(data_dir.join("blobs"));
            if !existed {
                let _ = std::fs::remove_dir(data_dir);
            }
            return Err(e);
        }
    };
    tracing::info!(node_id, index = m.applied.index, blobs, bytes, data_dir = %data_dir.display(), "restored a backup");
    Ok(RestoreSummary {
        data_dir: data_dir.to_path_buf(),
        node_id,
        cluster_addr,
        applied: m.applied,
        versions: m.counts.versions,
        blobs,
        bytes,
        blobs_not_included: m.counts.blobs.saturating_sub(m.counts.blobs_included),
    })
}

/// Writes the metadata store and copies the included blobs of the verified backup `checked`
/// (in `from`) into `data_dir`; returns the blobs and bytes copied.
async fn fill(
    from: &Path,
    data_dir: &Path,
    node_id: u64,
    cluster_addr: &str,
    checked: &super::Verified,
) -> Result<(u64, u64), RestoreError> {
    let m = &checked.manifest;
    restore_state(
        &data_dir.join("meta"),
        node_id,
        cluster_addr,
        &checked.state,
        m.applied,
    )
    .await?;
    let store = BlobStore::open(&data_dir.join("blobs"))?;
    let (mut blobs, mut bytes) = (0, 0);
    for b in m.blobs.iter().filter(|b| b.included) {
        let src = blob_path(from, &b.sha256);
        let tmp = store.temp_path();
        let copy = (src.clone(), tmp.clone());
        tokio::task::spawn_blocking(move || std::fs::copy(&copy.0, &copy.1))
            .await
            .map_err(|e| RestoreError::Consensus(ConsensusError::Task(e)))?
            .map_err(|source| RestoreError::Io { path: src, source })?;
        store.commit_hashed(tmp, b.sha256.clone(), b.size).await?;
        blobs += 1;
        bytes += b.size;
    }
    Ok((blobs, bytes))
}

/// Whether `dir` is absent or an empty directory.
fn is_empty_dir(dir: &Path) -> std::io::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut rd) => Ok(rd.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::super::verify::tests::sound_backup;
    use super::*;

    #[tokio::test]
    async fn a_sound_backup_becomes_a_data_directory_and_a_used_one_is_refused() {
        let (backup, shas) = sound_backup();
        let target = tempfile::tempdir().unwrap();
        let data = target.path().join("data");
        let no_addr = restore(backup.path(), &data, 1, "").await;
        assert!(
            matches!(no_addr, Err(RestoreError::NoClusterAddr(1))),
            "{no_addr:?}"
        );
        assert!(!data.exists(), "nothing written without an address");
        let s = restore(backup.path(), &data, 1, "127.0.0.1:7")
            .await
            .unwrap();
        assert_eq!((s.blobs, s.versions, s.blobs_not_included), (2, 2, 0));
        assert_eq!(s.cluster_addr, "127.0.0.1:7");
        let store = BlobStore::open(&data.join("blobs")).unwrap();
        assert!(shas.iter().all(|sha| store.contains(sha)));
        assert!(data.join("meta").is_dir());
        let again = restore(backup.path(), &data, 1, "127.0.0.1:7").await;
        assert!(matches!(again, Err(RestoreError::NotEmpty(_))), "{again:?}");
    }
}
