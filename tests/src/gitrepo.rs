//! Building git repositories for the direct-mode tests, deterministically.
//!
//! A [`WorkRepo`] is a working repository driven through the real `git` command (`$CAIRN_GIT_BIN`,
//! else `git` on `PATH`) with no user or system configuration (`GIT_CONFIG_GLOBAL=/dev/null`,
//! `GIT_CONFIG_NOSYSTEM=1`, a private `HOME`), fixed author/committer names and e-mails, and a
//! clock that advances one hour per commit from [`EPOCH`]. The same script therefore produces the
//! same commit hashes on every machine and every run, so expected pseudo-versions can be written
//! down.
//!
//! [`WorkRepo::publish`] mirrors every branch and tag into a bare repository (the one
//! [`crate::githttp::GitServer`] serves); publishing again after [`WorkRepo::tag`] is how a test
//! makes "a repository that gains a new tag".
//!
//! Everything here is synchronous (`std::process`): each git command takes milliseconds and only
//! touches the local file system, so calling it from a test's async body cannot deadlock against
//! the HTTP server.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// Commit time of the first commit of every [`WorkRepo`]: 2024-01-01T00:00:00Z.
pub const EPOCH: i64 = 1_704_067_200;

/// Seconds the clock advances per commit (and per annotated tag).
pub const TICK: i64 = 3_600;

/// Author and committer name of every commit.
pub const AUTHOR_NAME: &str = "Cairn Test";

/// Author and committer e-mail of every commit.
pub const AUTHOR_EMAIL: &str = "cairn-test@corp.example";

