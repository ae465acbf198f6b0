//! [`Proxies`]: the forward proxies outbound connections go through, resolved once from
//! `[egress]` over the environment with the go command's names (`HTTPS_PROXY`, `HTTP_PROXY`,
//! `NO_PROXY`, upper case first) plus curl's `ALL_PROXY` as the fallback for both.

use std::ffi::OsString;

use reqwest::Url;

use super::{EgressError, EgressSettings};

/// One resolved proxy and where it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// The proxy's URL (with credentials, if any).
    pub url: Url,
    /// The config key or environment variable it came from.
    pub from: String,
}

impl std::fmt::Debug for ProxyUrl {
    /// The URL with its password hidden: proxies end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyUrl")
            .field("url", &self.redacted())
            .field("from", &self.from)
            .finish()
    }
}

impl ProxyUrl {
    /// Whether it came from the environment rather than the config file.
    pub fn from_env(&self) -> bool {
        !self.from.starts_with("egress.")
    }

    /// The URL with its password hidden, for logs.
    pub fn redacted(&self) -> String {
        crate::upstream::redacted(&self.url)
    }
}

/// The resolved proxies; `None` means a direct connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proxies {
    /// For `https://` URLs.
    pub https: Option<ProxyUrl>,
    /// For `http://` URLs.
    pub http: Option<ProxyUrl>,
    /// Hosts reached directly, in `NO_PROXY` syntax.
    pub no_proxy: Option<String>,
}

/// Finds the first set value among the config key and the environment variables.
fn pick(
    key: &str,
    configured: Option<&String>,
    names: &[&str],
    use_env: bool,
    vars: &[(String, String)],
) -> Option<(String, String)> {
    if let Some(v) = configured {
        return Some((format!("egress.{key}"), v.trim().to_owned()));
    }
    if !use_env {
        return None;
    }
    names.iter().find_map(|name| {
        vars.iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(k, v)| (k.clone(), v.trim().to_owned()))
    })
}

fn parse_proxy(from: String, value: &str) -> Result<Option<ProxyUrl>, EgressError> {
    if value.is_empty() {
        return Ok(None);
    }
    // Like the go command: a bare host:port means http://.
    let text = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let bad = |reason: String| EgressError::Proxy {
        key: from.clone(),
        reason,
    };
    let url = Url::parse(&text).map_err(|e| bad(format!("{e}; expected http://host:port")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(format!(
            "unsupported proxy {:?}; expected http://host:port or https://host:port",
            crate::upstream::redacted(&url)
        )));
    }
    Ok(Some(ProxyUrl { url, from }))
}

impl Proxies {
    /// Resolves `settings` (an empty string disables a proxy) over the environment in `vars`.
    pub fn resolve(
        settings: &EgressSettings,
        vars: &[(String, String)],
    ) -> Result<Proxies, Vec<EgressError>> {
        let env = settings.system_proxy;
        let all = pick(
            "all_proxy",
            settings.all_proxy.as_ref(),
            &["ALL_PROXY", "all_proxy"],
            env,
            vars,
        );
        let https = pick(
            "https_proxy",
            settings.https_proxy.as_ref(),
            &["HTTPS_PROXY", "https_proxy"],
            env,
            vars,
        )
        .or_else(|| all.clone());
        let http = pick(
            "http_proxy",
            settings.http_proxy.as_ref(),
            &["HTTP_PROXY", "http_proxy"],
            env,
            vars,
        )
        .or(all);
        let no_proxy = pick(
            "no_proxy",
            settings.no_proxy.as_ref(),
            &["NO_PROXY", "no_proxy"],
            env,
            vars,
        )
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty());
        let mut errors = Vec::new();
        let mut parse = |found: Option<(String, String)>| match found {
            Some((from, value)) => parse_proxy(from.clone(), &value).unwrap_or_else(|e| {
                // curl's ALL_PROXY is often a SOCKS proxy meant for other tools (the go command
                // ignores it): skip it rather than refuse to start.
                if from.eq_ignore_ascii_case("ALL_PROXY") {
                    tracing::warn!(error = %e, "ignoring ALL_PROXY from the environment");
                } else {
                    errors.push(e);
                }
                None
            }),
            None => None,
        };
        let proxies = Proxies {
            https: parse(https),
            http: parse(http),
            no_proxy,
        };
        if errors.is_empty() {
            Ok(proxies)
        } else {
            Err(errors)
        }
    }

    /// Adds the proxies to a reqwest builder whose own environment lookup is off.
    pub(super) fn apply(
        &self,
        mut builder: reqwest::ClientBuilder,
        use_env: bool,
    ) -> reqwest::ClientBuilder {
        let no_proxy = self
            .no_proxy
            .as_deref()
            .and_then(reqwest::NoProxy::from_string);
        let wanted = |p: &Option<ProxyUrl>| p.clone().filter(|p| use_env || !p.from_env());
        if let Some(p) = wanted(&self.https) {
            if let Ok(proxy) = reqwest::Proxy::https(p.url.clone()) {
                builder = builder.proxy(proxy.no_proxy(no_proxy.clone()));
            }
        }
        if let Some(p) = wanted(&self.http) {
            if let Ok(proxy) = reqwest::Proxy::http(p.url.clone()) {
                builder = builder.proxy(proxy.no_proxy(no_proxy));
            }
        }
        builder
    }

    /// The proxy a request to `url` goes through, if any (for `--check-upstream`).
    pub fn for_url(&self, url: &Url) -> Option<&ProxyUrl> {
        let proxy = match url.scheme() {
            "https" => self.https.as_ref(),
            "http" => self.http.as_ref(),
            _ => None,
        }?;
        let host = url.host_str().unwrap_or("");
        let bypass = self
            .no_proxy
            .as_deref()
            .is_some_and(|list| no_proxy_exempts(list, host));
        (!bypass).then_some(proxy)
    }

    /// curl's variables for a git child: the resolved values in lower case (which curl reads
    /// first) and the upper-case ones removed, so git goes exactly where the other clients go.
    pub fn curl_env(&self) -> Vec<(String, Option<OsString>)> {
        let value = |p: &Option<ProxyUrl>| p.as_ref().map(|p| OsString::from(p.url.as_str()));
        let mut env = vec![
            ("https_proxy".to_owned(), value(&self.https)),
            ("http_proxy".to_owned(), value(&self.http)),
            (
                "no_proxy".to_owned(),
                self.no_proxy.clone().map(OsString::from),
            ),
        ];
        for name in [
            "HTTPS_PROXY",
            "HTTP_PROXY",
            "NO_PROXY",
            "ALL_PROXY",
            "all_proxy",
        ] {
            env.push((name.to_owned(), None));
        }
        env
    }
}

