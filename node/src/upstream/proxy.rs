//! HTTP(S) upstreams: [`HttpSource`] (one GOPROXY entry: base URL, credentials, breaker) and
//! [`Transport`] (the shared client with timeouts, retries, the concurrency cap and breaker checks),
//! which also serves arbitrary GETs for the checksum-database proxy.
//!
//! One request to an entry is a loop of attempts: breaker admission → concurrency slot → send with
//! a first-byte timeout → status → body under a transfer deadline. Connect errors, timeouts,
//! truncated bodies, 429 and 5xx are transient: retried with backoff and counted by the breaker.
//! 404/410 and other statuses are answers: never retried, and they show the upstream is alive.

use std::time::Duration;

use reqwest::{Response, StatusCode, Url};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::breaker::Breaker;
use super::error::{UpstreamConfigError, UpstreamError, BODY_TRUNCATED};
use super::metrics::{self, InflightGuard};
use super::request::Kind;
use super::retry::{parse_retry_after, Backoff};
use super::settings::UpstreamSettings;
use super::sink::{Sink, WriteError};

/// Bytes of an error body read to find its first line.
const ERROR_BODY_MAX_BYTES: usize = 4096;
/// Longest upstream error line kept in messages.
const ERROR_LINE_MAX_CHARS: usize = 300;
/// Redirect hops followed, as the go command does.
const MAX_REDIRECTS: usize = 10;

/// Credentials taken from the userinfo of a proxy URL, sent as HTTP Basic auth over https only.
#[derive(Clone)]
pub(crate) struct BasicAuth {
    user: String,
    password: Option<String>,
}

/// One `http(s)://` entry of the chain.
pub(crate) struct HttpSource {
    /// Base URL without userinfo.
    base: Url,
    auth: Option<BasicAuth>,
    display: String,
    breaker: Breaker,
}

impl HttpSource {
    /// Binds a parsed proxy URL to its own breaker.
    pub(crate) fn new(url: Url, settings: &UpstreamSettings) -> HttpSource {
        let display = redacted(&url);
        let (base, auth) = split_userinfo(url);
        let breaker = Breaker::new(
            display.clone(),
            settings.breaker_failures,
            settings.breaker_cooldown(),
        );
        HttpSource {
            base,
            auth,
            display,
            breaker,
        }
    }

    /// The base URL as shown in logs and `Fetched::source` (password redacted, no trailing `/`).
    pub(crate) fn display(&self) -> &str {
        &self.display
    }

    /// The base URL (no userinfo, no trailing `/`).
    pub(crate) fn base(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    /// Whether `url` lies under this entry's base (same origin, path below the base path).
    pub(crate) fn contains(&self, url: &Url) -> bool {
        let prefix = self.base.path().trim_end_matches('/');
        url.origin() == self.base.origin()
            && url
                .path()
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// The request for `escaped_rel` (already case- and percent-encoded) below this base.
    pub(crate) fn request(&self, escaped_rel: &str, kind: Kind) -> Request<'_> {
        let mut url = self.base.clone();
        let path = format!("{}/{escaped_rel}", self.base.path().trim_end_matches('/'));
        url.set_path(&path);
        self.request_for(url, kind)
    }

    /// A request for an absolute `url` under this entry, using its credentials and breaker.
    pub(crate) fn request_for(&self, url: Url, kind: Kind) -> Request<'_> {
        Request {
            url,
            auth: self.auth.as_ref(),
            source: &self.display,
            breaker: &self.breaker,
            kind,
        }
    }
}

/// The URL with its password replaced by `xxxxx` (as Go's `URL.Redacted`) and no trailing `/`.
pub(crate) fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Cannot fail: the URL already has a host, since it has a password.
        let _ = shown.set_password(Some("xxxxx"));
    }
    shown.as_str().trim_end_matches('/').to_owned()
}

/// Splits userinfo off `url`; the go command sends it as Basic auth, and only over https.
pub(crate) fn split_userinfo(mut url: Url) -> (Url, Option<BasicAuth>) {
    let has_userinfo = !url.username().is_empty() || url.password().is_some();
    let auth = (has_userinfo && url.scheme() == "https").then(|| BasicAuth {
        user: percent_decode(url.username()),
        password: url.password().map(percent_decode),
    });
    // Cannot fail for http(s) URLs, which always have a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    (url, auth)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One logical GET, retried as a unit.
pub(crate) struct Request<'a> {
    /// Full URL, without userinfo.
    pub(crate) url: Url,
    /// Basic-auth credentials to send.
    pub(crate) auth: Option<&'a BasicAuth>,
    /// Display name of the upstream, for errors and logs.
    pub(crate) source: &'a str,
    /// Breaker guarding the upstream.
    pub(crate) breaker: &'a Breaker,
    /// Metric label.
    pub(crate) kind: Kind,
}

