//! The upstream chain: parsing a GOPROXY-syntax list (`https://a,https://b|file:///c,direct`) into
//! [`Entry`]s, and [`Walk`], the go command's rule for moving along the chain and for choosing which
//! error to report when no entry had the file.
//!
//! Parsing follows `cmd/go/internal/modfetch/proxy.go` (`proxyList`): items are split on `,` and
//! `|`, trimmed, empty items skipped; the separator *after* an entry decides whether any error (`|`)
//! or only "not found" (`,`) moves on to the next entry; `off` and `direct` end the list (later
//! items are ignored, as the go command reserves them for future use).

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::Url;

use super::error::{ConfigProblem, UpstreamError};
use super::file::FileSource;
use super::proxy::HttpSource;
use super::settings::UpstreamSettings;
use crate::direct::Direct;

/// Where an entry fetches from.
pub(crate) enum Source {
    /// An `http(s)://` GOPROXY server.
    Http(Box<HttpSource>),
    /// A `file://` tree laid out like a GOPROXY.
    File(FileSource),
    /// `direct`: version control, when the node has a direct source (config checks build
    /// chains without one).
    Direct(Option<Arc<Direct>>),
    /// `off`: fail every lookup.
    Off,
}

/// One entry of the chain.
pub(crate) struct Entry {
    /// Where to fetch from.
    pub(crate) source: Source,
    /// The separator after this entry was `|`: move on after any error, not only "not found".
    pub(crate) fallback_on_error: bool,
}

impl Entry {
    /// The entry as shown in logs (passwords redacted).
    pub(crate) fn display(&self) -> &str {
        match &self.source {
            Source::Http(s) => s.display(),
            Source::File(s) => s.display(),
            Source::Direct(_) => "direct",
            Source::Off => "off",
        }
    }
}

/// A parsed, validated list of entries (never empty).
pub(crate) struct Chain {
    entries: Vec<Entry>,
}

/// An item of the list, parsed but not yet bound to settings.
#[derive(Debug, PartialEq)]
enum Parsed {
    Http(Url),
    File(PathBuf, String),
    Direct,
    Off,
}

impl Chain {
    /// Parses `list`, reporting every problem at once.
    pub(crate) fn parse(
        list: &str,
        settings: &UpstreamSettings,
        direct: Option<&Arc<Direct>>,
    ) -> Result<Chain, Vec<ConfigProblem>> {
        let (items, problems) = parse_items(list);
        if !problems.is_empty() {
            return Err(problems);
        }
        let entries = items
            .into_iter()
            .map(|(parsed, fallback_on_error)| Entry {
                source: bind(parsed, settings, direct),
                fallback_on_error,
            })
            .collect();
        Ok(Chain { entries })
    }

    /// The entries in order.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The chain in GOPROXY syntax, e.g. `https://proxy.golang.org,direct`.
    pub(crate) fn describe(&self) -> String {
        let mut out = String::new();
        for (i, entry) in self.entries.iter().enumerate() {
            out.push_str(entry.display());
            if i + 1 < self.entries.len() {
                out.push(if entry.fallback_on_error { '|' } else { ',' });
            }
        }
        out
    }
}

fn bind(parsed: Parsed, settings: &UpstreamSettings, direct: Option<&Arc<Direct>>) -> Source {
    match parsed {
        Parsed::Http(url) => Source::Http(Box::new(HttpSource::new(url, settings))),
        Parsed::File(dir, display) => Source::File(FileSource::new(dir, display)),
        Parsed::Direct => Source::Direct(direct.cloned()),
        Parsed::Off => Source::Off,
    }
}

/// Splits and parses the list like the go command; returns the items with their fallback flag and
/// every problem found.
fn parse_items(list: &str) -> (Vec<(Parsed, bool)>, Vec<ConfigProblem>) {
    let mut items = Vec::new();
    let mut problems = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        let (item, fallback_on_error, tail) = match rest.find([',', '|']) {
            Some(i) => (&rest[..i], rest.as_bytes()[i] == b'|', &rest[i + 1..]),
            None => (rest, false, ""),
        };
        rest = tail;
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        match parse_entry(item) {
            Ok(parsed) => {
                let last = matches!(parsed, Parsed::Direct | Parsed::Off);
                items.push((parsed, fallback_on_error));
                if last {
                    warn_ignored(rest);
                    break;
                }
            }
            Err(problem) => problems.push(problem),
        }
    }
    if items.is_empty() && problems.is_empty() {
        problems.push(ConfigProblem::EmptyList);
    }
    (items, problems)
}

