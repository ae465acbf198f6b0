//! A smart-HTTP git server on `127.0.0.1:0`: `git http-backend` as CGI behind hyper.
//!
//! [`GitServer::start`] serves every bare repository under a root directory at
//! `http://127.0.0.1:<port>/<path relative to the root>` (for example `<root>/team/plain` answers
//! `git ls-remote http://127.0.0.1:<port>/team/plain`). Each request spawns one
//! `git http-backend` with the CGI variables set (the request body, gzip-encoded or not, is piped
//! to it; `Status:` and the other CGI headers are turned into the response, and the body is
//! streamed back). The backend runs with no user or system git configuration, exports every
//! repository, and allows any reachable commit in `want` lines, like the big hosting services.
//!
//! Tests steer it while it runs, like [`crate::fixture::Fixture`]:
//! - [`GitServer::set_fail`]: answer everything with one status (a broken git host);
//! - [`GitServer::kill`] / [`GitServer::revive`]: refuse connections, then listen again;
//! - [`GitServer::require_basic_auth`]: answer 401 unless the request carries these credentials;
//! - [`GitServer::add_go_import`]: answer `GET /<path>?go-get=1` with a `go-import` meta tag;
//! - the request log ([`GitServer::requests`]), with each `git-upload-pack` POST classified as
//!   [`Rpc::LsRefs`] or [`Rpc::Fetch`] from its first pkt-line, so a test can say "cairn fetched
//!   this repository exactly once" ([`GitServer::fetches`]) or "nothing reached it"
//!   ([`GitServer::count`]).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::net::TcpListener;

use crate::fixture::percent_decode;
use crate::serve::{accept, Conns, Serving};

/// The response body type.
type Body = BoxBody<Bytes, io::Error>;

/// What a `git-upload-pack` POST asked for (read from its first pkt-line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rpc {
    /// Protocol v2 `command=ls-refs`: listing refs (what `git ls-remote` and the start of every
    /// v2 fetch do).
    LsRefs,
    /// Protocol v2 `command=fetch`, or a v0/v1 request starting with `want`: objects were asked for.
    Fetch,
    /// Any other v2 command (`object-info`, …) or an unreadable body.
    Other,
}

/// One logged request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitRequest {
    /// HTTP method.
    pub method: String,
    /// Percent-decoded path, e.g. `/team/plain/info/refs`.
    pub path: String,
    /// Raw query string (empty when absent), e.g. `service=git-upload-pack`.
    pub query: String,
    /// The status answered.
    pub status: u16,
    /// The repository the path names, relative to the root (`team/plain`), when it is a git
    /// endpoint.
    pub repo: Option<String>,
    /// For `git-upload-pack` POSTs, what was asked.
    pub rpc: Option<Rpc>,
    /// The user of a valid `Authorization: Basic` header, if any.
    pub user: Option<String>,
}

/// A `go-import` answer for `?go-get=1` requests.
#[derive(Clone, Debug)]
struct GoImport {
    /// The import-path prefix (`git.corp.example/team/plain`).
    prefix: String,
    /// `git`, `mod`, …
    vcs: String,
    /// The repository URL.
    url: String,
}

#[derive(Default)]
struct Control {
    fail: Option<u16>,
    auth: Option<(String, String)>,
    go_imports: Vec<GoImport>,
}

struct State {
    root: PathBuf,
    ctl: Mutex<Control>,
    log: Mutex<Vec<GitRequest>>,
    /// Non-empty stderr of `git http-backend` runs (for failure messages).
    stderr: Mutex<Vec<String>>,
    conns: Conns,
    /// Serve HTTPS with this acceptor (see [`crate::tls::TestCa`]).
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// A running git server. Dropping it stops it (open connections are cut and the backends killed).
pub struct GitServer {
    addr: SocketAddr,
    state: Arc<State>,
    serving: Serving,
}

impl GitServer {
    /// Serves the bare repositories under `root` on `127.0.0.1:0`.
    pub async fn start(root: &Path) -> anyhow::Result<GitServer> {
        GitServer::start_with_tls(root, None).await
    }

