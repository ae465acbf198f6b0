//! A small round-robin load balancer in front of a cluster: every client connection is proxied to
//! the next backend in turn; when connecting to that backend fails (refused, timed out), the next
//! one is tried.
//!
//! [`Lb::start`] is a plain TCP (L4) balancer: a backend dying mid-connection drops that client
//! connection, including a request it had accepted but not answered yet.
//!
//! [`Lb::start_replaying`] adds what HTTP balancers do by default for idempotent requests (nginx's
//! `proxy_next_upstream error`, HAProxy's `retry-on empty-response`): when a backend connection
//! ends before a single byte of the answer to the client's pending request came back **and the
//! backend is gone** (its port refuses connections), the pending request bytes are replayed to
//! the next backend on a new connection. It relies on HTTP/1.1 clients not pipelining (the go
//! command does not) and only ever replays a request that got no answer at all; a live backend
//! closing a connection without answering is passed through to the client, never hidden. Replays
//! are counted ([`Lb::replayed`]).
//!
//! Dropping the [`Lb`] stops it and closes every proxied connection.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// How long one backend connect attempt may take before the next backend is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Stats {
    /// Connections proxied, per backend.
    proxied: BTreeMap<SocketAddr, u64>,
    /// Failed connect attempts, per backend.
    connect_failures: BTreeMap<SocketAddr, u64>,
    /// Client connections dropped because no backend accepted.
    rejected: u64,
    /// Unanswered requests replayed to another backend after theirs died.
    replayed: u64,
    /// Responses cut short: (backend, whether it was gone), in replaying mode.
    cut: Vec<(SocketAddr, bool)>,
}

struct State {
    backends: Vec<SocketAddr>,
    replay: bool,
    next: AtomicUsize,
    stats: Mutex<Stats>,
    conns: Mutex<Vec<AbortHandle>>,
}

/// A running balancer on `127.0.0.1:0`.
pub struct Lb {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

impl Lb {
    /// Starts a plain TCP balancer over `backends` (in this order).
    pub async fn start(backends: Vec<SocketAddr>) -> anyhow::Result<Lb> {
        Self::start_with(backends, false).await
    }

    /// Starts a balancer over `backends` that also replays a request left unanswered by a
    /// backend that died (see the module docs).
    pub async fn start_replaying(backends: Vec<SocketAddr>) -> anyhow::Result<Lb> {
        Self::start_with(backends, true).await
    }

    async fn start_with(backends: Vec<SocketAddr>, replay: bool) -> anyhow::Result<Lb> {
        anyhow::ensure!(!backends.is_empty(), "a load balancer needs backends");
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            backends,
            replay,
            next: AtomicUsize::new(0),
            stats: Mutex::new(Stats::default()),
            conns: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        Ok(Lb {
            addr,
            state,
            accept,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections proxied to `backend` so far.
    pub fn proxied(&self, backend: SocketAddr) -> u64 {
        let stats = self.state.stats.lock().unwrap();
        stats.proxied.get(&backend).copied().unwrap_or(0)
    }

    /// Requests replayed to another backend because theirs died before answering.
    pub fn replayed(&self) -> u64 {
        self.state.stats.lock().unwrap().replayed
    }

    /// Responses whose backend connection ended mid-body (replaying mode only), with whether
    /// that backend was gone (killed) at the time.
    pub fn cut_responses(&self) -> Vec<(SocketAddr, bool)> {
        self.state.stats.lock().unwrap().cut.clone()
    }

    /// A one-line summary (connections and connect failures per backend), for messages.
    pub fn summary(&self) -> String {
        let stats = self.state.stats.lock().unwrap();
        let per: Vec<String> = self
            .state
            .backends
            .iter()
            .map(|b| {
                format!(
                    "{b}: {} proxied, {} connect failures",
                    stats.proxied.get(b).copied().unwrap_or(0),
                    stats.connect_failures.get(b).copied().unwrap_or(0)
                )
            })
            .collect();
        let cut: Vec<String> = stats
            .cut
            .iter()
            .map(|(b, gone)| format!("{b} ({})", if *gone { "gone" } else { "alive" }))
            .collect();
        format!(
            "{}; {} rejected; {} replayed; responses cut mid-body by: {cut:?}",
            per.join("; "),
            stats.rejected,
            stats.replayed
        )
    }
}

impl Drop for Lb {
    fn drop(&mut self) {
        self.accept.abort();
        for c in self.state.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let st = state.clone();
        let conn = tokio::spawn(async move { proxy(client, &st).await });
        let mut conns = state.conns.lock().unwrap();
        conns.retain(|c| !c.is_finished());
        conns.push(conn.abort_handle());
    }
}

/// Connects to the first backend that accepts, starting at index `first`, skipping `except`.
async fn connect_any(
    state: &State,
    first: usize,
    except: Option<SocketAddr>,
) -> Option<(TcpStream, SocketAddr)> {
    let n = state.backends.len();
    for attempt in 0..n {
        let backend = state.backends[(first + attempt) % n];
        if Some(backend) == except {
            continue;
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backend)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                *state
                    .stats
                    .lock()
                    .unwrap()
                    .proxied
                    .entry(backend)
                    .or_default() += 1;
                return Some((s, backend));
            }
            _ => {
                *state
                    .stats
                    .lock()
                    .unwrap()
                    .connect_failures
                    .entry(backend)
                    .or_default() += 1;
            }
        }
    }
    None
}

/// Whether `backend` is gone: its port refuses (or times out) a new connection. Probed three
/// times 50 ms apart, because a killed process's listener may close a moment after its
/// connections did.
async fn backend_gone(backend: SocketAddr) -> bool {
    for i in 0..3 {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backend)).await {
            Ok(Ok(_)) => {}
            _ => return true,
        }
    }
    false
}