/// The `git` binary: `$CAIRN_GIT_BIN`, else `git` (found on `PATH`).
pub fn git_bin() -> PathBuf {
    std::env::var_os("CAIRN_GIT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("git"))
}

/// A `git` command with a clean, deterministic environment: only `PATH` survives, configuration
/// comes from nowhere, `HOME` is `home`, and the dates are `secs` (UTC).
pub fn git_command(home: &Path, secs: i64) -> Command {
    let mut cmd = Command::new(git_bin());
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    let date = format!("@{secs} +0000");
    cmd.env("HOME", home)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
        .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
        .env("GIT_COMMITTER_NAME", AUTHOR_NAME)
        .env("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL)
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd`, failing with its stderr unless it exits 0; returns trimmed stdout.
fn run(mut cmd: Command) -> anyhow::Result<String> {
    let describe = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("spawning {describe}"))?;
    if !out.status.success() {
        bail!(
            "{describe} failed ({})\n--- stdout:\n{}\n--- stderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Creates an empty bare repository at `dir` whose `HEAD` names `branch`.
pub fn init_bare(home: &Path, dir: &Path, branch: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = git_command(home, EPOCH);
    cmd.arg("init")
        .arg("-q")
        .arg("--bare")
        .arg(format!("--initial-branch={branch}"))
        .arg(dir);
    run(cmd).map(drop)
}

/// A working repository with a deterministic clock (see the module doc).
#[derive(Debug)]
pub struct WorkRepo {
    dir: PathBuf,
    home: PathBuf,
    /// The time the next commit or annotated tag gets.
    clock: i64,
    /// Where [`WorkRepo::publish`] pushes, once [`WorkRepo::publish_to`] named it.
    bare: Option<PathBuf>,
    /// The branch the bare repository's `HEAD` names.
    default_branch: String,
}

impl WorkRepo {
    /// `git init` in `dir` (created if missing) on branch `branch`; git's `HOME` is `home`.
    pub fn init(dir: &Path, home: &Path, branch: &str) -> anyhow::Result<WorkRepo> {
        std::fs::create_dir_all(dir)?;
        std::fs::create_dir_all(home)?;
        let repo = WorkRepo {
            dir: dir.to_path_buf(),
            home: home.to_path_buf(),
            clock: EPOCH,
            bare: None,
            default_branch: branch.to_string(),
        };
        repo.git(["init", "-q", &format!("--initial-branch={branch}")])?;
        // Symlinks and the executable bit are committed as such; no line-ending rewriting on
        // `git add` beyond what `.gitattributes` asks for.
        repo.git(["config", "core.symlinks", "true"])?;
        repo.git(["config", "core.filemode", "true"])?;
        repo.git(["config", "core.autocrlf", "false"])?;
        Ok(repo)
    }

    /// The working directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The time (Unix seconds, UTC) the next commit will carry.
    pub fn next_time(&self) -> i64 {
        self.clock
    }

    /// Runs `git args…` in the working directory at the current clock; returns trimmed stdout.
    pub fn git<I, S>(&self, args: I) -> anyhow::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = git_command(&self.home, self.clock);
        cmd.args(args).current_dir(&self.dir);
        run(cmd)
    }

    /// Writes `contents` to `path` (relative; parent directories created).
    pub fn write(&self, path: &str, contents: impl AsRef<[u8]>) -> anyhow::Result<&WorkRepo> {
        let full = self.dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&full, contents).with_context(|| format!("writing {}", full.display()))?;
        Ok(self)
    }

    /// Writes `contents` to `path` with mode 0755.
    pub fn write_exec(&self, path: &str, contents: impl AsRef<[u8]>) -> anyhow::Result<&WorkRepo> {
        use std::os::unix::fs::PermissionsExt;
        self.write(path, contents)?;
        std::fs::set_permissions(self.dir.join(path), std::fs::Permissions::from_mode(0o755))?;
        Ok(self)
    }

    /// Creates a symbolic link `path` → `target`.
    pub fn symlink(&self, path: &str, target: &str) -> anyhow::Result<&WorkRepo> {
        let full = self.dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink(target, &full)
            .with_context(|| format!("symlink {}", full.display()))?;
        Ok(self)
    }

    /// Deletes `path` (a file, link or directory tree).
    pub fn remove(&self, path: &str) -> anyhow::Result<&WorkRepo> {
        let full = self.dir.join(path);
        let meta = std::fs::symlink_metadata(&full)?;
        if meta.is_dir() {
            std::fs::remove_dir_all(&full)?;
        } else {
            std::fs::remove_file(&full)?;
        }
        Ok(self)
    }

    /// Stages everything (`git add -A`) and commits at the current clock, which then advances
    /// by [`TICK`]. Returns the full commit hash.
    pub fn commit(&mut self, message: &str) -> anyhow::Result<String> {
        self.git(["add", "-A"])?;
        self.git(["commit", "-q", "--allow-empty", "-m", message])?;
        self.clock += TICK;
        self.head()
    }

    /// A lightweight tag `name` on `HEAD`.
    pub fn tag(&mut self, name: &str) -> anyhow::Result<()> {
        self.git(["tag", name]).map(drop)
    }

    /// An annotated tag `name` on `HEAD` (the tagger date is the clock, which then advances: the
    /// go command must use the *commit's* time, not the tag's).
    pub fn annotated_tag(&mut self, name: &str, message: &str) -> anyhow::Result<()> {
        self.git(["tag", "-a", name, "-m", message])?;
        self.clock += TICK;
        Ok(())
    }

    /// Creates branch `name` at `HEAD` and switches to it.
    pub fn branch(&self, name: &str) -> anyhow::Result<()> {
        self.git(["checkout", "-q", "-b", name]).map(drop)
    }

    /// Switches to the existing branch (or tag, detached) `name`.
    pub fn checkout(&self, name: &str) -> anyhow::Result<()> {
        self.git(["checkout", "-q", name]).map(drop)
    }

    /// The full hash of `HEAD`.
    pub fn head(&self) -> anyhow::Result<String> {
        self.rev_parse("HEAD")
    }

    /// The full commit hash `rev` names (tags are peeled).
    pub fn rev_parse(&self, rev: &str) -> anyhow::Result<String> {
        self.git(["rev-parse", &format!("{rev}^{{commit}}")])
    }

    /// The committer time (Unix seconds) of `rev`.
    pub fn commit_time(&self, rev: &str) -> anyhow::Result<i64> {
        let out = self.git(["log", "-n1", "--format=%ct", rev])?;
        out.parse()
            .with_context(|| format!("parsing commit time {out:?}"))
    }

    /// Names the bare repository [`WorkRepo::publish`] pushes to (created now, `HEAD` on the
    /// branch this repository was initialised with).
    pub fn publish_to(&mut self, bare: &Path) -> anyhow::Result<()> {
        init_bare(&self.home, bare, &self.default_branch)?;
        self.bare = Some(bare.to_path_buf());
        Ok(())
    }

    /// Mirrors every branch and tag into the bare repository (`git push --mirror`: refs deleted
    /// here disappear there too).
    pub fn publish(&self) -> anyhow::Result<()> {
        let Some(bare) = &self.bare else {
            bail!("{}: publish_to was never called", self.dir.display());
        };
        let mut cmd = git_command(&self.home, self.clock);
        cmd.current_dir(&self.dir)
            .args(["push", "-q", "--mirror"])
            .arg(bare);
        run(cmd).map(drop)
    }

    /// The bare repository this one publishes to, if named.
    pub fn bare(&self) -> Option<&Path> {
        self.bare.as_deref()
    }
}

/// Formats Unix seconds as the 14-digit UTC timestamp of pseudo-versions (`yyyymmddhhmmss`).
pub fn pseudo_timestamp(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(pseudo_timestamp(EPOCH), "20240101000000");
        assert_eq!(
            pseudo_timestamp(EPOCH + 59 * 86_400 + 3_723),
            "20240229010203"
        );
        assert_eq!(pseudo_timestamp(0), "19700101000000");
    }

    #[test]
    fn commits_are_deterministic() {
        let tmp = tempfile::tempdir().unwrap();
        let hash = |name: &str| {
            let dir = tmp.path().join(name);
            let mut r = WorkRepo::init(&dir, &tmp.path().join("home"), "main").unwrap();
            r.write("a.txt", "a\n").unwrap();
            let first = r.commit("first").unwrap();
            assert_eq!(r.commit_time("HEAD").unwrap(), EPOCH);
            r.annotated_tag("v1.0.0", "one").unwrap();
            r.write("b.txt", "b\n").unwrap();
            let second = r.commit("second").unwrap();
            assert_eq!(r.commit_time("HEAD").unwrap(), EPOCH + 2 * TICK);
            assert_eq!(r.rev_parse("v1.0.0").unwrap(), first);
            second
        };
        assert_eq!(hash("one"), hash("two"));
    }
}
