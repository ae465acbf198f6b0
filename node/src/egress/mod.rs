//! Egress: how cairn reaches the outside world. One [`Egress`] is built from `[egress]` and the
//! environment at startup and handed to every outbound client — upstream proxies, checksum
//! databases, `?go-get=1` discovery and git — so they all trust the same certificates and use the
//! same proxies as `curl` and the `go` command on the host.
//!
//! - `trust` loads the roots: the operating system's store (honouring `SSL_CERT_FILE` and
//!   `SSL_CERT_DIR` like OpenSSL), `egress.extra_ca_file`, and webpki's roots only when the
//!   system store is empty;
//! - `proxy` resolves `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY` (config over environment);
//! - `check` is `cairn-node --check-upstream`;
//! - `diagnose` turns a TLS verification failure into a message that names the fix.

pub mod check;
mod diagnose;
mod proxy;
mod settings;
mod trust;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub use diagnose::{error_chain, git_tls_hint, tls_hint, TLS_FIX};
pub use proxy::{Proxies, ProxyUrl};
pub use settings::EgressSettings;
pub use trust::Roots;

use crate::config::{Env, ProcessEnv};

/// Why the egress settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EgressError {
    /// `egress.extra_ca_file` cannot be read or holds no certificate.
    #[error("egress.extra_ca_file {path}: {reason}")]
    ExtraCa {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A proxy setting is not a usable URL.
    #[error("{key}: {reason}")]
    Proxy {
        /// The config key or environment variable.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No root certificate at all: nothing could be verified.
    #[error("no trusted root certificates: {0}")]
    NoRoots(String),
    /// The CA bundle for git could not be written.
    #[error("cannot write the CA bundle for git at {path}: {reason}")]
    Bundle {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The outbound network settings every client uses. Cheap to clone.
#[derive(Clone)]
pub struct Egress {
    inner: Arc<Inner>,
}

struct Inner {
    roots: Roots,
    tls: Arc<rustls::ClientConfig>,
    proxies: Proxies,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("roots", &self.inner.roots.describe())
            .field("proxies", &self.inner.proxies)
            .finish()
    }
}

impl PartialEq for Egress {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Egress {}

impl Default for Egress {
    /// The process's own environment and no `[egress]` keys, built once per process (tests and
    /// code paths without a config file share it).
    fn default() -> Self {
        static DEFAULT: OnceLock<Egress> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                Egress::new(&EgressSettings::default(), &ProcessEnv).unwrap_or_else(|e| {
                    tracing::warn!(error = ?e, "default egress settings unusable; using webpki roots and no proxy");
                    Egress::fallback()
                })
            })
            .clone()
    }
}

/// `(name, value)` pairs for the tests' environments.
#[cfg(test)]
pub(super) fn test_vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Egress {
    /// Loads the roots and resolves the proxies from `settings` over `env`.
    pub fn new(settings: &EgressSettings, env: &dyn Env) -> Result<Egress, Vec<EgressError>> {
        let vars: Vec<(String, String)> = env.vars();
        let roots = Roots::load(settings, &vars);
        let proxies = Proxies::resolve(settings, &vars);
        let errors: Vec<EgressError> = [roots.as_ref().err(), proxies.as_ref().err()]
            .into_iter()
            .flatten()
            .flatten()
            .cloned()
            .collect();
        match (roots, proxies) {
            (Ok(roots), Ok(proxies)) if errors.is_empty() => Ok(Egress::from_parts(roots, proxies)),
            _ => Err(errors),
        }
    }

    fn from_parts(roots: Roots, proxies: Proxies) -> Egress {
        let tls = Arc::new(roots.client_config());
        Egress {
            inner: Arc::new(Inner {
                roots,
                tls,
                proxies,
            }),
        }
    }

    /// webpki's roots and no proxy: only when even the default settings fail.
    fn fallback() -> Egress {
        Egress::from_parts(Roots::webpki_only(), Proxies::default())
    }

    /// Where the trusted roots came from, for logs and `--check-upstream`.
    pub fn describe_roots(&self) -> String {
        self.inner.roots.describe()
    }

    /// The resolved proxies.
    pub fn proxies(&self) -> &Proxies {
        &self.inner.proxies
    }

    /// The TLS client configuration every outbound HTTPS connection uses.
    pub fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.inner.tls)
    }

    /// A reqwest builder with cairn's roots and proxies. reqwest's own environment lookup is
    /// off: the proxies were resolved once, config over environment. `use_env_proxy = false`
    /// (`upstream_http.system_proxy = false`) drops the proxies that came from the environment.
    pub fn client_builder(&self, use_env_proxy: bool) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder()
            .use_preconfigured_tls((*self.inner.tls).clone())
            .no_proxy();
        self.inner.proxies.apply(builder, use_env_proxy)
    }

    /// Like [`Egress::client_builder`] but verifying no certificate (for `direct.insecure`
    /// paths, like GOINSECURE).
    pub fn insecure_client_builder(&self, use_env_proxy: bool) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .no_proxy();
        self.inner.proxies.apply(builder, use_env_proxy)
    }

    /// Writes the trusted roots as one PEM bundle to `path` (for git, whose TLS library reads
    /// neither rustls's roots nor, on Debian's GnuTLS build, `SSL_CERT_FILE`).
    /// `None` when there is nothing to write (webpki's roots stand in for an empty store).
    pub fn write_git_bundle(&self, path: &Path) -> Result<Option<PathBuf>, EgressError> {
        if !self.inner.roots.has_bundle() {
            return Ok(None);
        }
        self.inner.roots.write_bundle(path).map(Some)
    }

    /// The environment a git child gets so it trusts and routes like the other clients:
    /// `GIT_SSL_CAINFO` pointing at `bundle`, and curl's proxy variables.
    pub fn git_env(&self, bundle: Option<&Path>) -> Vec<(String, Option<OsString>)> {
        let mut env = self.inner.proxies.curl_env();
        if let Some(bundle) = bundle {
            env.push(("GIT_SSL_CAINFO".to_owned(), Some(bundle.into())));
            env.push(("GIT_SSL_CAPATH".to_owned(), None));
        }
        env
    }
}
