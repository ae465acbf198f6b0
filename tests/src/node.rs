//! A `cairn-node` process under test.
//!
//! [`CairnNode::start`] runs the binary on `127.0.0.1:0` ports (or the ones [`NodeOptions`] names)
//! with a private data directory, waits for `<data-dir>/listen-addrs.json` and for `GET /readyz` →
//! 200, and captures stderr and stdout (JSON log lines) to a file. When a test panics, dropping
//! the handle prints the log tail. The process is killed (SIGKILL) on drop.
//!
//! The binary is `$CAIRN_NODE_BIN`, else `cairn-node` next to the test executable's profile
//! directory (`target/<profile>/cairn-node`).

use std::fs::{self, File, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use serde::Deserialize;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::metrics::Metrics;
use crate::wait::{patience, wait_for, wait_until};

/// Where to find the node binary: `$CAIRN_NODE_BIN` or `target/<profile>/cairn-node`.
/// Panics with a build hint when it is missing.
pub fn node_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CAIRN_NODE_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "CAIRN_NODE_BIN={} does not exist", p.display());
        return p;
    }
    let exe = std::env::current_exe().expect("the test executable has a path");
    let mut dir = exe
        .parent()
        .expect("the test executable is in a directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("cairn-node");
    assert!(
        bin.is_file(),
        "cairn-node not found at {} (set CAIRN_NODE_BIN to override): build it first: cargo build --bins",
        bin.display()
    );
    bin
}

/// How to start a node.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// `--upstream` (GOPROXY syntax).
    pub upstream: String,
    /// Contents of the `--config` TOML file, if any.
    pub config: Option<String>,
    /// `--node-id`.
    pub node_id: u64,
    /// `--listen` (default `127.0.0.1:0`; the bound address is read from `listen-addrs.json`).
    pub listen: String,
    /// `--cluster-listen` (default `127.0.0.1:0`).
    pub cluster_listen: String,
    /// More arguments, appended last.
    pub extra_args: Vec<String>,
    /// Environment variables set (`Some`) or removed (`None`) last, after the defaults that keep
    /// the machine's proxies out (`NO_PROXY=*`).
    pub env: Vec<(String, Option<String>)>,
    /// The CA of the node's HTTPS certificate: when set, the harness talks HTTPS to `--listen`.
    pub https_ca: Option<PathBuf>,
    /// A command the node binary is run under, e.g. `ip netns exec <ns>` (it must exec, so the
    /// process id stays the node's); empty: run the binary directly.
    pub prefix: Vec<String>,
}

impl NodeOptions {
    /// A single node in front of `upstream`, no config file.
    pub fn new(upstream: &str) -> Self {
        NodeOptions {
            upstream: upstream.to_string(),
            config: None,
            node_id: 1,
            listen: "127.0.0.1:0".to_string(),
            cluster_listen: "127.0.0.1:0".to_string(),
            extra_args: Vec::new(),
            env: Vec::new(),
            https_ca: None,
            prefix: Vec::new(),
        }
    }

    /// The node serves HTTPS on `--listen` with a certificate signed by `ca` (PEM file).
    pub fn https(mut self, ca: &Path) -> Self {
        self.https_ca = Some(ca.to_path_buf());
        self
    }

    /// Sets (`Some`) or removes (`None`) an environment variable of the node.
    pub fn env(mut self, name: &str, value: Option<&str>) -> Self {
        self.env.push((name.to_owned(), value.map(str::to_owned)));
        self
    }

    /// Adds a config file with this TOML text.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_string());
        self
    }
}

/// The test's config, plus `[sumdb] databases = []` unless it configures checksum databases
/// itself: tests are hermetic, and the default database (`sum.golang.org`, which verifies every
/// public version before it is stored) is on the Internet.
pub fn hermetic_config(config: Option<&str>) -> String {
    let config = config.unwrap_or("");
    if config.contains("sumdb.databases") || config.contains("databases =") {
        return config.to_owned();
    }
    if config.contains("[sumdb]") {
        return config.replacen("[sumdb]", "[sumdb]\ndatabases = []", 1);
    }
    format!("{config}\n[sumdb]\ndatabases = []\n")
}

