//! `cairn-node --check-upstream`: tries every configured upstream, checksum database and direct
//! host once, through the same trust store and proxies the node uses, and prints a table of what
//! works and the fix for what does not.

use std::fmt::Write as _;
use std::time::Duration;

use reqwest::Url;

use super::{error_chain, tls_hint, Egress};
use crate::config::Config;

/// One thing to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What it is: `upstream`, `routes[corp]`, `sumdb sum.golang.org`, `direct host corp.com`.
    pub what: String,
    /// The URL (password redacted when shown) or path.
    pub url: String,
}

/// The outcome of one try.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What was tried.
    pub target: Target,
    /// `direct` or the proxy used.
    pub via: String,
    /// Whether it works.
    pub ok: bool,
    /// What happened (`HTTP 200`, the error).
    pub result: String,
    /// What to do about a failure (empty when it works).
    pub fix: String,
}

/// Every network target of `config`: the proxies of the default upstream and of each route
/// (`file://` trees too), each checksum database's `latest`, and each `[[direct.hosts]]` base.
pub fn targets(config: &Config) -> Vec<Target> {
    let mut out = Vec::new();
    let mut add_list = |what: String, list: &str| {
        for entry in list
            .split([',', '|'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            if matches!(entry, "off" | "direct") {
                continue;
            }
            let url = if entry.contains("://") {
                entry.to_owned()
            } else {
                format!("https://{entry}")
            };
            out.push(Target {
                what: what.clone(),
                url,
            });
        }
    };
    add_list("upstream".into(), &config.upstream);
    for (i, rule) in config.routes.iter().enumerate() {
        let name = rule.name.clone().unwrap_or_else(|| i.to_string());
        add_list(format!("routes[{name}]"), &rule.upstream);
    }
    let first_proxy = config
        .upstream
        .split([',', '|'])
        .map(str::trim)
        .find(|e| e.starts_with("https://") || e.starts_with("http://"));
    for db in &config.sumdb.databases {
        // Like the node: an unset url means through the first upstream proxy, else directly.
        let base = match (&db.url, first_proxy) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, Some(proxy)) => format!("{}/sumdb/{}", proxy.trim_end_matches('/'), db.name),
            (None, None) => format!("https://{}", db.name),
        };
        out.push(Target {
            what: format!("sumdb {}", db.name),
            url: format!("{base}/latest"),
        });
    }
    for host in &config.direct.hosts {
        out.push(Target {
            what: format!("direct {}", host.prefix),
            url: host.url.clone(),
        });
    }
    out
}

/// Tries `target` once with `client` (built from `egress`).
pub async fn probe(egress: &Egress, client: &reqwest::Client, target: &Target) -> Outcome {
    let parsed = Url::parse(&target.url).ok();
    let shown = parsed
        .as_ref()
        .map(crate::upstream::redacted)
        .unwrap_or_else(|| target.url.clone());
    let target = Target {
        what: target.what.clone(),
        url: shown,
    };
    let Some(url) = parsed else {
        return outcome(
            target,
            "-",
            false,
            "not a URL".into(),
            "fix the configured URL".into(),
        );
    };
    let via = egress
        .proxies()
        .for_url(&url)
        .map(|p| p.redacted())
        .unwrap_or_else(|| "direct".into());
    match url.scheme() {
        "file" => probe_file(target, &url),
        "http" | "https" => probe_http(client, target, url, via).await,
        _ => probe_tcp(target, &url).await,
    }
}

fn outcome(target: Target, via: &str, ok: bool, result: String, fix: String) -> Outcome {
    Outcome {
        target,
        via: via.to_owned(),
        ok,
        result,
        fix,
    }
}

fn probe_file(target: Target, url: &Url) -> Outcome {
    match url.to_file_path().map(|p| std::fs::read_dir(&p).map(|_| p)) {
        Ok(Ok(_)) => outcome(
            target,
            "-",
            true,
            "directory readable".into(),
            String::new(),
        ),
        Ok(Err(e)) => outcome(
            target,
            "-",
            false,
            e.to_string(),
            "create the directory or fix its permissions".into(),
        ),
        Err(()) => outcome(
            target,
            "-",
            false,
            "not an absolute path".into(),
            "use file:///absolute/dir".into(),
        ),
    }
}

