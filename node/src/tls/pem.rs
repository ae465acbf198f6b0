//! Reading certificate chains and private keys from PEM files.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// A certificate chain (leaf first) and its private key, read together.
#[derive(Debug)]
pub struct KeyPairFiles {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key: PrivateKeyDer<'static>,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Every `CERTIFICATE` block of `path`, in order; an error if there is none.
pub fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            what: format!("malformed PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            what: "holds no \"BEGIN CERTIFICATE\" block".into(),
        });
    }
    Ok(certs)
}

/// The first private key of `path`.
pub fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        path: path.to_path_buf(),
        what: format!("holds no usable private key (PKCS#8, RSA or EC PEM): {e}"),
    })
}

/// The chain of `cert` and the key of `key`.
pub fn key_pair(cert: &Path, key_path: &Path) -> Result<KeyPairFiles, TlsError> {
    Ok(KeyPairFiles {
        chain: certs(cert)?,
        key: key(key_path)?,
    })
}

/// A root store of every certificate in `path` (a CA bundle).
pub fn roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    for cert in certs(path)? {
        store.add(cert).map_err(|source| TlsError::Rustls {
            context: format!("CA certificate in {}", path.display()),
            source,
        })?;
    }
    Ok(store)
}
