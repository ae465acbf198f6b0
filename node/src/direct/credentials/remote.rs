//! Remote URLs taken apart the way git tells them apart, enough to find their credentials.

/// The transport of a git remote URL, as far as credentials are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RemoteScheme {
    /// `https://`.
    Https,
    /// `http://`.
    Http,
    /// `ssh://`, `git+ssh://`, `ssh+git://`.
    Ssh,
    /// scp-like `[user@]host:path`.
    Scp,
    /// `file://`.
    File,
    /// Anything else (`git://`, `ftp://`, …).
    Other,
}

/// A git remote URL taken apart, enough to find its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Remote {
    /// The transport.
    pub(crate) scheme: RemoteScheme,
    /// Host name, lowercase, without brackets or port ("" for `file://`).
    pub(crate) host: String,
    /// The port, explicit or the scheme's default.
    pub(crate) port: Option<u16>,
    /// Whether the URL carries a password in its userinfo.
    pub(crate) has_password: bool,
}

/// Parses a remote URL the way git tells them apart: `scheme://…`, else scp-like when a `:`
/// comes before any `/`. Local paths and malformed URLs give `None`.
pub(crate) fn parse_remote(url: &str) -> Option<Remote> {
    if url.contains("://") {
        let parsed = reqwest::Url::parse(url).ok()?;
        let scheme = match parsed.scheme() {
            "https" => RemoteScheme::Https,
            "http" => RemoteScheme::Http,
            "ssh" | "git+ssh" | "ssh+git" => RemoteScheme::Ssh,
            "file" => RemoteScheme::File,
            _ => RemoteScheme::Other,
        };
        let host = parsed.host_str().unwrap_or("");
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let default_port = (scheme == RemoteScheme::Ssh).then_some(22);
        return Some(Remote {
            scheme,
            host: host.to_ascii_lowercase(),
            port: parsed.port_or_known_default().or(default_port),
            has_password: parsed.password().is_some(),
        });
    }
    let (authority, _path) = url.split_once(':')?;
    if authority.contains('/') || authority.is_empty() {
        return None;
    }
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| Remote {
        scheme: RemoteScheme::Scp,
        host: host.to_ascii_lowercase(),
        port: Some(22),
        has_password: false,
    })
}

/// Splits `host[:port]`; a bad port is kept as part of the name (it then matches nothing).
pub(super) fn split_host_port(host: &str) -> (&str, Option<u16>) {
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => match port.parse() {
            Ok(port) => (name, Some(port)),
            Err(_) => (host, None),
        },
        _ => (host, None),
    }
}

/// The explicit port written in a `scheme://` URL, if any.
pub(super) fn url_port(url: &str) -> Option<u16> {
    reqwest::Url::parse(url).ok()?.port()
}

/// IPv6 literals go back into brackets inside URLs.
pub(super) fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}
