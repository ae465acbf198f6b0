//! The audit events and their JSON line form. An event type has no field that could hold a
//! secret (no headers, no tokens, no URLs with user info), so none can be logged by mistake.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// A GOPROXY or checksum-database request, logged once its response is decided.
#[derive(Debug, Clone, Serialize)]
pub struct RequestEvent<'a> {
    /// The authenticated caller (token name, certificate subject), if any.
    pub identity: Option<&'a str>,
    /// How the caller authenticated (`token`, `mtls`, …), if it did.
    pub auth_method: Option<&'a str>,
    /// The peer address.
    pub client: SocketAddr,
    /// The module path (unescaped).
    pub module: &'a str,
    /// The version or query, where the request names one.
    pub version: Option<&'a str>,
    /// `list`, `latest`, `info`, `mod`, `zip` or `sumdb-lookup`.
    pub kind: &'a str,
    /// The HTTP status sent.
    pub status: u16,
    /// Response body bytes.
    pub bytes: u64,
    /// `hit`, `fill` or `none`.
    pub cache: &'a str,
    /// The node that answered.
    pub node: u64,
    /// The request id, to join with the access and trace logs.
    pub request_id: &'a str,
}

/// An operator action through the admin API.
#[derive(Debug, Clone, Serialize)]
pub struct AdminEvent<'a> {
    /// Who did it.
    pub identity: &'a str,
    /// The peer address, when known.
    pub client: Option<SocketAddr>,
    /// What was done, e.g. `members.add`.
    pub action: &'a str,
    /// What it was done to, e.g. `node 4 at 10.0.0.4:9090`.
    pub target: &'a str,
    /// `ok`, or the error message.
    pub result: &'a str,
    /// The node that handled it.
    pub node: u64,
}

/// The `type` field of a line; also the `type` label of the events counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EventType {
    /// A [`RequestEvent`].
    Request,
    /// An [`AdminEvent`].
    Admin,
}

impl EventType {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            EventType::Request => "request",
            EventType::Admin => "admin",
        }
    }
}

/// One line: the time and type, then the event's own fields.
#[derive(Serialize)]
struct Line<'a, E: Serialize> {
    ts: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    event: &'a E,
}

/// `event` as one JSON line (with its newline), stamped `ts` (now) and `type`.
pub(super) fn to_line<E: Serialize>(kind: EventType, event: &E) -> serde_json::Result<Vec<u8>> {
    let ts = now_rfc3339_millis();
    let mut line = serde_json::to_vec(&Line {
        ts: &ts,
        kind: kind.as_str(),
        event,
    })?;
    line.push(b'\n');
    Ok(line)
}

/// The current time as RFC 3339 in UTC with milliseconds, `2006-01-02T15:04:05.000Z`.
fn now_rfc3339_millis() -> String {
    // A clock before 1970 is a broken host; the epoch is as good a stamp as any then.
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339_millis(since.as_secs(), since.subsec_millis())
}

/// `secs.millis` since the epoch as RFC 3339 in UTC with milliseconds.
pub(super) fn rfc3339_millis(secs: u64, millis: u32) -> String {
    let whole = crate::direct::repo::rfc3339(i64::try_from(secs).unwrap_or(i64::MAX));
    let stem = whole.strip_suffix('Z').unwrap_or(&whole);
    format!("{stem}.{millis:03}Z")
}