/// The addresses the node wrote to `listen-addrs.json`.
#[derive(Clone, Copy, Debug, Deserialize)]
pub struct ListenAddrs {
    /// GOPROXY HTTP listener.
    pub http: SocketAddr,
    /// gRPC cluster listener.
    pub cluster: SocketAddr,
}

/// An HTTP answer, fully read.
#[derive(Clone, Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Resp {
    /// A header as a string ("" when absent or not ASCII).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A running (or stopped, between [`CairnNode::kill9`] and [`CairnNode::restart`]) node.
pub struct CairnNode {
    opts: NodeOptions,
    dir: TempDir,
    child: Option<Child>,
    addrs: ListenAddrs,
    client: reqwest::Client,
    starts: u32,
}

impl CairnNode {
    /// Starts a node with a fresh data directory and waits until it is ready.
    pub async fn start(opts: NodeOptions) -> anyhow::Result<CairnNode> {
        let dir = tempfile::Builder::new().prefix("cairn-node-").tempdir()?;
        CairnNode::start_in(opts, dir).await
    }

    /// Starts a node whose data directory `<dir>/data` may have been prepared beforehand (e.g.
    /// by `cairn restore`) and waits until it is ready.
    pub async fn start_in(opts: NodeOptions, dir: TempDir) -> anyhow::Result<CairnNode> {
        fs::create_dir_all(dir.path().join("data"))?;
        let mut client = reqwest::Client::builder()
            .no_proxy()
            .timeout(patience(6.0))
            .pool_max_idle_per_host(8);
        if let Some(ca) = &opts.https_ca {
            let pem = fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            client = client
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        let client = client.build()?;
        let placeholder: SocketAddr = "127.0.0.1:9".parse()?;
        let mut node = CairnNode {
            opts,
            dir,
            child: None,
            addrs: ListenAddrs {
                http: placeholder,
                cluster: placeholder,
            },
            client,
            starts: 0,
        };
        node.spawn_and_wait().await?;
        Ok(node)
    }

    /// The data directory (kept across restarts).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The log file (stderr and stdout of every run, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }

    /// Addresses of the current run.
    pub fn addrs(&self) -> ListenAddrs {
        self.addrs
    }

    /// `http://127.0.0.1:<port>` (`https://` with [`NodeOptions::https`]) of the current run.
    pub fn url(&self) -> String {
        let scheme = if self.opts.https_ca.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addrs.http)
    }

    /// The options; change them before [`CairnNode::restart`] to restart differently.
    pub fn options_mut(&mut self) -> &mut NodeOptions {
        &mut self.opts
    }

