//! Pin patterns: `MODULE-GLOB[@VERSION-GLOB]`. The module glob has the semantics of one
//! `GOPRIVATE` entry ([`crate::routing::glob`]: Go's `path.Match` over as many leading path
//! elements as the glob has), so `corp.example.com/*` pins every module under it; the version
//! glob (`path.Match` over the whole version) narrows it to some versions.

use crate::routing::glob;

/// Why a pin pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// Empty, or a list (one pattern per pin).
    #[error("pin pattern {0:?} must be one module glob (no commas, not empty), optionally followed by @VERSION")]
    Shape(String),
    /// The module glob does not parse.
    #[error("pin pattern {pattern:?}: {reason}")]
    Glob {
        /// The pattern.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
}

/// Checks a pin pattern.
pub fn validate(pattern: &str) -> Result<(), PinError> {
    let shape = || PinError::Shape(pattern.to_string());
    if pattern.is_empty() || pattern.contains(',') || pattern.chars().any(char::is_whitespace) {
        return Err(shape());
    }
    let (module, version) = split(pattern);
    if module.is_empty() || version.is_some_and(str::is_empty) {
        return Err(shape());
    }
    glob::validate_patterns(module).map_err(|e| PinError::Glob {
        pattern: pattern.to_string(),
        reason: e.to_string(),
    })?;
    if let Some(v) = version {
        glob::path_match(v, "v0.0.0").map_err(|reason| PinError::Glob {
            pattern: pattern.to_string(),
            reason: reason.to_string(),
        })?;
    }
    Ok(())
}

fn split(pattern: &str) -> (&str, Option<&str>) {
    match pattern.rsplit_once('@') {
        Some((m, v)) => (m, Some(v)),
        None => (pattern, None),
    }
}

/// Whether `pattern` pins `module`@`version`.
pub fn matches(pattern: &str, module: &str, version: &str) -> bool {
    let (m, v) = split(pattern);
    glob::match_prefix_patterns(m, module)
        && v.is_none_or(|v| glob::path_match(v, version) == Ok(true))
}

/// Whether any of `patterns` pins `module`@`version`.
pub fn any_matches<'a>(
    patterns: impl IntoIterator<Item = &'a str>,
    module: &str,
    version: &str,
) -> bool {
    patterns.into_iter().any(|p| matches(p, module, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_globs_and_versions() {
        assert!(matches(
            "corp.example.com/*",
            "corp.example.com/a",
            "v1.0.0"
        ));
        assert!(matches(
            "corp.example.com/*",
            "corp.example.com/a/b",
            "v1.0.0"
        ));
        assert!(!matches("corp.example.com/*", "corp.example.com", "v1.0.0"));
        assert!(!matches("corp.example.com/*", "other.com/a", "v1.0.0"));
        assert!(matches("example.com/m@v1.2.3", "example.com/m", "v1.2.3"));
        assert!(!matches("example.com/m@v1.2.3", "example.com/m", "v1.2.4"));
        assert!(matches("example.com/m@v1.*", "example.com/m", "v1.2.4"));
        assert!(matches("*", "example.com/m", "v1.0.0"));
        assert!(any_matches(["x.org", "example.com"], "example.com/m", "v1"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["", "a,b", "a b", "@v1", "example.com/m@", "example.com/[x"] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        for good in [
            "corp.example.com/*",
            "example.com/m@v1.2.3",
            "*",
            "x/y@v1.*",
        ] {
            validate(good).unwrap();
        }
    }
}
