//! [`AnswerStore`]: where checksum-database answers live. Immutable answers (`lookup/…`,
//! `tile/…`) are replicated through Raft ([`MetaCmd::PutSumdbItems`]) so every node answers
//! them without the database (issue 9: a warm cluster makes no upstream request); the newest
//! verified tree head comes from the replicated state too. Without a quorum an answer is kept on
//! this node's disk instead, and `latest` is kept there for its TTL.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::raft::Consensus;
use crate::store::meta::{MetaCmd, SumdbItem, TreeHeadRecord};

/// The replicated answers, with this node's disk as the fallback.
#[derive(Clone)]
pub struct AnswerStore {
    dir: PathBuf,
    state: Option<Consensus>,
}

impl AnswerStore {
    /// Answers under `dir` (local fallback) and, with `state`, in the replicated state.
    pub fn new(dir: &Path, state: Option<Consensus>) -> AnswerStore {
        AnswerStore {
            dir: dir.to_path_buf(),
            state,
        }
    }

    fn file(&self, db: &str, path: &str) -> PathBuf {
        self.dir.join(db.replace('/', "_")).join(path)
    }

    /// The stored answer `path` of `db`: replicated, else on this node's disk.
    pub(super) async fn get(&self, db: &str, path: &str) -> Option<Bytes> {
        let replicated = self
            .state
            .as_ref()
            .and_then(|s| s.reader().get_sumdb_item(db, path).ok().flatten());
        match replicated {
            Some(body) => Some(Bytes::from(body)),
            None => tokio::fs::read(self.file(db, path))
                .await
                .ok()
                .map(Bytes::from),
        }
    }

    /// Stores immutable answers for the whole cluster; without a quorum (or state) on this
    /// node's disk. A failure only costs a refetch.
    pub(super) async fn put(&self, db: &str, items: Vec<SumdbItem>) {
        if items.is_empty() {
            return;
        }
        if let Some(state) = &self.state {
            let cmd = MetaCmd::PutSumdbItems {
                db: db.to_owned(),
                items: items.clone(),
            };
            match state.propose(cmd).await {
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(db, error = %e, "could not replicate checksum database answers; keeping them on this node")
                }
            }
        }
        for item in items {
            self.write_local(db, &item.path, &item.body).await;
        }
    }

    /// The replicated tree head of `db`, if one was verified and the database is not forked.
    pub(super) fn head(&self, db: &str) -> Option<TreeHeadRecord> {
        let head = self.state.as_ref()?.reader().get_tree_head(db).ok()??;
        (head.forked.is_none() && !head.note.is_empty()).then_some(head)
    }

    /// This node's copy of `latest` and its age.
    pub(super) async fn local_latest(&self, db: &str) -> Option<(Bytes, std::time::Duration)> {
        let file = self.file(db, "latest");
        let age = tokio::fs::metadata(&file)
            .await
            .ok()?
            .modified()
            .ok()?
            .elapsed()
            .unwrap_or_default();
        let body = tokio::fs::read(&file).await.ok()?;
        Some((Bytes::from(body), age))
    }

    /// Writes one answer to this node's disk (temp file, fsync, rename).
    pub(super) async fn write_local(&self, db: &str, path: &str, body: &[u8]) {
        if let Err(e) = write_atomic(&self.file(db, path), body).await {
            tracing::warn!(path, error = %e, "could not cache checksum database answer");
        }
    }
}

async fn write_atomic(file: &Path, body: &[u8]) -> std::io::Result<()> {
    let dir = file
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent directory"))?;
    tokio::fs::create_dir_all(dir).await?;
    let n: u64 = rand::random();
    let tmp = dir.join(format!(".{n:016x}.tmp"));
    let (tmp2, body) = (tmp.clone(), body.to_vec());
    let res = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp2)?;
        f.write_all(&body)?;
        f.sync_all()
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r);
    if let Err(e) = res {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    tokio::fs::rename(&tmp, file).await
}
