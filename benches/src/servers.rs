//! The two servers under test, each a child process on 127.0.0.1 killed when dropped:
//! `cairn-node` with the corpus as its `file://` upstream, and a reference static server serving
//! the corpus directory itself (nginx when it is on `PATH`, else this binary's own
//! `--serve-static` mode, see [`crate::static_server`]). Also a one-shot HTTP GET used for
//! readiness, cache warming and checking both servers return the same bytes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

/// How long a server gets to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server process.
pub struct Server {
    /// Short name for the report (`cairn`, `nginx`, `hyper-static`).
    pub name: String,
    /// Its HTTP address (cairn with `[tls]`: its plain-HTTP `tls.plain_listen` address).
    pub addr: SocketAddr,
    /// cairn with `[tls]`: its HTTPS address.
    pub https: Option<SocketAddr>,
    /// Its process id (nginx: the master; workers are found as its children).
    pub pid: u32,
    /// Where its stderr goes.
    pub log: PathBuf,
    child: Child,
}

impl Drop for Server {
    /// Stops the server with SIGTERM so that it takes its children along (SIGKILL of the
    /// nginx master orphans its workers), then SIGKILL if it is still there after 5 s.
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Fails with the tail of the server's log if it has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!(
                "{} exited ({status}); log tail:\n{}",
                self.name,
                log_tail(&self.log)
            );
        }
        Ok(())
    }
}

/// The last 20 lines of a log file.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Starts `cairn-node` over `corpus` with its data in `work/cairn-data`, and waits for `/readyz`.
/// `env` is added to the inherited environment (e.g. `CAIRN_CACHE__VERIFY_ON_READ=false`).
pub async fn start_cairn(
    bin: &Path,
    corpus: &Path,
    work: &Path,
    env: &[(String, String)],
) -> anyhow::Result<Server> {
    start_cairn_with(bin, corpus, work, env, None).await
}

/// [`start_cairn`] with a config file. With `[tls]` it must also set `tls.plain_listen`: the
/// server's `addr` is then that plain address (readiness is probed there) and `https` the
/// GOPROXY port.
pub async fn start_cairn_with(
    bin: &Path,
    corpus: &Path,
    work: &Path,
    env: &[(String, String)],
    config: Option<&Path>,
) -> anyhow::Result<Server> {
    let data = work.join("cairn-data");
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    if let Some(config) = config {
        args.extend(["--config".into(), config.into()]);
    }
    args.extend(["--listen", "127.0.0.1:0", "--cluster-listen", "127.0.0.1:0"].map(Into::into));
    args.extend([
        "--upstream".into(),
        format!("file://{}", corpus.display()).into(),
    ]);
    spawn_cairn(bin, &data, &args, env, READY_TIMEOUT).await
}

/// Starts `cairn-node` with `args` (besides `--data-dir data` and json warn logs into
/// `<data>.log`) and waits up to `ready` for `/readyz`.
pub async fn spawn_cairn(
    bin: &Path,
    data: &Path,
    args: &[std::ffi::OsString],
    env: &[(String, String)],
    ready: Duration,
) -> anyhow::Result<Server> {
    std::fs::create_dir_all(data)?;
    let log = data.with_extension("log");
    let child = Command::new(bin)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .args(["--log-format", "json", "--log-level", "warn"])
        // The bench corpus is local: no public checksum database knows it (verification has
        // its own bench, `cairn-bench verify`).
        .env("CAIRN_SUMDB__DATABASES", "[]")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id();
    let placeholder: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut server = Server {
        name: "cairn".into(),
        addr: placeholder,
        https: None,
        pid,
        log,
        child,
    };
    let (http, plain) =
        wait_listen_addrs(&mut server, &data.join("listen-addrs.json"), ready).await?;
    match plain {
        Some(plain) => (server.addr, server.https) = (plain, Some(http)),
        None => server.addr = http,
    }
    wait_ready(&mut server, "/readyz", ready).await?;
    Ok(server)
}

