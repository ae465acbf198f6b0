//! The public HTTP plane: the GOPROXY protocol at `/`, the checksum-database proxy at
//! `/sumdb/`, `/healthz`, `/readyz` and `/metrics`, over HTTP/1.1 and h2c.
//!
//! [`route`] parses paths (pure), [`handler`] dispatches, [`response`] holds the one table from
//! errors to status codes, [`body`] streams blobs with verification.

pub mod body;
pub mod handler;
pub mod health;
pub mod limit;
pub mod metrics;
mod policy;
pub mod response;
pub mod route;
pub mod sendfile;
pub mod whoami;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::HttpSettings;
use crate::mirror::Mirror;
use crate::raft::Consensus;
use crate::sumdb::SumdbProxy;
use crate::tls::HttpsTls;

/// Everything a request handler needs.
pub struct HttpState {
    /// Answers GOPROXY requests.
    pub mirror: Mirror,
    /// Answers `/sumdb/` requests.
    pub sumdb: SumdbProxy,
    /// Raft state for `/readyz`.
    pub consensus: Consensus,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Status for "the upstream failed".
    pub upstream_error_status: StatusCode,
    /// Longest path accepted.
    pub max_path_bytes: usize,
    /// `Cache-Control` for mutable answers (lists, latest, queries).
    pub mutable_max_age: String,
    /// Set once startup finished (storage opened, state loaded).
    pub started: Arc<AtomicBool>,
    /// Who a request is and what it may read.
    pub access: crate::access::Access,
    /// The audit trail of module requests.
    pub audit: crate::auditlog::AuditLog,
    /// This node's id (for the audit trail).
    pub node_id: u64,
    /// The data directory, whose filesystem's size and free space `/metrics` reports.
    pub data_dir: std::path::PathBuf,
    /// The status for denied versions (`policy.deny_status`).
    pub deny_status: StatusCode,
}

/// What the handler knows about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the connection is HTTPS.
    pub tls: bool,
}

/// Serves HTTP (or HTTPS with `tls`) on `listener` until `shutdown` fires, then stops accepting
/// and lets open connections finish for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<HttpsTls>,
    state: Arc<HttpState>,
    settings: HttpSettings,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let timeouts = Timeouts {
        header: Duration::from_secs(settings.header_read_timeout_secs),
        idle: Duration::from_secs(settings.idle_timeout_secs),
    };
    let builder = connection_builder(timeouts.header);
    let conns = tokio_util::task::TaskTracker::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(settings.max_connections));
    let per_client = Arc::new(limit::PerClient::new(settings.max_connections_per_client));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = per_client.admit(peer.ip()) else {
            ::metrics::counter!(metrics::CONNECTIONS_REFUSED_TOTAL, "reason" => "per_client_limit")
                .increment(1);
            tracing::debug!(peer = %peer, "connection refused: too many from this client");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            info: ConnInfo {
                peer,
                tls: tls.is_some(),
            },
            state: state.clone(),
            builder: builder.clone(),
            timeouts,
            shutdown: shutdown.clone(),
            outbox: None,
        };
        let tls = tls.clone();
        let sendfile = settings.sendfile;
        conns.spawn(async move {
            ::metrics::gauge!(metrics::CONNECTIONS).increment(1.0);
            match tls {
                None if sendfile => {
                    let outbox = sendfile::Outbox::default();
                    let stream = sendfile::SendfileStream::new(stream, outbox.clone());
                    let conn = Conn { outbox: Some(outbox), ..conn };
                    conn.serve(TokioIo::new(stream)).await
                }
                None => conn.serve(TokioIo::new(stream)).await,
                Some(tls) => {
                    match tokio::time::timeout(tls.handshake_timeout, tls.acceptor().accept(stream)).await {
                        Ok(Ok(stream)) => conn.serve(TokioIo::new(stream)).await,
                        outcome => {
                            ::metrics::counter!(crate::tls::metrics::HANDSHAKE_FAILURES_TOTAL, "listener" => "https").increment(1);
                            let error = match outcome {
                                Ok(Err(e)) => e.to_string(),
                                _ => "timed out".into(),
                            };
                            tracing::debug!(peer = %peer, error, "tls handshake failed");
                        }
                    }
                }
            }
            ::metrics::gauge!(metrics::CONNECTIONS).decrement(1.0);
            drop((permit, slot));
        });
    }
    drop(listener);
    conns.close();
    tracing::info!(
        grace_secs = grace.as_secs(),
        "http: stopped accepting, draining connections"
    );
    tokio::select! {
        _ = conns.wait() => tracing::info!("http: all connections drained"),
        _ = tokio::time::sleep(grace) => tracing::warn!("http: grace period over, closing remaining connections"),
    }
}

/// How connections are served: HTTP/1.1 or h2c, detected per connection.
fn connection_builder(header_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // Queued, never flattened (and no `pipeline_flush`): sendfile bodies depend on it.
        .writev(true)
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// How long a connection may wait for its first request head, and stay idle afterwards.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header: Duration,
    idle: Duration,
}

/// One accepted connection and what serving it needs.
struct Conn {
    info: ConnInfo,
    state: Arc<HttpState>,
    builder: auto::Builder<TokioExecutor>,
    timeouts: Timeouts,
    shutdown: CancellationToken,
    /// Plain TCP with sendfile on: where HTTP/1 responses queue the blob files they send.
    outbox: Option<sendfile::Outbox>,
}

impl Conn {
    /// Serves the connection. It is dropped if no complete first request head arrived within
    /// the header timeout (hyper's own timeout covers later HTTP/1 requests, not the HTTP/2
    /// preface or a silent connection), and closed gracefully (in-flight responses finish)
    /// once no request started for the idle timeout, or at shutdown.
    async fn serve<I>(self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let Conn {
            info,
            state,
            builder,
            timeouts,
            shutdown,
            outbox,
        } = self;
        let opened = tokio::time::Instant::now();
        // Milliseconds after `opened` when the latest request started; 0 = none yet.
        let last = Arc::new(AtomicU64::new(0));
        let svc = {
            let last = last.clone();
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let ms = u64::try_from(opened.elapsed().as_millis()).unwrap_or(u64::MAX);
                last.store(ms.max(1), Ordering::Relaxed);
                // HTTP/2 may copy small DATA frames, so only HTTP/1 responses use sendfile.
                if let Some(outbox) = outbox
                    .as_ref()
                    .filter(|_| req.version() < http::Version::HTTP_2)
                {
                    req.extensions_mut().insert(outbox.clone());
                }
                handler::handle(state.clone(), info, req)
            })
        };
        let conn = builder.serve_connection_with_upgrades(io, svc);
        tokio::pin!(conn);
        let mut closing = false;
        loop {
            let seen = last.load(Ordering::Relaxed);
            let deadline = match seen {
                0 => opened + timeouts.header,
                ms => opened + Duration::from_millis(ms) + timeouts.idle,
            };
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(peer = %info.peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = shutdown.cancelled(), if !closing => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                _ = tokio::time::sleep_until(deadline), if !closing => {
                    if last.load(Ordering::Relaxed) != seen {
                        continue;
                    }
                    if seen == 0 {
                        ::metrics::counter!(metrics::CONNECTIONS_REFUSED_TOTAL, "reason" => "header_timeout").increment(1);
                        tracing::debug!(peer = %info.peer, "connection closed: no request within the header timeout");
                        return;
                    }
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}
