//! Zero-copy blob bodies on plain HTTP/1 connections (issue 13): the bytes of a verified blob
//! go from the page cache to the socket with `sendfile(2)` instead of being read into memory
//! and copied back into the kernel.
//!
//! hyper owns the connection and writes every body through its IO type, so the file cannot be
//! handed to it directly. Instead a [`body`] yields *placeholder* frames: slices of one static
//! region, `PLACEHOLDER`, as long as the file range, after putting the file into the
//! connection's [`Outbox`]. With vectored writes forced on (`writev(true)`, and never
//! `pipeline_flush`), hyper queues a body's `Bytes` and passes them to [`SendfileStream`]
//! unchanged, which recognises the placeholder by its address (never by its content) and sends
//! that many bytes of the first file in the outbox instead.
//!
//! What keeps wrong bytes from ever leaving: each body's frames add up to exactly its file
//! range and go out in the order the bodies were polled, so the placeholder runs on the wire
//! match the outbox in order. Every departure from that fails the write (hyper then closes the
//! connection: the client sees a short body, never zeros or another file's bytes): placeholder
//! bytes with no file queued or beyond what the file still owes, other bytes in the middle of
//! a file (hyper 1.12 can write an automatic 400 head before a queued body), a body dropped
//! before all its frames were taken, a file shorter than recorded. HTTP/2 (which may copy small
//! DATA frames) and TLS connections never get an outbox.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
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

/// Why a write on a sendfile connection was refused (the connection is then closed).
#[derive(Debug, thiserror::Error)]
pub enum SendfileError {
    /// Placeholder bytes arrived with no file queued.
    #[error("placeholder bytes with no blob to send")]
    NothingOwed,
    /// More placeholder bytes than the first queued file still owes.
    #[error("placeholder bytes beyond the blob being sent")]
    BeyondFile,
    /// Other bytes arrived while a file was part-way out.
    #[error("other bytes in the middle of a blob being sent")]
    Interleaved,
    /// A body was dropped before all its placeholder frames were taken.
    #[error("a blob body was abandoned part-way; the connection cannot send blobs any more")]
    Abandoned,
    /// The file ended before the recorded size.
    #[error("blob shorter than recorded")]
    ShortFile,
    /// A thread panicked holding the outbox.
    #[error("sendfile outbox poisoned")]
    Lock,
}

impl From<SendfileError> for io::Error {
    fn from(e: SendfileError) -> io::Error {
        let kind = match e {
            SendfileError::ShortFile => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// A file range owed to the socket.
struct Owed {
    file: File,
    pos: u64,
    left: u64,
    /// Some of its bytes went out already.
    started: bool,
}

/// What the connection still owes, shared by its stream and bodies.
#[derive(Default)]
struct Queue {
    owed: VecDeque<Owed>,
    /// A body was abandoned: placeholder bytes can no longer be matched to files.
    abandoned: bool,
}

/// The files a connection's responses still owe, in the order their bytes go out. Shared by
/// the connection's [`SendfileStream`] and (through the request's extensions) its handlers.
/// The lock is a std mutex: it is held only for a non-blocking syscall, never across an await
/// or a `Pending`.
#[derive(Clone, Default)]
pub struct Outbox(Arc<Mutex<Queue>>);

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox")
    }
}

impl Outbox {
    fn lock(&self) -> Result<MutexGuard<'_, Queue>, SendfileError> {
        self.0.lock().map_err(|_| SendfileError::Lock)
    }
}

/// A body sending `[start, end)` of `file` with `sendfile(2)` through `outbox`'s connection.
/// The file is queued when hyper first polls the body, so a response that is never written
/// (dropped, HEAD) owes nothing. The caller has checked that the file holds `end` bytes.
pub fn body(outbox: Outbox, file: File, start: u64, end: u64) -> super::body::Body {
    use http_body_util::BodyExt;
    FileBody {
        outbox,
        file: Some(file),
        start,
        left: end.saturating_sub(start),
    }
    .boxed_unsync()
}

