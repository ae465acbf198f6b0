//! A tiny scripted HTTP/1.1 server on 127.0.0.1:0 for upstream tests: each request's target is
//! recorded and answered by a closure, with hand-written responses so tests can also send broken
//! ones (truncated bodies, stalls, no `Content-Length`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How to answer one request.
pub(crate) enum Reply {
    /// A complete response with `Content-Length`.
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// Announces `declared` bytes, sends `body` (shorter), then closes the connection.
    Truncated { declared: usize, body: Vec<u8> },
    /// A 200 without `Content-Length`, delimited by closing the connection.
    CloseDelimited { body: Vec<u8> },
    /// Never answers (holds the connection for a minute).
    Stall,
    /// Announces `declared` bytes, sends `body` (shorter), then holds the connection for a minute.
    StallBody { declared: usize, body: Vec<u8> },
    /// Waits, then sends the inner reply.
    Delayed(Duration, Box<Reply>),
}

impl Reply {
    /// 200 with `body`.
    pub(crate) fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// `status` with an empty body.
    pub(crate) fn status(status: u16) -> Reply {
        Reply::Full {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `status` with a `text/plain; charset=utf-8` body.
    pub(crate) fn text(status: u16, text: &str) -> Reply {
        Reply::status(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(text)
    }

    /// Adds a header (only to `Full`).
    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name, value.to_owned()));
        }
        self
    }

    fn body(mut self, text: &str) -> Reply {
        if let Reply::Full { body, .. } = &mut self {
            *body = text.as_bytes().to_vec();
        }
        self
    }
}

type Handler = dyn Fn(&str, usize) -> Reply + Send + Sync;

/// The running server; stops accepting when dropped.
pub(crate) struct TestServer {
    addr: SocketAddr,
    paths: Arc<Mutex<Vec<String>>>,
    accept: JoinHandle<()>,
}

impl TestServer {
    /// Starts a server answering request number `n` (0-based, across connections) for `path`
    /// with `handler(path, n)`.
    pub(crate) async fn start(
        handler: impl Fn(&str, usize) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let paths = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = Arc::clone(&paths);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&handler), Arc::clone(&log)));
            }
        });
        TestServer {
            addr,
            paths,
            accept,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far.
    pub(crate) fn hits(&self) -> usize {
        self.paths.lock().unwrap().len()
    }

    /// Request targets received so far, in order.
    pub(crate) fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(mut stream: TcpStream, handler: Arc<Handler>, log: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head.split(' ').nth(1).unwrap_or("").to_owned();
    let n = {
        let mut paths = log.lock().unwrap();
        paths.push(target.clone());
        paths.len() - 1
    };
    let reply = handler(&target, n);
    respond(&mut stream, reply).await;
    let _ = stream.shutdown().await;
}

async fn respond(stream: &mut TcpStream, mut reply: Reply) {
    while let Reply::Delayed(wait, inner) = reply {
        tokio::time::sleep(wait).await;
        reply = *inner;
    }
    let bytes = match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut head = status_line(status);
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            [head.into_bytes(), body].concat()
        }
        Reply::Truncated { declared, body } => {
            let head = format!("{}Content-Length: {declared}\r\n\r\n", status_line(200));
            [head.into_bytes(), body].concat()
        }
        Reply::CloseDelimited { body } => {
            [status_line(200).into_bytes(), b"\r\n".to_vec(), body].concat()
        }
        Reply::StallBody { declared, body } => {
            let head = format!("{}Content-Length: {declared}\r\n\r\n", status_line(200));
            let _ = stream.write_all(&[head.into_bytes(), body].concat()).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
        Reply::Stall => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
        Reply::Delayed(..) => unreachable!("unwrapped above"),
    };
    let _ = stream.write_all(&bytes).await;
}

fn status_line(status: u16) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Whatever");
    format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n")
}
