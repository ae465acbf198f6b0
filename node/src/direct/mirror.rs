//! One persistent bare mirror per repository, fetched incrementally through the [`GitRunner`].
//!
//! The mirror holds every branch and tag of the remote (`refs/heads/*`, `refs/tags/*`) and the
//! remote's `HEAD` as its own symbolic `HEAD`, so that it answers every question of the go
//! command's `codehost` layer locally and keeps answering when the git server is gone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::credentials::redact_url;
use super::git::{GitError, GitRunner, Out, MAX_LISTING};
use super::metrics;

/// Lines appended to `info/attributes` so that in-tree `.gitattributes` cannot change archive
/// bytes through `export-subst`/`export-ignore` (what the go command installs).
const ATTRIBUTES: &str = "\n* -export-subst -export-ignore\n";

/// The refs of a mirror: every branch and tag (annotated tags peeled to their commit) and `HEAD`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refs {
    /// `refs/heads/…` and `refs/tags/…` → commit hash.
    pub map: BTreeMap<String, String>,
    /// The commit `HEAD` names, if the remote has one.
    pub head: Option<String>,
    /// The branch `HEAD` points to (`refs/heads/main`), if symbolic.
    pub head_target: Option<String>,
}

impl Refs {
    /// Tags (without `refs/tags/`) pointing at `hash`.
    pub fn tags_at(&self, hash: &str) -> Vec<String> {
        self.map
            .iter()
            .filter(|(_, h)| h.as_str() == hash)
            .filter_map(|(r, _)| r.strip_prefix("refs/tags/").map(str::to_owned))
            .collect()
    }

    /// Tag names (without `refs/tags/`) starting with `prefix`, sorted.
    pub fn tags_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.map
            .keys()
            .filter_map(|r| r.strip_prefix("refs/tags/"))
            .filter(|t| t.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    }

    /// Parses `ls-remote --symref` or `for-each-ref` style lines (`<hash> <ref>`), peeling
    /// `^{}` entries over their tag.
    fn parse(text: &str) -> Refs {
        let mut refs = Refs::default();
        let mut peeled = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("ref: ") {
                let mut f = rest.split_whitespace();
                if let (Some(target), Some("HEAD")) = (f.next(), f.next()) {
                    refs.head_target = Some(target.to_owned());
                }
                continue;
            }
            let mut f = line.split_whitespace();
            let (Some(hash), Some(name)) = (f.next(), f.next()) else {
                continue;
            };
            if name == "HEAD" {
                refs.head = Some(hash.to_owned());
            } else if let Some(tag) = name.strip_suffix("^{}") {
                peeled.push((tag.to_owned(), hash.to_owned()));
            } else if name.starts_with("refs/heads/") || name.starts_with("refs/tags/") {
                refs.map.insert(name.to_owned(), hash.to_owned());
            }
        }
        for (tag, hash) in peeled {
            refs.map.insert(tag, hash);
        }
        refs
    }
}

/// A commit as the go command's `codehost.RevInfo` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Full hash.
    pub hash: String,
    /// Committer time, seconds since the epoch.
    pub time: i64,
}

/// One persistent bare mirror of a remote repository.
pub struct Mirror {
    url: String,
    dir: PathBuf,
    runner: Arc<GitRunner>,
    /// Serialises clone and fetch; readers do not take it.
    update: tokio::sync::Mutex<()>,
    refs: RwLock<Option<Arc<Refs>>>,
    last_refresh: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("url", &redact_url(&self.url))
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The directory name of the mirror of `url` under the mirrors root: a readable slug plus a hash
/// of the exact URL, so two URLs never share a mirror and no URL can escape the root.
pub fn mirror_dir_name(url: &str) -> String {
    let redacted = redact_url(url);
    let slug: String = redacted
        .split_once("://")
        .map_or(redacted.as_str(), |(_, rest)| rest)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(80)
        .collect();
    let digest = Sha256::digest(url.as_bytes());
    format!("{slug}-{}.git", &hex::encode(digest)[..16])
}

impl Mirror {
    /// The mirror of `url` in `dir` (created on first [`Mirror::refresh`]).
    pub fn new(url: String, dir: PathBuf, runner: Arc<GitRunner>) -> Mirror {
        Mirror {
            url,
            dir,
            runner,
            update: tokio::sync::Mutex::new(()),
            refs: RwLock::new(None),
            last_refresh: Mutex::new(None),
        }
    }

    /// The remote URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the mirror exists on disk.
    pub fn exists(&self) -> bool {
        self.dir.join("HEAD").is_file()
    }

