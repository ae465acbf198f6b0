//! Running the `git` command: a deadline on every command, a cap on concurrent network
//! operations per host, output caps, and the whole process group killed when a command overruns
//! (no stray `git-remote-https`).
//!
//! The persistent bare mirrors built on this runner ([`Mirror`], [`Refs`], [`Commit`]) live in
//! the sibling `mirror` module and are re-exported here.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::credentials::{scrub, Credentials};
use super::metrics;
use super::netguard::{GuardError, NetGuard, Refused};

pub use super::mirror::{mirror_dir_name, remove_partial_clones, Commit, Mirror, Refs};

/// Cap on captured stderr; the tail beyond it is dropped.
const MAX_STDERR: usize = 64 * 1024;
/// Cap on the output of listing commands (`ls-remote`, `for-each-ref`).
pub(super) const MAX_LISTING: u64 = 64 << 20;
/// Local (non-network) git commands running at once across all repositories.
const LOCAL_CONCURRENCY: usize = 16;
/// Network git commands (fetch, ls-remote) running at once across all hosts.
const NETWORK_CONCURRENCY: usize = 32;
/// ssh for anonymous remotes: no config file, no agent, no key.
const ANONYMOUS_SSH: &str = "ssh -F /dev/null -o IdentitiesOnly=yes -o IdentityFile=/dev/null \
                             -o IdentityAgent=none -o BatchMode=yes -o ControlMaster=no";
/// `git archive` runs at once: long ones must not starve the quick local commands.
const ARCHIVE_CONCURRENCY: usize = 4;
/// ssh options when no credential or environment names its own ssh command: never prompt, never
/// keep a shared master connection (it would hold git's stderr open).
const DEFAULT_SSH: &str = "ssh -o BatchMode=yes -o ControlMaster=no";

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
    /// The remote failed moments ago (within `direct.refresh_min_secs`); not asked again yet.
    #[error("{message} (not retried for direct.refresh_min_secs)")]
    Recent {
        /// The earlier failure.
        message: String,
        /// Whether it said the repository does not exist.
        missing: bool,
    },
    /// The credentials for the remote could not be read.
    #[error("credentials: {0}")]
    Credentials(String),
    /// The remote came from a client's module path and its host is (or resolves to) an address
    /// `direct.allow_networks` does not allow; git was not run.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The remote's host could not be resolved to check it; git was not run (a later answer
    /// could point anywhere).
    #[error("cannot resolve the repository host {host}: {reason}")]
    Unresolved {
        /// The host.
        host: String,
        /// The resolver's error.
        reason: String,
    },
}

impl GitError {
    /// Whether the remote said the repository does not exist (as opposed to failing).
    pub fn is_missing_repository(&self) -> bool {
        let stderr = match self {
            GitError::Failed { stderr, .. } => stderr,
            GitError::Recent { missing, .. } => return *missing,
            _ => return false,
        };
        let s = stderr.to_ascii_lowercase();
        s.contains("repository not found")
            || s.contains("does not appear to be a git repository")
            || s.contains("returned error: 404")
            || s.contains("returned error: 410")
    }
}

/// The repository a network command talks to.
#[derive(Clone, Copy, Debug)]
pub struct Remote<'a> {
    /// Its URL.
    pub url: &'a str,
    /// Whether cairn's credentials (and the operator's git/ssh/netrc setup) may be used for it.
    pub authenticate: bool,
    /// Whether the URL came from a client (static rule or `?go-get=1`) rather than a
    /// `[[direct.hosts]]` mapping: its host is then checked against the [`NetGuard`] and, for
    /// http(s), curl is pinned to the checked addresses.
    pub guarded: bool,
}