async fn proxy(mut client: TcpStream, state: &State) {
    let first = state.next.fetch_add(1, Ordering::Relaxed);
    let Some((mut upstream, backend)) = connect_any(state, first, None).await else {
        state.stats.lock().unwrap().rejected += 1;
        return;
    };
    let _ = client.set_nodelay(true);
    if !state.replay {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        return;
    }
    replaying(client, upstream, backend, first, state).await;
}

/// Proxies both ways, keeping the client bytes sent since the backend last answered; when the
/// backend connection ends with such bytes pending and the backend is gone, replays them to the
/// next backend.
async fn replaying(
    client: TcpStream,
    upstream: TcpStream,
    mut backend: SocketAddr,
    first: usize,
    state: &State,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut br, mut bw) = upstream.into_split();
    let mut pending: Vec<u8> = Vec::new();
    let mut cbuf = vec![0u8; 16 << 10];
    let mut bbuf = vec![0u8; 64 << 10];
    let mut next = first + 1;
    let mut response = ResponseTracker::default();
    loop {
        tokio::select! {
            r = cr.read(&mut cbuf) => {
                let n = match r {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                pending.extend_from_slice(&cbuf[..n]);
                // A failed write shows up as the backend's read ending, handled below.
                let _ = bw.write_all(&cbuf[..n]).await;
            }
            r = br.read(&mut bbuf) => {
                match r {
                    Ok(n) if n > 0 => {
                        pending.clear();
                        response.feed(&bbuf[..n]);
                        if cw.write_all(&bbuf[..n]).await.is_err() {
                            return;
                        }
                    }
                    _ => {
                        if response.in_body() {
                            let gone = backend_gone(backend).await;
                            state.stats.lock().unwrap().cut.push((backend, gone));
                            return;
                        }
                        if pending.is_empty() || !backend_gone(backend).await {
                            return;
                        }
                        let Some((s, b)) = connect_any(state, next, Some(backend)).await else {
                            return;
                        };
                        next += 1;
                        state.stats.lock().unwrap().replayed += 1;
                        backend = b;
                        (br, bw) = s.into_split();
                        let _ = bw.write_all(&pending).await;
                    }
                }
            }
        }
    }
}

/// Where the backend's current HTTP/1.1 response is, just enough to tell a connection ending
/// between responses from one ending mid-response (for [`Lb::cut_responses`]).
#[derive(Default)]
struct ResponseTracker {
    state: Resp,
}

#[derive(Default)]
enum Resp {
    /// Between responses.
    #[default]
    Idle,
    /// Reading the head (bytes so far).
    Head(Vec<u8>),
    /// Body bytes still expected (Content-Length).
    Body(u64),
    /// A chunked body; the last bytes seen, to spot the final `0\r\n\r\n`.
    Chunked(Vec<u8>),
    /// A body delimited by the connection closing.
    UntilClose,
}

