//! TLS for cairn's own listeners and internal clients, all with rustls (ring provider):
//!
//! - [`server`]: HTTPS on the GOPROXY port, with certificates reloaded when their files change.
//! - [`cluster`]: mutual TLS on the cluster port and for every client of it (nodes and the
//!   `cairn` CLI), peers verified against the cluster CA and their expected [`Identity`].
//! - [`authz`]: which identity may call which cluster RPC, enforced as one tower layer.
//! - [`pki`]: a small certificate authority for tests and small installations
//!   (`cairn certs ...`).
//! - [`pem`] and [`watch`]: reading PEM files and noticing when they change.

pub mod authz;
pub mod cluster;
pub mod identity;
pub mod metrics;
pub mod pem;
pub mod pki;
pub mod server;
pub mod watch;

pub use cluster::{ClusterTls, ClusterTlsSettings, Expect};
pub use identity::Identity;
pub use server::{HttpsTls, TlsSettings};

use std::path::PathBuf;
use std::sync::Arc;

/// Why TLS material could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file held no usable PEM block of the expected kind.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// rustls refused the material (a key that does not match its certificate, say).
    #[error("{context}: {source}")]
    Rustls {
        /// What was being built.
        context: String,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// A certificate does not carry the identity cairn expects.
    #[error("{0}")]
    Identity(String),
    /// Generating a certificate failed.
    #[error("cannot generate {what}: {reason}")]
    Generate {
        /// What was being generated.
        what: String,
        /// Why.
        reason: String,
    },
}

/// The one crypto provider cairn uses for its own TLS (the same as for egress).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
