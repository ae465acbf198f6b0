//! [`Roots`]: the certificates every outbound TLS connection trusts, loaded the way OpenSSL and
//! the go command find them, so cairn works behind a TLS-inspecting gateway wherever `curl` does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::{EgressError, EgressSettings};

/// The trusted roots and where they came from.
#[derive(Clone, Debug)]
pub struct Roots {
    /// The certificates (DER), system store first; empty when webpki's roots stand in.
    certs: Vec<CertificateDer<'static>>,
    /// One entry per source: `SSL_CERT_FILE=/etc/ssl/cert.pem: 146 certificates`.
    sources: Vec<String>,
    /// The system store was empty and webpki's bundled roots are used instead.
    webpki_fallback: bool,
}

fn var<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
    vars.iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// Every certificate in a PEM file (other PEM sections are skipped).
fn pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&data)
        .filter_map(Result::ok)
        .collect();
    Ok(certs)
}

/// The certificates of every readable file in the `:`-separated directories (OpenSSL's
/// `SSL_CERT_DIR`); unreadable or non-PEM files are skipped, as OpenSSL skips them.
fn dir_certs(dirs: &str) -> Vec<CertificateDer<'static>> {
    let mut certs = Vec::new();
    for dir in dirs.split(':').filter(|d| !d.is_empty()) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths.iter().filter(|p| p.is_file()) {
            certs.extend(pem_certs(path).unwrap_or_default());
        }
    }
    certs
}

impl Roots {
    /// Loads the system store (unless `system_roots` is off) and `extra_ca_file`.
    pub fn load(
        settings: &EgressSettings,
        vars: &[(String, String)],
    ) -> Result<Roots, Vec<EgressError>> {
        let mut roots = Roots {
            certs: Vec::new(),
            sources: Vec::new(),
            webpki_fallback: false,
        };
        if settings.system_roots {
            roots.load_system(vars).map_err(|e| vec![e])?;
        }
        if let Some(path) = &settings.extra_ca_file {
            let bad = |reason: String| {
                vec![EgressError::ExtraCa {
                    path: path.clone(),
                    reason,
                }]
            };
            let certs = pem_certs(path).map_err(bad)?;
            if certs.is_empty() {
                return Err(bad(
                    "no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)".into(),
                ));
            }
            roots.sources.push(format!(
                "egress.extra_ca_file={}: {} certificates",
                path.display(),
                certs.len()
            ));
            roots.certs.extend(certs);
        }
        if roots.certs.is_empty() && !roots.webpki_fallback {
            return Err(vec![EgressError::NoRoots(
                "egress.system_roots is off and egress.extra_ca_file is unset".into(),
            )]);
        }
        Ok(roots)
    }

