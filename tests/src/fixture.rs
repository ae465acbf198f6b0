//! A fake upstream: an HTTP/1.1 server (hyper) on `127.0.0.1:0` serving a GOPROXY tree.
//!
//! Tests steer it while it runs:
//! - [`Fixture::set_delay`]: wait before every response (a slow upstream);
//! - [`Fixture::set_fail`]: answer every request with one status (a broken upstream);
//! - [`Fixture::kill`]: close the listener and every open connection (connections refused);
//! - [`Fixture::set_override`]: per-path answers ([`Override`]): a status, a custom body, a body that
//!   declares `Content-Length: N` and stops early, a throttled body, a chunked body without
//!   Content-Length, or a delay;
//! - the request log: [`Fixture::count`] for one path, [`Fixture::total`] for all, to assert
//!   "the upstream saw exactly one request for this zip" or "it saw nothing at all".
//!
//! Paths in the log and in overrides are percent-decoded (`%21` → `!`) but stay `!`-escaped, exactly
//! like the file names in the tree, e.g. `/example.com/!upper/!case/@v/v1.0.0-!r!c1.zip`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::net::TcpListener;

use crate::serve::{accept, Conns, Serving};

/// The response body type of the fixture.
type Body = BoxBody<Bytes, io::Error>;

/// A per-path answer that replaces the tree's file.
#[derive(Clone, Debug)]
pub enum Override {
    /// Answer this status with a plain-text body.
    Status(u16, String),
    /// Answer 200 with these bytes.
    Body(Bytes),
    /// Declare `Content-Length: declared`, send `body` (shorter), then drop the connection.
    Truncated {
        /// The Content-Length header value.
        declared: u64,
        /// The bytes actually sent.
        body: Bytes,
    },
    /// Serve the tree's file in `chunk`-byte pieces, one every `interval`.
    Throttled {
        /// Bytes per piece.
        chunk: usize,
        /// Pause between pieces.
        interval: Duration,
    },
    /// Wait this long, then serve the tree's file normally.
    Delay(Duration),
    /// Answer 200 with these bytes in `chunk`-byte pieces and no Content-Length (chunked).
    Chunked {
        /// The bytes.
        body: Bytes,
        /// Bytes per piece.
        chunk: usize,
    },
}

/// One logged request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    /// HTTP method.
    pub method: String,
    /// Percent-decoded path (raw request target when it cannot be decoded).
    pub path: String,
}

#[derive(Default)]
struct Control {
    delay: Duration,
    fail: Option<u16>,
    overrides: HashMap<String, Override>,
}

struct State {
    root: Option<PathBuf>,
    ctl: Mutex<Control>,
    log: Mutex<Vec<LoggedRequest>>,
    sent: Mutex<HashMap<String, u64>>,
    conns: Conns,
    /// Serve HTTPS with this acceptor (see [`crate::tls::TestCa`]).
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// A running fake upstream. Dropping it stops it.
pub struct Fixture {
    addr: SocketAddr,
    state: Arc<State>,
    serving: Serving,
}

impl Fixture {
    /// Starts serving `root` (a GOPROXY tree; `None` = 404 for everything) on `127.0.0.1:0`.
    pub async fn start(root: Option<&Path>) -> anyhow::Result<Fixture> {
        Fixture::start_with_tls(root, None).await
    }

    /// Like [`Fixture::start`], serving HTTPS with a certificate of `ca` when it is set.
    pub async fn start_with_tls(
        root: Option<&Path>,
        ca: Option<&crate::tls::TestCa>,
    ) -> anyhow::Result<Fixture> {
        Fixture::start_at(root, ca, "127.0.0.1:0".parse()?).await
    }

