//! `git http-backend` as CGI: the environment it gets, the request body piped in (and peeked at
//! to classify upload-pack requests), the CGI header block parsed into a response, and the rest of
//! its output streamed back.

use std::io::{self, Read};
use std::process::Stdio;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::sync::oneshot;

use super::{text, Body, Rpc, State};
use crate::gitrepo::git_bin;

/// How many bytes of a request body are kept to classify it.
const PEEK_BYTES: usize = 4096;

/// Runs `git http-backend` for one request; returns the response and, for upload-pack POSTs,
/// what the body asked for.
pub(super) async fn cgi(
    state: &Arc<State>,
    req: Request<Incoming>,
    path: &str,
    query: &str,
    user: Option<&str>,
) -> (Response<Body>, Option<Rpc>) {
    let upload_pack = req.method() == http::Method::POST && path.ends_with("/git-upload-pack");
    let gzip = req
        .headers()
        .get(http::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let (stdout, peek) = match spawn_backend(state, req, path, query, user) {
        Ok(pipes) => pipes,
        Err(e) => return (text(500, &format!("running git http-backend: {e}\n")), None),
    };
    let mut out = BufReader::new(stdout);
    let resp = match read_cgi_head(&mut out).await {
        Ok((status, headers)) => {
            let mut r = Response::new(stream_body(out));
            *r.status_mut() = status;
            *r.headers_mut() = headers;
            r
        }
        Err(e) => text(502, &format!("bad CGI answer from git http-backend: {e}\n")),
    };
    // The peek arrives after 4 KiB or the whole body: git sends its request in full before it
    // reads the answer, so this cannot wait on the response.
    let rpc = if upload_pack {
        Some(classify(&peek.await.unwrap_or_default(), gzip))
    } else {
        None
    };
    (resp, rpc)
}

/// Starts `git http-backend` for `req`: its stdin is fed the request body (the first bytes also
/// go to the returned receiver), its stderr is kept for failure messages, and a task reaps it.
fn spawn_backend(
    state: &Arc<State>,
    req: Request<Incoming>,
    path: &str,
    query: &str,
    user: Option<&str>,
) -> io::Result<(ChildStdout, oneshot::Receiver<Vec<u8>>)> {
    let mut child = backend_command(state, &req, path, query, user).spawn()?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(io::Error::other("pipes missing"));
    };
    let (peek_tx, peek_rx) = oneshot::channel();
    tokio::spawn(pump_body(req.into_body(), stdin, peek_tx));
    let st = state.clone();
    tokio::spawn(async move {
        let mut err = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut err).await;
        if !err.trim().is_empty() {
            st.stderr.lock().unwrap().push(err);
        }
    });
    // The child is reaped by this task; it is killed if the task is dropped (runtime shutdown).
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok((stdout, peek_rx))
}

