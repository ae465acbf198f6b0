//! The real `go` command, hermetic.
//!
//! Every invocation gets an explicit `GOPROXY` (cairn, a `file://` tree or a fixture, never the
//! machine default), `GOSUMDB=off`, `GOFLAGS=-mod=mod -modcacherw`, `GOTOOLCHAIN=local`,
//! `GOENV=off`, empty `GONOSUMDB`/`GOPRIVATE`/`GONOPROXY`, and private `GOPATH`, `GOMODCACHE`,
//! `GOCACHE`, `HOME` and `TMPDIR` inside a [`GoEnv`]'s temp directory. The rest of the environment is
//! cleared (only `PATH` survives), so no proxy variable or user config leaks in. `-modcacherw` keeps
//! the module cache deletable when the temp directory is dropped.
//!
//! [`GoEnv::direct`] is the exception: the go command's own direct mode (`GOPROXY=direct`) against
//! private git repositories, for comparing cairn's `direct` source with the real thing. Then
//! `GOPRIVATE`, `GONOPROXY` and `GONOSUMDB` name the private patterns, `GOVCS` allows git for them
//! only, and git reads a generated config file (`GIT_CONFIG_GLOBAL`, typically `insteadOf` rules
//! that send `https://git.corp.example/` to a loopback server; `GIT_CONFIG_NOSYSTEM=1`).
//!
//! [`go`] finds the binary (`$CAIRN_GO_BIN`, else `go` on `PATH`). When it is missing, tests are
//! skipped loudly, or fail when `CAIRN_REQUIRE_GO=1`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use tempfile::TempDir;
use tokio::process::Command;

use crate::wait::patience;

/// The `go` binary.
#[derive(Clone, Debug)]
pub struct Go {
    /// Path of the executable.
    pub bin: PathBuf,
}

/// Finds `go`. Returns `None` (after printing `SKIPPED: …`) when it is missing, unless
/// `CAIRN_REQUIRE_GO=1`, in which case it panics. `test` names the caller in the message.
pub fn go(test: &str) -> Option<Go> {
    if let Some(bin) = find_go() {
        return Some(Go { bin });
    }
    if std::env::var("CAIRN_REQUIRE_GO").is_ok_and(|v| v == "1") {
        panic!("{test}: go not found (CAIRN_GO_BIN / PATH) and CAIRN_REQUIRE_GO=1");
    }
    eprintln!("SKIPPED: go not found on PATH (set CAIRN_GO_BIN); test {test} did not run");
    None
}

fn find_go() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CAIRN_GO_BIN") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("go"))
        .find(|p| p.is_file())
}

/// One line of `go mod download -json` output.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Download {
    /// Module path.
    pub path: String,
    /// Version.
    pub version: String,
    /// Error text, if the download failed.
    pub error: String,
    /// go.sum hash of the zip.
    pub sum: String,
    /// go.sum hash of the go.mod.
    pub go_mod_sum: String,
    /// Cache path of the zip.
    pub zip: String,
    /// Cache path of the `.info` file.
    pub info: String,
    /// Cache path of the `.mod` file.
    pub go_mod: String,
}

/// Settings of the go command's direct mode (see [`GoEnv::direct`]).
#[derive(Clone, Debug, Default)]
pub struct DirectMode {
    /// `GOPRIVATE`, also used for `GONOPROXY` and (unless set otherwise) `GONOSUMDB`.
    pub private: String,
    /// The text of the git config file `GIT_CONFIG_GLOBAL` points at (e.g. `insteadOf` rules).
    pub git_config: String,
    /// `GOINSECURE` (empty unless a test needs plain-HTTP discovery).
    pub insecure: String,
}

/// `go list -m -json` output (the fields the suite compares).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ModuleInfo {
    /// Module path.
    pub path: String,
    /// Resolved version.
    pub version: String,
    /// Version time.
    pub time: String,
    /// Error, if any.
    pub error: Option<serde_json::Value>,
}

/// Output of one `go` run.
#[derive(Clone, Debug)]
pub struct GoOutput {
    /// Whether it exited 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The command line and GOPROXY, for messages.
    pub describe: String,
}

impl GoOutput {
    /// Errors with the full output unless the command succeeded.
    pub fn ok(self) -> anyhow::Result<GoOutput> {
        if !self.success {
            bail!(
                "{} failed\n--- stdout:\n{}\n--- stderr:\n{}",
                self.describe,
                self.stdout,
                self.stderr
            );
        }
        Ok(self)
    }
}

/// A private `go` environment: its own GOPATH, module cache, build cache, HOME and work dir.
pub struct GoEnv {
    go: Go,
    dir: TempDir,
    /// The `GOPROXY` value used by every command.
    pub goproxy: String,
    /// Per-command timeout.
    pub timeout: Duration,
    /// `GOSUMDB` (default `off`; a verifier key turns checksum verification on).
    pub gosumdb: String,
    /// `GONOSUMDB` (default empty).
    pub nosumdb: String,
    /// Direct mode, when set (then `goproxy` is `direct`).
    direct: Option<DirectMode>,
    /// More environment variables (e.g. `SSL_CERT_FILE`), set last.
    pub extra_env: Vec<(String, String)>,
    /// A command every `go` runs under, e.g. `ip netns exec <ns>`; empty: none.
    pub prefix: Vec<String>,
}

