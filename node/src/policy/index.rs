//! `/index?since=RFC3339&limit=N`: the versions this cluster holds, in commit order, in the
//! format of `index.golang.org` (one JSON object per line: `Path`, `Version`, `Timestamp`).
//!
//! `since` is inclusive and defaults to the beginning; `limit` defaults to and is capped at
//! 2000. Timestamps (microseconds) strictly increase in commit order, so a follower pages by
//! passing the last line's `Timestamp` plus one microsecond as the next `since` (or the
//! `Timestamp` itself, dropping the one line it sees again, as `index.golang.org` clients do).

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::store::meta::IndexEntry;

/// Lines per page when `limit` is absent, and the most a page holds.
pub const MAX_LIMIT: usize = 2000;

/// A parsed `/index` query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexQuery {
    /// The first timestamp to include (unix µs).
    pub since_us: i64,
    /// At most this many lines.
    pub limit: usize,
}

/// A malformed `/index` query (answered 400 with the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexQueryError {
    /// `since` is not an RFC 3339 time.
    #[error("bad since {0:?}: expected an RFC 3339 time such as 2019-04-10T19:08:52.997264Z")]
    Since(String),
    /// `limit` is not a positive integer.
    #[error("bad limit {0:?}: expected an integer from 1 to 2000")]
    Limit(String),
    /// A parameter other than `since` and `limit`, or one given twice.
    #[error("unknown or repeated query parameter {0:?}: /index takes since and limit")]
    Unknown(String),
}

impl IndexQuery {
    /// Parses the raw query string (`since=...&limit=...`, either optional).
    pub fn parse(query: Option<&str>) -> Result<IndexQuery, IndexQueryError> {
        let mut since = None;
        let mut limit = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            match k {
                "since" if since.is_none() => since = Some(parse_since(&v)?),
                "limit" if limit.is_none() => limit = Some(parse_limit(&v)?),
                _ => return Err(IndexQueryError::Unknown(k.to_string())),
            }
        }
        Ok(IndexQuery {
            since_us: since.unwrap_or(i64::MIN),
            limit: limit.unwrap_or(MAX_LIMIT),
        })
    }
}

fn parse_since(v: &str) -> Result<i64, IndexQueryError> {
    let t = OffsetDateTime::parse(v, &Rfc3339).map_err(|_| IndexQueryError::Since(v.into()))?;
    let nanos = t.unix_timestamp_nanos();
    // Round up: an entry stamped in microseconds is at or after `since` exactly when its
    // microsecond is at or after the rounded-up one.
    let us = nanos.div_euclid(1_000) + i128::from(nanos.rem_euclid(1_000) != 0);
    i64::try_from(us).map_err(|_| IndexQueryError::Since(v.into()))
}

fn parse_limit(v: &str) -> Result<usize, IndexQueryError> {
    match v.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n.min(MAX_LIMIT)),
        _ => Err(IndexQueryError::Limit(v.into())),
    }
}

/// Decodes `%XX` escapes and `+` (a `since` with a `+01:00` offset must be sent as `%2B`).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of the feed as `index.golang.org` writes it.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(rename = "Path")]
    path: &'a str,
    #[serde(rename = "Version")]
    version: &'a str,
    #[serde(rename = "Timestamp")]
    timestamp: String,
}

/// Formats unix microseconds as RFC 3339 in UTC with the fraction trimmed, as Go's
/// `time.RFC3339Nano` does (`2019-04-10T19:08:52.997264Z`).
pub fn format_us(us: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// The feed body for `entries`: one JSON object per line.
pub fn render(entries: &[IndexEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        let line = Line {
            path: &e.module,
            version: &e.version,
            timestamp: format_us(e.ts_us),
        };
        if let Ok(s) = serde_json::to_string(&line) {
            out.push_str(&s);
            out.push('\n');
        }
    }
    out
}