    /// The refs as of the last fetch (loaded from disk on first use).
    pub async fn refs(&self) -> Result<Arc<Refs>, GitError> {
        if let Some(refs) = self.cached_refs() {
            return Ok(refs);
        }
        let refs = Arc::new(self.local_refs().await?);
        *self.refs.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&refs));
        Ok(refs)
    }

    fn cached_refs(&self) -> Option<Arc<Refs>> {
        self.refs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Time since the last successful refresh in this process, if any.
    pub fn since_refresh(&self) -> Option<Duration> {
        self.last_refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|t| t.elapsed())
    }

    /// Brings the mirror up to date with the remote unless that happened within `min_age`:
    /// clones it when absent, else lists the remote's refs and fetches only when they changed.
    /// Returns whether the remote was contacted.
    pub async fn refresh(&self, min_age: Duration) -> Result<bool, GitError> {
        let fresh = |m: &Mirror| m.since_refresh().is_some_and(|age| age < min_age);
        if fresh(self) {
            return Ok(false);
        }
        let _guard = self.update.lock().await;
        if fresh(self) {
            return Ok(false);
        }
        if !self.exists() {
            self.clone_fresh().await?;
        } else {
            self.fetch().await?;
        }
        *self
            .last_refresh
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        Ok(true)
    }

    async fn clone_fresh(&self) -> Result<(), GitError> {
        let io = |what: String| move |source| GitError::Io { what, source };
        let parent = self.dir.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io(format!("creating {}", parent.display())))?;
        // Unique per attempt: two mirror handles for one URL may race to create it.
        let tmp = self.dir.with_extension(format!(
            "tmp-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let tmp_str = tmp.to_string_lossy().into_owned();
        self.runner
            .run(
                &tmp,
                &["init", "--bare", "-q", &tmp_str],
                None,
                Out::Memory(1 << 16),
            )
            .await?;
        let info = tmp.join("info");
        tokio::fs::create_dir_all(&info)
            .await
            .map_err(io(format!("creating {}", info.display())))?;
        tokio::fs::write(info.join("attributes"), ATTRIBUTES)
            .await
            .map_err(io(format!("writing {}/attributes", info.display())))?;
        let result = self.fetch_into(&tmp).await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
            return Err(e);
        }
        if let Err(e) = tokio::fs::rename(&tmp, &self.dir).await {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
            if !self.exists() {
                return Err(io(format!("installing {}", self.dir.display()))(e));
            }
            // Another handle installed the mirror first; use that one.
            return Ok(());
        }
        metrics::clone_done();
        tracing::info!(url = %redact_url(&self.url), dir = %self.dir.display(), "git mirror created");
        Ok(())
    }

    async fn fetch(&self) -> Result<(), GitError> {
        self.fetch_into(&self.dir).await
    }

    /// Lists the remote, fetches when its refs differ from the mirror's, and points `HEAD` at
    /// the remote's default branch.
    async fn fetch_into(&self, dir: &Path) -> Result<(), GitError> {
        let listing = self
            .runner
            .run(
                dir,
                &["ls-remote", "-q", "--symref", "--end-of-options", &self.url],
                Some(&self.url),
                Out::Memory(MAX_LISTING),
            )
            .await?;
        let remote = Refs::parse(&String::from_utf8_lossy(&listing));
        let local = self.read_local_refs(dir).await.unwrap_or_default();
        if local.map != remote.map || local.head != remote.head {
            self.runner
                .run(
                    dir,
                    &[
                        "-c",
                        "fetch.writeCommitGraph=false",
                        "fetch",
                        "-q",
                        "-f",
                        "--prune",
                        "--no-tags",
                        "--end-of-options",
                        &self.url,
                        "+refs/heads/*:refs/heads/*",
                        "+refs/tags/*:refs/tags/*",
                    ],
                    Some(&self.url),
                    Out::Memory(1 << 20),
                )
                .await?;
            metrics::fetch_done();
        }
        if let Some(target) = &remote.head_target {
            self.runner
                .run(
                    dir,
                    &["symbolic-ref", "HEAD", target],
                    None,
                    Out::Memory(1 << 16),
                )
                .await?;
        }
        *self.refs.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(remote));
        Ok(())
    }

    async fn local_refs(&self) -> Result<Refs, GitError> {
        self.read_local_refs(&self.dir).await
    }

    async fn read_local_refs(&self, dir: &Path) -> Result<Refs, GitError> {
        let out = self
            .runner
            .run(
                dir,
                &[
                    "for-each-ref",
                    "--format=%(objectname) %(refname)%0a%(*objectname) %(refname)^{}",
                    "refs/heads",
                    "refs/tags",
                ],
                None,
                Out::Memory(MAX_LISTING),
            )
            .await?;
        let mut refs = Refs::parse(&String::from_utf8_lossy(&out));
        let target = self
            .runner
            .run(
                dir,
                &["symbolic-ref", "-q", "HEAD"],
                None,
                Out::Memory(1 << 16),
            )
            .await
            .ok()
            .map(|o| String::from_utf8_lossy(&o).trim().to_owned())
            .filter(|t| !t.is_empty());
        refs.head = target.as_ref().and_then(|t| refs.map.get(t).cloned());
        refs.head_target = target;
        Ok(refs)
    }

    /// `git log -n1` of `rev` in the mirror: its full hash and committer time, or `None` when
    /// the mirror does not know `rev`.
    pub async fn commit(&self, rev: &str) -> Result<Option<Commit>, GitError> {
        let result = self
            .runner
            .run(
                &self.dir,
                &[
                    "-c",
                    "log.showsignature=false",
                    "log",
                    "--no-decorate",
                    "-n1",
                    "--format=format:%H %ct",
                    "--end-of-options",
                    rev,
                    "--",
                ],
                None,
                Out::Memory(1 << 16),
            )
            .await;
        let out = match result {
            Ok(out) => out,
            Err(GitError::Failed { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let text = String::from_utf8_lossy(&out);
        let mut f = text.split_whitespace();
        let parse = |detail: &str| GitError::Parse {
            command: "log".to_owned(),
            detail: detail.to_owned(),
        };
        let hash = f.next().ok_or_else(|| parse("no hash"))?;
        let time = f
            .next()
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or_else(|| parse("no commit time"))?;
        if hash.len() != 40 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(parse("bad hash"));
        }
        Ok(Some(Commit {
            hash: hash.to_owned(),
            time,
        }))
    }

    /// The blob at `path` in commit `hash`, or `None` when there is none. Larger than `max` is
    /// an error.
    pub async fn read_file(
        &self,
        hash: &str,
        path: &str,
        max: u64,
    ) -> Result<Option<Vec<u8>>, GitError> {
        let spec = format!("{hash}:{path}");
        let result = self
            .runner
            .run(
                &self.dir,
                &["cat-file", "--end-of-options", "blob", &spec],
                None,
                Out::Memory(max),
            )
            .await;
        match result {
            Ok(data) => Ok(Some(data)),
            Err(GitError::Failed { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Tags (without `refs/tags/`) reachable from commit `hash` (`for-each-ref --merged`).
    pub async fn merged_tags(&self, hash: &str) -> Result<Vec<String>, GitError> {
        let merged = format!("--merged={hash}");
        let out = self
            .runner
            .run(
                &self.dir,
                &["for-each-ref", "--format=%(refname)", &merged, "refs/tags"],
                None,
                Out::Memory(MAX_LISTING),
            )
            .await?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("refs/tags/").map(str::to_owned))
            .collect())
    }

    /// Whether tag `tag` is an ancestor of (or equal to) commit `hash`.
    pub async fn descends_from(&self, hash: &str, tag: &str) -> Result<bool, GitError> {
        let tag_ref = format!("refs/tags/{tag}");
        let result = self
            .runner
            .run(
                &self.dir,
                &["merge-base", "--is-ancestor", "--", &tag_ref, hash],
                None,
                Out::Memory(1 << 16),
            )
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(GitError::Failed { code: 1, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes `git archive --format=zip` of commit `hash` (limited to `subdir` unless empty) to
    /// `out`, as the go command runs it (but stored, see below). `Ok(false)` when `subdir` matches no files.
    pub async fn archive(
        &self,
        hash: &str,
        subdir: &str,
        out: &Path,
        max: u64,
    ) -> Result<bool, GitError> {
        let mut args = vec![
            "-c",
            "core.autocrlf=input",
            "-c",
            "core.eol=lf",
            "archive",
            "--format=zip",
            // Stored, not deflated: the module zip is rebuilt from these entries anyway, and the
            // entries' bytes (all the h1 hash sees) do not depend on the compression level.
            "-0",
            "--prefix=prefix/",
            "--end-of-options",
            hash,
        ];
        if !subdir.is_empty() {
            args.push(subdir);
        }
        let result = self
            .runner
            .run(&self.dir, &args, None, Out::File(out, max))
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(GitError::Failed { stderr, .. }) if stderr.contains("did not match any files") => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// Removes half-made mirrors (`*.tmp-*`) left by a crash during a clone.
pub fn remove_partial_clones(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().contains(".tmp-") {
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!(dir = %entry.path().display(), error = %e, "cannot remove a partial git mirror");
            }
        }
    }
}

#[cfg(test)]
#[path = "mirror_tests.rs"]
mod tests;
