//! The closed-loop load generator: `conns` keep-alive HTTP/1.1 connections (hyper client
//! connections, one request in flight on each), every one looping `GET <path>` and reading the
//! whole body, for a warm-up period and then a measurement window.
//!
//! Only requests that *complete* inside the window count toward req/s and the latency
//! distribution (latency = request sent → last body byte read); body bytes count toward MB/s when
//! they arrive inside the window, so large responses spanning the window edges are credited for
//! what actually moved. A response with a non-200 status, a transport error or a body of the wrong
//! length is an error; the connection is then re-opened.
//!
//! A [`Client`] may add TLS (rustls, HTTP/1.1 by ALPN, kept alive like the plain connections: the
//! handshake happens once when a connection opens, which the warm-up keeps out of the window) and
//! one extra request header (`Authorization`). The plain path stays what it was: a `TcpStream`
//! straight into hyper.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How the load generator talks to the server, beyond plain HTTP/1.1.
#[derive(Clone, Default)]
pub struct Client {
    /// TLS on every connection; `None` = plain TCP.
    pub tls: Option<Tls>,
    /// One extra header on every request (e.g. `Authorization`).
    pub header: Option<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The header may hold a credential: name it, never print it.
        f.debug_struct("Client")
            .field("tls", &self.tls.is_some())
            .field("header", &self.header.as_ref().map(|(n, _)| n))
            .finish()
    }
}

/// A TLS client: its configuration and the name the server's certificate must carry.
#[derive(Clone)]
pub struct Tls {
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

impl Tls {
    /// TLS 1.2/1.3 (the ring provider, like cairn's), trusting only `roots`, offering only
    /// `http/1.1` by ALPN so the server never picks h2, and expecting `server_name`.
    pub fn new(
        roots: rustls::RootCertStore,
        server_name: ServerName<'static>,
    ) -> anyhow::Result<Tls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Server address.
    pub addr: SocketAddr,
    /// URL path to GET.
    pub path: String,
    /// Expected body length; a different length is an error.
    pub expected_bytes: u64,
    /// Concurrent connections.
    pub conns: usize,
    /// When the measurement window opens.
    pub measure_from: Instant,
    /// When it closes; the run stops here.
    pub measure_to: Instant,
    /// TLS and an extra header, if any.
    pub client: Client,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// Requests completed inside the window.
    pub requests: u64,
    /// Body bytes received inside the window.
    pub bytes: u64,
    /// Errors inside the window (status, transport, short body, connect).
    pub errors: u64,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
    /// Sorted latencies of the counted requests, microseconds.
    pub latencies_us: Vec<u32>,
    /// Percentiles reported by an external load generator (wrk), used when `latencies_us` is
    /// empty.
    pub summary: Option<LatencySummary>,
}

/// Latency percentiles (microseconds) as an external load generator reports them.
#[derive(Debug, Clone, Copy, Default)]
pub struct LatencySummary {
    /// Median.
    pub p50: u32,
    /// 90th percentile.
    pub p90: u32,
    /// 99th percentile.
    pub p99: u32,
    /// Slowest request.
    pub max: u32,
    /// How long the generator actually ran.
    pub window: Duration,
}

impl LoadResult {
    /// The `q` quantile (0..=1) of latency, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if let (true, Some(s)) = (self.latencies_us.is_empty(), &self.summary) {
            // The nearest reported percentile at or above `q`.
            let us = match q {
                q if q <= 0.5 => s.p50,
                q if q <= 0.9 => s.p90,
                q if q <= 0.99 => s.p99,
                _ => s.max,
            };
            return f64::from(us) / 1000.0;
        }
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let last = self.latencies_us.len() - 1;
        let idx = ((last as f64) * q).round() as usize;
        f64::from(self.latencies_us[idx.min(last)]) / 1000.0
    }

    fn merge(&mut self, other: LoadResult) {
        self.requests += other.requests;
        self.bytes += other.bytes;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_us.extend(other.latencies_us);
    }

    fn error(&mut self, now: Instant, spec: &LoadSpec, what: String) {
        if now >= spec.measure_from && now <= spec.measure_to {
            self.errors += 1;
            self.first_error.get_or_insert(what);
        }
    }
}