    /// Like [`GitServer::start`], serving HTTPS with a certificate of `ca` when it is set.
    pub async fn start_with_tls(
        root: &Path,
        ca: Option<&crate::tls::TestCa>,
    ) -> anyhow::Result<GitServer> {
        let tls = ca.map(crate::tls::TestCa::acceptor);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            root: root.to_path_buf(),
            ctl: Mutex::new(Control::default()),
            log: Mutex::new(Vec::new()),
            stderr: Mutex::new(Vec::new()),
            conns: Conns::default(),
            tls,
        });
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        Ok(GitServer {
            addr,
            serving: Serving::new(accept, state.conns.clone()),
            state,
        })
    }

    /// `http://127.0.0.1:<port>` (`https://` when started with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.state.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// `http://127.0.0.1:<port>/<repo>` for a repository path relative to the root.
    pub fn repo_url(&self, repo: &str) -> String {
        format!("{}/{}", self.url(), repo.trim_matches('/'))
    }

    /// `http://<user>:<password>@127.0.0.1:<port>` (for `insteadOf` rules that carry credentials).
    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The directory served.
    pub fn root(&self) -> &Path {
        &self.state.root
    }

    /// Answers every request with `status` (`None` = serve normally).
    pub fn set_fail(&self, status: Option<u16>) {
        self.state.ctl.lock().unwrap().fail = status;
    }

    /// Requires `Authorization: Basic` with these credentials on every request (`None` = open).
    pub fn require_basic_auth(&self, creds: Option<(&str, &str)>) {
        self.state.ctl.lock().unwrap().auth = creds.map(|(u, p)| (u.to_string(), p.to_string()));
    }

    /// Answers `GET /…?go-get=1` for paths at or under `prefix` (an import path whose first
    /// element, the host, is ignored when matching request paths) with
    /// `<meta name="go-import" content="<prefix> <vcs> <url>">`.
    pub fn add_go_import(&self, prefix: &str, vcs: &str, url: &str) {
        self.state.ctl.lock().unwrap().go_imports.push(GoImport {
            prefix: prefix.to_string(),
            vcs: vcs.to_string(),
            url: url.to_string(),
        });
    }

    /// Stops accepting and cuts every open connection: from now on connections are refused.
    pub async fn kill(&self) {
        self.serving.kill().await;
    }

    /// Listens again on the same port after [`GitServer::kill`].
    pub async fn revive(&self) -> anyhow::Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        let h = tokio::spawn(accept_loop(listener, self.state.clone()));
        self.serving.start(h);
        Ok(())
    }

    /// Every request seen so far, in completion order.
    pub fn requests(&self) -> Vec<GitRequest> {
        self.state.log.lock().unwrap().clone()
    }

    /// Requests (any kind, any status) that named repository `repo` (relative to the root).
    pub fn count(&self, repo: &str) -> usize {
        self.filter(repo, |_| true)
    }

    /// `git-upload-pack` POSTs for `repo` that asked for objects (clones and fetches).
    pub fn fetches(&self, repo: &str) -> usize {
        self.filter(repo, |r| r.rpc == Some(Rpc::Fetch))
    }

    /// Ref advertisements for `repo`: `GET info/refs?service=git-upload-pack` requests.
    pub fn ref_adverts(&self, repo: &str) -> usize {
        self.filter(repo, |r| {
            r.method == "GET"
                && r.path.ends_with("/info/refs")
                && r.query.contains("service=git-upload-pack")
        })
    }

    /// How many requests arrived in total.
    pub fn total(&self) -> usize {
        self.state.log.lock().unwrap().len()
    }

    /// Forgets the request log.
    pub fn reset_log(&self) {
        self.state.log.lock().unwrap().clear();
        self.state.stderr.lock().unwrap().clear();
    }

    /// The last `n` logged requests and the backend's recent stderr (for failure messages).
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.state.log.lock().unwrap();
        let mut out: String = log
            .iter()
            .skip(log.len().saturating_sub(n))
            .map(|r| {
                let rpc = r.rpc.map(|k| format!(" [{k:?}]")).unwrap_or_default();
                format!(
                    "  {} {}?{} → {}{rpc}\n",
                    r.method, r.path, r.query, r.status
                )
            })
            .collect();
        for e in self.state.stderr.lock().unwrap().iter().rev().take(5) {
            out.push_str(&format!("  http-backend stderr: {}\n", e.trim()));
        }
        out
    }

    fn filter(&self, repo: &str, pred: impl Fn(&GitRequest) -> bool) -> usize {
        let repo = repo.trim_matches('/');
        self.state
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.repo.as_deref() == Some(repo) && pred(r))
            .count()
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- git server {} saw {} requests; last ones:\n{}-----",
                self.addr,
                self.total(),
                self.log_tail(40)
            );
        }
        self.serving.stop();
    }
}