impl ResponseTracker {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.state {
                Resp::Idle => self.state = Resp::Head(Vec::new()),
                Resp::Head(head) => {
                    let before = head.len();
                    head.extend_from_slice(bytes);
                    let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                        return;
                    };
                    let consumed = end + 4 - before;
                    let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
                    let status: u16 = text
                        .split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    let header = |name: &str| {
                        text.lines()
                            .filter_map(|l| l.split_once(':'))
                            .find(|(k, _)| k.trim() == name)
                            .map(|(_, v)| v.trim().to_string())
                    };
                    self.state = if (100..200).contains(&status) || status == 204 || status == 304 {
                        Resp::Idle
                    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
                        Resp::Chunked(Vec::new())
                    } else if let Some(len) = header("content-length").and_then(|v| v.parse().ok())
                    {
                        if len == 0 {
                            Resp::Idle
                        } else {
                            Resp::Body(len)
                        }
                    } else {
                        Resp::UntilClose
                    };
                    bytes = &bytes[consumed..];
                }
                Resp::Body(left) => {
                    let n = (bytes.len() as u64).min(*left);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.state = Resp::Idle;
                    }
                }
                Resp::Chunked(tail) => {
                    tail.extend_from_slice(bytes);
                    let keep = tail.len().saturating_sub(5);
                    tail.drain(..keep);
                    if tail.ends_with(b"0\r\n\r\n") {
                        self.state = Resp::Idle;
                    }
                    return;
                }
                Resp::UntilClose => return,
            }
        }
    }

    /// Whether a response has started and is not complete (a close-delimited body is complete
    /// at close).
    fn in_body(&self) -> bool {
        matches!(self.state, Resp::Head(_) | Resp::Body(_) | Resp::Chunked(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn skips_a_dead_backend_and_alternates() {
        let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        }; // dropped: connections are refused
        let a_addr = a.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = a.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 5];
                    s.read_exact(&mut buf).await.unwrap();
                    s.write_all(&buf).await.unwrap();
                });
            }
        });
        let lb = Lb::start(vec![dead, a_addr]).await.unwrap();
        for _ in 0..4 {
            let mut c = TcpStream::connect(lb.addr()).await.unwrap();
            c.write_all(b"hello").await.unwrap();
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"hello");
        }
        assert_eq!(lb.proxied(a_addr), 4, "{}", lb.summary());
        assert_eq!(lb.proxied(dead), 0);
    }

    /// An echo server answering 5-byte messages.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 5];
                    while s.read_exact(&mut buf).await.is_ok() {
                        s.write_all(&buf).await.unwrap();
                    }
                });
            }
        });
        addr
    }

    /// A backend that reads one 5-byte request and closes without answering; `dies` also closes
    /// its listener first (the process is gone).
    async fn silent(dies: bool) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            if dies {
                drop(l);
                drop(s);
            } else {
                drop(s);
                std::future::pending::<()>().await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn replays_an_unanswered_request_when_its_backend_died() {
        let lb = Lb::start_replaying(vec![silent(true).await, echo().await])
            .await
            .unwrap();
        let mut c = TcpStream::connect(lb.addr()).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
        c.write_all(b"again").await.unwrap();
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"again");
        assert_eq!(lb.replayed(), 1, "{}", lb.summary());
    }

    #[tokio::test]
    async fn does_not_hide_a_live_backend_closing_without_answer() {
        let lb = Lb::start_replaying(vec![silent(false).await, echo().await])
            .await
            .unwrap();
        let mut c = TcpStream::connect(lb.addr()).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf).await;
        assert!(buf.is_empty(), "got {buf:?}");
        assert_eq!(lb.replayed(), 0, "{}", lb.summary());
    }

    #[test]
    fn tracks_response_boundaries() {
        let mut t = ResponseTracker::default();
        t.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel");
        assert!(t.in_body());
        t.feed(b"lo");
        assert!(!t.in_body());
        t.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
        assert!(t.in_body());
        t.feed(b"0\r\n\r\n");
        assert!(!t.in_body());
        t.feed(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
        assert!(!t.in_body());
    }
}
