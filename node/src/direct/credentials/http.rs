//! HTTP credentials: the `Authorization` header for a host, used by `?go-get=1` discovery and,
//! through `http.extraHeader`, by `git`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::remote::{split_host_port, Remote, RemoteScheme};
use super::{netrc, CredentialError, Credentials, Secret};
use crate::direct::config::CredentialKind;

/// Username sent with a `token` credential when none is configured (accepted by GitHub, GitLab
/// and Gitea, which ignore it and check the token).
pub const DEFAULT_TOKEN_USER: &str = "x-access-token";

// === impl Credentials ===

impl Credentials {
    /// The `Authorization` header value for an HTTPS request to `host` (`name` or `name:port`),
    /// as used by discovery: an explicit entry, else the netrc file.
    pub fn http_authorization(&self, host: &str) -> Result<Option<Secret>, CredentialError> {
        let (name, port) = split_host_port(host);
        let remote = Remote {
            scheme: RemoteScheme::Https,
            host: name.to_ascii_lowercase(),
            port: Some(port.unwrap_or(443)),
            has_password: false,
        };
        self.authorization(&remote, true)
    }

    /// The header for `remote`; netrc only when `secure`.
    pub(crate) fn authorization(
        &self,
        remote: &Remote,
        secure: bool,
    ) -> Result<Option<Secret>, CredentialError> {
        if let Some(entry) = self.entry_for(remote, false) {
            let secret = entry.secret(self.env.as_ref())?;
            let value = match entry.kind {
                CredentialKind::Bearer => format!("Bearer {}", secret.expose()),
                _ => {
                    let user = entry.username.as_deref().unwrap_or(DEFAULT_TOKEN_USER);
                    basic(user, secret.expose())
                }
            };
            return Ok(Some(Secret(value)));
        }
        if !secure {
            return Ok(None);
        }
        let lines = self.netrc_entries()?;
        Ok(netrc::lookup(&lines, &remote.host, remote.port)
            .map(|l| Secret(basic(&l.login, &l.password))))
    }
}

fn basic(user: &str, secret: &str) -> String {
    format!("Basic {}", basic_b64(user, secret))
}

pub(super) fn basic_b64(user: &str, secret: &str) -> String {
    STANDARD.encode(format!("{user}:{secret}"))
}
