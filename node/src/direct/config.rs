//! The `[direct]` configuration section: where bare mirrors live, how module paths map to
//! repositories, and which credentials `git` and `?go-get=1` discovery may use.
//!
//! Secrets are never written in the config file: a credential names the file or environment
//! variable that holds its secret, which [`super::credentials`] re-reads on every use. Keys that
//! look like inline secrets (`password`, `token`, `secret`) are accepted by the parser only so
//! that [`DirectConfig::problems`] can reject them with an actionable message.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::credentials::{parse_remote, redact_url, RemoteScheme};
use super::netguard::Cidr;

/// The message for every inline secret.
const INLINE_SECRET: &str =
    "secrets cannot be written in the config file; use secret_file or secret_env";

/// The `[direct]` section. Every key has a default, so an absent section is a working setup for
/// public repositories.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DirectConfig {
    /// Where bare mirrors live; `None` means `<data_dir>/vcs`.
    pub dir: Option<PathBuf>,
    /// The git executable (a name looked up in `PATH`, or a path).
    pub git: String,
    /// Concurrent git network operations (clone, fetch, ls-remote) per repository host.
    pub max_per_host: usize,
    /// Deadline for any single git command (clone, fetch, archive), in seconds.
    pub command_timeout_secs: u64,
    /// A repository is fetched again for an unknown revision or a list refresh at most this often,
    /// in seconds.
    pub refresh_min_secs: u64,
    /// Whether `?go-get=1` discovery over HTTPS is used for paths no host mapping or static rule
    /// covers.
    pub discovery: bool,
    /// GOINSECURE-style comma-separated globs: for matching module paths, discovery and the static
    /// `.git` rule may use plain `http`.
    pub insecure: String,
    /// netrc file for HTTPS credentials; `None` means `$NETRC`, else `~/.netrc` if it exists.
    pub netrc: Option<PathBuf>,
    /// Fixed addresses for discovery hosts, `"host=IP:PORT"` (port 0: the scheme's default).
    /// Meant for tests and split-horizon DNS; it changes where `?go-get=1` requests go, not
    /// where `git` connects. Hosts listed here are trusted: exempt from `allow_networks`.
    pub resolve: Vec<String>,
    /// Networks (CIDR, e.g. `"10.0.0.0/8"`, `"fd00::/8"`) that repositories named by clients —
    /// through their module path, a `?go-get=1` page or a redirect — may be reached in, although
    /// they are not globally routable. Empty (the default) refuses loopback, private, link-local
    /// (cloud metadata), CGNAT, multicast and other non-global addresses. `[[direct.hosts]]`
    /// mappings and `resolve` hosts are trusted without it.
    pub allow_networks: Vec<String>,
    /// Module-path prefix → repository base URL mappings, tried before static rules and discovery.
    pub hosts: Vec<HostMapping>,
    /// Per-host credentials; an entry beats the netrc file for its host.
    pub credentials: Vec<Credential>,
}

impl Default for DirectConfig {
    fn default() -> Self {
        DirectConfig {
            dir: None,
            git: "git".to_owned(),
            max_per_host: 4,
            command_timeout_secs: 600,
            refresh_min_secs: 5,
            discovery: true,
            insecure: String::new(),
            netrc: None,
            resolve: Vec::new(),
            allow_networks: Vec::new(),
            hosts: Vec::new(),
            credentials: Vec::new(),
        }
    }
}

/// One `[[direct.hosts]]` entry: module paths under `prefix` live in repositories under `url`.
///
/// With `prefix = "corp.example.com"`, `url = "https://git.corp.example.com"`, `depth = 2` and
/// `suffix = ".git"`, module `corp.example.com/team/repo/sub` is repository
/// `https://git.corp.example.com/team/repo.git` with root `corp.example.com/team/repo`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HostMapping {
    /// Module path prefix (whole path elements), e.g. `corp.example.com` or `github.com/corp`.
    pub prefix: String,
    /// Base URL the repository path is appended to: `https://`, `http://`, `ssh://`, scp-like
    /// `git@host:path`, or `file:///`.
    pub url: String,
    /// How many path elements after `prefix` name the repository.
    #[serde(default = "default_depth")]
    pub depth: usize,
    /// Appended to the repository URL, e.g. `.git`.
    #[serde(default)]
    pub suffix: String,
}

fn default_depth() -> usize {
    1
}

