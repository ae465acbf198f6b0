//! Zero-copy blob bodies on plain HTTP/1 connections (issue 13): the bytes of a verified blob
//! go from the page cache to the socket with `sendfile(2)` instead of being read into memory
//! and copied back into the kernel.
//!
//! hyper owns the connection and writes every body through its IO type, so the file cannot be
//! handed to it directly. Instead a [`body`] yields *placeholder* frames: slices of one static
//! region, [`PLACEHOLDER`], as long as the file range, after putting the file into the
//! connection's [`Outbox`]. With vectored writes forced on (`writev(true)`), hyper queues a
//! body's `Bytes` and passes them to [`SendfileStream`] unchanged, which recognises the
//! placeholder by its address (never by its content) and sends that many bytes of the first
//! file in the outbox instead.
//!
//! What keeps wrong bytes from ever leaving: each body's frames add up to exactly its file
//! range and hyper writes bytes in order, so the placeholder runs on the wire match the outbox
//! in order. A placeholder write with no file queued, longer than the file still owes, or a
//! file shorter than recorded fails the write (hyper closes the connection: the client sees a
//! short body, never zeros). HTTP/2 (which may copy small DATA frames) and TLS connections
//! never get an outbox.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Bytes per placeholder frame; a longer range is several frames. Never read (the region
/// stays untouched `.bss`), only compared by address.
const PLACEHOLDER_LEN: usize = 1 << 20;

/// The region placeholder frames point into.
static PLACEHOLDER: [u8; PLACEHOLDER_LEN] = [0; PLACEHOLDER_LEN];

/// A file range owed to the socket.
struct Owed {
    file: Arc<File>,
    pos: u64,
    left: u64,
}

/// The files a connection's responses still owe, in the order their bytes go out. Shared by
/// the connection's [`SendfileStream`] and (through the request's extensions) its handlers.
#[derive(Clone, Default)]
pub struct Outbox(Arc<Mutex<VecDeque<Owed>>>);

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox")
    }
}

impl Outbox {
    fn lock(&self) -> io::Result<std::sync::MutexGuard<'_, VecDeque<Owed>>> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("sendfile outbox poisoned"))
    }
}

/// A body sending `[start, end)` of `file` with `sendfile(2)` through `outbox`'s connection.
/// The file is queued when hyper first polls the body, so a response that is never written
/// (dropped, HEAD) owes nothing.
pub fn body(outbox: Outbox, file: File, start: u64, end: u64) -> super::body::Body {
    use http_body_util::BodyExt;
    FileBody {
        outbox,
        file: Some(Arc::new(file)),
        start,
        left: end.saturating_sub(start),
    }
    .boxed_unsync()
}