/// Polls `<data-dir>/listen-addrs.json` (`{"http":"127.0.0.1:P","plain_http":…}`) for the
/// GOPROXY address and the extra plain-HTTP one, if any.
async fn wait_listen_addrs(
    server: &mut Server,
    file: &Path,
    timeout: Duration,
) -> anyhow::Result<(SocketAddr, Option<SocketAddr>)> {
    let deadline = Instant::now() + timeout;
    let parse = |json: &serde_json::Value, key: &str| -> anyhow::Result<Option<SocketAddr>> {
        json[key]
            .as_str()
            .map(|a| {
                a.parse()
                    .with_context(|| format!("bad {key} address {a:?}"))
            })
            .transpose()
    };
    loop {
        server.check_alive()?;
        if let Ok(text) = std::fs::read_to_string(file) {
            let json: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", file.display()))?;
            let http = parse(&json, "http")?.context("listen-addrs.json has no \"http\"")?;
            return Ok((http, parse(&json, "plain_http")?));
        }
        if Instant::now() > deadline {
            bail!("cairn-node wrote no {} within {timeout:?}", file.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `GET path` until it answers 200.
async fn wait_ready(server: &mut Server, path: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        server.check_alive()?;
        let last = match get(server.addr, path).await {
            Ok((StatusCode::OK, _)) => return Ok(()),
            Ok((status, _)) => format!("status {status}"),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() > deadline {
            bail!(
                "{} not ready at {path} within {timeout:?}: {last}",
                server.name
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Which reference server to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StaticChoice {
    /// nginx (installed with apt-get when missing and possible), else the built-in hyper server.
    Auto,
    /// nginx (installed with apt-get when missing; fails if it cannot be).
    Nginx,
    /// The built-in hyper file server.
    Hyper,
}

/// Starts the reference static server over `corpus`; `probe` is a path it must serve.
pub async fn start_static(
    choice: StaticChoice,
    corpus: &Path,
    work: &Path,
    probe: &str,
) -> anyhow::Result<Server> {
    let nginx = match choice {
        StaticChoice::Hyper => Err(String::new()),
        StaticChoice::Nginx | StaticChoice::Auto => find_or_install("nginx", "nginx-light"),
    };
    let mut server = match (choice, nginx) {
        (StaticChoice::Nginx, Err(why)) => {
            bail!("--static-server nginx, but nginx is not on PATH and {why}; {NGINX_HINT}")
        }
        (StaticChoice::Nginx | StaticChoice::Auto, Ok(bin)) => start_nginx(&bin, corpus, work)?,
        (StaticChoice::Auto, Err(why)) => {
            eprintln!(
                "cairn-bench: nginx not found and {why}; comparing with the built-in hyper file \
                 server instead (about half nginx's speed on small files); {NGINX_HINT}"
            );
            start_hyper_static(corpus, work).await?
        }
        (StaticChoice::Hyper, _) => start_hyper_static(corpus, work).await?,
    };
    wait_ready(&mut server, probe, READY_TIMEOUT).await?;
    Ok(server)
}

/// The first `name` on `PATH`, else in `/usr/sbin` or `/usr/local/sbin` (where Debian puts
/// nginx, often not on a non-root user's `PATH`).
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `name` on the path; else the Debian package `package` installed with apt-get (as root, or
/// through `sudo -n`), said on stderr. `Err` says why it could not be installed.
pub fn find_or_install(name: &str, package: &str) -> Result<PathBuf, String> {
    if let Some(bin) = find_on_path(name) {
        return Ok(bin);
    }
    let Some(apt) = find_on_path("apt-get") else {
        return Err("this machine has no apt-get to install it with".into());
    };
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let run = |args: &[&str]| -> Result<(), String> {
        let mut cmd = if root {
            Command::new(&apt)
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg("-n").arg(&apt);
            sudo
        };
        let out = cmd
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("apt-get could not run: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        Err(format!("`apt-get {}` failed: {last}", args.join(" ")))
    };
    eprintln!("cairn-bench: {name} is not installed; installing the Debian package {package}");
    let install = ["install", "-y", "--no-install-recommends", package];
    // A fresh machine may have no package lists yet.
    run(&install).or_else(|_| run(&["update"]).and_then(|()| run(&install)))?;
    find_on_path(name).ok_or_else(|| format!("{package} was installed but {name} is not on PATH"))
}

/// How to get nginx, for the error and the `auto` fallback notice.
pub const NGINX_HINT: &str = "install it (Debian/Ubuntu: `sudo apt-get install -y nginx-light`; \
     macOS: `brew install nginx`); issue 13's targets are ratios against nginx";

/// nginx with a minimal config: 2 workers, sendfile, no access log, long keep-alive.
fn start_nginx(bin: &Path, corpus: &Path, work: &Path) -> anyhow::Result<Server> {
    let dir = work.join("nginx");
    // Workers may run as another user (`nobody` under a root master): let them into the temp dir.
    std::fs::set_permissions(work, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    std::fs::create_dir_all(dir.join("logs"))?;
    // nginx cannot report a port it picked, so take a free one and hand it over (a small race).
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nworker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  tcp_nodelay on;\n\
         keepalive_requests 100000000;\n  keepalive_timeout 120s;\n\
         default_type application/octet-stream;\n\
         client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         server {{\n    listen 127.0.0.1:{port} backlog=4096;\n    root {root};\n  }}\n}}\n",
        root = corpus.display()
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let log = dir.join("stderr.log");
    let child = Command::new(bin)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id();
    Ok(Server {
        name: "nginx".into(),
        addr: ([127, 0, 0, 1], port).into(),
        https: None,
        pid,
        log,
        child,
    })
}

/// This binary in `--serve-static` mode; its first stdout line is the bound address.
async fn start_hyper_static(corpus: &Path, work: &Path) -> anyhow::Result<Server> {
    let exe = std::env::current_exe().context("locating cairn-bench itself")?;
    let log = work.join("hyper-static.log");
    let mut child = Command::new(exe)
        .arg("--serve-static")
        .arg(corpus)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting the hyper static server")?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let pid = child.id();
    let placeholder: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut server = Server {
        name: "hyper-static".into(),
        addr: placeholder,
        https: None,
        pid,
        log,
        child,
    };
    // A blocking read: it ends with the first line, or with EOF when the child exits or is killed.
    let read = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).map(|_| line)
    });
    let line = match tokio::time::timeout(READY_TIMEOUT, read).await {
        Ok(joined) => joined??,
        Err(_) => bail!("the hyper static server printed no address within {READY_TIMEOUT:?}"),
    };
    server.check_alive()?;
    server.addr = line
        .trim()
        .parse()
        .with_context(|| format!("bad address {line:?}"))?;
    Ok(server)
}

/// One `GET path` on a fresh connection; returns the status and the whole body.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    let req = Request::get(path)
        .header(hyper::header::HOST, "127.0.0.1")
        .body(Empty::<Bytes>::new())?;
    let resp = tokio::time::timeout(READY_TIMEOUT, sender.send_request(req)).await??;
    let status = resp.status();
    let body = tokio::time::timeout(READY_TIMEOUT, resp.into_body().collect()).await??;
    driver.abort();
    Ok((status, body.to_bytes()))
}