fn warn_ignored(rest: &str) {
    if rest.split([',', '|']).any(|item| !item.trim().is_empty()) {
        tracing::warn!(
            ignored = rest,
            "upstream list entries after `direct` or `off` are ignored, as the go command does"
        );
    }
}

/// Parses one trimmed, non-empty item.
fn parse_entry(item: &str) -> Result<Parsed, ConfigProblem> {
    match item {
        "off" => return Ok(Parsed::Off),
        "direct" => return Ok(Parsed::Direct),
        "noproxy" => {
            return Err(ConfigProblem::Reserved {
                entry: item.to_owned(),
            })
        }
        _ => {}
    }
    // Like the go command: single words are reserved, anything with ":/" or an absolute path must
    // be a full URL, and everything else that looks like a host gets https://.
    let needs_scheme =
        item.contains(['.', ':', '/']) && !item.contains(":/") && !item.starts_with('/');
    let text = if needs_scheme {
        format!("https://{item}")
    } else {
        item.to_owned()
    };
    if !text.contains(':') {
        return Err(ConfigProblem::MissingScheme {
            entry: item.to_owned(),
        });
    }
    let url = Url::parse(&text).map_err(|e| ConfigProblem::InvalidUrl {
        entry: item.to_owned(),
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "http" | "https" => parse_http(item, url),
        "file" => parse_file(item, &url),
        scheme => Err(ConfigProblem::UnsupportedScheme {
            entry: item.to_owned(),
            scheme: scheme.to_owned(),
        }),
    }
}

fn parse_http(item: &str, url: Url) -> Result<Parsed, ConfigProblem> {
    let reason = if url.host_str().is_none_or(str::is_empty) {
        Some("missing host")
    } else if url.fragment().is_some() {
        Some("a proxy url cannot have a #fragment")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ConfigProblem::InvalidUrl {
            entry: item.to_owned(),
            reason: reason.to_owned(),
        }),
        None => Ok(Parsed::Http(url)),
    }
}

fn parse_file(item: &str, url: &Url) -> Result<Parsed, ConfigProblem> {
    let path_only = url.host_str().is_none_or(str::is_empty)
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    let not_path_only = || ConfigProblem::FileNotPathOnly {
        entry: item.to_owned(),
    };
    if !path_only {
        return Err(not_path_only());
    }
    let dir = url.to_file_path().map_err(|()| not_path_only())?;
    let display = url.as_str().trim_end_matches('/').to_owned();
    Ok(Parsed::File(dir, display))
}

// === impl Walk ===

/// The go command's walk over the chain (`tryProxies`): decides after each failed entry whether to
/// go on, and keeps the most useful error. `direct` errors beat real failures, which beat
/// not-found answers (`off` counts as not-found); within a rank the later error wins.
#[derive(Default)]
pub(crate) struct Walk {
    best: Option<(u8, UpstreamError)>,
}

impl Walk {
    /// Records the error of an entry; returns whether to consult the next entry.
    pub(crate) fn record(&mut self, err: UpstreamError, fallback_on_error: bool) -> bool {
        let not_found = matches!(err, UpstreamError::NotFound { .. } | UpstreamError::Off);
        let rank = match err {
            UpstreamError::DirectUnsupported => 2,
            _ if not_found => 0,
            _ => 1,
        };
        if self.best.as_ref().is_none_or(|(best, _)| rank >= *best) {
            self.best = Some((rank, err));
        }
        not_found || fallback_on_error
    }

