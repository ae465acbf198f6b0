//! The accept loop shared by the test servers (fixture upstream, fake checksum database, git):
//! HTTP/1.1 connections, optionally inside TLS, served by a handler, each tracked so
//! `kill`/`Drop` can cut it.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::AbortHandle;
use tokio_rustls::TlsAcceptor;

/// Open connections of a test server, aborted when the server is killed or dropped.
pub type Conns = Arc<Mutex<Vec<AbortHandle>>>;

/// Accepts connections on `listener` forever, serving each with `handle` and recording it in
/// `conns` (finished ones are pruned as new ones arrive).
pub async fn accept_http1<F, Fut, B>(listener: TcpListener, conns: Conns, handle: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    accept(listener, conns, None, handle).await
}

/// [`accept_http1`], over TLS when `tls` is set (HTTP/1.1 inside; failed handshakes are dropped).
pub async fn accept<F, Fut, B>(
    listener: TcpListener,
    conns: Conns,
    tls: Option<TlsAcceptor>,
    handle: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handle = handle.clone();
        let tls = tls.clone();
        let conn = tokio::spawn(async move {
            let http = hyper::server::conn::http1::Builder::new();
            let _ = match tls {
                None => {
                    http.serve_connection(TokioIo::new(stream), service_fn(handle))
                        .await
                }
                Some(tls) => match tls.accept(stream).await {
                    Ok(stream) => {
                        http.serve_connection(TokioIo::new(stream), service_fn(handle))
                            .await
                    }
                    Err(_) => return,
                },
            };
        });
        let mut conns = conns.lock().unwrap();
        conns.retain(|c| !c.is_finished());
        conns.push(conn.abort_handle());
    }
}

/// The accept task of a test server and its open connections: `kill` closes the listener and
/// cuts every connection (new connections are refused), `start` listens again, and `stop` is the
/// synchronous cut for `Drop`.
pub struct Serving {
    accept: Mutex<Option<tokio::task::JoinHandle<()>>>,
    conns: Conns,
}

impl Serving {
    /// Tracks `task` (the accept loop) and `conns` (the connections it records).
    pub fn new(task: tokio::task::JoinHandle<()>, conns: Conns) -> Serving {
        Serving {
            accept: Mutex::new(Some(task)),
            conns,
        }
    }

    /// Replaces the accept loop after [`Serving::kill`].
    pub fn start(&self, task: tokio::task::JoinHandle<()>) {
        *self.accept.lock().unwrap() = Some(task);
    }

    /// Stops accepting (the listener is closed once the task is gone) and cuts every connection.
    pub async fn kill(&self) {
        let handle = self.accept.lock().unwrap().take();
        if let Some(h) = handle {
            h.abort();
            let _ = h.await;
        }
        self.cut();
    }

    /// Like [`Serving::kill`] without waiting for the accept task: for `Drop`.
    pub fn stop(&self) {
        if let Some(h) = self.accept.lock().unwrap().take() {
            h.abort();
        }
        self.cut();
    }

    fn cut(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}
