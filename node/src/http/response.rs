//! Building responses: the one table from errors to status codes, plain-text error bodies the
//! go command can show, strong ETags, conditional requests and byte ranges.

use http::{header, HeaderValue, Response, StatusCode};
use sha2::{Digest, Sha256};

use super::body::{self, Body};
use super::route::RouteError;
use crate::mirror::MirrorError;
use crate::sumdb::SumdbError;

/// Cache-Control for immutable answers (canonical `.info`, `.mod`, `.zip`, sumdb tiles).
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Something the handler could not answer, with its status decided here only.
#[derive(Debug)]
pub enum Failure {
    /// A malformed or unknown path.
    Route(RouteError),
    /// The mirror failed.
    Mirror(MirrorError),
    /// The checksum-database proxy failed.
    Sumdb(SumdbError),
    /// Method other than GET/HEAD.
    Method,
    /// Path longer than allowed.
    TooLong,
    /// Range not satisfiable for a body of this size.
    Range(u64),
    /// No valid credentials: 401 with this challenge.
    Unauthenticated {
        /// What to fix (never a secret).
        reason: String,
        /// The `WWW-Authenticate` value.
        challenge: HeaderValue,
    },
    /// The identity may not read the path: 403.
    Forbidden(String),
}

impl Failure {
    /// The status code for this failure; `upstream` is the configured upstream-failure status.
    pub fn status(&self, upstream: StatusCode) -> StatusCode {
        match self {
            Failure::Route(RouteError::BadRequest(_))
            | Failure::Sumdb(SumdbError::BadRequest(_)) => StatusCode::BAD_REQUEST,
            Failure::Route(_)
            | Failure::Mirror(MirrorError::NotFound(_))
            | Failure::Sumdb(SumdbError::NotFound(_) | SumdbError::Private(_)) => {
                StatusCode::NOT_FOUND
            }
            Failure::Mirror(MirrorError::Upstream(_) | MirrorError::Rejected { .. })
            | Failure::Sumdb(SumdbError::Upstream(_)) => upstream,
            Failure::Mirror(MirrorError::Storage(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            Failure::Mirror(MirrorError::Denied(_)) => StatusCode::FORBIDDEN,
            Failure::Method => StatusCode::METHOD_NOT_ALLOWED,
            Failure::TooLong => StatusCode::URI_TOO_LONG,
            Failure::Range(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            Failure::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Failure::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::Route(e) => e.to_string(),
            Failure::Mirror(e) => e.to_string(),
            Failure::Sumdb(e) => e.to_string(),
            Failure::Method => "method not allowed: only GET and HEAD are served".into(),
            Failure::TooLong => "request path too long".into(),
            Failure::Range(size) => format!("range not satisfiable: the file has {size} bytes"),
            Failure::Unauthenticated { reason, .. } => reason.clone(),
            Failure::Forbidden(why) => format!("forbidden: {why}"),
        }
    }

    /// A plain-text response: one short line the go command prints to the user.
    pub fn response(&self, upstream: StatusCode) -> Response<Body> {
        let status = self.status(upstream);
        let mut text = sanitize(&self.message());
        text.push('\n');
        let mut resp = Response::new(body::full(text));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        let cache = if status == StatusCode::NOT_FOUND {
            "public, max-age=60"
        } else {
            "no-store"
        };
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        match self {
            Failure::Method => {
                h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
            Failure::Range(size) => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    h.insert(header::CONTENT_RANGE, v);
                }
            }
            Failure::Unauthenticated { challenge, .. } => {
                h.insert(header::WWW_AUTHENTICATE, challenge.clone());
            }
            Failure::Mirror(MirrorError::Upstream(_))
                if status == StatusCode::SERVICE_UNAVAILABLE =>
            {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        resp
    }
}

/// What a client is told when its credentials were refused. Which of login or token was wrong
/// is not said: that would tell a guesser which token names exist (metrics keep the detail).
pub fn auth_failed(why: &crate::access::AuthFailure) -> String {
    use crate::access::AuthFailure as F;
    match why {
        F::UnknownUser | F::BadPassword | F::UnknownToken => {
            "authentication failed: wrong login or token".into()
        }
        other => format!("authentication failed: {other}"),
    }
}

/// One line, printable ASCII/UTF-8 only, at most 500 bytes: what the go command will show.
fn sanitize(msg: &str) -> String {
    let mut out: String = msg
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > 500 {
        let mut cut = 500;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// A strong ETag for in-memory bodies: a hash of the bytes.
pub fn etag_of(bytes: &[u8]) -> String {
    format!("\"{}\"", &hex::encode(Sha256::digest(bytes))[..32])
}

/// Whether `If-None-Match` matches `etag` (weak comparison, as RFC 9110 requires for it).
pub fn not_modified(req: &http::request::Parts, etag: &str) -> bool {
    let Some(v) = req
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    v.split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

/// A parsed single byte range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// A `Range` that selects no byte of the body (416).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Interprets `Range` (honouring `If-Range`) against a body of `size` bytes. `Ok(None)`: serve
/// the whole body. Multiple ranges are answered with the whole body.
pub fn range(
    req: &http::request::Parts,
    etag: &str,
    size: u64,
) -> Result<Option<ByteRange>, Unsatisfiable> {
    let Some(spec) = req.headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    if let Some(cond) = req
        .headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
    {
        if cond.trim() != etag {
            return Ok(None);
        }
    }
    let Some(spec) = spec.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, false) => b
            .parse::<u64>()
            .ok()
            .map(|n| (size.saturating_sub(n), size)),
        (false, true) => a.parse::<u64>().ok().map(|s| (s, size)),
        (false, false) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(s), Ok(e)) if s <= e => Some((s, e.saturating_add(1).min(size))),
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        None => Ok(None),
        Some((start, end)) if start >= size || start >= end => Err(Unsatisfiable),
        Some((start, end)) => Ok(Some(ByteRange { start, end })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn ranges() {
        let r = |h: &[(&str, &str)]| range(&parts(h), "\"e\"", 100);
        assert_eq!(r(&[]), Ok(None));
        assert_eq!(
            r(&[("range", "bytes=10-19")]),
            Ok(Some(ByteRange { start: 10, end: 20 }))
        );
        assert_eq!(
            r(&[("range", "bytes=90-")]),
            Ok(Some(ByteRange {
                start: 90,
                end: 100
            }))
        );
        assert_eq!(
            r(&[("range", "bytes=-5")]),
            Ok(Some(ByteRange {
                start: 95,
                end: 100
            }))
        );
        assert_eq!(
            r(&[("range", "bytes=50-500")]),
            Ok(Some(ByteRange {
                start: 50,
                end: 100
            }))
        );
        assert_eq!(r(&[("range", "bytes=100-")]), Err(Unsatisfiable));
        assert_eq!(r(&[("range", "bytes=1-2,5-6")]), Ok(None));
        assert_eq!(
            r(&[("range", "bytes=1-2"), ("if-range", "\"other\"")]),
            Ok(None)
        );
        assert_eq!(
            r(&[("range", "bytes=1-2"), ("if-range", "\"e\"")]),
            Ok(Some(ByteRange { start: 1, end: 3 }))
        );
    }

    #[test]
    fn conditional() {
        assert!(not_modified(
            &parts(&[("if-none-match", "\"a\", \"e\"")]),
            "\"e\""
        ));
        assert!(not_modified(
            &parts(&[("if-none-match", "W/\"e\"")]),
            "\"e\""
        ));
        assert!(not_modified(&parts(&[("if-none-match", "*")]), "\"e\""));
        assert!(!not_modified(
            &parts(&[("if-none-match", "\"x\"")]),
            "\"e\""
        ));
    }

    #[test]
    fn statuses() {
        let up = StatusCode::BAD_GATEWAY;
        assert_eq!(
            Failure::Mirror(MirrorError::NotFound("x".into())).status(up),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            Failure::Mirror(MirrorError::Upstream("x".into())).status(up),
            up
        );
        assert_eq!(
            Failure::Route(RouteError::BadRequest("x".into())).status(up),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            Failure::Mirror(MirrorError::Denied("x".into())).status(up),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            Failure::Sumdb(SumdbError::Private("x".into())).status(up),
            StatusCode::NOT_FOUND
        );
        assert_eq!(sanitize("a\nb"), "a b");
    }
}
