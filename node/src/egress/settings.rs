//! [`EgressSettings`]: the `[egress]` section of the config file.

use std::path::PathBuf;

/// Trust and proxies for every outbound connection (upstreams, checksum databases, discovery,
/// git). Proxy keys left unset are taken from the environment, like curl and the go command.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressSettings {
    /// PEM file of extra CA certificates trusted on top of the system store (for example a
    /// TLS-inspecting gateway's CA when the system store cannot be changed).
    pub extra_ca_file: Option<PathBuf>,
    /// Trust the operating system's store (`SSL_CERT_FILE`, `SSL_CERT_DIR`, else the
    /// distribution's bundle). Off: only `extra_ca_file` is trusted.
    pub system_roots: bool,
    /// Take `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (either case) from the
    /// environment when the keys below are unset.
    pub system_proxy: bool,
    /// Proxy for `https://` URLs (`http://proxy.corp:3128`); overrides `HTTPS_PROXY`.
    pub https_proxy: Option<String>,
    /// Proxy for `http://` URLs; overrides `HTTP_PROXY`.
    pub http_proxy: Option<String>,
    /// Proxy for both when the specific one is unset; overrides `ALL_PROXY`.
    pub all_proxy: Option<String>,
    /// Comma-separated hosts, domains (`.corp`), IPs and CIDRs reached without a proxy;
    /// overrides `NO_PROXY`.
    pub no_proxy: Option<String>,
}

impl Default for EgressSettings {
    fn default() -> Self {
        EgressSettings {
            extra_ca_file: None,
            system_roots: true,
            system_proxy: true,
            https_proxy: None,
            http_proxy: None,
            all_proxy: None,
            no_proxy: None,
        }
    }
}