// === Failure ===

/// How an attempt failed, which decides retrying, the breaker and the reported error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// 404/410: "not here", never retried, healthy for the breaker.
    NotFound,
    /// Another status or a local problem: not retried, healthy for the breaker.
    Permanent,
    /// Network error, timeout, truncated body, 429, 5xx: retried, counted by the breaker.
    Transient,
}

#[derive(Debug)]
struct Failure {
    class: Class,
    reason: String,
    status: Option<u16>,
    retry_after: Option<Duration>,
}

impl Failure {
    fn new(class: Class, reason: String) -> Failure {
        Failure {
            class,
            reason,
            status: None,
            retry_after: None,
        }
    }

    fn into_error(self, source: &str) -> UpstreamError {
        match self.class {
            Class::NotFound => UpstreamError::NotFound {
                message: self.reason,
            },
            Class::Permanent | Class::Transient => UpstreamError::Failed {
                source: source.to_owned(),
                reason: self.reason,
            },
        }
    }
}

fn sink_failure(err: WriteError) -> Failure {
    Failure::new(Class::Permanent, err.to_string())
}

/// `err` and its sources joined by `: ` (reqwest's own message alone is often just "error sending
/// request"). The URL is left out: it is in the logs' `source` field already.
fn error_chain(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

// === impl Transport ===

/// The shared HTTP client and the limits applied to every upstream request.
pub(crate) struct Transport {
    client: reqwest::Client,
    /// Caps concurrent upstream requests across all entries. A semaphore rather than a connection
    /// pool limit because it also bounds `file://` reads and in-flight bodies, and waiting for a
    /// permit is queueing, not failure (it is outside every timeout).
    permits: Semaphore,
    first_byte_timeout: Duration,
    transfer_timeout: Duration,
    retries: u32,
    backoff: Backoff,
}

impl Transport {
    /// Builds the client from validated settings.
    pub(crate) fn new(settings: &UpstreamSettings) -> Result<Transport, UpstreamConfigError> {
        let client = settings
            .egress
            .client_builder(settings.system_proxy)
            .connect_timeout(settings.connect_timeout())
            .user_agent(settings.user_agent.clone())
            .redirect(redirect_policy())
            .build()
            .map_err(|e| UpstreamConfigError::Client {
                reason: error_chain(e),
            })?;
        Ok(Transport {
            client,
            permits: Semaphore::new(settings.max_concurrent),
            first_byte_timeout: settings.first_byte_timeout(),
            transfer_timeout: settings.transfer_timeout(),
            retries: settings.retries,
            backoff: Backoff::new(
                Duration::from_millis(settings.backoff_base_ms),
                Duration::from_millis(settings.backoff_max_ms),
            ),
        })
    }

    /// The concurrency cap, shared with `file://` sources.
    pub(crate) fn permits(&self) -> &Semaphore {
        &self.permits
    }

    /// The whole-body deadline, shared with `file://` sources.
    pub(crate) fn transfer_timeout(&self) -> Duration {
        self.transfer_timeout
    }

    /// GETs `req` into `sink` with retries, backoff and the breaker.
    pub(crate) async fn get(
        &self,
        req: &Request<'_>,
        sink: &mut Sink<'_>,
    ) -> Result<(), UpstreamError> {
        let mut attempt = 0;
        let mut last: Option<Failure> = None;
        loop {
            let Some(ticket) = req.breaker.admit(Instant::now()) else {
                return Err(breaker_rejected(req, last));
            };
            let failure = match self.attempt(req, sink).await {
                Ok(()) => {
                    ticket.success();
                    return Ok(());
                }
                Err(failure) => failure,
            };
            if failure.class == Class::Transient {
                ticket.failure(Instant::now(), &failure.reason);
            } else {
                ticket.success();
            }
            log_failure(req, attempt, &failure);
            if failure.class != Class::Transient || attempt >= self.retries {
                return Err(failure.into_error(req.source));
            }
            metrics::retry(req.kind);
            tokio::time::sleep(self.backoff.delay(attempt, failure.retry_after)).await;
            last = Some(failure);
            attempt += 1;
        }
    }

    /// One attempt: slot, headers, body.
    async fn attempt(&self, req: &Request<'_>, sink: &mut Sink<'_>) -> Result<(), Failure> {
        let _permit = self.permits.acquire().await.map_err(|_| {
            Failure::new(
                Class::Permanent,
                "upstream client is shutting down".to_owned(),
            )
        })?;
        let _inflight = InflightGuard::new();
        let resp = self.send(req).await?;
        if resp.status() == StatusCode::OK {
            self.read_body(resp, sink).await
        } else {
            Err(self.status_failure(resp).await)
        }
    }

    /// Sends the request and waits for the response headers.
    async fn send(&self, req: &Request<'_>) -> Result<Response, Failure> {
        let mut builder = self.client.get(req.url.clone());
        if let Some(auth) = req.auth {
            builder = builder.basic_auth(&auth.user, auth.password.as_ref());
        }
        match tokio::time::timeout(self.first_byte_timeout, builder.send()).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                let class = if e.is_redirect() || e.is_builder() {
                    Class::Permanent
                } else {
                    Class::Transient
                };
                let chain = error_chain(e);
                let host = req.url.host_str().unwrap_or("the upstream");
                match crate::egress::tls_hint(host, &chain) {
                    // Retrying cannot fix a certificate the client does not trust, and the
                    // breaker must not hide the cause: every request reports it.
                    Some(hint) => Err(Failure::new(Class::Permanent, hint)),
                    None => Err(Failure::new(class, chain)),
                }
            }
            Err(_) => Err(Failure::new(
                Class::Transient,
                format!(
                    "no response headers within {} ms (first_byte_timeout_ms)",
                    self.first_byte_timeout.as_millis()
                ),
            )),
        }
    }

    /// Reads a 200 body into the sink under the transfer deadline.
    async fn read_body(&self, resp: Response, sink: &mut Sink<'_>) -> Result<(), Failure> {
        match tokio::time::timeout(self.transfer_timeout, copy_body(resp, sink)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(
                Class::Transient,
                format!(
                    "body not received within {} s (transfer_timeout_secs); got {} bytes",
                    self.transfer_timeout.as_secs(),
                    sink.len()
                ),
            )),
        }
    }

    /// Classifies a non-200 answer, keeping the first line of a plain-text error body.
    async fn status_failure(&self, resp: Response) -> Failure {
        let status = resp.status();
        let retry_after = parse_retry_after(resp.headers().get(http::header::RETRY_AFTER));
        let wait = self.first_byte_timeout.min(Duration::from_secs(5));
        let text = tokio::time::timeout(wait, error_text(resp))
            .await
            .ok()
            .flatten();
        let (class, reason) = match status.as_u16() {
            404 | 410 => (
                Class::NotFound,
                text.unwrap_or_else(|| format!("not found: upstream answered {status}")),
            ),
            429 | 500..=599 => (Class::Transient, status_reason(status, text)),
            _ => (Class::Permanent, status_reason(status, text)),
        };
        let honour = matches!(status.as_u16(), 429 | 503);
        Failure {
            class,
            reason,
            status: Some(status.as_u16()),
            retry_after: retry_after.filter(|_| honour),
        }
    }
}