    /// The process id of the current run.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    async fn spawn_and_wait(&mut self) -> anyhow::Result<()> {
        let addrs_file = self.data_dir().join("listen-addrs.json");
        match fs::remove_file(&addrs_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        self.starts += 1;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        use std::io::Write;
        writeln!(&log, "===== cairn-tests: start #{} =====", self.starts)?;
        let mut cmd = self.command(&log)?;
        self.child = Some(
            cmd.spawn()
                .with_context(|| format!("spawning {}", node_bin().display()))?,
        );
        let what = format!("{} to appear", addrs_file.display());
        let addrs = wait_for(what, patience(3.0), || {
            let exited = self.check_alive().err();
            let parsed = fs::read(&addrs_file)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            async move {
                match exited {
                    Some(e) => Some(Err(e)),
                    None => parsed.map(Ok),
                }
            }
        })
        .await
        .map_err(|e| self.with_log(e))?
        .map_err(|e| self.with_log(e))?;
        self.addrs = addrs;
        let (client, url) = (self.client.clone(), format!("{}/readyz", self.url()));
        wait_until(format!("GET {url} -> 200"), patience(3.0), || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        })
        .await
        .map_err(|e| self.with_log(e))
    }

    fn command(&self, log: &File) -> anyhow::Result<Command> {
        let mut cmd = match self.opts.prefix.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(node_bin());
                cmd
            }
            None => Command::new(node_bin()),
        };
        cmd.arg("--listen").arg(&self.opts.listen);
        cmd.arg("--cluster-listen").arg(&self.opts.cluster_listen);
        cmd.arg("--data-dir").arg(self.data_dir());
        cmd.arg("--upstream").arg(&self.opts.upstream);
        cmd.arg("--node-id").arg(self.opts.node_id.to_string());
        cmd.arg("--log-format").arg("json");
        let path = self.dir.path().join("config.toml");
        fs::write(&path, hermetic_config(self.opts.config.as_deref()))?;
        cmd.arg("--config").arg(path);
        cmd.args(&self.opts.extra_args);
        // The node reads CAIRN_* variables as configuration: keep the test runner's own out.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CAIRN_") {
                cmd.env_remove(&k);
            }
        }
        for k in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("NO_PROXY", "*");
        for (k, v) in &self.opts.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?);
        cmd.kill_on_drop(true);
        Ok(cmd)
    }

    /// Errors (with the log tail) if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("cairn-node is not running");
        };
        if let Some(status) = child.try_wait()? {
            bail!("cairn-node exited early with {status}");
        }
        Ok(())
    }

    fn with_log(&self, e: anyhow::Error) -> anyhow::Error {
        e.context(format!(
            "cairn-node log tail ({}):\n{}",
            self.log_path().display(),
            self.log_tail(60)
        ))
    }

    /// Restarts on the same data directory (the process must have stopped) and waits until ready.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            if child.try_wait()?.is_none() {
                bail!("restart: the previous cairn-node process is still running");
            }
        }
        self.spawn_and_wait().await
    }

    /// SIGKILL, and reap the process.
    pub async fn kill9(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Sends a signal by name (`TERM`, `STOP`, `CONT`, …) with `kill(1)`.
    pub async fn signal(&self, sig: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("cairn-node is not running")?;
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .await?;
        anyhow::ensure!(st.success(), "kill -{sig} {pid} failed: {st}");
        Ok(())
    }

    /// Sends SIGTERM and waits (at most `timeout`) for the exit status.
    pub async fn sigterm(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        self.signal("TERM").await?;
        self.wait_exit(timeout).await
    }

    /// Waits (at most `timeout`) for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let child = self.child.as_mut().context("cairn-node is not running")?;
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(st) => Ok(st?),
            Err(_) => Err(self.with_log(anyhow::anyhow!(
                "cairn-node did not exit within {timeout:?}"
            ))),
        }
    }

    /// GET `path` (e.g. `/example.com/m/@v/list`) with the node's HTTP client.
    pub async fn get(&self, path: &str) -> anyhow::Result<Resp> {
        self.request(reqwest::Method::GET, path, &[]).await
    }

    /// Any request to `path` with extra headers.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Resp> {
        let url = format!("{}{path}", self.url());
        let mut req = self.client.request(method.clone(), &url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r
            .bytes()
            .await
            .with_context(|| format!("{method} {url}: reading the body"))?;
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    /// The HTTP client (no proxy, patient timeout).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Parsed `/metrics`.
    pub async fn metrics(&self) -> anyhow::Result<Metrics> {
        let r = self.get("/metrics").await?;
        anyhow::ensure!(
            r.status == 200,
            "GET /metrics -> {}: {}",
            r.status,
            r.text()
        );
        Ok(Metrics::parse(&r.text()))
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        read_log(&self.log_path())
    }

    /// The last `n` log lines.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log(), n)
    }

    /// Log lines at ERROR level (`"level":"ERROR"`).
    pub fn error_lines(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("\"level\":\"ERROR\""))
            .map(str::to_string)
            .collect()
    }

    /// Regular files under `<data-dir>/blobs/`, ignoring any `tmp` directory.
    pub fn blob_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        collect_files(&self.data_dir().join("blobs"), &mut out);
        out.sort();
        out
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if e.file_name() != "tmp" {
                collect_files(&e.path(), out);
            }
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
}

impl Drop for CairnNode {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- cairn-node log tail ({}):\n{}\n-----",
                self.log_path().display(),
                self.log_tail(80)
            );
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// A process log file as text (empty if it does not exist yet).
pub fn read_log(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last `n` lines of `log`.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