    /// Like [`Fixture::start_with_tls`], listening on `bind` (e.g. the root namespace's address
    /// on an emulated network, [`crate::netns::Regions::root_ip`]).
    pub async fn start_at(
        root: Option<&Path>,
        ca: Option<&crate::tls::TestCa>,
        bind: SocketAddr,
    ) -> anyhow::Result<Fixture> {
        let tls = ca.map(crate::tls::TestCa::acceptor);
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            root: root.map(Path::to_path_buf),
            ctl: Mutex::new(Control::default()),
            log: Mutex::new(Vec::new()),
            sent: Mutex::new(HashMap::new()),
            conns: Conns::default(),
            tls,
        });
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        Ok(Fixture {
            addr,
            serving: Serving::new(accept, state.conns.clone()),
            state,
        })
    }

    /// `http://<addr>` (`https://` when started with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.state.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Delays every response by `d` (zero = no delay).
    pub fn set_delay(&self, d: Duration) {
        self.state.ctl.lock().unwrap().delay = d;
    }

    /// Answers every request with `status` (`None` = serve normally).
    pub fn set_fail(&self, status: Option<u16>) {
        self.state.ctl.lock().unwrap().fail = status;
    }

    /// Replaces the answer for one decoded path.
    pub fn set_override(&self, path: &str, o: Override) {
        self.state
            .ctl
            .lock()
            .unwrap()
            .overrides
            .insert(path.to_string(), o);
    }

    /// Removes the override for `path`.
    pub fn clear_override(&self, path: &str) {
        self.state.ctl.lock().unwrap().overrides.remove(path);
    }

    /// Removes every override, the delay and the failure status.
    pub fn clear_all(&self) {
        *self.state.ctl.lock().unwrap() = Control::default();
    }

    /// Stops accepting and drops every open connection: from now on connections are refused.
    pub async fn kill(&self) {
        self.serving.kill().await;
    }

    /// Listens again on the same port after [`Fixture::kill`].
    pub async fn revive(&self) -> anyhow::Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        let h = tokio::spawn(accept_loop(listener, self.state.clone()));
        self.serving.start(h);
        Ok(())
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.state.log.lock().unwrap().clone()
    }

    /// How many requests (any method) named exactly `path`.
    pub fn count(&self, path: &str) -> usize {
        self.state
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    /// How many requests arrived in total.
    pub fn total(&self) -> usize {
        self.state.log.lock().unwrap().len()
    }

    /// Forgets the request log and the byte counters.
    pub fn reset_log(&self) {
        self.state.log.lock().unwrap().clear();
        self.state.sent.lock().unwrap().clear();
    }

    /// Body bytes handed to the connection so far for `path` (all requests summed).
    pub fn bytes_sent(&self, path: &str) -> u64 {
        self.state
            .sent
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// The last `n` logged requests, one per line (for failure messages).
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.state.log.lock().unwrap();
        let skip = log.len().saturating_sub(n);
        log.iter()
            .skip(skip)
            .map(|r| format!("  {} {}\n", r.method, r.path))
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- fixture {} saw {} requests; last ones:\n{}-----",
                self.addr,
                self.total(),
                self.log_tail(40)
            );
        }
        self.serving.stop();
    }
}

// === serving ===

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let conns = state.conns.clone();
    let tls = state.tls.clone();
    accept(listener, conns, tls, move |req| handle(state.clone(), req)).await;
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let raw = req.uri().path().to_string();
    let path = percent_decode(&raw).unwrap_or_else(|| raw.clone());
    state.log.lock().unwrap().push(LoggedRequest {
        method: req.method().to_string(),
        path: path.clone(),
    });
    let (delay, fail, over) = {
        let ctl = state.ctl.lock().unwrap();
        (ctl.delay, ctl.fail, ctl.overrides.get(&path).cloned())
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        return Ok(text(405, "method not allowed\n"));
    }
    if let Some(status) = fail {
        return Ok(text(status, "fixture: failing on purpose\n"));
    }
    let resp = match over {
        Some(Override::Status(s, body)) => text(s, &body),
        Some(Override::Body(b)) => {
            add_sent(&state, &path, b.len() as u64);
            full(200, content_type(&path), b)
        }
        Some(Override::Truncated { declared, body }) => truncated(&state, &path, declared, body),
        Some(Override::Throttled { chunk, interval }) => match read_file(&state, &path).await {
            Ok(b) => throttled(&state, &path, b, chunk, interval),
            Err(r) => r,
        },
        Some(Override::Chunked { body, chunk }) => chunked(&state, &path, body, chunk),
        Some(Override::Delay(d)) => {
            tokio::time::sleep(d).await;
            serve_file(&state, &path).await
        }
        None => serve_file(&state, &path).await,
    };
    Ok(if head { strip_body(resp) } else { resp })
}