struct FileBody {
    outbox: Outbox,
    /// Taken (queued in the outbox) on the first poll.
    file: Option<File>,
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
                started: false,
            };
            match self.outbox.lock() {
                Ok(mut q) => q.owed.push_back(owed),
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
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

impl Drop for FileBody {
    fn drop(&mut self) {
        // Queued but not all frames taken: the placeholder runs no longer match the outbox.
        if self.file.is_none() && self.left > 0 {
            if let Ok(mut q) = self.outbox.lock() {
                q.abandoned = true;
            }
        }
    }
}

/// Whether `buf` lies in the placeholder region (an error if it only overlaps it).
fn placeholder(buf: &[u8]) -> Result<bool, SendfileError> {
    let base = PLACEHOLDER.as_ptr() as usize;
    let (from, to) = (buf.as_ptr() as usize, buf.as_ptr() as usize + buf.len());
    if buf.is_empty() || to <= base || from >= base + PLACEHOLDER_LEN {
        return Ok(false);
    }
    if from >= base && to <= base + PLACEHOLDER_LEN {
        return Ok(true);
    }
    Err(SendfileError::BeyondFile)
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

    /// Refuses other bytes while a file is part-way out: they would land inside its body.
    fn between_files(&self) -> Result<(), SendfileError> {
        let q = self.outbox.lock()?;
        match q.owed.front() {
            Some(o) if o.started => Err(SendfileError::Interleaved),
            _ => Ok(()),
        }
    }

    /// Sends `len` placeholder bytes as bytes of the first owed file (fewer if the socket
    /// takes fewer).
    fn poll_sendfile(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<usize>> {
        let mut q = self.outbox.lock()?;
        if q.abandoned {
            return Poll::Ready(Err(SendfileError::Abandoned.into()));
        }
        let Some(owed) = q.owed.front_mut() else {
            return Poll::Ready(Err(SendfileError::NothingOwed.into()));
        };
        // Frames add up to their file's length, so a placeholder write never spans two files.
        if len as u64 > owed.left {
            return Poll::Ready(Err(SendfileError::BeyondFile.into()));
        }
        loop {
            std::task::ready!(self.tcp.poll_write_ready(cx))?;
            let mut off = i64::try_from(owed.pos).map_err(io::Error::other)?;
            let sent = self.tcp.try_io(Interest::WRITABLE, || {
                nix::sys::sendfile::sendfile64(&self.tcp, &owed.file, Some(&mut off), len)
                    .map_err(io::Error::from)
            });
            match sent {
                Ok(0) => return Poll::Ready(Err(SendfileError::ShortFile.into())),
                Ok(n) => {
                    metrics::counter!(super::metrics::SENDFILE_BYTES_TOTAL).increment(n as u64);
                    owed.pos += n as u64;
                    owed.left -= n as u64;
                    owed.started = true;
                    if owed.left == 0 {
                        q.owed.pop_front();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if retry(&e) => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

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
                Err(e) if retry(&e) => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

/// Errors after which the same non-blocking call is simply made again.
fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
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
        self.between_files()?;
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
        if first == Some(0) {
            return self.poll_sendfile(cx, bufs[0].len());
        }
        self.between_files()?;
        match first {
            // The bytes before a file first (its response head); the next call sends the file.
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
    use std::os::unix::fs::FileExt as _;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const DEADLINE: Duration = Duration::from_secs(30);

    /// Bytes that never repeat in short runs, so an offset error shows.
    fn pattern(len: usize, seed: usize) -> Vec<u8> {
        (0..len)
            .map(|i| ((i + seed) * 7 + (i + seed) / 251) as u8)
            .collect()
    }

    fn temp_file(data: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(data).expect("write");
        file
    }

    /// Serves one connection as the node does (its connection builder over a
    /// [`SendfileStream`]): `/file/<start>/<end>` sends that range of `data` by sendfile,
    /// `/claim/<len>` claims `len` bytes of it, anything else is a memory body. A small send
    /// buffer makes the socket push back.
    async fn serve_one(listener: tokio::net::TcpListener, data: Arc<tempfile::NamedTempFile>) {
        let (tcp, _) = listener.accept().await.expect("accept");
        nix::sys::socket::setsockopt(&tcp, nix::sys::socket::sockopt::SndBuf, &4096)
            .expect("SO_SNDBUF");
        let outbox = Outbox::default();
        let io = hyper_util::rt::TokioIo::new(SendfileStream::new(tcp, outbox.clone()));
        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let (outbox, data) = (outbox.clone(), data.clone());
            async move {
                let path = req.uri().path().to_string();
                let nums: Vec<u64> = path.split('/').filter_map(|p| p.parse().ok()).collect();
                let file = data.reopen()?;
                let (body, len) = match (path.split('/').nth(1), nums.as_slice()) {
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
        let builder = super::super::connection_builder(Duration::from_secs(10));
        let _ = builder.serve_connection_with_upgrades(io, svc).await;
    }

    /// Sends `requests` (method, path) at once, pipelined, the last closing the connection,
    /// and returns everything the server wrote until it closed, read in small pieces.
    async fn exchange(file: tempfile::NamedTempFile, requests: &[(&str, &str)]) -> Vec<u8> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(serve_one(listener, Arc::new(file)));
        let mut client = TcpStream::connect(addr).await.expect("connect");
        let mut out = String::new();
        for (i, (method, path)) in requests.iter().enumerate() {
            let close = if i + 1 == requests.len() {
                "Connection: close\r\n"
            } else {
                ""
            };
            out.push_str(&format!(
                "{method} {path} HTTP/1.1\r\nHost: t\r\n{close}\r\n"
            ));
        }
        client.write_all(out.as_bytes()).await.expect("send");
        let read = async {
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                match client.read(&mut buf).await.expect("read") {
                    0 => return got,
                    n => got.extend_from_slice(&buf[..n]),
                }
                tokio::task::yield_now().await;
            }
        };
        let got = tokio::time::timeout(DEADLINE, read)
            .await
            .expect("server closes in time");
        let _ = server.await;
        got
    }

    /// Splits pipelined responses into (status line, body) by Content-Length (HEAD answers
    /// have none); a short last body is returned as it came.
    fn responses(mut raw: &[u8], methods: &[&str]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let l = l.to_ascii_lowercase();
                    l.strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().expect("length"))
                })
                .expect("content-length");
            let len = if methods.get(out.len()) == Some(&"HEAD") {
                0
            } else {
                len
            };
            let body = &raw[end + 4..];
            let take = len.min(body.len());
            let status = head.lines().next().unwrap_or_default().to_string();
            out.push((status, body[..take].to_vec()));
            raw = &body[take..];
        }
        out
    }

    #[tokio::test]
    async fn pipelined_file_and_memory_bodies_arrive_in_order_with_the_right_bytes() {
        let data = pattern(3 * PLACEHOLDER_LEN + 12_345, 0);
        let end = data.len();
        let big = format!("/file/5/{end}");
        let requests = [
            ("GET", "/file/0/300000"),
            ("GET", "/memory"),
            ("HEAD", "/file/0/300000"),
            ("GET", big.as_str()),
            ("GET", "/file/1000/1001"),
            ("GET", "/memory"),
        ];
        let got = exchange(temp_file(&data), &requests).await;
        let methods: Vec<&str> = requests.iter().map(|r| r.0).collect();
        let r = responses(&got, &methods);
        assert_eq!(r.len(), 6, "six responses");
        assert!(r.iter().all(|(status, _)| status.contains("200")), "{r:?}");
        assert_eq!(
            r[0].1,
            data[..300_000],
            "a range ending short of the file's end"
        );
        assert_eq!(r[1].1, b"from memory");
        assert!(r[2].1.is_empty(), "HEAD sends no body");
        assert_eq!(r[3].1, data[5..], "a range over several placeholder frames");
        assert_eq!(r[4].1, data[1000..1001]);
        assert_eq!(r[5].1, b"from memory");
    }

    #[tokio::test]
    async fn offsets_past_two_gib_are_sent_from_the_right_place() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let at: u64 = (5 << 30) / 2;
        let data = pattern(100_000, 3);
        file.as_file().set_len(3 << 30).expect("sparse file");
        file.as_file()
            .write_all_at(&data, at)
            .expect("write at 2.5 GiB");
        let path = format!("/file/{at}/{}", at + data.len() as u64);
        let got = exchange(file, &[("GET", path.as_str())]).await;
        let r = responses(&got, &["GET"]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].1, data);
    }

    #[tokio::test]
    async fn a_file_shorter_than_claimed_cuts_the_body_instead_of_padding_it() {
        let data = pattern(5_000, 0);
        let got = exchange(temp_file(&data), &[("GET", "/claim/10000")]).await;
        let r = responses(&got, &["GET"]);
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].1, data,
            "the real bytes, then the connection closes: no zeros"
        );
    }

    /// A connected pair: the server end wrapped with `outbox`, and a task draining the client.
    async fn pair(outbox: &Outbox) -> (SendfileStream, tokio::task::JoinHandle<usize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (tcp, _) = listener.accept().await.expect("accept");
        let drain = tokio::spawn(async move {
            let mut sink = Vec::new();
            client
                .read_to_end(&mut sink)
                .await
                .map(|_| sink.len())
                .unwrap_or(0)
        });
        (SendfileStream::new(tcp, outbox.clone()), drain)
    }

    fn owed(file: &tempfile::NamedTempFile, len: u64) -> Owed {
        Owed {
            file: file.reopen().expect("reopen"),
            pos: 0,
            left: len,
            started: false,
        }
    }

    #[tokio::test]
    async fn other_bytes_in_the_middle_of_a_file_fail_instead_of_landing_in_its_body() {
        let file = temp_file(&pattern(3 * PLACEHOLDER_LEN, 0));
        let outbox = Outbox::default();
        let (mut stream, drain) = pair(&outbox).await;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3145728\r\n\r\n")
            .await
            .expect("a head before the file starts is fine");
        outbox
            .lock()
            .expect("lock")
            .owed
            .push_back(owed(&file, 3 * PLACEHOLDER_LEN as u64));
        stream
            .write_all(&PLACEHOLDER[..])
            .await
            .expect("the first frame");
        let err = stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .await
            .expect_err("a head inside the body must fail");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        drop(stream);
        assert!(drain.await.expect("drain") > PLACEHOLDER_LEN);
    }

    #[tokio::test]
    async fn placeholder_bytes_without_their_file_fail() {
        let file = temp_file(&pattern(3 * PLACEHOLDER_LEN, 0));
        let outbox = Outbox::default();
        let (mut stream, _drain) = pair(&outbox).await;
        let err = stream
            .write_all(&PLACEHOLDER[..10])
            .await
            .expect_err("nothing is owed");
        assert!(err.to_string().contains("no blob"), "{err}");

        outbox.lock().expect("lock").owed.push_back(owed(&file, 5));
        let err = stream
            .write_all(&PLACEHOLDER[..10])
            .await
            .expect_err("more than the file owes");
        assert!(err.to_string().contains("beyond"), "{err}");

        // A body dropped after its first frame: later placeholder bytes cannot be matched.
        let mut body = body(outbox.clone(), file.reopen().expect("reopen"), 0, 3 << 20);
        let frame = http_body_util::BodyExt::frame(&mut body).await;
        assert!(frame.is_some_and(|f| f.is_ok()), "first frame");
        drop(body);
        let err = stream
            .write_all(&PLACEHOLDER[..5])
            .await
            .expect_err("an abandoned body poisons the outbox");
        assert!(err.to_string().contains("abandoned"), "{err}");
    }

    #[test]
    fn placeholders_are_known_by_address_not_content() {
        assert!(placeholder(&PLACEHOLDER[10..20]).expect("inside"));
        assert!(!placeholder(&[0u8; 64]).expect("zeros elsewhere are data"));
        assert!(!placeholder(&PLACEHOLDER[..0]).expect("empty"));
    }
}