/// One `[[direct.credentials]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// Host (and optional `:port`) this applies to, matched against the repository URL's host and
    /// the discovery host. Without a port it applies to every port of the host.
    pub host: String,
    /// How the secret is presented.
    pub kind: CredentialKind,
    /// Username for `basic` (required) and `token` (default `x-access-token`); for `ssh` the
    /// remote user is part of the URL.
    #[serde(default)]
    pub username: Option<String>,
    /// The secret (token or password) is read from this file, trailing newline trimmed …
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// … or from this environment variable.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// ssh private key file (`ssh` only).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// ssh known_hosts file; when set, host keys are checked strictly against it (`ssh` only).
    #[serde(default)]
    pub known_hosts_file: Option<PathBuf>,
    /// Rejected: present only to explain that secrets are not written inline.
    #[serde(default, skip_serializing)]
    pub password: Option<InlineSecret>,
    /// Rejected: present only to explain that secrets are not written inline.
    #[serde(default, skip_serializing)]
    pub token: Option<InlineSecret>,
    /// Rejected: present only to explain that secrets are not written inline.
    #[serde(default, skip_serializing)]
    pub secret: Option<InlineSecret>,
}

/// How a credential is presented to the server.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    /// HTTP Basic auth with a token as the password (GitHub/GitLab style).
    Token,
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// HTTP Basic auth with a username and password.
    Basic,
    /// An ssh private key, for `ssh://` and scp-like URLs.
    Ssh,
}

impl CredentialKind {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Token => "token",
            CredentialKind::Bearer => "bearer",
            CredentialKind::Basic => "basic",
            CredentialKind::Ssh => "ssh",
        }
    }
}

/// A value written where a secret must not be. Its content is discarded while parsing, so it can
/// never reach a log through `Debug`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InlineSecret;

impl<'de> Deserialize<'de> for InlineSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| InlineSecret)
    }
}

// === impl DirectConfig ===

impl DirectConfig {
    /// Every problem, as sentences naming the key (`direct.hosts[1].prefix: …`); empty when valid.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        self.scalar_problems(&mut problems);
        for (i, host) in self.hosts.iter().enumerate() {
            host.problems(&format!("direct.hosts[{i}]"), &mut problems);
        }
        let mut seen = BTreeSet::new();
        for (i, cred) in self.credentials.iter().enumerate() {
            let key = format!("direct.credentials[{i}]");
            cred.problems(&key, &mut problems);
            if !seen.insert(cred.host.to_ascii_lowercase()) {
                problems.push(format!(
                    "{key}.host: {:?} already has a credential; each host may have one",
                    cred.host
                ));
            }
        }
        problems
    }

    fn scalar_problems(&self, problems: &mut Vec<String>) {
        if self.git.trim().is_empty() {
            problems.push("direct.git: must name the git executable".to_owned());
        }
        if self.max_per_host == 0 {
            problems.push("direct.max_per_host: must be at least 1".to_owned());
        }
        if self.command_timeout_secs == 0 {
            problems.push("direct.command_timeout_secs: must be at least 1".to_owned());
        }
        if self.dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            problems.push("direct.dir: must not be empty (leave it out for <data_dir>/vcs)".into());
        }
        if let Err(crate::routing::GlobError::Bad { glob, reason }) =
            crate::routing::validate_patterns(&self.insecure)
        {
            problems.push(format!("direct.insecure: bad pattern {glob:?}: {reason}"));
        }
        for (i, entry) in self.resolve.iter().enumerate() {
            if let Err(reason) = parse_resolve(entry) {
                problems.push(format!("direct.resolve[{i}]: {reason}"));
            }
        }
        for (i, net) in self.allow_networks.iter().enumerate() {
            if let Err(reason) = net.parse::<Cidr>() {
                problems.push(format!("direct.allow_networks[{i}]: {reason}"));
            }
        }
    }

    /// The `allow_networks` entries; invalid ones (reported by [`Self::problems`]) are left out.
    pub fn allowed_networks(&self) -> Vec<Cidr> {
        self.allow_networks
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect()
    }

    /// The `resolve` entries as (host, address) pairs; invalid entries (reported by
    /// [`Self::problems`]) are left out.
    pub fn resolve_entries(&self) -> Vec<(String, SocketAddr)> {
        self.resolve
            .iter()
            .filter_map(|e| parse_resolve(e).ok())
            .collect()
    }

    /// [`Self::command_timeout_secs`] as a duration.
    pub fn command_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.command_timeout_secs)
    }

    /// [`Self::refresh_min_secs`] as a duration.
    pub fn refresh_min(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.refresh_min_secs)
    }
}

/// Parses one `resolve` entry, `host=IP:PORT`.
fn parse_resolve(entry: &str) -> Result<(String, SocketAddr), String> {
    let (host, addr) = entry
        .split_once('=')
        .ok_or_else(|| format!("{entry:?} is not HOST=IP:PORT"))?;
    let host = host.trim();
    if host.is_empty() || host.contains(['/', ':', ' ']) {
        return Err(format!("{entry:?}: {host:?} is not a host name"));
    }
    let addr = addr
        .trim()
        .parse::<SocketAddr>()
        .map_err(|_| format!("{entry:?}: {:?} is not IP:PORT", addr.trim()))?;
    Ok((host.to_ascii_lowercase(), addr))
}