async fn probe_http(client: &reqwest::Client, target: Target, url: Url, via: String) -> Outcome {
    let host = url.host_str().unwrap_or("").to_owned();
    match client.get(url).send().await {
        Ok(resp) => {
            let status = resp.status();
            let ok = status.as_u16() < 500 && !matches!(status.as_u16(), 401 | 403 | 407);
            let fix = match status.as_u16() {
                401 | 403 => "check the credentials in the URL or [[direct.credentials]]",
                407 => "the proxy wants credentials: put them in the proxy URL (http://user:pass@proxy:3128)",
                s if s >= 500 => "the server is failing; try again later or ask its operator",
                _ => "",
            };
            outcome(
                target,
                &via,
                ok,
                format!("HTTP {}", status.as_u16()),
                fix.to_owned(),
            )
        }
        Err(e) => {
            let chain = error_chain(&e);
            let (result, fix) = match tls_hint(&host, &chain) {
                Some(hint) => (chain, hint),
                None if via != "direct" => (chain, format!("check the proxy {via} (egress.https_proxy / HTTPS_PROXY) and NO_PROXY")),
                None => (chain, "check DNS, the firewall, or whether a proxy is required (egress.https_proxy / HTTPS_PROXY)".into()),
            };
            outcome(target, &via, false, result, fix)
        }
    }
}

async fn probe_tcp(target: Target, url: &Url) -> Outcome {
    let host = url.host_str().unwrap_or("");
    let port = url.port_or_known_default().unwrap_or(22);
    let connect = tokio::net::TcpStream::connect((host, port));
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(_)) => outcome(
            target,
            "direct",
            true,
            format!("TCP {host}:{port} open"),
            String::new(),
        ),
        Ok(Err(e)) => outcome(
            target,
            "direct",
            false,
            e.to_string(),
            "check DNS and the firewall (git over ssh does not use HTTP proxies)".into(),
        ),
        Err(_) => outcome(
            target,
            "direct",
            false,
            "timed out".into(),
            "check DNS and the firewall".into(),
        ),
    }
}

/// Tries every target of `config` (concurrently) and returns the outcomes in target order.
pub async fn run(config: &Config, timeout: Duration) -> Vec<Outcome> {
    let egress = &config.egress;
    let client = match egress
        .client_builder(config.upstream_http.system_proxy)
        .timeout(timeout)
        .user_agent(config.upstream_http.user_agent.clone())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            let target = Target {
                what: "http client".into(),
                url: "-".into(),
            };
            return vec![outcome(
                target,
                "-",
                false,
                error_chain(&e),
                "report this as a bug".into(),
            )];
        }
    };
    let probes = targets(config).into_iter().map(|t| {
        let client = client.clone();
        async move { probe(egress, &client, &t).await }
    });
    futures_util::future::join_all(probes).await
}

/// The outcomes as an aligned text table, with the roots and proxies in a header.
pub fn render(egress: &Egress, outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "trust: {}", egress.describe_roots());
    let p = egress.proxies();
    let show = |x: &Option<super::ProxyUrl>| {
        x.as_ref()
            .map(|p| format!("{} (from {})", p.redacted(), p.from))
            .unwrap_or_else(|| "none".into())
    };
    let _ = writeln!(
        out,
        "proxies: https {}; http {}; no_proxy {}\n",
        show(&p.https),
        show(&p.http),
        p.no_proxy.as_deref().unwrap_or("none")
    );
    let rows: Vec<[String; 5]> = outcomes
        .iter()
        .map(|o| {
            let status = if o.ok { "ok" } else { "FAIL" };
            [
                status.into(),
                o.target.what.clone(),
                o.target.url.clone(),
                o.via.clone(),
                o.result.clone(),
            ]
        })
        .collect();
    let header = ["", "WHAT", "URL", "VIA", "RESULT"].map(String::from);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for (row, o) in
        std::iter::once((&header, None)).chain(rows.iter().zip(outcomes.iter().map(Some)))
    {
        for (cell, w) in row.iter().zip(widths) {
            let _ = write!(out, "{cell:<w$}  ");
        }
        let _ = writeln!(out, "{}", row[4]);
        if let Some(o) = o.filter(|o| !o.fix.is_empty()) {
            let _ = writeln!(out, "      fix: {}", o.fix);
        }
    }
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    let _ = writeln!(out, "\n{} checked, {} failed", outcomes.len(), failed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_cover_lists_routes_sumdbs_and_direct_hosts() {
        let raw: crate::config::RawConfig = toml::from_str(
            r#"
upstream = "https://proxy.golang.org,file:///srv/mods|direct"
[[routes]]
name = "corp"
patterns = "corp.example.com"
upstream = "https://athens.corp:3000,off"
[[direct.hosts]]
prefix = "git.corp"
url = "https://git.corp/"
"#,
        )
        .unwrap();
        let config = raw.validate().unwrap();
        let got: Vec<(String, String)> = targets(&config)
            .into_iter()
            .map(|t| (t.what, t.url))
            .collect();
        let want = [
            ("upstream", "https://proxy.golang.org"),
            ("upstream", "file:///srv/mods"),
            ("routes[corp]", "https://athens.corp:3000"),
            (
                "sumdb sum.golang.org",
                "https://proxy.golang.org/sumdb/sum.golang.org/latest",
            ),
            ("direct git.corp", "https://git.corp/"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
    }
}
