//! Running the `git` command: one bare mirror per repository, fetched incrementally, with a
//! deadline on every command, a cap on concurrent network operations per host, output caps, and
//! the whole process group killed when a command overruns (no stray `git-remote-https`).
//!
//! The mirror holds every branch and tag of the remote (`refs/heads/*`, `refs/tags/*`) and the
//! remote's `HEAD` as its own symbolic `HEAD`, so that it answers every question of the go
//! command's `codehost` layer locally and keeps answering when the git server is gone.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::credentials::{redact_url, scrub, Credentials};
use super::metrics;

/// Lines appended to `info/attributes` so that in-tree `.gitattributes` cannot change archive
/// bytes through `export-subst`/`export-ignore` (what the go command installs).
const ATTRIBUTES: &str = "\n* -export-subst -export-ignore\n";
/// Cap on captured stderr; the tail beyond it is dropped.
const MAX_STDERR: usize = 64 * 1024;
/// Cap on the output of listing commands (`ls-remote`, `for-each-ref`).
const MAX_LISTING: u64 = 64 << 20;
/// Local (non-network) git commands running at once across all repositories.
const LOCAL_CONCURRENCY: usize = 16;

/// Why a git operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The git executable could not be started.
    #[error("cannot run {git:?}: {source}; install git or set direct.git")]
    Spawn {
        /// The configured executable.
        git: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The command ran past `direct.command_timeout_secs` and was killed.
    #[error(
        "git {command} took longer than {secs} s (direct.command_timeout_secs) and was killed"
    )]
    Timeout {
        /// The git subcommand.
        command: String,
        /// The deadline.
        secs: u64,
    },
    /// The command exited with an error.
    #[error("git {command} failed (exit {code}): {stderr}")]
    Failed {
        /// The git subcommand.
        command: String,
        /// The exit code (-1 when killed by a signal).
        code: i32,
        /// Its standard error, with secrets scrubbed.
        stderr: String,
    },
    /// The command printed more than the caller allows.
    #[error("git {command} produced more than {max} bytes")]
    TooLarge {
        /// The git subcommand.
        command: String,
        /// The cap.
        max: u64,
    },
    /// The output made no sense.
    #[error("unexpected output from git {command}: {detail}")]
    Parse {
        /// The git subcommand.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// A local file operation around git failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The credentials for the remote could not be read.
    #[error("credentials: {0}")]
    Credentials(String),
}

impl GitError {
    /// Whether the remote said the repository does not exist (as opposed to failing).
    pub fn is_missing_repository(&self) -> bool {
        let GitError::Failed { stderr, .. } = self else {
            return false;
        };
        let s = stderr.to_ascii_lowercase();
        s.contains("repository not found")
            || s.contains("not found")
            || s.contains("does not appear to be a git repository")
            || s.contains("returned error: 404")
    }
}

/// Where a command's standard output goes.
enum Out<'a> {
    /// Into memory, at most this many bytes.
    Memory(u64),
    /// Into a file (created or truncated), at most this many bytes.
    File(&'a Path, u64),
}

/// The git executable with its limits and credentials.
pub struct GitRunner {
    git: String,
    timeout: Duration,
    creds: Arc<Credentials>,
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    local: Semaphore,
}

impl GitRunner {
    /// A runner for `git`, with `timeout` per command and `per_host` concurrent network commands
    /// per remote host.
    pub fn new(git: &str, timeout: Duration, per_host: usize, creds: Arc<Credentials>) -> Self {
        GitRunner {
            git: git.to_owned(),
            timeout,
            creds,
            per_host: per_host.max(1),
            hosts: Mutex::new(HashMap::new()),
            local: Semaphore::new(LOCAL_CONCURRENCY),
        }
    }

