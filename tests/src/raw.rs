//! Raw HTTP/1.1 over a `TcpStream`: the request line goes out byte for byte, so `..`, `%zz` and
//! other oddities reach the server exactly as a hostile client would send them.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response read until the server closed the connection.
#[derive(Clone, Debug)]
pub struct RawResponse {
    /// Status code from the status line (0 when none could be parsed).
    pub status: u16,
    /// The status line.
    pub status_line: String,
    /// Header pairs, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Everything after the blank line.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first header named `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `METHOD target HTTP/1.1` with `Host` and `Connection: close` plus `extra_headers`, and
/// reads the whole answer (until EOF, at most `timeout`).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    extra_headers: &[(&str, &str)],
    timeout: Duration,
) -> anyhow::Result<RawResponse> {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in extra_headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if matches!(method, "POST" | "PUT" | "PATCH") {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    send_raw(addr, req.as_bytes(), timeout).await
}

/// Sends arbitrary bytes and parses whatever comes back (until EOF, at most `timeout`).
pub async fn send_raw(
    addr: SocketAddr,
    bytes: &[u8],
    timeout: Duration,
) -> anyhow::Result<RawResponse> {
    let work = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(bytes).await?;
        let mut buf = Vec::new();
        // A server may reset instead of closing cleanly after an error answer; keep what arrived.
        let _ = s.read_to_end(&mut buf).await;
        anyhow::Ok(buf)
    };
    let buf = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| anyhow::anyhow!("no complete answer from {addr} within {timeout:?}"))??;
    Ok(parse_response(&buf))
}

/// Parses a raw HTTP/1.x response (no chunked decoding).
pub fn parse_response(buf: &[u8]) -> RawResponse {
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match split {
        Some(i) => (&buf[..i], buf[i + 4..].to_vec()),
        None => (buf, Vec::new()),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_string();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    RawResponse {
        status,
        status_line,
        headers,
        body,
    }
}
