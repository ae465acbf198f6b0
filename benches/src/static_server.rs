//! The fallback reference server when nginx is not installed: a minimal static file server on
//! hyper, run as a child process (`cairn-bench --serve-static <root>`) so it is measured like
//! cairn-node — its own process, its own tokio runtime with one worker per core, its own RSS.
//!
//! Per request it maps the URL path to a file under the root and opens it on the blocking pool:
//! small files (≤ one chunk) are read whole in that same trip, larger ones streamed through
//! `tokio::fs` in 128 KiB chunks (the chunk size cairn streams blobs with), always with
//! `Content-Length`. No caching, no `sendfile`: a fair,
//! simple baseline for "serve these bytes from disk".

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{header, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Bytes per read when streaming a file (cairn's `http::body::CHUNK`).
const CHUNK: usize = 128 * 1024;

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Serves `root` on `listen` forever; prints the bound address as the first stdout line.
pub fn serve_blocking(root: PathBuf, listen: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the static server's runtime")?;
    runtime.block_on(serve(Arc::new(root), listen))
}

async fn serve(root: Arc<PathBuf>, listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .context("binding the static server")?;
    let mut out = std::io::stdout();
    writeln!(out, "{}", listener.local_addr()?)?;
    out.flush()?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        let root = root.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(root.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(root: Arc<PathBuf>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let Some(path) = file_path(&root, req.uri().path()) else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    Ok(match file_response(&path).await {
        Ok(resp) => resp,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => status(StatusCode::NOT_FOUND),
        Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
    })
}

/// `<root>/<url path>`, refusing empty, `.` and `..` components.
fn file_path(root: &Path, url_path: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for c in url_path.trim_start_matches('/').split('/') {
        if c.is_empty() || c == "." || c == ".." {
            return None;
        }
        path.push(c);
    }
    Some(path)
}

async fn file_response(path: &Path) -> std::io::Result<Response<Body>> {
    let path = path.to_path_buf();
    // One blocking-pool trip opens the file and, when it fits in one chunk, reads it whole.
    let (len, opened) = tokio::task::spawn_blocking(move || open_file(&path)).await??;
    let body = match opened {
        Opened::Whole(bytes) => Full::new(Bytes::from(bytes))
            .map_err(|never| match never {})
            .boxed_unsync(),
        Opened::Stream(file) => {
            let chunks =
                tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), CHUNK);
            StreamBody::new(chunks.map_ok(Frame::data)).boxed_unsync()
        }
    };
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, len.into());
    Ok(resp)
}

/// A file opened for a response: read whole, or left to stream.
enum Opened {
    Whole(Vec<u8>),
    Stream(std::fs::File),
}

fn open_file(path: &Path) -> std::io::Result<(u64, Opened)> {
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::ErrorKind::NotFound.into());
    }
    let len = meta.len();
    if len > CHUNK as u64 {
        return Ok((len, Opened::Stream(file)));
    }
    let mut buf = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(&mut file, &mut buf)?;
    Ok((len, Opened::Whole(buf)))
}

fn status(code: StatusCode) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = code;
    resp
}