    fn host_limit(&self, url: &str) -> Arc<Semaphore> {
        let host = url_host(url);
        let mut map = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            map.entry(host)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host))),
        )
    }

    /// Runs `git <args>` with `GIT_DIR=git_dir`. `remote` is the URL a network command talks to
    /// (its credentials are put in the child's environment and its host's slot is taken).
    async fn run(
        &self,
        git_dir: &Path,
        args: &[&str],
        remote: Option<&str>,
        out: Out<'_>,
    ) -> Result<Vec<u8>, GitError> {
        let command = args
            .iter()
            .find(|a| !a.starts_with('-') && !a.contains('='))
            .copied()
            .unwrap_or("git")
            .to_owned();
        let limit;
        let _permit = match remote {
            Some(url) => {
                limit = self.host_limit(url);
                limit.acquire().await
            }
            None => self.local.acquire().await,
        }
        .map_err(|_| GitError::Io {
            what: "git runner closed".to_owned(),
            source: std::io::Error::other("closed"),
        })?;
        let mut cmd = tokio::process::Command::new(&self.git);
        cmd.args(args)
            .env("GIT_DIR", git_dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GCM_INTERACTIVE", "never")
            .env("GIT_SSH_VARIANT", "ssh")
            .env("LC_ALL", "C")
            .env_remove("GIT_ASKPASS")
            .env_remove("SSH_ASKPASS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        if let Some(url) = remote {
            let env: Vec<(String, OsString)> = self
                .creds
                .git_env(url)
                .map_err(|e| GitError::Credentials(e.to_string()))?;
            for (k, v) in env {
                cmd.env(k, v);
            }
            if std::env::var_os("GIT_SSH_COMMAND").is_none() {
                cmd.env(
                    "GIT_SSH_COMMAND",
                    "ssh -o BatchMode=yes -o ControlMaster=no",
                );
            }
        }
        let start = Instant::now();
        let result = self.run_child(cmd, &command, out).await;
        metrics::git_command(&command, start.elapsed(), result.is_ok());
        result
    }

    async fn run_child(
        &self,
        mut cmd: tokio::process::Command,
        command: &str,
        out: Out<'_>,
    ) -> Result<Vec<u8>, GitError> {
        let mut child = cmd.spawn().map_err(|source| GitError::Spawn {
            git: self.git.clone(),
            source,
        })?;
        let pgid = child.id();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let work = async {
            let stdout_task = collect_stdout(stdout, out, command);
            let stderr_task = collect_capped(stderr, MAX_STDERR);
            let (stdout, stderr) = tokio::join!(stdout_task, stderr_task);
            let status = child.wait().await.map_err(|source| GitError::Io {
                what: format!("waiting for git {command}"),
                source,
            })?;
            Ok::<_, GitError>((status, stdout, stderr))
        };
        let (status, stdout, stderr) = match tokio::time::timeout(self.timeout, work).await {
            Ok(done) => done?,
            Err(_) => {
                kill_group(pgid);
                return Err(GitError::Timeout {
                    command: command.to_owned(),
                    secs: self.timeout.as_secs(),
                });
            }
        };
        if !status.success() {
            kill_group(pgid);
            let text = String::from_utf8_lossy(&stderr);
            return Err(GitError::Failed {
                command: command.to_owned(),
                code: status.code().unwrap_or(-1),
                stderr: scrub(text.trim(), &self.creds),
            });
        }
        stdout
    }
}

