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
use super::git::{GitError, GitRunner, Out, Remote, MAX_LISTING};
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
                if tag.starts_with("refs/heads/") || tag.starts_with("refs/tags/") {
                    peeled.push((tag.to_owned(), hash.to_owned()));
                }
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
    /// Whether network commands may use credentials (see [`super::git::Remote`]).
    authenticate: bool,
    /// Whether the URL came from a client and its host must pass the address guard.
    guarded: bool,
    /// Serialises clone and fetch; readers do not take it.
    update: tokio::sync::Mutex<()>,
    refs: RwLock<Option<Arc<Refs>>>,
    last_attempt: Mutex<Option<Attempt>>,
}

/// One refresh attempt: when, and how it ended.
#[derive(Clone, Debug)]
struct Attempt {
    at: Instant,
    /// Counts attempts, so a waiter can tell that one finished while it waited.
    generation: u64,
    /// The error and whether it said the repository does not exist.
    failure: Option<(String, bool)>,
}

impl Attempt {
    fn outcome(&self) -> Result<bool, GitError> {
        match &self.failure {
            None => Ok(false),
            Some((message, missing)) => Err(GitError::Recent {
                message: message.clone(),
                missing: *missing,
            }),
        }
    }
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
    /// The mirror of `url` in `dir` (created on first [`Mirror::refresh`]); `authenticate` says
    /// whether credentials may be used.
    pub fn new(url: String, dir: PathBuf, runner: Arc<GitRunner>, authenticate: bool) -> Mirror {
        Mirror {
            url,
            dir,
            runner,
            authenticate,
            guarded: false,
            update: tokio::sync::Mutex::new(()),
            refs: RwLock::new(None),
            last_attempt: Mutex::new(None),
        }
    }

    /// Marks the URL as named by a client (static rule or `?go-get=1`): every network command
    /// first clears its host with the runner's address guard.
    pub fn guarded(mut self, guarded: bool) -> Mirror {
        self.guarded = guarded;
        self
    }

    fn remote(&self) -> Remote<'_> {
        Remote {
            url: &self.url,
            authenticate: self.authenticate,
            guarded: self.guarded,
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

    /// The last refresh attempt of this process, if any.
    fn last_attempt(&self) -> Option<Attempt> {
        self.last_attempt
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Brings the mirror up to date with the remote unless an attempt was made within `min_age`
    /// (whose outcome, success or failure, is returned again: a failing remote is asked at most
    /// that often): clones it when absent, else lists the remote's refs and fetches only when
    /// they changed. Callers that waited for a concurrent attempt share its outcome. Returns
    /// whether the remote was contacted.
    pub async fn refresh(&self, min_age: Duration) -> Result<bool, GitError> {
        let before = self.last_attempt();
        if let Some(a) = before.as_ref().filter(|a| a.at.elapsed() < min_age) {
            return a.outcome();
        }
        let _guard = self.update.lock().await;
        let now = self.last_attempt();
        let seen = before.map(|a| a.generation);
        if let Some(a) = now.filter(|a| Some(a.generation) != seen || a.at.elapsed() < min_age) {
            return a.outcome();
        }
        let result = if self.exists() {
            self.fetch().await
        } else {
            self.clone_fresh().await
        };
        let mut last = self
            .last_attempt
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let generation = last.as_ref().map_or(1, |a| a.generation + 1);
        *last = Some(Attempt {
            at: Instant::now(),
            generation,
            failure: result
                .as_ref()
                .err()
                .map(|e| (e.to_string(), e.is_missing_repository())),
        });
        result.map(|()| true)
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
        remove_stale_locks(&self.dir).await;
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
                Some(self.remote()),
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
                    Some(self.remote()),
                    Out::Memory(1 << 20),
                )
                .await?;
            metrics::fetch_done();
        }
        let branch = remote.head_target.as_ref().filter(|t| {
            t.starts_with("refs/heads/") && !t.contains("..") && remote.map.contains_key(*t)
        });
        if let Some(target) = branch {
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

    /// The mirror's own refs, listed the way the remote's are (`ls-remote` of the mirror), so
    /// that annotated tags are peeled the same way (fully, even tags of tags) and the two
    /// listings compare equal when nothing changed.
    async fn read_local_refs(&self, dir: &Path) -> Result<Refs, GitError> {
        let dir_arg = dir.to_string_lossy();
        let out = self
            .runner
            .run(
                dir,
                &["ls-remote", "-q", "--symref", "--end-of-options", &dir_arg],
                None,
                Out::Memory(MAX_LISTING),
            )
            .await?;
        Ok(Refs::parse(&String::from_utf8_lossy(&out)))
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
            Err(GitError::Failed { stderr, .. }) if names_missing_object(&stderr) => Ok(None),
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

/// Whether git's error says the object or path does not exist (as opposed to git failing).
fn names_missing_object(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("does not exist in")
        || s.contains("exists on disk, but not in")
        || s.contains("not a valid object name")
        || s.contains("invalid object name")
        || s.contains("bad file")
}

/// Removes lock files a killed git left in a mirror (under the update lock, so no git of ours
/// holds them); without this every later fetch would fail.
async fn remove_stale_locks(dir: &Path) {
    let mut stack = vec![dir.join("refs")];
    let mut locks = vec![
        dir.join("packed-refs.lock"),
        dir.join("HEAD.lock"),
        dir.join("shallow.lock"),
        dir.join("config.lock"),
    ];
    while let Some(d) = stack.pop() {
        let Ok(mut entries) = tokio::fs::read_dir(&d).await else {
            continue;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            match entry.file_type().await {
                Ok(t) if t.is_dir() => stack.push(path),
                _ if path.extension().is_some_and(|e| e == "lock") => locks.push(path),
                _ => {}
            }
        }
    }
    for lock in locks {
        if tokio::fs::remove_file(&lock).await.is_ok() {
            tracing::warn!(lock = %lock.display(), "removed a stale git lock file");
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
