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
pub mod response;
pub mod route;
pub mod whoami;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
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
    let header_timeout = Duration::from_secs(settings.header_read_timeout_secs);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
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
        let info = ConnInfo {
            peer,
            tls: tls.is_some(),
        };
        let (state, builder, watcher, tls) = (
            state.clone(),
            builder.clone(),
            graceful.watcher(),
            tls.clone(),
        );
        tokio::spawn(async move {
            ::metrics::gauge!(metrics::CONNECTIONS).increment(1.0);
            match tls {
                None => {
                    serve_conn(
                        TokioIo::new(stream),
                        info,
                        state,
                        builder,
                        watcher,
                        header_timeout,
                    )
                    .await
                }
                Some(tls) => {
                    match tokio::time::timeout(tls.handshake_timeout, tls.acceptor().accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => {
                            serve_conn(
                                TokioIo::new(stream),
                                info,
                                state,
                                builder,
                                watcher,
                                header_timeout,
                            )
                            .await
                        }
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
    tracing::info!(
        grace_secs = grace.as_secs(),
        "http: stopped accepting, draining connections"
    );
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("http: all connections drained"),
        _ = tokio::time::sleep(grace) => tracing::warn!("http: grace period over, closing remaining connections"),
    }
}

/// Serves one connection. A client that has not sent a complete first request head within
/// `header_timeout` is dropped (hyper's own timeout covers later HTTP/1 requests, not the
/// HTTP/2 preface or a silent connection).
async fn serve_conn<I>(
    io: I,
    info: ConnInfo,
    state: Arc<HttpState>,
    builder: auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    header_timeout: Duration,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let seen = Arc::new(AtomicBool::new(false));
    let svc = {
        let seen = seen.clone();
        hyper::service::service_fn(move |req| {
            seen.store(true, Ordering::Relaxed);
            handler::handle(state.clone(), info, req)
        })
    };
    let conn = watcher.watch(builder.serve_connection_with_upgrades(io, svc).into_owned());
    tokio::pin!(conn);
    let result = tokio::select! {
        r = &mut conn => r,
        _ = tokio::time::sleep(header_timeout) => {
            if !seen.load(Ordering::Relaxed) {
                ::metrics::counter!(metrics::CONNECTIONS_REFUSED_TOTAL, "reason" => "header_timeout").increment(1);
                tracing::debug!(peer = %info.peer, "connection closed: no request within the header timeout");
                return;
            }
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(peer = %info.peer, error = %e, "connection ended with an error");
    }
}