/// Where a command's standard output goes.
pub(super) enum Out<'a> {
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
    /// Network commands at once over all hosts: client-named hosts are unbounded in number, so
    /// the per-host limit alone would not bound the git processes.
    network: Semaphore,
    local: Semaphore,
    archives: Semaphore,
    anonymous_home: PathBuf,
    /// `[egress]` for git: `GIT_SSL_CAINFO` and curl's proxy variables (`None` removes one).
    egress_env: Vec<(String, Option<std::ffi::OsString>)>,
    /// Where guarded remotes may be reached.
    guard: Arc<NetGuard>,
    /// The proxies curl uses (from `[egress]`): behind one, the proxy resolves the remote.
    proxies: crate::egress::Proxies,
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
            network: Semaphore::new(NETWORK_CONCURRENCY),
            local: Semaphore::new(LOCAL_CONCURRENCY),
            archives: Semaphore::new(ARCHIVE_CONCURRENCY),
            anonymous_home: PathBuf::from("/nonexistent"),
            egress_env: Vec::new(),
            guard: Arc::new(NetGuard::default()),
            proxies: crate::egress::Proxies::default(),
        }
    }

    /// The proxies git's curl goes through (the same as in [`Self::egress_env`]): a guarded
    /// remote behind one whose name cairn cannot resolve is left to the proxy (split DNS).
    pub fn proxies(mut self, proxies: crate::egress::Proxies) -> Self {
        self.proxies = proxies;
        self
    }

    /// Checks guarded remotes against `guard` (by default every non-global address is refused).
    pub fn net_guard(mut self, guard: Arc<NetGuard>) -> Self {
        self.guard = guard;
        self
    }

    /// Gives every git child the environment that makes it trust and route like cairn's other
    /// clients (see [`crate::egress::Egress::git_env`]).
    pub fn egress_env(mut self, env: Vec<(String, Option<std::ffi::OsString>)>) -> Self {
        self.egress_env = env;
        self
    }

    fn host_limit(&self, url: &str) -> Arc<Semaphore> {
        let host = url_host(url);
        let mut map = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            map.entry(host)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host))),
        )
    }

    /// Where anonymous commands get their `HOME`: an empty directory, so that no `~/.netrc`,
    /// `~/.gitconfig` credential helper or ssh key of the operator is used for them.
    pub fn anonymous_home(mut self, dir: PathBuf) -> Self {
        self.anonymous_home = dir;
        self
    }

    /// Runs `git <args>` with `GIT_DIR=git_dir`. `remote` is the repository a network command
    /// talks to: its host's slot is taken, and its credentials are put in the child's
    /// environment, or, for an anonymous remote, every source of credentials is cut off.
    pub(super) async fn run(
        &self,
        git_dir: &Path,
        args: &[&str],
        remote: Option<Remote<'_>>,
        out: Out<'_>,
    ) -> Result<Vec<u8>, GitError> {
        let command = args
            .iter()
            .find(|a| !a.starts_with('-') && !a.contains('='))
            .copied()
            .unwrap_or("git")
            .to_owned();
        let host_limit = remote.map(|r| self.host_limit(r.url));
        let semaphore = match (&host_limit, &out) {
            (Some(limit), _) => limit.as_ref(),
            (None, Out::File(..)) => &self.archives,
            (None, Out::Memory(_)) => &self.local,
        };
        let closed = |_| GitError::Io {
            what: "git runner closed".to_owned(),
            source: std::io::Error::other("closed"),
        };
        let _network = match remote {
            Some(_) => Some(self.network.acquire().await.map_err(closed)?),
            None => None,
        };
        let _permit = semaphore.acquire().await.map_err(closed)?;
        let pin = match remote {
            Some(r) if r.guarded => self.pin(r.url).await?,
            _ => Vec::new(),
        };
        let cmd = self.command(git_dir, &pin, args, remote)?;
        let start = Instant::now();
        let result = self.run_child(cmd, &command, out).await;
        metrics::git_command(&command, start.elapsed(), result.is_ok());
        result
    }

    /// `-c` options for a guarded remote, after checking its host: curl pinned to the checked
    /// addresses, and no redirects (curl would resolve a redirect's host itself).
    async fn pin(&self, url: &str) -> Result<Vec<String>, GitError> {
        let pin = match self.guard.git_pin(url).await {
            Ok(pin) => pin,
            Err(GuardError::Refused(r)) => return Err(GitError::Refused(r)),
            // Behind a proxy, cairn may have no DNS of its own for outside names; the proxy
            // resolves them (and should enforce its own egress rules).
            Err(GuardError::Lookup { .. }) if self.proxied(url) => None,
            Err(GuardError::Lookup { host, reason }) => {
                return Err(GitError::Unresolved { host, reason })
            }
        };
        let mut config = vec!["-c".to_owned(), "http.followRedirects=false".to_owned()];
        if let Some(pin) = pin {
            config.extend(["-c".to_owned(), pin]);
        }
        Ok(config)
    }

    fn proxied(&self, url: &str) -> bool {
        reqwest::Url::parse(url)
            .ok()
            .is_some_and(|u| self.proxies.for_url(&u).is_some())
    }

    /// The child process: never prompting, in its own process group, with the remote's
    /// credentials in its environment (or every credential source cut off for an anonymous one).
    /// `config` (`-c` options) goes before the subcommand.
    fn command(
        &self,
        git_dir: &Path,
        config: &[String],
        args: &[&str],
        remote: Option<Remote<'_>>,
    ) -> Result<tokio::process::Command, GitError> {
        let mut cmd = tokio::process::Command::new(&self.git);
        cmd.args(config)
            .args(args)
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
        for (name, value) in &self.egress_env {
            match value {
                Some(v) => cmd.env(name, v),
                None => cmd.env_remove(name),
            };
        }
        match remote {
            None => {}
            Some(Remote {
                authenticate: false,
                ..
            }) => {
                cmd.env("HOME", &self.anonymous_home)
                    .env_remove("GIT_CONFIG_GLOBAL")
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .env("GIT_CONFIG_COUNT", "1")
                    .env("GIT_CONFIG_KEY_0", "credential.helper")
                    .env("GIT_CONFIG_VALUE_0", "")
                    .env("GIT_SSH_COMMAND", ANONYMOUS_SSH)
                    .env_remove("SSH_AUTH_SOCK");
            }
            Some(Remote { url, .. }) => {
                let env: Vec<(String, OsString)> = self
                    .creds
                    .git_env(url)
                    .map_err(|e| GitError::Credentials(e.to_string()))?;
                let sets_ssh = env.iter().any(|(k, _)| k == "GIT_SSH_COMMAND");
                cmd.envs(env);
                let inherited_ssh = std::env::var_os("GIT_SSH_COMMAND").is_some()
                    || std::env::var_os("GIT_SSH").is_some();
                if !sets_ssh && !inherited_ssh {
                    cmd.env("GIT_SSH_COMMAND", DEFAULT_SSH);
                }
            }
        }
        Ok(cmd)
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
        // Dropping this future (a cancelled request) kills the whole group, not only git.
        let mut guard = GroupGuard(pgid);
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
            // Reaped: from here on its id may be reused, so the guard must not signal it.
            guard.0 = None;
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
        // Over the output cap first: git then dies of SIGPIPE, which is not its own failure.
        if let Err(e @ GitError::TooLarge { .. }) = stdout {
            kill_group(pgid);
            return Err(e);
        }
        if !status.success() {
            kill_group(pgid);
            let text = String::from_utf8_lossy(&stderr);
            let mut stderr = scrub(text.trim(), &self.creds);
            if let Some(fix) = crate::egress::git_tls_hint(&stderr) {
                stderr = format!("{stderr} (TLS certificate rejected: {fix})");
            }
            return Err(GitError::Failed {
                command: command.to_owned(),
                code: status.code().unwrap_or(-1),
                stderr,
            });
        }
        stdout
    }
}

/// Kills a command's process group when dropped before the command was reaped.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0.take());
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

#[cfg(test)]
#[path = "git_tests.rs"]
mod tests;