impl GoEnv {
    /// A fresh environment using `goproxy`.
    pub fn new(go: &Go, goproxy: &str) -> anyhow::Result<GoEnv> {
        let dir = tempfile::Builder::new().prefix("cairn-go-").tempdir()?;
        for sub in ["gopath", "modcache", "gocache", "home", "tmp", "work"] {
            std::fs::create_dir_all(dir.path().join(sub))?;
        }
        // Telemetry off: otherwise go leaves a child process writing counters into HOME after
        // the command exits, which recreates the temp directory after it was deleted.
        let telemetry = dir.path().join("home/.config/go/telemetry");
        std::fs::create_dir_all(&telemetry)?;
        std::fs::write(telemetry.join("mode"), "off")?;
        Ok(GoEnv {
            go: go.clone(),
            dir,
            goproxy: goproxy.to_string(),
            timeout: patience(12.0),
            gosumdb: "off".to_string(),
            nosumdb: String::new(),
            direct: None,
            extra_env: Vec::new(),
            prefix: Vec::new(),
        })
    }

    /// A fresh environment in the go command's direct mode: `GOPROXY=direct`, `GOSUMDB=off`,
    /// `GOPRIVATE`/`GONOPROXY`/`GONOSUMDB` = `mode.private`, `GOVCS=private:git,public:off`, and
    /// git configured only by `mode.git_config` (written to a file in the environment).
    pub fn direct(go: &Go, mode: DirectMode) -> anyhow::Result<GoEnv> {
        let mut env = GoEnv::new(go, "direct")?.with_nosumdb(&mode.private);
        std::fs::write(env.git_config_path(), &mode.git_config)?;
        env.direct = Some(mode);
        Ok(env)
    }

    /// The direct-mode settings, if this environment runs in direct mode.
    pub fn direct_mode(&self) -> Option<&DirectMode> {
        self.direct.as_ref()
    }

    /// Where the git config file of direct mode is written.
    fn git_config_path(&self) -> PathBuf {
        self.dir.path().join("gitconfig")
    }

    /// The same environment with `GOSUMDB=gosumdb` (e.g. a verifier key).
    pub fn with_sumdb(mut self, gosumdb: &str) -> GoEnv {
        self.gosumdb = gosumdb.to_string();
        self
    }

    /// The same environment with `name=value` set for every command.
    pub fn with_env(mut self, name: &str, value: &str) -> GoEnv {
        self.extra_env.push((name.to_string(), value.to_string()));
        self
    }

    /// The same environment with every command run under `prefix` (e.g. `ip netns exec <ns>`).
    pub fn with_prefix(mut self, prefix: Vec<String>) -> GoEnv {
        self.prefix = prefix;
        self
    }

    /// The same environment with `GONOSUMDB=patterns`.
    pub fn with_nosumdb(mut self, patterns: &str) -> GoEnv {
        self.nosumdb = patterns.to_string();
        self
    }

    /// Another fresh environment (empty caches and GOPATH) with the same settings.
    pub fn fresh(&self) -> anyhow::Result<GoEnv> {
        let env = match &self.direct {
            Some(mode) => GoEnv::direct(&self.go, mode.clone())?,
            None => GoEnv::new(&self.go, &self.goproxy)?,
        };
        let mut env = env.with_sumdb(&self.gosumdb).with_nosumdb(&self.nosumdb);
        env.extra_env = self.extra_env.clone();
        env.prefix = self.prefix.clone();
        Ok(env)
    }

    /// The GOPATH directory (holds the go command's trusted checksum-database state).
    pub fn gopath(&self) -> PathBuf {
        self.dir.path().join("gopath")
    }

    /// The `HOME` of every command (where the go command looks for `.netrc`).
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The module cache directory.
    pub fn modcache(&self) -> PathBuf {
        self.dir.path().join("modcache")
    }