    /// The system store. An explicitly set `SSL_CERT_FILE`/`SSL_CERT_DIR` that holds no
    /// certificate is an error, not a reason to trust webpki's public roots instead: an operator
    /// who points it at a restricted store must not get the opposite.
    fn load_system(&mut self, vars: &[(String, String)]) -> Result<(), EgressError> {
        let file = var(vars, "SSL_CERT_FILE");
        let dir = var(vars, "SSL_CERT_DIR");
        if let Some(file) = file {
            let certs = pem_certs(Path::new(file)).unwrap_or_else(|e| {
                tracing::warn!(file, error = %e, "SSL_CERT_FILE is unreadable");
                Vec::new()
            });
            self.sources.push(format!(
                "SSL_CERT_FILE={file}: {} certificates",
                certs.len()
            ));
            self.certs.extend(certs);
        }
        if let Some(dir) = dir {
            let certs = dir_certs(dir);
            self.sources
                .push(format!("SSL_CERT_DIR={dir}: {} certificates", certs.len()));
            self.certs.extend(certs);
        }
        if (file.is_some() || dir.is_some()) && self.certs.is_empty() {
            return Err(EgressError::NoRoots(format!(
                "{} holds no readable PEM certificate; fix it, or unset it to use the distribution's store",
                self.sources.join(" and ")
            )));
        }
        if file.is_none() && dir.is_none() {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "error reading the system certificate store");
            }
            self.sources
                .push(format!("system store: {} certificates", found.certs.len()));
            self.certs.extend(found.certs);
        }
        if self.certs.is_empty() {
            self.webpki_fallback = true;
            self.sources
                .push("system store empty: webpki's bundled roots".into());
        }
        Ok(())
    }

    /// Only webpki's bundled roots.
    pub(super) fn webpki_only() -> Roots {
        Roots {
            certs: Vec::new(),
            sources: vec!["webpki's bundled roots".into()],
            webpki_fallback: true,
        }
    }

    /// One line saying where the roots came from.
    pub fn describe(&self) -> String {
        self.sources.join("; ")
    }

    /// A rustls client configuration trusting these roots, offering h2 and http/1.1.
    pub(super) fn client_config(&self) -> rustls::ClientConfig {
        let mut store = rustls::RootCertStore::empty();
        if self.webpki_fallback {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        let (_, ignored) = store.add_parsable_certificates(self.certs.iter().cloned());
        if ignored > 0 {
            tracing::debug!(ignored, "unparsable root certificates skipped");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions();
        // The ring provider supports every safe default version, so this cannot fail; fall back
        // to the process default provider rather than panicking if it ever did.
        let mut config = match builder {
            Ok(b) => b.with_root_certificates(store).with_no_client_auth(),
            Err(_) => rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    }

    /// Writes the roots as a PEM bundle at `path` (temp file + rename).
    pub(super) fn write_bundle(&self, path: &Path) -> Result<PathBuf, EgressError> {
        let fail = |e: std::io::Error| EgressError::Bundle {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let mut pem = String::new();
        for cert in &self.certs {
            pem.push_str("-----BEGIN CERTIFICATE-----\n");
            let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
            for line in b64.as_bytes().chunks(64) {
                pem.push_str(&String::from_utf8_lossy(line));
                pem.push('\n');
            }
            pem.push_str("-----END CERTIFICATE-----\n");
        }
        let tmp = path.with_extension("pem.tmp");
        std::fs::write(&tmp, pem).map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)?;
        Ok(path.to_path_buf())
    }

    /// Whether there are certificates to write as a bundle for git: not when webpki's roots
    /// stand in for an empty system store (they are trust anchors, not certificates, so a bundle
    /// would hold `extra_ca_file` alone and git would lose every public root; git keeps its own
    /// defaults then).
    pub(super) fn has_bundle(&self) -> bool {
        !self.webpki_fallback && !self.certs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::test_vars as vars;

    #[test]
    fn ssl_cert_file_replaces_the_default_store_and_extra_ca_adds() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host.pem");
        let system = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
        std::fs::write(&host, &system).unwrap();
        let env = vars(&[("SSL_CERT_FILE", host.to_str().unwrap())]);
        let roots = Roots::load(&EgressSettings::default(), &env).unwrap();
        assert!(
            roots.describe().starts_with("SSL_CERT_FILE="),
            "{}",
            roots.describe()
        );
        let bundle = roots.write_bundle(&dir.path().join("bundle.pem")).unwrap();
        let again = pem_certs(&bundle).unwrap();
        assert_eq!(again.len(), roots.certs.len());
    }

    #[test]
    fn a_bad_extra_ca_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        for path in [junk, dir.path().join("missing.pem")] {
            let settings = EgressSettings {
                extra_ca_file: Some(path.clone()),
                ..EgressSettings::default()
            };
            let errs = Roots::load(&settings, &[]).unwrap_err();
            assert!(
                errs[0].to_string().contains(&path.display().to_string()),
                "{errs:?}"
            );
        }
    }

    #[test]
    fn an_empty_explicit_store_and_no_roots_at_all_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let env = vars(&[("SSL_CERT_FILE", empty.to_str().unwrap())]);
        let errs = Roots::load(&EgressSettings::default(), &env).unwrap_err();
        assert!(errs[0].to_string().contains("empty.pem"), "{errs:?}");
        let none = EgressSettings {
            system_roots: false,
            ..EgressSettings::default()
        };
        assert!(matches!(
            Roots::load(&none, &[]).unwrap_err()[0],
            EgressError::NoRoots(_)
        ));
        assert!(!Roots::webpki_only().has_bundle());
    }
}
