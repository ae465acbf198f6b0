//! Case-encoding of module paths and versions for URLs and cache file names (PROTOCOL.md §2.2).
//!
//! Every ASCII uppercase letter `X` becomes `!x`; nothing else changes. Decoding is strict, so
//! each path or version has exactly one escaped spelling.

use super::error::{ModuleError, PathKind};
use super::path::{check_elem, check_path};

/// Escapes a module path (`github.com/BurntSushi/toml` → `github.com/!burnt!sushi/toml`) after
/// checking it with [`check_path`].
pub fn escape_path(path: &str) -> Result<String, ModuleError> {
    check_path(path)?;
    Ok(escape_string(path))
}

/// Escapes a version (`v1.0.0-RC1` → `v1.0.0-!r!c1`). The version need not be semver (branch
/// names and hashes are fine) but must be a valid file-path element made of ASCII without `!`.
pub fn escape_version(version: &str) -> Result<String, ModuleError> {
    let disallowed = |problem| ModuleError::DisallowedVersion {
        version: version.to_string(),
        problem,
    };
    check_elem(version, PathKind::File).map_err(disallowed)?;
    if let Some(c) = version.chars().find(|&c| c == '!' || !c.is_ascii()) {
        return Err(disallowed(super::PathProblem::InvalidChar(c)));
    }
    Ok(escape_string(version))
}

/// Decodes an escaped module path and checks the result with [`check_path`].
pub fn unescape_path(escaped: &str) -> Result<String, ModuleError> {
    let path = unescape_string(escaped).ok_or_else(|| ModuleError::BadEscape {
        what: "module path",
        escaped: escaped.to_string(),
    })?;
    check_path(&path)?;
    Ok(path)
}

/// Decodes an escaped version and checks that it is a valid file-path element.
pub fn unescape_version(escaped: &str) -> Result<String, ModuleError> {
    let version = unescape_string(escaped).ok_or_else(|| ModuleError::BadEscape {
        what: "version",
        escaped: escaped.to_string(),
    })?;
    check_elem(&version, PathKind::File).map_err(|problem| ModuleError::DisallowedVersion {
        version: version.clone(),
        problem,
    })?;
    Ok(version)
}

/// Replaces each ASCII uppercase letter with `!` and its lowercase form.
fn escape_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Inverse of [`escape_string`]; `None` on non-ASCII, any uppercase letter, or a `!` not followed
/// by `a-z` (including a trailing `!`).
fn unescape_string(escaped: &str) -> Option<String> {
    let mut out = String::with_capacity(escaped.len());
    let mut bytes = escaped.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'!' => match bytes.next() {
                Some(next) if next.is_ascii_lowercase() => {
                    out.push(next.to_ascii_uppercase() as char)
                }
                _ => return None,
            },
            _ if !b.is_ascii() || b.is_ascii_uppercase() => return None,
            _ => out.push(b as char),
        }
    }
    Some(out)
}