/// The error when the breaker refuses an attempt. If it opened during this request's own retries,
/// the last real failure says more than "breaker open".
fn breaker_rejected(req: &Request<'_>, last: Option<Failure>) -> UpstreamError {
    match last {
        Some(failure) => failure.into_error(req.source),
        None => UpstreamError::BreakerOpen {
            source: req.source.to_owned(),
            last_error: req.breaker.last_error(),
        },
    }
}

/// The go command's redirect rule: at most 10 hops, never from https to plain http. `?go-get=1`
/// discovery uses it with an address check, through [`redirect_policy_checking`].
pub(crate) fn redirect_policy() -> reqwest::redirect::Policy {
    redirect_policy_checking(|_| Ok(()))
}

/// [`redirect_policy`], and each redirect target must also pass `check` (the discovery address
/// guard refuses literal non-global addresses with it).
pub(crate) fn redirect_policy_checking<F>(check: F) -> reqwest::redirect::Policy
where
    F: Fn(&reqwest::Url) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
        + Send
        + Sync
        + 'static,
{
    reqwest::redirect::Policy::custom(move |attempt| {
        if let Err(e) = check(attempt.url()) {
            return attempt.error(e);
        }
        let from_https = attempt
            .previous()
            .first()
            .is_some_and(|u| u.scheme() == "https");
        if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error(format!("stopped after {MAX_REDIRECTS} redirects"))
        } else if from_https && attempt.url().scheme() != "https" {
            attempt.error("refusing a redirect from https to an insecure url")
        } else {
            attempt.follow()
        }
    })
}

fn status_reason(status: StatusCode, text: Option<String>) -> String {
    match text {
        Some(text) => format!("unexpected status {status}: {text}"),
        None => format!("unexpected status {status}"),
    }
}

fn log_failure(req: &Request<'_>, attempt: u32, failure: &Failure) {
    let (source, kind) = (req.source, req.kind.as_str());
    if failure.class == Class::NotFound {
        tracing::debug!(
            source,
            kind,
            status = failure.status,
            attempt,
            "upstream answered not found"
        );
    } else {
        tracing::warn!(source, kind, status = failure.status, attempt, error = %failure.reason, "upstream attempt failed");
    }
}