mod cgi;

// === serving ===

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let conns = state.conns.clone();
    let tls = state.tls.clone();
    accept(listener, conns, tls, move |req| handle(state.clone(), req)).await;
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let raw = req.uri().path().to_string();
    let path = percent_decode(&raw).unwrap_or(raw);
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().to_string();
    let (fail, auth, imports) = {
        let ctl = state.ctl.lock().unwrap();
        (ctl.fail, ctl.auth.clone(), ctl.go_imports.clone())
    };
    let user = basic_user(req.headers(), auth.as_ref());
    let repo = repo_of(&path);
    let (resp, rpc) = if let Some(status) = fail {
        (text(status, "git server: failing on purpose\n"), None)
    } else if auth.is_some() && user.is_none() {
        (unauthorized(), None)
    } else if repo.is_none() && has_go_get(&query) {
        (go_get(&imports, &path), None)
    } else if repo.is_none() || path.split('/').any(|e| e == "..") {
        (text(404, "not a git endpoint\n"), None)
    } else {
        cgi::cgi(&state, req, &path, &query, user.as_deref()).await
    };
    state.log.lock().unwrap().push(GitRequest {
        method,
        path,
        query,
        status: resp.status().as_u16(),
        repo,
        rpc,
        user,
    });
    Ok(resp)
}

/// The repository a smart-HTTP (or dumb) git path names: everything before `/info/refs`,
/// `/git-upload-pack`, `/git-receive-pack`, `/HEAD` or `/objects/`.
fn repo_of(path: &str) -> Option<String> {
    const SUFFIXES: [&str; 4] = [
        "/info/refs",
        "/git-upload-pack",
        "/git-receive-pack",
        "/HEAD",
    ];
    let repo = SUFFIXES
        .iter()
        .find_map(|s| path.strip_suffix(s))
        .or_else(|| path.find("/objects/").map(|i| &path[..i]))?;
    let repo = repo.trim_matches('/');
    (!repo.is_empty()).then(|| repo.to_string())
}

fn has_go_get(query: &str) -> bool {
    query.split('&').any(|kv| kv == "go-get=1")
}

/// The user name when the request's Basic credentials equal `want`.
fn basic_user(headers: &HeaderMap, want: Option<&(String, String)>) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    match want {
        Some((u, p)) if u != user || p != password => None,
        _ => Some(user.to_string()),
    }
}

fn unauthorized() -> Response<Body> {
    let mut r = text(401, "authentication required\n");
    r.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"cairn-test-git\""),
    );
    r
}

/// The `?go-get=1` page: the longest configured prefix containing `path`, else a page without
/// meta tags (404, which the go command also parses).
fn go_get(imports: &[GoImport], path: &str) -> Response<Body> {
    let path = path.trim_matches('/');
    let found = imports
        .iter()
        .filter(|g| {
            let rel = g.prefix.split_once('/').map_or("", |(_, rest)| rest);
            path == rel || path.starts_with(&format!("{rel}/"))
        })
        .max_by_key(|g| g.prefix.len());
    let (status, meta) = match found {
        Some(g) => (
            200,
            format!(
                "<meta name=\"go-import\" content=\"{} {} {}\">\n",
                g.prefix, g.vcs, g.url
            ),
        ),
        None => (404, String::new()),
    };
    let html =
        format!("<!DOCTYPE html>\n<html>\n<head>\n{meta}</head>\n<body>\n</body>\n</html>\n");
    let mut r = full(status, Bytes::from(html));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

fn full(status: u16, body: Bytes) -> Response<Body> {
    let len = body.len();
    let mut r = Response::new(Full::new(body).map_err(|never| match never {}).boxed());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

fn text(status: u16, body: &str) -> Response<Body> {
    let mut r = full(status, Bytes::from(body.to_string()));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_paths() {
        assert_eq!(
            repo_of("/team/plain/info/refs").as_deref(),
            Some("team/plain")
        );
        assert_eq!(
            repo_of("/team/plain.git/git-upload-pack").as_deref(),
            Some("team/plain.git")
        );
        assert_eq!(repo_of("/a/objects/info/packs").as_deref(), Some("a"));
        assert_eq!(repo_of("/team/plain"), None);
        assert_eq!(repo_of("/info/refs"), None);
    }
}