struct FileBody {
    outbox: Outbox,
    /// Taken (queued in the outbox) on the first poll.
    file: Option<Arc<File>>,
    start: u64,
    /// Placeholder bytes still to yield.
    left: u64,
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        if let Some(file) = self.file.take() {
            let owed = Owed {
                file,
                pos: self.start,
                left: self.left,
            };
            match self.outbox.lock() {
                Ok(mut q) => q.push_back(owed),
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
        let n = self.left.min(PLACEHOLDER_LEN as u64) as usize;
        self.left -= n as u64;
        let frame = Bytes::from_static(&PLACEHOLDER[..n]);
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

/// Whether `buf` lies in the placeholder region (an error if it only overlaps it).
fn placeholder(buf: &[u8]) -> io::Result<bool> {
    let base = PLACEHOLDER.as_ptr() as usize;
    let (from, to) = (buf.as_ptr() as usize, buf.as_ptr() as usize + buf.len());
    if buf.is_empty() || to <= base || from >= base + PLACEHOLDER_LEN {
        return Ok(false);
    }
    if from >= base && to <= base + PLACEHOLDER_LEN {
        return Ok(true);
    }
    Err(io::Error::other("write straddles the sendfile placeholder"))
}

/// A plain TCP connection that sends placeholder writes as file bytes (see the module doc).
pub struct SendfileStream {
    tcp: TcpStream,
    outbox: Outbox,
}

impl SendfileStream {
    /// Wraps `tcp`; responses queue their files in `outbox`.
    pub fn new(tcp: TcpStream, outbox: Outbox) -> SendfileStream {
        SendfileStream { tcp, outbox }
    }

    /// Sends up to `len` bytes of the first owed file.
    fn poll_sendfile(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<usize>> {
        let outbox = self.outbox.clone();
        let mut q = outbox.lock()?;
        let Some(owed) = q.front_mut() else {
            return Poll::Ready(Err(io::Error::other(
                "placeholder bytes with no blob to send",
            )));
        };
        // Frames add up to their file's length, so a placeholder write never spans two files.
        if len as u64 > owed.left {
            return Poll::Ready(Err(io::Error::other(
                "placeholder bytes beyond the blob being sent",
            )));
        }
        loop {
            std::task::ready!(self.tcp.poll_write_ready(cx))?;
            let mut off = i64::try_from(owed.pos).map_err(io::Error::other)?;
            let sent = self.tcp.try_io(Interest::WRITABLE, || {
                nix::sys::sendfile::sendfile64(&self.tcp, owed.file.as_ref(), Some(&mut off), len)
                    .map_err(io::Error::from)
            });
            match sent {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "blob shorter than recorded",
                    )))
                }
                Ok(n) => {
                    metrics::counter!(super::metrics::SENDFILE_BYTES_TOTAL).increment(n as u64);
                    owed.pos += n as u64;
                    owed.left -= n as u64;
                    if owed.left == 0 {
                        q.pop_front();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl SendfileStream {
    /// Writes the bytes before a file (its response head) with `MSG_MORE`, so the kernel
    /// sends them in one segment with the file's first bytes instead of a packet (and a
    /// wake-up of the client) of their own.
    fn poll_write_more(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        use nix::sys::socket::{sendmsg, MsgFlags};
        use std::os::fd::AsRawFd;
        loop {
            std::task::ready!(self.tcp.poll_write_ready(cx))?;
            let fd = self.tcp.as_raw_fd();
            let sent = self.tcp.try_io(Interest::WRITABLE, || {
                // nix has no name for MSG_MORE.
                let more = MsgFlags::from_bits_retain(libc::MSG_MORE);
                sendmsg::<()>(fd, bufs, &[], more | MsgFlags::MSG_NOSIGNAL, None)
                    .map_err(io::Error::from)
            });
            match sent {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

impl AsyncRead for SendfileStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if placeholder(buf)? {
            return self.poll_sendfile(cx, buf.len());
        }
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut first = None;
        for (i, b) in bufs.iter().enumerate() {
            if placeholder(b)? {
                first = Some(i);
                break;
            }
        }
        match first {
            Some(0) => self.poll_sendfile(cx, bufs[0].len()),
            // The normal bytes before it first (a response head): the next call sends the file.
            Some(i) => self.poll_write_more(cx, &bufs[..i]),
            None => Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A file of `len` bytes that never repeat in short runs, so an offset error shows.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// Serves one connection like the node does: HTTP/1 with `writev(true)` over a
    /// [`SendfileStream`]. `/file/<start>/<end>` sends that range of `data` by sendfile,
    /// `/claim/<len>` claims `len` bytes of it (more than it holds), anything else a memory body.
    async fn serve_one(listener: tokio::net::TcpListener, data: Arc<tempfile::NamedTempFile>) {
        let (tcp, _) = listener.accept().await.expect("accept");
        let outbox = Outbox::default();
        let io = hyper_util::rt::TokioIo::new(SendfileStream::new(tcp, outbox.clone()));
        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let (outbox, data) = (outbox.clone(), data.clone());
            async move {
                let parts: Vec<u64> = req
                    .uri()
                    .path()
                    .split('/')
                    .filter_map(|p| p.parse().ok())
                    .collect();
                let file = data.reopen()?;
                let (body, len) = match (req.uri().path().split('/').nth(1), parts.as_slice()) {
                    (Some("file"), [start, end]) => (body(outbox, file, *start, *end), end - start),
                    (Some("claim"), [len]) => (body(outbox, file, 0, *len), *len),
                    _ => (super::super::body::full(&b"from memory"[..]), 11),
                };
                let mut resp = hyper::Response::new(body);
                resp.headers_mut()
                    .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
                Ok::<_, io::Error>(resp)
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .writev(true)
            .serve_connection(io, svc)
            .await;
    }

    /// Sends `requests` at once (pipelined, the last closing the connection) and returns
    /// everything the server wrote until it closed.
    async fn exchange(data: &[u8], requests: &[&str]) -> Vec<u8> {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(data).expect("write");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(serve_one(listener, Arc::new(file)));
        let mut client = TcpStream::connect(addr).await.expect("connect");
        let mut out = String::new();
        for (i, path) in requests.iter().enumerate() {
            let close = if i + 1 == requests.len() {
                "Connection: close\r\n"
            } else {
                ""
            };
            out.push_str(&format!("GET {path} HTTP/1.1\r\nHost: t\r\n{close}\r\n"));
        }
        client.write_all(out.as_bytes()).await.expect("send");
        let mut got = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(20),
            client.read_to_end(&mut got),
        )
        .await
        .expect("server closes in time")
        .expect("read");
        let _ = server.await;
        got
    }

    /// Splits pipelined responses: (status line, body) each, by Content-Length; a short last
    /// body is returned as it came.
    fn responses(mut raw: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().expect("length"))
                })
                .expect("content-length");
            let body = &raw[end + 4..];
            let take = len.min(body.len());
            out.push((
                head.lines().next().unwrap_or_default().to_string(),
                body[..take].to_vec(),
            ));
            raw = &body[take..];
        }
        out
    }

    #[tokio::test]
    async fn pipelined_file_and_memory_bodies_arrive_in_order_with_the_right_bytes() {
        let data = pattern(3 * PLACEHOLDER_LEN + 12_345);
        let big_end = data.len() as u64;
        let got = exchange(
            &data,
            &[
                "/file/0/300000",
                "/memory",
                &format!("/file/5/{big_end}"),
                "/file/1000/1001",
                "/memory",
            ],
        )
        .await;
        let r = responses(&got);
        assert_eq!(r.len(), 5, "five responses");
        assert!(r.iter().all(|(status, _)| status.contains("200")), "{r:?}");
        assert_eq!(r[0].1, data[..300_000]);
        assert_eq!(r[1].1, b"from memory");
        assert_eq!(r[2].1, data[5..], "a range over several placeholder frames");
        assert_eq!(r[3].1, data[1000..1001]);
        assert_eq!(r[4].1, b"from memory");
    }

    #[tokio::test]
    async fn a_file_shorter_than_claimed_cuts_the_body_instead_of_padding_it() {
        let data = pattern(5_000);
        let got = exchange(&data, &["/claim/10000"]).await;
        let r = responses(&got);
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].1, data,
            "the real bytes, then the connection closes: no zeros"
        );
    }

    #[test]
    fn placeholders_are_known_by_address_not_content() {
        assert!(placeholder(&PLACEHOLDER[10..20]).expect("inside"));
        assert!(!placeholder(&[0u8; 64]).expect("zeros elsewhere are data"));
        assert!(!placeholder(&PLACEHOLDER[..0]).expect("empty"));
    }
}
