//! [`DiscoverError`], the one error of discovery, and the helpers that build its common variants.

use crate::direct::credentials::CredentialError;
use crate::direct::netguard::Refused;

/// Why a module path has no usable repository. Messages never contain credentials.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoverError {
    /// The module does not exist: no rule covers the path, or the server's page has no go-import
    /// tag for it, or it answered 404/410 (serve 404 to the client).
    #[error("{module}: no repository found: {reason}")]
    NotFound {
        /// The module path.
        module: String,
        /// What was looked at.
        reason: String,
    },
    /// Discovery could not finish: network error, timeout, or a status other than 2xx/404/410
    /// without go-import tags. Retryable.
    #[error("{module}: repository discovery failed: {reason}")]
    Failed {
        /// The module path.
        module: String,
        /// What failed.
        reason: String,
    },
    /// The go-import metadata is unusable: several tags match, the prefix's page disagrees, or the
    /// repository URL or subdirectory is invalid or insecure.
    #[error("{module}: bad go-import metadata: {reason}")]
    BadMeta {
        /// The module path.
        module: String,
        /// What is wrong.
        reason: String,
    },
    /// The path is served by a module proxy (a go-import `mod` entry), not a repository.
    #[error(
        "{module}: served by the module proxy {url} (go-import vcs \"mod\"), not a git repository"
    )]
    ModProxy {
        /// The module path.
        module: String,
        /// The proxy's base URL.
        url: String,
    },
    /// The repository uses a version control system other than git.
    #[error("{module}: the repository uses {vcs}; only git is supported")]
    UnsupportedVcs {
        /// The module path.
        module: String,
        /// The VCS named by the go-import tag or path (`hg`, `svn`, …).
        vcs: String,
    },
    /// The module path's host, a redirect, or the repository URL of its go-import tag is (or
    /// resolves to) an address cairn must not connect to for a client: loopback, private,
    /// link-local (cloud metadata) or otherwise non-global, and not in `direct.allow_networks`.
    /// Nothing was sent to it. Served as 404, like a module that does not exist.
    #[error("{module}: {refused}")]
    Refused {
        /// The module path.
        module: String,
        /// The host and address refused.
        refused: Refused,
    },
    /// A credential for the discovery host could not be read.
    #[error("{module}: {source}")]
    Credential {
        /// The module path.
        module: String,
        /// Which file or variable failed.
        #[source]
        source: CredentialError,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the discovery HTTP client: {reason}")]
    Client {
        /// Why.
        reason: String,
    },
}

impl DiscoverError {
    /// Whether the module does not exist (the client gets 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, DiscoverError::NotFound { .. })
    }

    /// Whether trying again soon may succeed (network trouble, unreadable credential).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DiscoverError::Failed { .. } | DiscoverError::Credential { .. }
        )
    }
}

pub(super) fn not_found(module: &str, reason: &str) -> DiscoverError {
    DiscoverError::NotFound {
        module: module.to_owned(),
        reason: reason.to_owned(),
    }
}

pub(super) fn refused(module: &str, refused: Refused) -> DiscoverError {
    DiscoverError::Refused {
        module: module.to_owned(),
        refused,
    }
}

pub(super) fn bad_meta(module: &str, reason: &str) -> DiscoverError {
    DiscoverError::BadMeta {
        module: module.to_owned(),
        reason: reason.to_owned(),
    }
}