/// Streams the body into the sink; a body shorter than its `Content-Length`, or cut by a reset,
/// is a transient failure, never a success.
async fn copy_body(mut resp: Response, sink: &mut Sink<'_>) -> Result<(), Failure> {
    let expected = resp.content_length();
    sink.begin(expected).await.map_err(sink_failure)?;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => sink.write(&chunk).await.map_err(sink_failure)?,
            Ok(None) => break,
            Err(e) => {
                let reason = format!(
                    "{BODY_TRUNCATED}: connection failed after {} bytes: {}",
                    sink.len(),
                    error_chain(e)
                );
                return Err(Failure::new(Class::Transient, reason));
            }
        }
    }
    if let Some(expected) = expected.filter(|n| *n != sink.len()) {
        let reason = format!("{BODY_TRUNCATED}: got {} of {expected} bytes", sink.len());
        return Err(Failure::new(Class::Transient, reason));
    }
    sink.finish().await.map_err(sink_failure)
}

/// The first line of a `text/plain` (utf-8, us-ascii or no charset) error body, sanitized.
async fn error_text(mut resp: Response) -> Option<String> {
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    if !is_plain_text(content_type) {
        return None;
    }
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_MAX_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(ERROR_BODY_MAX_BYTES);
    first_line(&body)
}

fn is_plain_text(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    let media_ok = parts
        .next()
        .is_some_and(|m| m.eq_ignore_ascii_case("text/plain"));
    media_ok
        && parts.all(|param| match param.split_once('=') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
                let value = value.trim().trim_matches('"');
                value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("us-ascii")
            }
            _ => true,
        })
}

/// First line of `body`, with control and invisible formatting characters replaced by spaces and
/// cut to [`ERROR_LINE_MAX_CHARS`]; `None` if empty or not UTF-8.
pub(crate) fn first_line(body: &[u8]) -> Option<String> {
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        // Cut mid-character by our read limit: keep the valid prefix.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&body[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    let line = text.lines().next()?;
    let clean: String = line
        .chars()
        .map(|c| if is_unsafe_char(c) { ' ' } else { c })
        .take(ERROR_LINE_MAX_CHARS)
        .collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_owned())
}

fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_is_sanitized_and_capped() {
        assert_eq!(
            first_line(b"not found: x\nmore"),
            Some("not found: x".to_owned())
        );
        assert_eq!(first_line(b"a\x1b[31mb\r\n"), Some("a [31mb".to_owned()));
        assert_eq!(first_line(b"\xff\xfe"), None);
        assert_eq!(first_line(b"\n\nlater"), None);
        assert_eq!(first_line(&[b'x'; 1000]).map(|s| s.len()), Some(300));
        assert_eq!(
            first_line("ok \u{e9}".as_bytes()[..4].as_ref()),
            Some("ok".to_owned())
        );
    }

    #[test]
    fn only_plain_text_error_bodies_are_shown() {
        assert!(is_plain_text("text/plain"));
        assert!(is_plain_text("text/plain; charset=UTF-8"));
        assert!(is_plain_text("Text/Plain;charset=\"us-ascii\""));
        assert!(!is_plain_text("text/plain; charset=latin1"));
        assert!(!is_plain_text("text/html"));
    }

    #[test]
    fn userinfo_becomes_basic_auth_over_https_only() {
        let url = Url::parse("https://us%40er:p%3Ass@corp.example/go").unwrap();
        assert_eq!(redacted(&url), "https://us%40er:xxxxx@corp.example/go");
        let (base, auth) = split_userinfo(url);
        assert_eq!(base.as_str(), "https://corp.example/go");
        let auth = auth.unwrap();
        assert_eq!(
            (auth.user.as_str(), auth.password.as_deref()),
            ("us@er", Some("p:ss"))
        );
        let (_, auth) = split_userinfo(Url::parse("http://u:p@corp.example/").unwrap());
        assert!(auth.is_none());
    }

    #[test]
    fn urls_under_an_entry_are_recognised() {
        let src = HttpSource::new(
            Url::parse("https://corp.example/go/").unwrap(),
            &UpstreamSettings::default(),
        );
        assert!(src.contains(&Url::parse("https://corp.example/go/sumdb/x/latest").unwrap()));
        assert!(!src.contains(&Url::parse("https://corp.example/gopher").unwrap()));
        assert!(!src.contains(&Url::parse("http://corp.example/go/x").unwrap()));
        let req = src.request("github.com/%21azure/x/@v/list", Kind::List);
        assert_eq!(
            req.url.as_str(),
            "https://corp.example/go/github.com/%21azure/x/@v/list"
        );
    }
}
