//! [`AuditError`] (opening the audit log) and [`AuditSettingsError`] (one invalid setting).

use std::path::PathBuf;

/// One problem in the `[audit]` settings; the message names the key and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditSettingsError {
    /// `target` is empty.
    #[error("audit.target: must be \"off\", \"stdout\" or the path of a file, not empty")]
    EmptyTarget,
    /// `target` ends with a path separator, so it cannot be a file.
    #[error(
        "audit.target: {0:?} names a directory; give a file path such as /var/log/cairn/audit.log"
    )]
    DirectoryTarget(PathBuf),
    /// `max_bytes` is 0.
    #[error("audit.max_bytes: must be at least 1 (the default is 104857600, 100 MiB)")]
    ZeroMaxBytes,
    /// `max_files` is implausibly large (a typo for `max_bytes`?).
    #[error("audit.max_files: {0} is more than {max}; keep fewer rotated files or raise audit.max_bytes", max = super::settings::MAX_FILES_LIMIT)]
    TooManyFiles(usize),
}

/// Why the audit log could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The settings are invalid; every problem is listed.
    #[error("invalid [audit] settings: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<AuditSettingsError>),
    /// The log file could not be opened for appending (missing directory, permissions).
    #[error("cannot open the audit log {path}: {source}")]
    Open {
        /// The configured file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the audit log writer thread: {0}")]
    Spawn(#[source] std::io::Error),
}
