//! The accept loop shared by the test servers (fixture upstream, fake checksum database):
//! HTTP/1.1 connections served by a handler, each tracked so `kill`/`Drop` can cut it.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

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
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handle = handle.clone();
        let conn = tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
        let mut conns = conns.lock().unwrap();
        conns.retain(|c| !c.is_finished());
        conns.push(conn.abort_handle());
    }
}
