//! The policy gate in front of the mirror: refuses denied and purged versions, and takes them
//! out of `@v/list` and `@latest` answers.

use bytes::Bytes;
use http::StatusCode;

use crate::raft::{MetaError, MetaReader};
use crate::routing::glob::match_prefix_patterns;
use crate::store::meta::DenyRule;

/// Why a request is refused, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status to answer.
    pub status: StatusCode,
    /// A plain-text body naming the rule and its reason.
    pub body: String,
    /// `true` for a deny rule, `false` for a purge tombstone (for metrics).
    pub denied: bool,
}

/// Whether `rule` covers `module` (and `version`, when given; `None` asks about the module as
/// a whole: only module-wide rules cover it).
pub fn rule_matches(rule: &DenyRule, module: &str, version: Option<&str>) -> bool {
    let version_ok = match (&rule.version, version) {
        (None, _) => true,
        (Some(r), Some(v)) => r == v,
        (Some(_), None) => false,
    };
    version_ok && match_prefix_patterns(&rule.pattern, module)
}

/// The rules among `rules` that concern `module` at all (any version), for `cairn route`.
pub fn rules_for_module<'a>(rules: &'a [DenyRule], module: &str) -> Vec<&'a DenyRule> {
    rules
        .iter()
        .filter(|r| match_prefix_patterns(&r.pattern, module))
        .collect()
}

/// The rule as the operator writes it: `pattern` or `pattern@version`.
pub fn rule_label(rule: &DenyRule) -> String {
    match &rule.version {
        Some(v) => format!("{}@{v}", rule.pattern),
        None => rule.pattern.clone(),
    }
}

/// The refusal for `module@version`, or `None` when it may be served.
pub fn refuse_version(
    reader: &MetaReader,
    deny_status: StatusCode,
    module: &str,
    version: &str,
) -> Result<Option<Refusal>, MetaError> {
    if let Some(t) = reader.tombstone(module, version)? {
        return Ok(Some(Refusal {
            status: StatusCode::GONE,
            body: format!(
                "{module}@{version} was purged from this mirror by {}: {}\n",
                t.by, t.reason
            ),
            denied: false,
        }));
    }
    let rules = reader.deny_rules()?;
    Ok(denied(&rules, deny_status, module, Some(version)))
}

/// The refusal for the module as a whole (`@v/list`, `@latest`): only module-wide rules.
pub fn refuse_module(
    reader: &MetaReader,
    deny_status: StatusCode,
    module: &str,
) -> Result<Option<Refusal>, MetaError> {
    let rules = reader.deny_rules()?;
    Ok(denied(&rules, deny_status, module, None))
}

fn denied(
    rules: &[DenyRule],
    status: StatusCode,
    module: &str,
    version: Option<&str>,
) -> Option<Refusal> {
    let rule = rules.iter().find(|r| rule_matches(r, module, version))?;
    let what = match version {
        Some(v) => format!("{module}@{v}"),
        None => module.to_string(),
    };
    Some(Refusal {
        status,
        body: format!(
            "{what} is denied by rule {} ({} by {})\n",
            rule_label(rule),
            rule.reason,
            rule.by
        ),
        denied: true,
    })
}

/// Whether `module@version` is denied or purged (for filtering lists).
fn hidden(
    reader: &MetaReader,
    rules: &[DenyRule],
    module: &str,
    version: &str,
) -> Result<bool, MetaError> {
    if rules.iter().any(|r| rule_matches(r, module, Some(version))) {
        return Ok(true);
    }
    Ok(reader.tombstone(module, version)?.is_some())
}

/// An `@v/list` body without the denied and purged versions of `module`.
pub fn filter_list(reader: &MetaReader, module: &str, body: Bytes) -> Result<Bytes, MetaError> {
    let rules = reader.deny_rules()?;
    let any_tombstone = !reader.tombstones()?.is_empty();
    let relevant = rules_for_module(&rules, module);
    if relevant.is_empty() && !any_tombstone {
        return Ok(body);
    }
    let text = String::from_utf8_lossy(&body);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let v = line.trim();
        if v.is_empty() || hidden(reader, &rules, module, v)? {
            continue;
        }
        out.push_str(v);
        out.push('\n');
    }
    Ok(Bytes::from(out))
}

/// The `Version` of an `.info`/`@latest` JSON body.
pub fn info_version(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Info {
        #[serde(rename = "Version")]
        version: String,
    }
    serde_json::from_slice::<Info>(body).ok().map(|i| i.version)
}

/// An `@latest` answer that does not offer a denied or purged version: `body` itself when its
/// version may be served, else the highest version this node knows of (held records and the
/// cached list) that may — releases before pre-releases, as the go command prefers — or
/// `None` when there is none.
pub fn replace_latest(
    reader: &MetaReader,
    module: &str,
    body: Bytes,
) -> Result<Option<Bytes>, MetaError> {
    let rules = reader.deny_rules()?;
    let Some(latest) = info_version(&body) else {
        return Ok(Some(body));
    };
    if !hidden(reader, &rules, module, &latest)? {
        return Ok(Some(body));
    }
    let mut known = reader.module_versions(module)?;
    if let Some(list) = reader.get_list(module)? {
        known.extend(list.versions);
    }
    known.retain(|v| crate::module::is_canonical(v));
    known.sort();
    known.dedup();
    let mut candidates = Vec::new();
    for v in known {
        if !hidden(reader, &rules, module, &v)? {
            candidates.push(v);
        }
    }
    crate::module::sort_versions(&mut candidates);
    let release = candidates.iter().rev().find(|v| !v.contains('-'));
    let Some(best) = release.or(candidates.last()) else {
        return Ok(None);
    };
    match reader.get_version(module, best)? {
        Some(rec) => Ok(Some(Bytes::from(rec.info))),
        None => Ok(Some(Bytes::from(format!("{{\"Version\":\"{best}\"}}")))),
    }
}
