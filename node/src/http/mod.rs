//! The public HTTP plane: the GOPROXY protocol at `/`, the checksum-database proxy at
//! `/sumdb/`, `/healthz`, `/readyz` and `/metrics`, over HTTP/1.1 and h2c.
//!
//! [`route`] parses paths (pure), [`handler`] dispatches, [`response`] holds the one table from
//! errors to status codes, [`body`] streams blobs with verification.

pub mod body;
pub mod handler;
pub mod health;
pub mod metrics;
pub mod response;
pub mod route;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::mirror::Mirror;
use crate::raft::Consensus;
use crate::sumdb::SumdbProxy;

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
}

/// Serves HTTP on `listener` until `shutdown` fires, then stops accepting and lets open
/// connections finish for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    state: Arc<HttpState>,
    max_connections: usize,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(max_connections));
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
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let svc = hyper::service::service_fn(move |req| handler::handle(state.clone(), req));
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), svc)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            ::metrics::gauge!(metrics::CONNECTIONS).increment(1.0);
            if let Err(e) = conn.await {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
            ::metrics::gauge!(metrics::CONNECTIONS).decrement(1.0);
            drop(permit);
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
