//! The configured routing rules, compiled once at startup.
//!
//! Rules are tried in order and the first whose patterns match the module path wins; the node's
//! own `upstream` is the implicit last rule and the only one that consults the checksum
//! database unless a rule says `sumdb = true`. A path matched by a rule without `sumdb = true`
//! (or by a deny rule) is *private*: it is only ever sent to that rule's upstream.

use serde::{Deserialize, Serialize};

use super::glob::{match_prefix_patterns, validate_patterns};
use std::sync::Arc;

use crate::direct::Direct;
use crate::upstream::{Upstream, UpstreamSettings};

/// One `[[routes]]` table of the configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// A label shown by `cairn route` and in errors (default: `routes[<index>]`).
    #[serde(default)]
    pub name: Option<String>,
    /// Comma-separated GOPRIVATE-style globs (`corp.example.com/*,github.com/corp-*/*`).
    pub patterns: String,
    /// Where matching paths are fetched, in GOPROXY syntax. May be empty for a deny rule.
    #[serde(default)]
    pub upstream: String,
    /// Whether checksum-database lookups for matching paths are forwarded (default: false, so
    /// matching paths are private). Not allowed together with `deny`.
    #[serde(default)]
    pub sumdb: bool,
    /// Refuse matching paths with 403, without asking any upstream.
    #[serde(default)]
    pub deny: bool,
}

/// Why the rules could not be compiled; every problem is listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct RoutingError(pub Vec<String>);

/// Which rule a module path matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteMatch {
    /// Index of the rule; `rules.len()` for the implicit default rule.
    pub index: usize,
    /// The rule's name (`default` for the implicit rule).
    pub name: String,
    /// The rule's patterns (`*` for the implicit rule).
    pub patterns: String,
    /// The rule's upstream list with credentials redacted.
    pub upstream: String,
    /// Whether the path must never reach a public upstream or checksum database.
    pub private: bool,
    /// Whether checksum-database lookups for the path are forwarded.
    pub sumdb: bool,
    /// Whether the path is refused.
    pub denied: bool,
    /// Whether this is the implicit default rule.
    pub default: bool,
}

struct Compiled {
    rule: RouteRule,
    name: String,
    upstream: Upstream,
}

/// Picks the rule, and so the upstream, for each module path. Cheap to share behind an `Arc`.
pub struct Router {
    rules: Vec<Compiled>,
    default: Upstream,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("rules", &self.rules.len())
            .field("default", &self.default.describe())
            .finish()
    }
}

impl Router {
    /// Compiles `rules` in front of the default `upstream` list; reports every bad rule.
    pub fn new(
        rules: &[RouteRule],
        upstream: &str,
        settings: &UpstreamSettings,
        direct: Option<&Arc<Direct>>,
    ) -> Result<Router, RoutingError> {
        let mut errs = Vec::new();
        let default = Upstream::with_direct(upstream, settings, direct)
            .map_err(|e| errs.push(format!("upstream: {e}")))
            .ok();
        let compiled: Vec<Compiled> = rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                compile(i, r, settings, direct)
                    .map_err(|e| errs.extend(e))
                    .ok()
            })
            .collect();
        match default {
            Some(default) if errs.is_empty() => Ok(Router {
                rules: compiled,
                default,
            }),
            _ => Err(RoutingError(errs)),
        }
    }

    /// A router with no rules: everything goes to `upstream`.
    pub fn single(upstream: Upstream) -> Router {
        Router {
            rules: Vec::new(),
            default: upstream,
        }
    }

    /// The rule `module` (an unescaped module path) matches, first match wins.
    pub fn route(&self, module: &str) -> RouteMatch {
        match self.find(module) {
            Some((index, c)) => RouteMatch {
                index,
                name: c.name.clone(),
                patterns: c.rule.patterns.clone(),
                upstream: c.upstream.describe(),
                private: c.rule.deny || !c.rule.sumdb,
                sumdb: c.rule.sumdb && !c.rule.deny,
                denied: c.rule.deny,
                default: false,
            },
            None => RouteMatch {
                index: self.rules.len(),
                name: "default".to_string(),
                patterns: "*".to_string(),
                upstream: self.default.describe(),
                private: false,
                sumdb: true,
                denied: false,
                default: true,
            },
        }
    }

    /// The upstream for `module`, or `None` when its rule denies it.
    pub fn upstream_for(&self, module: &str) -> Option<&Upstream> {
        match self.find(module) {
            Some((_, c)) if c.rule.deny => None,
            Some((_, c)) => Some(&c.upstream),
            None => Some(&self.default),
        }
    }

    /// Whether checksum-database lookups for `module` may be forwarded.
    pub fn sumdb_allowed(&self, module: &str) -> bool {
        self.find(module)
            .is_none_or(|(_, c)| c.rule.sumdb && !c.rule.deny)
    }

    /// The implicit default rule's upstream (the node's `upstream`).
    pub fn default_upstream(&self) -> &Upstream {
        &self.default
    }

    /// How many configured rules there are (the implicit one not counted).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether no rule is configured.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn find(&self, module: &str) -> Option<(usize, &Compiled)> {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, c)| match_prefix_patterns(&c.rule.patterns, module))
    }
}