    /// The error to report once the walk ended without success.
    pub(crate) fn finish(self) -> UpstreamError {
        match self.best {
            Some((_, err)) => err,
            None => UpstreamError::NotFound {
                message: "not found".to_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &str) -> Result<Chain, Vec<ConfigProblem>> {
        Chain::parse(list, &UpstreamSettings::default(), None)
    }

    fn flags(chain: &Chain) -> Vec<bool> {
        chain
            .entries()
            .iter()
            .map(|e| e.fallback_on_error)
            .collect()
    }

    #[test]
    fn default_goproxy_parses() {
        let chain = parse("https://proxy.golang.org,direct").unwrap();
        assert_eq!(chain.describe(), "https://proxy.golang.org,direct");
        assert!(matches!(chain.entries()[1].source, Source::Direct(None)));
    }

    #[test]
    fn separators_set_fallback_of_the_entry_before_them() {
        let chain =
            parse(" https://a.example | http://b.example:8080/go/ ,, https://c.example|").unwrap();
        assert_eq!(flags(&chain), [true, false, true]);
        assert_eq!(
            chain.describe(),
            "https://a.example|http://b.example:8080/go,https://c.example"
        );
    }

    #[test]
    fn scheme_less_hosts_get_https() {
        let chain = parse("proxy.example.com,localhost:3000,corp/go").unwrap();
        assert_eq!(
            chain.describe(),
            "https://proxy.example.com,https://localhost:3000,https://corp/go"
        );
    }

    #[test]
    fn off_and_direct_end_the_list() {
        let chain = parse("off,https://ignored.example").unwrap();
        assert_eq!(chain.describe(), "off");
        let chain = parse("file:///srv/goproxy|direct|not a url at all").unwrap();
        assert_eq!(chain.describe(), "file:///srv/goproxy|direct");
        assert!(matches!(chain.entries()[0].source, Source::File(_)));
    }

    #[test]
    fn passwords_are_redacted_in_descriptions() {
        let chain = parse("https://user:secret@corp.example/go").unwrap();
        assert_eq!(chain.describe(), "https://user:xxxxx@corp.example/go");
    }

    #[test]
    fn empty_lists_are_refused() {
        for list in ["", ",", " | , "] {
            assert_eq!(
                parse(list).err(),
                Some(vec![ConfigProblem::EmptyList]),
                "{list:?}"
            );
        }
    }

    #[test]
    fn every_bad_entry_is_reported() {
        let problems =
            parse("foo,/srv/goproxy,ftp://x.example,file://host/dir,noproxy,https://a.example#x")
                .err()
                .unwrap();
        assert_eq!(problems.len(), 6, "{problems:?}");
        assert!(matches!(&problems[0], ConfigProblem::MissingScheme { entry } if entry == "foo"));
        assert!(matches!(&problems[1], ConfigProblem::MissingScheme { .. }));
        assert!(
            matches!(&problems[2], ConfigProblem::UnsupportedScheme { scheme, .. } if scheme == "ftp")
        );
        assert!(matches!(
            &problems[3],
            ConfigProblem::FileNotPathOnly { .. }
        ));
        assert!(matches!(&problems[4], ConfigProblem::Reserved { .. }));
        assert!(matches!(&problems[5], ConfigProblem::InvalidUrl { .. }));
    }

    fn not_found(m: &str) -> UpstreamError {
        UpstreamError::NotFound {
            message: m.to_owned(),
        }
    }

    fn failed(s: &str) -> UpstreamError {
        UpstreamError::Failed {
            source: s.to_owned(),
            reason: "boom".to_owned(),
        }
    }

    #[test]
    fn walk_moves_on_after_not_found_regardless_of_separator() {
        let mut walk = Walk::default();
        assert!(walk.record(not_found("first"), false));
        assert!(walk.record(not_found("second"), false));
        assert!(
            matches!(walk.finish(), UpstreamError::NotFound { message } if message == "second")
        );
    }

    #[test]
    fn walk_stops_on_failure_unless_pipe() {
        let mut walk = Walk::default();
        assert!(!walk.record(failed("a"), false));
        let mut walk = Walk::default();
        assert!(walk.record(failed("a"), true));
        assert!(walk.record(not_found("b"), false));
        // A real failure beats a later not-found.
        assert!(matches!(walk.finish(), UpstreamError::Failed { source, .. } if source == "a"));
    }

    #[test]
    fn walk_prefers_direct_then_failures_then_not_found() {
        let mut walk = Walk::default();
        walk.record(not_found("a"), false);
        walk.record(UpstreamError::Off, false);
        assert!(matches!(walk.finish(), UpstreamError::Off));
        let mut walk = Walk::default();
        walk.record(failed("a"), true);
        walk.record(UpstreamError::DirectUnsupported, false);
        assert!(matches!(walk.finish(), UpstreamError::DirectUnsupported));
    }
}