/// Runs the load until `spec.measure_to` and returns the merged result.
pub async fn run(spec: LoadSpec) -> LoadResult {
    let mut set = JoinSet::new();
    for _ in 0..spec.conns {
        set.spawn(connection_loop(spec.clone()));
    }
    let mut total = LoadResult::default();
    while let Some(r) = set.join_next().await {
        if let Ok(r) = r {
            total.merge(r);
        }
    }
    total.latencies_us.sort_unstable();
    total
}

/// Aborts the connection-driver task when the loop using it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One connection: (re)connect, then request after request until the window closes.
async fn connection_loop(spec: LoadSpec) -> LoadResult {
    let mut stats = LoadResult::default();
    while Instant::now() < spec.measure_to {
        let (mut sender, _driver) = match connect(spec.addr, &spec.client).await {
            Ok(c) => c,
            Err(e) => {
                stats.error(Instant::now(), &spec, format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        loop {
            // A request still in flight when the window closes is dropped, not counted.
            let outcome = tokio::select! {
                r = one_request(&mut sender, &spec, &mut stats) => r,
                _ = tokio::time::sleep_until(spec.measure_to) => return stats,
            };
            if let Err(e) = outcome {
                stats.error(Instant::now(), &spec, e);
                break;
            }
        }
    }
    stats
}

async fn connect(
    addr: SocketAddr,
    client: &Client,
) -> anyhow::Result<(SendRequest<Empty<Bytes>>, AbortOnDrop)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let Some(tls) = &client.tls else {
        return handshake(stream).await;
    };
    let stream = tls
        .connector
        .connect(tls.server_name.clone(), stream)
        .await?;
    handshake(stream).await
}

/// The HTTP/1.1 handshake over `io`, its connection driven by a task of its own.
async fn handshake<IO>(io: IO) -> anyhow::Result<(SendRequest<Empty<Bytes>>, AbortOnDrop)>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender, AbortOnDrop(driver)))
}

/// One `GET path` through `client` on a fresh connection: the status and the whole body (for
/// warming caches and checking a listener before it is loaded).
pub async fn fetch(
    addr: SocketAddr,
    client: &Client,
    path: &str,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let timeout = Duration::from_secs(30);
    let (mut sender, _driver) = tokio::time::timeout(timeout, connect(addr, client)).await??;
    let req = request(path, client)?;
    let resp = tokio::time::timeout(timeout, sender.send_request(req)).await??;
    let status = resp.status();
    let body = tokio::time::timeout(timeout, resp.into_body().collect()).await??;
    Ok((status, body.to_bytes()))
}

fn request(path: &str, client: &Client) -> Result<Request<Empty<Bytes>>, hyper::http::Error> {
    let mut req = Request::get(path).header(hyper::header::HOST, "127.0.0.1");
    if let Some((name, value)) = &client.header {
        req = req.header(name, value);
    }
    req.body(Empty::<Bytes>::new())
}

/// Sends one GET and reads the whole body, crediting bytes and latency that fall in the window.
async fn one_request(
    sender: &mut SendRequest<Empty<Bytes>>,
    spec: &LoadSpec,
    stats: &mut LoadResult,
) -> Result<(), String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection closed: {e}"))?;
    let req = request(&spec.path, &spec.client).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("body: {e}"))?;
        if let Some(data) = frame.data_ref() {
            len += data.len() as u64;
            let now = Instant::now();
            if now >= spec.measure_from {
                stats.bytes += data.len() as u64;
            }
        }
    }
    let done = Instant::now();
    if status != StatusCode::OK {
        return Err(format!("status {status}"));
    }
    if len != spec.expected_bytes {
        return Err(format!(
            "body of {len} bytes, expected {}",
            spec.expected_bytes
        ));
    }
    if done >= spec.measure_from && done <= spec.measure_to {
        stats.requests += 1;
        let us = done.duration_since(started).as_micros();
        stats
            .latencies_us
            .push(u32::try_from(us).unwrap_or(u32::MAX));
    }
    Ok(())
}