/// Checks one rule and builds its upstream (`off` for a deny rule without one).
fn compile(
    index: usize,
    r: &RouteRule,
    settings: &UpstreamSettings,
    direct: Option<&Arc<Direct>>,
) -> Result<Compiled, Vec<String>> {
    let name = r
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("routes[{index}]"));
    let mut errs = Vec::new();
    if let Err(e) = validate_patterns(&r.patterns) {
        errs.push(format!("{name}: patterns: {e}"));
    }
    if r.deny && r.sumdb {
        errs.push(format!("{name}: a deny rule cannot set sumdb = true"));
    }
    let list = match r.upstream.trim() {
        "" if r.deny => "off",
        "" => {
            errs.push(format!(
                "{name}: upstream must not be empty (use deny = true to refuse paths)"
            ));
            "off"
        }
        list => list,
    };
    let upstream = Upstream::with_direct(list, settings, direct)
        .map_err(|e| errs.push(format!("{name}: upstream: {e}")))
        .ok();
    match upstream {
        Some(upstream) if errs.is_empty() => Ok(Compiled {
            rule: r.clone(),
            name,
            upstream,
        }),
        _ => Err(errs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(patterns: &str, upstream: &str) -> RouteRule {
        RouteRule {
            patterns: patterns.into(),
            upstream: upstream.into(),
            ..RouteRule::default()
        }
    }

    fn router(rules: &[RouteRule]) -> Router {
        Router::new(
            rules,
            "https://proxy.example",
            &UpstreamSettings::default(),
            None,
        )
        .unwrap()
    }

    #[test]
    fn first_match_wins_and_default_is_last() {
        let r = router(&[
            RouteRule {
                deny: true,
                ..rule("corp.example.com/secret", "")
            },
            rule(
                "corp.example.com/*,github.com/corp-*/*",
                "http://private.example",
            ),
            RouteRule {
                sumdb: true,
                name: Some("mirror".into()),
                ..rule("golang.org/x", "https://other.example")
            },
        ]);
        let m = r.route("corp.example.com/secret/x");
        assert!(m.denied && m.private && !m.sumdb && m.index == 0);
        assert!(r.upstream_for("corp.example.com/secret/x").is_none());
        let m = r.route("corp.example.com/app");
        assert!(!m.denied && m.private && m.index == 1 && m.name == "routes[1]");
        assert_eq!(m.upstream, "http://private.example");
        assert!(r.route("github.com/corp-x/y/v2").private);
        let m = r.route("golang.org/x/mod");
        assert!(!m.private && m.sumdb && m.name == "mirror");
        let m = r.route("rsc.io/quote");
        assert!(m.default && !m.private && m.sumdb && m.index == 3);
        assert!(!r.sumdb_allowed("corp.example.com/app"));
        assert!(!r.sumdb_allowed("corp.example.com/secret"));
        assert!(r.sumdb_allowed("golang.org/x/mod"));
        assert!(r.sumdb_allowed("rsc.io/quote"));
    }

    #[test]
    fn credentials_are_redacted_in_matches() {
        let r = router(&[rule(
            "corp.example.com",
            "https://user:s3cret@private.example",
        )]);
        let m = r.route("corp.example.com/x");
        assert!(!m.upstream.contains("s3cret"), "{}", m.upstream);
    }

    #[test]
    fn every_bad_rule_is_reported() {
        let rules = [
            rule("", "http://a.example"),
            rule("a[", "http://a.example"),
            rule("corp.example.com", ""),
            RouteRule {
                deny: true,
                sumdb: true,
                ..rule("x.example", "")
            },
            rule("y.example", "ftp://nope"),
        ];
        let err = Router::new(
            &rules,
            "https://proxy.example",
            &UpstreamSettings::default(),
            None,
        )
        .unwrap_err();
        assert_eq!(err.0.len(), 5, "{err}");
        for i in 0..5 {
            assert!(err.to_string().contains(&format!("routes[{i}]")), "{err}");
        }
    }
}
