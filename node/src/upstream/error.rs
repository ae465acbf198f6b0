//! Errors of the upstream layer: [`UpstreamError`] for a fetch, [`UpstreamConfigError`] (a list of
//! [`ConfigProblem`]s) for building an [`Upstream`](super::Upstream) from a GOPROXY-syntax list.

use std::fmt;

/// Why a fetch from the upstream chain did not produce the file.
///
/// `Display` and `Error` are written by hand instead of derived with `thiserror`: the `Failed` and
/// `BreakerOpen` variants carry a field named `source` (the upstream's base URL), which `thiserror`
/// would treat as the underlying error and require to implement `std::error::Error`.
#[derive(Debug)]
#[non_exhaustive]
pub enum UpstreamError {
    /// Every consulted entry answered 404/410 (or had no such file). `message` is the upstream's own
    /// short plain-text explanation when it sent one (first line, sanitized), else a generic one.
    NotFound {
        /// Human-readable reason, safe to show to Go clients.
        message: String,
    },
    /// The entry failed: network error, timeout, 5xx or 429 after retries, another unexpected
    /// status, a body over the size cap, or a truncated body.
    Failed {
        /// Base URL (password redacted) of the entry that failed.
        source: String,
        /// What went wrong, lowercase, for logs and status pages.
        reason: String,
    },
    /// The entry's circuit breaker is open: the request failed fast without contacting it.
    BreakerOpen {
        /// Base URL (password redacted) of the entry whose breaker is open.
        source: String,
        /// Why the attempts that opened it failed.
        last_error: Option<String>,
    },
    /// The chain reached `off`: upstream lookups are disabled for this request.
    Off,
    /// The chain reached `direct`, which cairn does not implement yet.
    DirectUnsupported,
    /// The caller passed a module path, version or URL that cannot be turned into a safe request
    /// (a bug in the caller: paths are validated before they reach this layer).
    InvalidRequest {
        /// What is wrong with the request.
        reason: String,
    },
}

impl UpstreamError {
    /// Whether this is a plain "does not exist" answer (404/410 or a missing file), which callers may
    /// cache negatively and report as 404. `Off` and `DirectUnsupported` are not included: they say
    /// nothing about whether the module exists.
    pub fn is_not_found(&self) -> bool {
        matches!(self, UpstreamError::NotFound { .. })
    }

    /// For a failure caused by a bad body rather than an unreachable upstream: `truncated` (the
    /// body ended before its announced length) or `too_large` (over the caller's limit).
    pub fn bad_body(&self) -> Option<&'static str> {
        match self {
            UpstreamError::Failed { reason, .. } if reason.starts_with(BODY_TRUNCATED) => {
                Some("truncated")
            }
            UpstreamError::Failed { reason, .. } if reason.starts_with(BODY_TOO_LARGE) => {
                Some("too_large")
            }
            _ => None,
        }
    }
}

/// Prefix of the reason of a [`UpstreamError::Failed`] whose body was cut short.
pub const BODY_TRUNCATED: &str = "body truncated";
/// Prefix of the reason of a [`UpstreamError::Failed`] whose body exceeded the limit.
pub const BODY_TOO_LARGE: &str = "body too large";

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::NotFound { message } => f.write_str(message),
            UpstreamError::Failed { source, reason } => {
                write!(f, "upstream {source} failed: {reason}")
            }
            UpstreamError::BreakerOpen { source, last_error } => {
                write!(
                    f,
                    "upstream {source} is failing and was not contacted (circuit breaker open); retry later"
                )?;
                match last_error {
                    Some(e) => write!(f, "; last error: {e}"),
                    None => Ok(()),
                }
            }
            UpstreamError::Off => f.write_str("module lookup disabled by the upstream list (off)"),
            UpstreamError::DirectUnsupported => f.write_str(
                "direct fetching from version control is not supported yet; put a proxy before `direct` in the upstream list",
            ),
            UpstreamError::InvalidRequest { reason } => {
                write!(f, "invalid upstream request: {reason}")
            }
        }
    }
}

impl std::error::Error for UpstreamError {}

/// Building an [`Upstream`](super::Upstream) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamConfigError {
    /// The list or the settings are invalid; every problem found is listed.
    #[error("invalid upstream configuration: {}", join(problems))]
    Invalid {
        /// Every problem found, in list order, settings last.
        problems: Vec<ConfigProblem>,
    },
    /// The HTTP client could not be built (TLS backend initialisation failed).
    #[error("cannot build the upstream http client: {reason}")]
    Client {
        /// The client library's explanation.
        reason: String,
    },
}

/// One problem found in the upstream list or settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// The list has no entries (empty, or only separators and spaces).
    #[error("the upstream list contains no entries; use `off` to disable upstream fetching")]
    EmptyList,
    /// An entry has no scheme and cannot be given `https://` (a single word or an absolute path).
    #[error("upstream entry {entry:?} has no scheme; write https://…, http://…, file:///abs/dir, direct or off")]
    MissingScheme {
        /// The entry as written.
        entry: String,
    },
    /// An entry uses a scheme other than `https`, `http` or `file`.
    #[error(
        "upstream entry {entry:?} uses unsupported scheme {scheme:?}; use https, http or file"
    )]
    UnsupportedScheme {
        /// The entry as written.
        entry: String,
        /// The scheme found.
        scheme: String,
    },
    /// An entry is not a valid URL.
    #[error("upstream entry {entry:?} is not a valid url: {reason}")]
    InvalidUrl {
        /// The entry as written.
        entry: String,
        /// The parser's explanation.
        reason: String,
    },
    /// A `file://` entry has a host, user, query or fragment; only a path is allowed.
    #[error("upstream entry {entry:?} must be a file url with only an absolute path, like file:///srv/goproxy")]
    FileNotPathOnly {
        /// The entry as written.
        entry: String,
    },
    /// A word the go command reserves (`noproxy`) was used.
    #[error("upstream entry {entry:?} is reserved by the go command and not supported here")]
    Reserved {
        /// The entry as written.
        entry: String,
    },
    /// A numeric setting that must be positive is zero.
    #[error("upstream setting {field} must be greater than zero")]
    Zero {
        /// Name of the setting.
        field: &'static str,
    },
    /// `backoff_base_ms` is larger than `backoff_max_ms`.
    #[error(
        "upstream setting backoff_base_ms ({base_ms}) must not exceed backoff_max_ms ({max_ms})"
    )]
    BackoffRange {
        /// Configured base delay.
        base_ms: u64,
        /// Configured maximum delay.
        max_ms: u64,
    },
    /// `retries` is above the supported maximum.
    #[error("upstream setting retries ({retries}) must be at most {max}")]
    TooManyRetries {
        /// Configured retries.
        retries: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// `user_agent` is empty or not a valid HTTP header value.
    #[error("upstream setting user_agent must be non-empty visible ascii")]
    UserAgent,
}

fn join(problems: &[ConfigProblem]) -> String {
    let parts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    parts.join("; ")
}