async fn serve_file(state: &State, path: &str) -> Response<Body> {
    match read_file(state, path).await {
        Ok(b) => {
            add_sent(state, path, b.len() as u64);
            full(200, content_type(path), b)
        }
        Err(r) => r,
    }
}

/// Reads the tree file for `path`, or the error response to send instead.
async fn read_file(state: &State, path: &str) -> Result<Bytes, Response<Body>> {
    let Some(root) = &state.root else {
        return Err(text(404, "not found\n"));
    };
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) || path.contains('\0') {
        return Err(text(400, "bad path\n"));
    }
    match tokio::fs::read(root.join(rel)).await {
        Ok(b) => Ok(Bytes::from(b)),
        Err(_) => Err(text(404, &format!("not found: {path}\n"))),
    }
}

fn add_sent(state: &State, path: &str, n: u64) {
    *state
        .sent
        .lock()
        .unwrap()
        .entry(path.to_string())
        .or_default() += n;
}

fn content_type(path: &str) -> &'static str {
    if path.ends_with(".info") || path.ends_with("/@latest") {
        "application/json"
    } else if path.ends_with(".zip") {
        "application/zip"
    } else {
        "text/plain; charset=utf-8"
    }
}

fn full(status: u16, ctype: &'static str, body: Bytes) -> Response<Body> {
    let len = body.len();
    let mut r = Response::new(Full::new(body).map_err(|never| match never {}).boxed());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r.headers_mut()
        .insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

fn text(status: u16, body: &str) -> Response<Body> {
    full(
        status,
        "text/plain; charset=utf-8",
        Bytes::from(body.to_string()),
    )
}

fn strip_body(resp: Response<Body>) -> Response<Body> {
    let (parts, _) = resp.into_parts();
    Response::from_parts(
        parts,
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed(),
    )
}

/// A body fed by a task: `pieces` with `interval` between them, then optionally an error.
fn streamed(
    state: &Arc<State>,
    path: &str,
    pieces: Vec<Bytes>,
    interval: Duration,
    fail_at_end: bool,
) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(2);
    let (st, p) = (state.clone(), path.to_string());
    tokio::spawn(async move {
        for (i, piece) in pieces.into_iter().enumerate() {
            if i > 0 && !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
            let n = piece.len() as u64;
            if tx.send(Ok(piece)).await.is_err() {
                return; // the client went away
            }
            add_sent(&st, &p, n);
        }
        if fail_at_end {
            let _ = tx
                .send(Err(io::Error::other("fixture: truncating on purpose")))
                .await;
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(|r| r.map(Frame::data));
    BodyExt::boxed(StreamBody::new(stream))
}

fn pieces(file: &Bytes, chunk: usize) -> Vec<Bytes> {
    let (len, chunk) = (file.len(), chunk.max(1));
    (0..len)
        .step_by(chunk)
        .map(|i| file.slice(i..(i + chunk).min(len)))
        .collect()
}

fn chunked(state: &Arc<State>, path: &str, body: Bytes, chunk: usize) -> Response<Body> {
    let mut r = Response::new(streamed(
        state,
        path,
        pieces(&body, chunk),
        Duration::ZERO,
        false,
    ));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    r
}

fn throttled(
    state: &Arc<State>,
    path: &str,
    file: Bytes,
    chunk: usize,
    interval: Duration,
) -> Response<Body> {
    let len = file.len();
    let mut r = Response::new(streamed(state, path, pieces(&file, chunk), interval, false));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    r.headers_mut()
        .insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

fn truncated(state: &Arc<State>, path: &str, declared: u64, body: Bytes) -> Response<Body> {
    let mut r = Response::new(streamed(state, path, vec![body], Duration::ZERO, true));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    r.headers_mut()
        .insert(http::header::CONTENT_LENGTH, HeaderValue::from(declared));
    r
}

/// Percent-decodes a URL path; `None` on a malformed escape or non-UTF-8 result.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(
            percent_decode("/a/%21b/@v/v1.0.0+incompatible.zip").unwrap(),
            "/a/!b/@v/v1.0.0+incompatible.zip"
        );
        assert_eq!(percent_decode("/%zz"), None);
        assert_eq!(percent_decode("/%2"), None);
    }
}