/// Kills whatever is left of a command's process group (helpers git started).
fn kill_group(pgid: Option<u32>) {
    let Some(pid) = pgid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    // The group may already be gone; that is the normal case.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

async fn collect_stdout(
    stdout: Option<tokio::process::ChildStdout>,
    out: Out<'_>,
    command: &str,
) -> Result<Vec<u8>, GitError> {
    let Some(mut stdout) = stdout else {
        return Ok(Vec::new());
    };
    let too_large = |max| GitError::TooLarge {
        command: command.to_owned(),
        max,
    };
    match out {
        Out::Memory(max) => {
            let mut buf = Vec::new();
            let n = (&mut stdout)
                .take(max + 1)
                .read_to_end(&mut buf)
                .await
                .map_err(|source| GitError::Io {
                    what: format!("reading git {command} output"),
                    source,
                })?;
            if n as u64 > max {
                return Err(too_large(max));
            }
            Ok(buf)
        }
        Out::File(path, max) => {
            let io = |what: &str, source| GitError::Io {
                what: format!("{what} {}", path.display()),
                source,
            };
            let mut file = tokio::fs::File::create(path)
                .await
                .map_err(|e| io("creating", e))?;
            let mut limited = (&mut stdout).take(max + 1);
            let n = tokio::io::copy(&mut limited, &mut file)
                .await
                .map_err(|e| io("writing", e))?;
            file.flush().await.map_err(|e| io("writing", e))?;
            if n > max {
                return Err(too_large(max));
            }
            Ok(Vec::new())
        }
    }
}

async fn collect_capped<R: AsyncRead + Unpin>(reader: Option<R>, cap: usize) -> Vec<u8> {
    let Some(mut reader) = reader else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
    kept
}

/// The host part of a git URL (`https://h:1/x`, `ssh://u@h/x`, `u@h:x`), for per-host limits.
pub fn url_host(url: &str) -> String {
    if let Some((_, rest)) = url.split_once("://") {
        let authority = rest.split('/').next().unwrap_or("");
        let host = authority.rsplit('@').next().unwrap_or(authority);
        return host.to_ascii_lowercase();
    }
    let before_path = url.split(':').next().unwrap_or(url);
    before_path
        .rsplit('@')
        .next()
        .unwrap_or(before_path)
        .to_ascii_lowercase()
}

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
        let tmp = self
            .dir
            .with_extension(format!("tmp-{}", std::process::id()));
        let _ = tokio::fs::remove_dir_all(&tmp).await;
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
        tokio::fs::rename(&tmp, &self.dir)
            .await
            .map_err(io(format!("installing {}", self.dir.display())))?;
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
    /// `out`, exactly as the go command runs it. `Ok(false)` when `subdir` matches no files.
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
mod tests {
    use super::*;

    #[test]
    fn refs_parse_peels_annotated_tags_and_reads_symref() {
        let text = "ref: refs/heads/main\tHEAD\n\
                    aaaa\tHEAD\n\
                    aaaa\trefs/heads/main\n\
                    bbbb\trefs/tags/v1.0.0\n\
                    cccc\trefs/tags/v1.1.0\n\
                    dddd\trefs/tags/v1.1.0^{}\n\
                    eeee\trefs/pull/1/head\n";
        let refs = Refs::parse(text);
        assert_eq!(refs.head.as_deref(), Some("aaaa"));
        assert_eq!(refs.head_target.as_deref(), Some("refs/heads/main"));
        assert_eq!(
            refs.map.get("refs/tags/v1.1.0").map(String::as_str),
            Some("dddd")
        );
        assert_eq!(refs.map.len(), 3, "pull refs are ignored: {refs:?}");
        assert_eq!(refs.tags_at("dddd"), ["v1.1.0"]);
        assert_eq!(refs.tags_with_prefix("v1."), ["v1.0.0", "v1.1.0"]);
    }

    #[test]
    fn for_each_ref_output_with_empty_peel_lines_parses() {
        // Lightweight tags print an empty `%(*objectname)`, giving a line with one field.
        let text =
            "aaaa refs/heads/main\n refs/heads/main^{}\nbbbb refs/tags/v1\ncccc refs/tags/v1^{}\n";
        let refs = Refs::parse(text);
        assert_eq!(
            refs.map.get("refs/heads/main").map(String::as_str),
            Some("aaaa")
        );
        assert_eq!(
            refs.map.get("refs/tags/v1").map(String::as_str),
            Some("cccc")
        );
    }

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("https://u:p@Git.Corp:8443/a/b"), "git.corp:8443");
        assert_eq!(url_host("ssh://git@git.corp/a"), "git.corp");
        assert_eq!(url_host("git@git.corp:team/repo.git"), "git.corp");
    }

    #[test]
    fn mirror_names_are_safe_and_distinct() {
        let a = mirror_dir_name("https://git.corp/team/repo");
        let b = mirror_dir_name("https://git.corp/team/repo.git");
        assert_ne!(a, b);
        assert!(a.starts_with("git_corp_team_repo-"), "{a}");
        let evil = mirror_dir_name("https://x/../../etc");
        assert!(!evil.contains('/') && !evil.contains(".."), "{evil}");
    }

    fn fake_git(dir: &Path, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("git");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn pid_alive(pid: i32) -> bool {
        // Signal 0 probes; a zombie would still count, so also check /proc state.
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        alive && !state.contains(") Z ")
    }

    #[tokio::test]
    async fn an_overrunning_command_is_killed_with_its_children() {
        let tmp = tempfile::tempdir().unwrap();
        let pidfile = tmp.path().join("child.pid");
        // git that starts a helper (like git-remote-https) and hangs.
        let git = fake_git(
            tmp.path(),
            &format!("sleep 300 & echo $! > {}\nwait", pidfile.display()),
        );
        let runner = GitRunner::new(
            &git,
            Duration::from_millis(500),
            2,
            Arc::new(Credentials::none()),
        );
        let start = std::time::Instant::now();
        let err = runner
            .run(
                tmp.path(),
                &["fetch"],
                Some("https://h/x"),
                Out::Memory(100),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::Timeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
        let child: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pid_alive(child) {
            assert!(
                std::time::Instant::now() < deadline,
                "helper {child} survived the kill"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn network_commands_are_capped_per_host() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("log");
        let git = fake_git(
            tmp.path(),
            &format!(
                "echo start >> {0}\nsleep 0.2\necho end >> {0}",
                log.display()
            ),
        );
        let runner = Arc::new(GitRunner::new(
            &git,
            Duration::from_secs(10),
            2,
            Arc::new(Credentials::none()),
        ));
        let mut tasks = Vec::new();
        for i in 0..6 {
            let runner = Arc::clone(&runner);
            let dir = tmp.path().to_owned();
            let host = if i < 5 {
                "https://a.example/x"
            } else {
                "https://b.example/x"
            };
            tasks.push(tokio::spawn(async move {
                runner
                    .run(&dir, &["fetch"], Some(host), Out::Memory(100))
                    .await
                    .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut running = 0;
        let mut peak = 0;
        for line in std::fs::read_to_string(&log).unwrap().lines() {
            running += if line == "start" { 1 } else { -1 };
            peak = peak.max(running);
        }
        // Two for a.example plus one for b.example at most.
        assert!(peak <= 3, "peak {peak}");
        assert!(peak >= 2, "commands did not overlap at all: {peak}");
    }

    #[tokio::test]
    async fn failures_carry_scrubbed_stderr() {
        let tmp = tempfile::tempdir().unwrap();
        let git = fake_git(
            tmp.path(),
            "echo 'fatal: unable to access https://user:hunter2@h/x: 403' >&2\nexit 128",
        );
        let runner = GitRunner::new(
            &git,
            Duration::from_secs(10),
            2,
            Arc::new(Credentials::none()),
        );
        let err = runner
            .run(
                tmp.path(),
                &["ls-remote"],
                Some("https://h/x"),
                Out::Memory(100),
            )
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("403") && !text.contains("hunter2"), "{text}");
    }
}