/// Whether `host` is exempt under a `NO_PROXY` list, by curl's and reqwest's rules: `*`, an
/// exact host or IP, a domain (with or without a leading dot) and its subdomains, or a CIDR.
fn no_proxy_exempts(list: &str, host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let ip: Option<std::net::IpAddr> = host.parse().ok();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            let entry = entry.to_ascii_lowercase();
            if entry == "*" {
                return true;
            }
            if let (Some(ip), Some((net, bits))) = (ip, entry.split_once('/')) {
                return cidr_contains(net, bits, ip);
            }
            let domain = entry.trim_start_matches('.');
            host == domain || host.ends_with(&format!(".{domain}"))
        })
}

fn cidr_contains(net: &str, bits: &str, ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    let (a, b, width) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(u32::from(n)), u128::from(u32::from(i)), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        _ => return false,
    };
    if bits > width {
        return false;
    }
    let shift = width - bits;
    bits == 0 || (a >> shift) == (b >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::test_vars as vars;

    #[test]
    fn environment_is_read_upper_case_first_and_all_proxy_fills_in() {
        let env = vars(&[
            ("https_proxy", "http://lower:1"),
            ("HTTPS_PROXY", "http://upper:1"),
            ("ALL_PROXY", "proxy.corp:3128"),
            ("no_proxy", "localhost,.corp"),
        ]);
        let p = Proxies::resolve(&EgressSettings::default(), &env).unwrap();
        assert_eq!(p.https.as_ref().unwrap().url.as_str(), "http://upper:1/");
        assert_eq!(
            p.http.as_ref().unwrap().url.as_str(),
            "http://proxy.corp:3128/"
        );
        assert_eq!(p.http.as_ref().unwrap().from, "ALL_PROXY");
        assert_eq!(p.no_proxy.as_deref(), Some("localhost,.corp"));
    }

    #[test]
    fn config_overrides_environment_and_empty_disables() {
        let env = vars(&[
            ("HTTPS_PROXY", "http://env:1"),
            ("HTTP_PROXY", "http://env:2"),
        ]);
        let settings = EgressSettings {
            https_proxy: Some("http://cfg:3".into()),
            http_proxy: Some(String::new()),
            ..EgressSettings::default()
        };
        let p = Proxies::resolve(&settings, &env).unwrap();
        assert_eq!(p.https.as_ref().unwrap().from, "egress.https_proxy");
        assert!(!p.https.as_ref().unwrap().from_env());
        assert!(p.http.is_none());
        let off = EgressSettings {
            system_proxy: false,
            ..EgressSettings::default()
        };
        assert_eq!(Proxies::resolve(&off, &env).unwrap(), Proxies::default());
    }

    #[test]
    fn bad_proxies_are_reported_with_their_source() {
        let env = vars(&[
            ("HTTPS_PROXY", "socks5://x:1"),
            ("HTTP_PROXY", "http://[::"),
        ]);
        let errs = Proxies::resolve(&EgressSettings::default(), &env).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            text[0].starts_with("HTTPS_PROXY: unsupported proxy"),
            "{text:?}"
        );
        assert!(text[1].starts_with("HTTP_PROXY: "), "{text:?}");
    }

    #[test]
    fn no_proxy_matches_hosts_domains_and_cidrs() {
        let list = "localhost, .corp.example,example.org,10.0.0.0/8,::1";
        for (host, exempt) in [
            ("localhost", true),
            ("git.corp.example", true),
            ("corp.example", true),
            ("sub.example.org", true),
            ("notexample.org", false),
            ("10.1.2.3", true),
            ("11.1.2.3", false),
            ("[::1]", true),
            ("proxy.golang.org", false),
        ] {
            assert_eq!(no_proxy_exempts(list, host), exempt, "{host}");
        }
        assert!(no_proxy_exempts("*", "anything"));
    }

    #[test]
    fn curl_env_sets_lower_case_and_clears_upper_case() {
        let env = vars(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "127.0.0.1")]);
        let p = Proxies::resolve(&EgressSettings::default(), &env).unwrap();
        let curl = p.curl_env();
        let get = |k: &str| curl.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("https_proxy"), Some(Some("http://p:1/".into())));
        assert_eq!(get("http_proxy"), Some(None));
        assert_eq!(get("no_proxy"), Some(Some("127.0.0.1".into())));
        assert_eq!(get("HTTPS_PROXY"), Some(None));
    }
}
