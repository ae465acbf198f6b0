//! HTTPS on the GOPROXY port: rustls with TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`, and the
//! certificate reloaded when its files change (new connections get the new certificate, open
//! ones keep theirs).

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{pem, TlsError};

/// The `[tls]` section: HTTPS for the GOPROXY port.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain (leaf first) served on `listen`; with `key_file`, turns HTTPS on.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the leaf (PKCS#8, RSA or EC).
    pub key_file: Option<PathBuf>,
    /// A second address serving plain HTTP (for clients still migrating); unset = none.
    pub plain_listen: Option<String>,
    /// How often the certificate files (and the cluster's) are checked for changes.
    pub reload_interval_secs: u64,
    /// A client must finish its TLS handshake within this many seconds.
    pub handshake_timeout_secs: u64,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            cert_file: None,
            key_file: None,
            plain_listen: None,
            reload_interval_secs: 10,
            handshake_timeout_secs: 10,
        }
    }
}

impl TlsSettings {
    /// Problems with the section, each as (key, what to fix).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => out.push(("tls.key_file", "is required with tls.cert_file".into())),
            (None, Some(_)) => out.push(("tls.cert_file", "is required with tls.key_file".into())),
            _ => {}
        }
        if self.reload_interval_secs == 0 {
            out.push(("tls.reload_interval_secs", "must be at least 1".into()));
        }
        if self.handshake_timeout_secs == 0 {
            out.push(("tls.handshake_timeout_secs", "must be at least 1".into()));
        }
        out
    }
}

/// The GOPROXY port's TLS configuration, swapped whole when the files change.
#[derive(Clone)]
pub struct HttpsTls {
    cert: PathBuf,
    key: PathBuf,
    current: Arc<RwLock<Arc<rustls::ServerConfig>>>,
    /// How long a handshake may take.
    pub handshake_timeout: Duration,
    reload_interval: Duration,
}

impl HttpsTls {
    /// Loads the certificate if `[tls]` configures one (`None` = plain HTTP).
    pub fn load(settings: &TlsSettings) -> Result<Option<HttpsTls>, TlsError> {
        let (Some(cert), Some(key)) = (&settings.cert_file, &settings.key_file) else {
            return Ok(None);
        };
        let config = build(cert, key)?;
        Ok(Some(HttpsTls {
            cert: cert.clone(),
            key: key.clone(),
            current: Arc::new(RwLock::new(Arc::new(config))),
            handshake_timeout: Duration::from_secs(settings.handshake_timeout_secs),
            reload_interval: Duration::from_secs(settings.reload_interval_secs),
        }))
    }

    /// An acceptor with the current certificate.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        tokio_rustls::TlsAcceptor::from(config)
    }

    /// Re-reads the files now.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = build(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
        Ok(())
    }

    /// Reloads whenever the files change, until `shutdown`.
    pub fn spawn_reloader(&self, shutdown: CancellationToken) {
        let me = self.clone();
        super::watch::spawn(
            "https",
            vec![self.cert.clone(), self.key.clone()],
            self.reload_interval,
            shutdown,
            move || me.reload(),
        );
    }
}

fn build(cert: &std::path::Path, key: &std::path::Path) -> Result<rustls::ServerConfig, TlsError> {
    let pair = pem::key_pair(cert, key)?;
    record_expiry("https", &pair.chain);
    let mut config = rustls::ServerConfig::builder_with_provider(bulk_provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|source| rustls_err("TLS versions", source))?
        .with_no_client_auth()
        .with_single_cert(pair.chain, pair.key)
        .map_err(|source| {
            rustls_err(
                &format!("{} with {}", cert.display(), key.display()),
                source,
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Our order, not the client's: some clients (rustls among them) ask for AES-256 first.
    config.ignore_client_order = true;
    Ok(config)
}

/// The ring provider with AES-128-GCM preferred: module zips are bulk data, and AES-128 costs
/// about a third less CPU per byte than AES-256 for the same (ample) security margin; the
/// go command itself prefers it.
fn bulk_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::cipher_suite as cs;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    std::sync::Arc::new(provider)
}

pub(super) fn rustls_err(context: &str, source: rustls::Error) -> TlsError {
    TlsError::Rustls {
        context: context.to_string(),
        source,
    }
}

/// Sets the expiry gauge of `listener` from the leaf of `chain`.
pub(super) fn record_expiry(
    listener: &'static str,
    chain: &[rustls::pki_types::CertificateDer<'_>],
) {
    if let Some(t) = chain.first().and_then(super::identity::not_after) {
        metrics::gauge!(super::metrics::CERT_EXPIRY, "listener" => listener).set(t as f64);
    }
    // Exported at 0 from the start (only for listeners that do TLS) so dashboards show 0, not
    // "no data", and `increase()` sees the first failure.
    metrics::counter!(super::metrics::HANDSHAKE_FAILURES_TOTAL, "listener" => listener)
        .increment(0);
}
