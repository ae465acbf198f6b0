//! Principals and per-path rules, compiled from the settings once; first match wins.

use super::identity::{Authn, Identity};
use super::settings::{AccessSettings, DEFAULT_PRINCIPALS};
use crate::routing::match_prefix_patterns;

/// What to answer a request with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Serve it.
    Allow,
    /// 401 with `WWW-Authenticate`: no credentials, or refused ones.
    Unauthenticated,
    /// 403: a valid identity that the matching rule does not allow.
    Forbidden,
}

/// One entry of an `allow` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principal {
    /// Anyone, even without credentials.
    Anonymous,
    /// Any valid identity.
    Authenticated,
    /// The identity with this name.
    User(String),
    /// Identities in this group.
    Group(String),
}

impl Principal {
    /// Parses `anonymous`, `authenticated`, `user:<name>` or `group:<name>` (name non-empty).
    pub(crate) fn parse(s: &str) -> Option<Principal> {
        match s {
            "anonymous" => Some(Principal::Anonymous),
            "authenticated" => Some(Principal::Authenticated),
            _ => match s.split_once(':') {
                Some(("user", n)) if !n.is_empty() => Some(Principal::User(n.to_string())),
                Some(("group", n)) if !n.is_empty() => Some(Principal::Group(n.to_string())),
                _ => None,
            },
        }
    }

    fn admits(&self, id: &Identity) -> bool {
        match self {
            Principal::Anonymous | Principal::Authenticated => true,
            Principal::User(n) => *n == id.name,
            Principal::Group(g) => id.groups.iter().any(|x| x == g),
        }
    }
}

struct Rule {
    pattern: String,
    allow: Vec<Principal>,
}

/// The compiled rules plus the default principals.
pub(crate) struct Policy {
    rules: Vec<Rule>,
    default: Vec<Principal>,
}

impl Policy {
    /// Compiles already validated settings; entries that do not parse are dropped.
    pub(crate) fn new(settings: &AccessSettings) -> Policy {
        let parse = |list: &[String]| list.iter().filter_map(|p| Principal::parse(p)).collect();
        let default = match &settings.default {
            Some(list) => parse(list),
            None => DEFAULT_PRINCIPALS
                .iter()
                .filter_map(|p| Principal::parse(p))
                .collect(),
        };
        let rules = settings
            .rules
            .iter()
            .map(|r| Rule {
                pattern: r.pattern.to_ascii_lowercase(),
                allow: parse(&r.allow),
            })
            .collect();
        Policy { rules, default }
    }

    /// The principals for `module_path`: the first matching rule's, else the default.
    ///
    /// Matching ignores ASCII case: git hosts resolve repository paths case-insensitively, so
    /// `corp.example.com/Payments` may well be served from the repository a rule for
    /// `corp.example.com/payments` protects. Folding can only make a rule match more paths.
    pub(crate) fn allowed_for(&self, module_path: &str) -> &[Principal] {
        let path = module_path.to_ascii_lowercase();
        self.rules
            .iter()
            .find(|r| match_prefix_patterns(&r.pattern, &path))
            .map_or(&self.default, |r| &r.allow)
    }

    /// The default principals.
    pub(crate) fn default_allowed(&self) -> &[Principal] {
        &self.default
    }
}

/// Decides `who` against an allow list.
pub(crate) fn decide(who: &Authn, allow: &[Principal]) -> Decision {
    match who {
        Authn::Failed(_) => Decision::Unauthenticated,
        _ if allow.contains(&Principal::Anonymous) => Decision::Allow,
        Authn::Anonymous => Decision::Unauthenticated,
        Authn::Authenticated(id) if allow.iter().any(|p| p.admits(id)) => Decision::Allow,
        Authn::Authenticated(_) => Decision::Forbidden,
    }
}