// === impl HostMapping ===

impl HostMapping {
    fn problems(&self, key: &str, problems: &mut Vec<String>) {
        if self.prefix.contains("://") {
            problems.push(format!(
                "{key}.prefix: {:?} is a URL; write a module path prefix such as \"corp.example.com\"",
                self.prefix
            ));
        } else if self.prefix.ends_with('/') {
            problems.push(format!(
                "{key}.prefix: {:?} must not end with '/'",
                self.prefix
            ));
        } else if let Err(e) = crate::module::check_path(&self.prefix) {
            problems.push(format!("{key}.prefix: not a module path prefix: {e}"));
        }
        if let Err(reason) = check_base_url(&self.url) {
            problems.push(format!("{key}.url: {reason}"));
        }
        if self.depth == 0 {
            problems.push(format!("{key}.depth: must be at least 1"));
        }
        if self.suffix.contains(['/', ':', '@', '?', '#'])
            || self.suffix.contains(char::is_whitespace)
        {
            problems.push(format!(
                "{key}.suffix: {:?} must be a plain name ending such as \".git\"",
                self.suffix
            ));
        }
    }
}

/// Checks a repository base URL; the reason never repeats a password.
fn check_base_url(url: &str) -> Result<(), String> {
    let shown = redact_url(url);
    let remote = parse_remote(url).ok_or_else(|| {
        format!(
            "{shown:?} is not an https://, http://, ssh://, file:/// or scp-like git@host:path URL"
        )
    })?;
    if remote.has_password {
        return Err(INLINE_SECRET.to_owned());
    }
    match remote.scheme {
        RemoteScheme::Https | RemoteScheme::Http | RemoteScheme::Ssh | RemoteScheme::Scp => {
            if remote.host.is_empty() {
                return Err(format!("{shown:?} has no host"));
            }
        }
        RemoteScheme::File => {
            if !url.starts_with("file:///") {
                return Err(format!("{shown:?}: file URLs must be absolute (file:///…)"));
            }
        }
        RemoteScheme::Other => {
            return Err(format!(
                "{shown:?}: scheme not allowed; use https://, http://, ssh://, file:/// or git@host:path"
            ))
        }
    }
    if url.contains(['?', '#']) || url.contains(char::is_whitespace) {
        return Err(format!("{shown:?} must not contain '?', '#' or spaces"));
    }
    Ok(())
}

// === impl Credential ===

impl Credential {
    fn problems(&self, key: &str, problems: &mut Vec<String>) {
        if self.password.is_some() || self.token.is_some() || self.secret.is_some() {
            problems.push(format!("{key}: {INLINE_SECRET}"));
        }
        if !valid_host(&self.host) {
            problems.push(format!(
                "{key}.host: {:?} must be a host name with an optional :port (no scheme or path)",
                self.host
            ));
        }
        let kind = self.kind.as_str();
        let secrets =
            usize::from(self.secret_file.is_some()) + usize::from(self.secret_env.is_some());
        match self.kind {
            CredentialKind::Token | CredentialKind::Bearer | CredentialKind::Basic => {
                if secrets != 1 {
                    problems.push(format!(
                        "{key}: kind {kind:?} needs exactly one of secret_file and secret_env"
                    ));
                }
                if self.key_file.is_some() || self.known_hosts_file.is_some() {
                    problems.push(format!(
                        "{key}: key_file and known_hosts_file apply only to kind \"ssh\""
                    ));
                }
            }
            CredentialKind::Ssh => {
                if self.key_file.is_none() {
                    problems.push(format!(
                        "{key}.key_file: kind \"ssh\" needs a private key file"
                    ));
                }
                if secrets != 0 || self.username.is_some() {
                    problems.push(format!(
                        "{key}: kind \"ssh\" takes no secret_file, secret_env or username (the user is part of the URL)"
                    ));
                }
            }
        }
        match (self.kind, self.username.as_deref()) {
            (CredentialKind::Basic, None) => {
                problems.push(format!("{key}.username: kind \"basic\" needs a username"))
            }
            (CredentialKind::Bearer, Some(_)) => {
                problems.push(format!("{key}.username: kind \"bearer\" takes no username"))
            }
            (_, Some(u)) if u.is_empty() || u.contains([':', '\n', '\r']) => problems.push(
                format!("{key}.username: must be non-empty and contain no ':' or line break"),
            ),
            _ => {}
        }
        if self
            .secret_env
            .as_deref()
            .is_some_and(|v| v.is_empty() || v.contains('='))
        {
            problems.push(format!(
                "{key}.secret_env: not an environment variable name"
            ));
        }
    }
}

/// Whether `host` is `name` or `name:port` with nothing else around it.
fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
