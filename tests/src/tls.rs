//! A private certificate authority for TLS tests: a CA that exists only in a temp file, and a
//! server certificate it signed for `127.0.0.1` and `localhost`. Test servers wrap their
//! connections with [`TestCa::acceptor`]; clients trust the CA only if they are told about
//! [`TestCa::ca_file`] — exactly the situation of a TLS-inspecting corporate gateway.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tempfile::TempDir;
use tokio_rustls::TlsAcceptor;

/// A CA and a server certificate signed by it.
pub struct TestCa {
    dir: TempDir,
    acceptor: TlsAcceptor,
}

impl TestCa {
    /// A fresh CA (`cairn test CA`) and a leaf for `127.0.0.1`, `::1` and `localhost`.
    pub fn new() -> anyhow::Result<TestCa> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "cairn test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key)?;
        let leaf_key = KeyPair::generate()?;
        let mut leaf_params = CertificateParams::new(vec![
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "localhost".to_owned(),
        ])?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "cairn test server");
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key)?;
        let dir = tempfile::Builder::new().prefix("cairn-ca-").tempdir()?;
        std::fs::write(dir.path().join("ca.pem"), ca.pem())?;
        std::fs::write(
            dir.path().join("server.pem"),
            format!("{}{}", leaf.pem(), ca.pem()),
        )?;
        std::fs::write(dir.path().join("server-key.pem"), leaf_key.serialize_pem())?;
        let chain = vec![
            CertificateDer::from(leaf.der().to_vec()),
            CertificateDer::from(ca.der().to_vec()),
        ];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TestCa {
            dir,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The CA certificate as a PEM file (what `SSL_CERT_FILE` or `egress.extra_ca_file` names).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server certificate chain (leaf, then CA) as a PEM file, for a server configured by
    /// file (`[tls] cert_file` of a node).
    pub fn server_cert_file(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    /// The server certificate's private key (PKCS#8 PEM), for `[tls] key_file`.
    pub fn server_key_file(&self) -> PathBuf {
        self.dir.path().join("server-key.pem")
    }

    /// A PEM file with the machine's own roots and this CA (a corporate bundle).
    pub fn bundle_with_system_roots(&self) -> anyhow::Result<PathBuf> {
        let system = Path::new("/etc/ssl/certs/ca-certificates.crt");
        let mut bundle = std::fs::read(system).unwrap_or_default();
        bundle.extend(std::fs::read(self.ca_file())?);
        let path = self.dir.path().join("bundle.pem");
        std::fs::write(&path, bundle)?;
        Ok(path)
    }

    /// Wraps accepted connections in TLS with the leaf certificate.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }
}
