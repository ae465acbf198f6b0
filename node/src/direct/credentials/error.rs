//! [`CredentialError`]: why a credential could not be used.

use std::path::{Path, PathBuf};

/// Why a credential could not be used. Messages name the file or variable, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// A secret, key, known_hosts or netrc file could not be read.
    #[error("cannot read credential file {}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A `secret_env` variable is not set.
    #[error("credential environment variable {name} is not set")]
    MissingEnv {
        /// The variable.
        name: String,
    },
    /// A secret file or variable is empty.
    #[error("credential {source_name} is empty")]
    Empty {
        /// The file path or `$VARIABLE`.
        source_name: String,
    },
    /// A path handed to `ssh` is not UTF-8, so it cannot be quoted for `GIT_SSH_COMMAND`.
    #[error("path {} is not valid UTF-8", path.display())]
    NonUtf8Path {
        /// The path.
        path: PathBuf,
    },
}

pub(super) fn file_error(path: &Path, e: &std::io::Error) -> CredentialError {
    CredentialError::File {
        path: path.to_path_buf(),
        reason: e.kind().to_string(),
    }
}
