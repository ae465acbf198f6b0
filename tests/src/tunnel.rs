//! An HTTP CONNECT proxy on `127.0.0.1:0` — the usual shape of a corporate egress — that
//! records every `CONNECT host:port` it is asked for and tunnels the bytes. It only connects to
//! loopback targets (tests are hermetic); anything else, and every non-CONNECT request, is
//! answered 403 and recorded too.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::serve::{Conns, Serving};

/// Longest request head accepted.
const MAX_HEAD: usize = 8192;

/// A running CONNECT proxy. Dropping it stops it.
pub struct ConnectProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    serving: Serving,
}

impl ConnectProxy {
    /// Starts the proxy.
    pub async fn start() -> anyhow::Result<ConnectProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let conns = Conns::default();
        let task = tokio::spawn(accept_loop(listener, seen.clone(), conns.clone()));
        Ok(ConnectProxy {
            addr,
            seen,
            serving: Serving::new(task, conns),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request line's target so far: `host:port` for CONNECT, `METHOD uri` otherwise.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.serving.stop();
    }
}

async fn accept_loop(listener: TcpListener, seen: Arc<Mutex<Vec<String>>>, conns: Conns) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let conn = tokio::spawn(serve(stream, seen.clone()));
        let mut conns = conns.lock().unwrap();
        conns.retain(|c| !c.is_finished());
        conns.push(conn.abort_handle());
    }
}

/// Reads the request head (up to the blank line).
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD || stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

async fn serve(mut client: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let Some(head) = read_head(&mut client).await else {
        return;
    };
    let line = head.lines().next().unwrap_or("").to_owned();
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let loopback = target.starts_with("127.0.0.1:") || target.starts_with("localhost:");
    if method != "CONNECT" {
        seen.lock().unwrap().push(format!("{method} {target}"));
        let _ = client
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    }
    seen.lock().unwrap().push(target.to_owned());
    let upstream = match loopback {
        true => TcpStream::connect(target).await.ok(),
        false => None,
    };
    let Some(mut upstream) = upstream else {
        let _ = client
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_ok()
    {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}