    /// A scratch directory outside any module.
    pub fn workdir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Runs `go args…` in `cwd` and returns its output whatever the exit status.
    pub async fn run(&self, cwd: &Path, args: &[&str]) -> anyhow::Result<GoOutput> {
        let d = self.dir.path();
        let mut cmd = match self.prefix.split_first() {
            Some((program, prefix_args)) => {
                let mut cmd = Command::new(program);
                cmd.args(prefix_args).arg(&self.go.bin);
                cmd
            }
            None => Command::new(&self.go.bin),
        };
        cmd.args(args).current_dir(cwd).env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.env("GOPROXY", &self.goproxy)
            .env("GOSUMDB", &self.gosumdb)
            .env("GOFLAGS", "-mod=mod -modcacherw")
            .env("GOTOOLCHAIN", "local")
            .env("GOENV", "off")
            .env("GONOSUMDB", &self.nosumdb)
            .env("GOPRIVATE", "")
            .env("GONOPROXY", "")
            .env("GOINSECURE", "")
            .env("GOVCS", "*:off")
            .env("GOPATH", d.join("gopath"))
            .env("GOMODCACHE", d.join("modcache"))
            .env("GOCACHE", d.join("gocache"))
            .env("HOME", d.join("home"))
            .env("TMPDIR", d.join("tmp"))
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("CGO_ENABLED", "0");
        if let Some(mode) = &self.direct {
            cmd.env("GOPRIVATE", &mode.private)
                .env("GONOPROXY", &mode.private)
                .env("GOINSECURE", &mode.insecure)
                .env("GOVCS", "private:git,public:off")
                .env("GIT_CONFIG_GLOBAL", self.git_config_path())
                .env("GIT_CONFIG_NOSYSTEM", "1");
        }
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let describe = format!(
            "go {} (GOPROXY={}, GOSUMDB={}, cwd {})",
            args.join(" "),
            self.goproxy,
            self.gosumdb,
            cwd.display()
        );
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {describe}"))?;
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| {
                anyhow::anyhow!("{describe} did not finish within {:?}", self.timeout)
            })??;
        Ok(GoOutput {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            describe,
        })
    }

    /// `go mod download -json <module@version>…` outside any module. Returns one [`Download`] per
    /// argument (failed ones carry `error`), plus the raw output for messages.
    pub async fn mod_download(&self, mvs: &[String]) -> anyhow::Result<(Vec<Download>, GoOutput)> {
        let mut args = vec!["mod", "download", "-json"];
        args.extend(mvs.iter().map(String::as_str));
        let out = self.run(&self.workdir(), &args).await?;
        let downloads = serde_json::Deserializer::from_str(&out.stdout)
            .into_iter::<Download>()
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| {
                format!(
                    "parsing the JSON of {}\n{}\n{}",
                    out.describe, out.stdout, out.stderr
                )
            })?;
        Ok((downloads, out))
    }

    /// Like [`GoEnv::mod_download`], but every download must succeed.
    pub async fn mod_download_ok(&self, mvs: &[String]) -> anyhow::Result<Vec<Download>> {
        let (downloads, out) = self.mod_download(mvs).await?;
        let failed: Vec<&Download> = downloads.iter().filter(|d| !d.error.is_empty()).collect();
        if !out.success || !failed.is_empty() || downloads.len() != mvs.len() {
            bail!(
                "{}: {} of {} failed (exit ok: {})\n{failed:#?}\n--- stderr:\n{}",
                out.describe,
                failed.len(),
                mvs.len(),
                out.success,
                out.stderr
            );
        }
        Ok(downloads)
    }

    /// `go list -m -versions <module>` → the versions it prints (retracted ones hidden by go).
    pub async fn list_versions(&self, module: &str) -> anyhow::Result<Vec<String>> {
        let out = self
            .run(&self.workdir(), &["list", "-m", "-versions", module])
            .await?
            .ok()?;
        let mut fields = out.stdout.split_whitespace();
        anyhow::ensure!(
            fields.next() == Some(module),
            "unexpected output of {}: {}",
            out.describe,
            out.stdout
        );
        Ok(fields.map(str::to_string).collect())
    }

    /// `go list -m -json <module>@<query>`.
    pub async fn list_query(&self, module: &str, query: &str) -> anyhow::Result<ModuleInfo> {
        let arg = format!("{module}@{query}");
        let out = self
            .run(&self.workdir(), &["list", "-m", "-json", &arg])
            .await?
            .ok()?;
        serde_json::from_str(&out.stdout)
            .with_context(|| format!("parsing {}: {}", out.describe, out.stdout))
    }

    /// In a new temp module `example.com/consumer` (go 1.21), runs `go get <m>@latest…` and returns
    /// the resulting (go.mod, go.sum) texts.
    pub async fn get_latest(&self, modules: &[String]) -> anyhow::Result<(String, String)> {
        let dir = tempfile::Builder::new()
            .prefix("consumer-")
            .tempdir_in(self.dir.path())?;
        std::fs::write(
            dir.path().join("go.mod"),
            "module example.com/consumer\n\ngo 1.21\n",
        )?;
        let targets: Vec<String> = modules.iter().map(|m| format!("{m}@latest")).collect();
        let mut args = vec!["get"];
        args.extend(targets.iter().map(String::as_str));
        self.run(dir.path(), &args).await?.ok()?;
        let go_mod = std::fs::read_to_string(dir.path().join("go.mod"))?;
        let go_sum = std::fs::read_to_string(dir.path().join("go.sum")).unwrap_or_default();
        Ok((go_mod, go_sum))
    }
}