fn backend_command(
    state: &State,
    req: &Request<Incoming>,
    path: &str,
    query: &str,
    user: Option<&str>,
) -> Command {
    let mut cmd = Command::new(git_bin());
    cmd.arg("http-backend").env_clear();
    if let Some(p) = std::env::var_os("PATH") {
        cmd.env("PATH", p);
    }
    cmd.env("GIT_PROJECT_ROOT", &state.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", &state.root)
        // Like GitHub and GitLab: any commit reachable from a ref may be wanted directly.
        .env("GIT_CONFIG_COUNT", "2")
        .env("GIT_CONFIG_KEY_0", "uploadpack.allowReachableSHA1InWant")
        .env("GIT_CONFIG_VALUE_0", "true")
        .env("GIT_CONFIG_KEY_1", "uploadpack.allowFilter")
        .env("GIT_CONFIG_VALUE_1", "true")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("SERVER_SOFTWARE", "cairn-tests")
        .env("REQUEST_METHOD", req.method().as_str())
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1");
    if let Some(u) = user {
        cmd.env("REMOTE_USER", u).env("AUTH_TYPE", "Basic");
    }
    header_env(&mut cmd, req.headers());
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// The request headers as CGI variables: `CONTENT_TYPE`, `CONTENT_LENGTH`, and `HTTP_<NAME>` for
/// the rest (`HTTP_GIT_PROTOCOL` selects protocol v2, `HTTP_CONTENT_ENCODING` a gzip body).
/// `Authorization` is not passed on; `REMOTE_USER` says who passed the check.
fn header_env(cmd: &mut Command, headers: &HeaderMap) {
    for (name, value) in headers {
        let Ok(value) = value.to_str() else { continue };
        let var = match name.as_str() {
            "authorization" => continue,
            "content-type" => "CONTENT_TYPE".to_string(),
            "content-length" => "CONTENT_LENGTH".to_string(),
            other => format!("HTTP_{}", other.to_ascii_uppercase().replace('-', "_")),
        };
        cmd.env(var, value);
    }
}

/// Copies the request body into the backend's stdin (closing it at the end) and sends the first
/// [`PEEK_BYTES`] bytes through `peek` as soon as it has them (or the body ended).
async fn pump_body(mut body: Incoming, mut stdin: ChildStdin, peek: oneshot::Sender<Vec<u8>>) {
    let mut peek = Some(peek);
    let mut seen = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if peek.is_some() {
            seen.extend_from_slice(&data[..data.len().min(PEEK_BYTES - seen.len())]);
            if seen.len() >= PEEK_BYTES {
                let _ = peek.take().map(|p| p.send(std::mem::take(&mut seen)));
            }
        }
        if stdin.write_all(&data).await.is_err() {
            break; // the backend exited early; it answers on its own
        }
    }
    if let Some(p) = peek {
        let _ = p.send(seen);
    }
    let _ = stdin.shutdown().await;
}

/// Reads the CGI header block (`Status:` and headers, up to a blank line).
async fn read_cgi_head<R: AsyncRead + Unpin>(
    out: &mut BufReader<R>,
) -> anyhow::Result<(StatusCode, HeaderMap)> {
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).await? == 0 {
            anyhow::bail!("end of output inside the CGI headers");
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok((status, headers));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("bad CGI header line {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("");
            status = StatusCode::from_bytes(code.as_bytes())?;
        } else {
            headers.append(
                http::HeaderName::from_bytes(name.trim().as_bytes())?,
                HeaderValue::from_str(value)?,
            );
        }
    }
}

/// Streams the rest of the backend's stdout as the response body.
fn stream_body<R: AsyncRead + Unpin + Send + Sync + 'static>(out: BufReader<R>) -> Body {
    let stream = futures_util::stream::unfold(Some(out), |reader| async move {
        let mut reader = reader?;
        let mut buf = vec![0u8; 32 * 1024];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), Some(reader)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    BodyExt::boxed(StreamBody::new(stream))
}

/// Classifies an upload-pack request body from its first bytes (gunzipped when `gzip`).
fn classify(peek: &[u8], gzip: bool) -> Rpc {
    let plain;
    let body = if gzip {
        let mut out = Vec::new();
        // A truncated gzip stream errors at its end; what was inflated before that is enough.
        let _ = flate2::read::GzDecoder::new(peek).read_to_end(&mut out);
        plain = out;
        &plain[..]
    } else {
        peek
    };
    // pkt-line: four hex digits of length (including themselves), then the payload.
    let Some(len) = body
        .get(..4)
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| usize::from_str_radix(h, 16).ok())
    else {
        return Rpc::Other;
    };
    let line = body.get(4..len.min(body.len())).unwrap_or_default();
    if line.starts_with(b"command=fetch") || line.starts_with(b"want ") {
        Rpc::Fetch
    } else if line.starts_with(b"command=ls-refs") {
        Rpc::LsRefs
    } else {
        Rpc::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify(b"0014command=ls-refs\n0000", false), Rpc::LsRefs);
        assert_eq!(classify(b"0012command=fetch\n0000", false), Rpc::Fetch);
        assert_eq!(
            classify(
                b"0032want 0123456789012345678901234567890123456789\n",
                false
            ),
            Rpc::Fetch
        );
        assert_eq!(classify(b"", false), Rpc::Other);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, b"0012command=fetch\n0000").unwrap();
        assert_eq!(classify(&gz.finish().unwrap(), true), Rpc::Fetch);
    }
}
