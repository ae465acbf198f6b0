//! The little of `go.mod` syntax the direct source needs: the `module` path (x/mod's
//! `modfile.ModulePath`) and `retract` directives (for choosing pseudo-version bases and tags the
//! way the go command does), plus the synthesized `go.mod` of a module without one.

use crate::module::semver;

/// The module path declared by a go.mod file, or `""` when it has none (x/mod's
/// `modfile.ModulePath`: the first `module` line, comments stripped, quotes removed).
pub fn module_path(gomod: &[u8]) -> String {
    let text = String::from_utf8_lossy(gomod);
    for line in text.split('\n') {
        let line = line.split("//").next().unwrap_or("").trim();
        let Some(rest) = line.strip_prefix("module") else {
            continue;
        };
        let trimmed = rest.trim();
        if trimmed.len() == rest.len() || trimmed.is_empty() {
            continue;
        }
        return unquote(trimmed).unwrap_or_default();
    }
    String::new()
}

/// `"…"` or `` `…` `` unquoted (simple escapes only); other text as is; `None` when malformed.
fn unquote(s: &str) -> Option<String> {
    if let Some(inner) = s.strip_prefix('`') {
        return inner.strip_suffix('`').map(str::to_owned);
    }
    let Some(inner) = s.strip_prefix('"') else {
        return Some(s.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                _ => return None,
            },
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// A retracted interval `[low, high]` (equal for a single version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retraction {
    /// Lowest retracted version.
    pub low: String,
    /// Highest retracted version.
    pub high: String,
}

/// The `retract` directives of a go.mod file: single versions, `[low, high]` intervals and
/// `retract ( … )` blocks. Unparseable entries are skipped (the go command then ignores the
/// whole file's retractions; skipping is the lenient equivalent).
pub fn retractions(gomod: &[u8]) -> Vec<Retraction> {
    let text = String::from_utf8_lossy(gomod);
    let mut out = Vec::new();
    let mut in_block = false;
    for line in text.split('\n') {
        let line = line.split("//").next().unwrap_or("").trim();
        if in_block {
            if line.starts_with(')') {
                in_block = false;
            } else if let Some(r) = parse_retraction(line) {
                out.push(r);
            }
            continue;
        }
        let Some(rest) = line.strip_prefix("retract") else {
            continue;
        };
        let rest = rest.trim();
        if rest == "(" {
            in_block = true;
        } else if let Some(r) = parse_retraction(rest) {
            out.push(r);
        }
    }
    out
}

fn parse_retraction(s: &str) -> Option<Retraction> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let (low, high) = inner.split_once(',')?;
        let (low, high) = (unquote(low.trim())?, unquote(high.trim())?);
        return (semver::is_valid(&low) && semver::is_valid(&high))
            .then_some(Retraction { low, high });
    }
    let v = unquote(s)?;
    semver::is_valid(&v).then(|| Retraction {
        low: v.clone(),
        high: v,
    })
}

/// Whether `v` lies in any of `retractions`.
pub fn is_retracted(retractions: &[Retraction], v: &str) -> bool {
    retractions
        .iter()
        .any(|r| semver::compare(&r.low, v).is_le() && semver::compare(v, &r.high).is_le())
}

/// The go.mod the go command synthesizes for a module without one (`LegacyGoMod`).
pub fn legacy(module: &str) -> Vec<u8> {
    format!("module {module}\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_paths() {
        assert_eq!(
            module_path(b"// c\nmodule example.com/m/v2 // x\n"),
            "example.com/m/v2"
        );
        assert_eq!(module_path(b"module \"example.com/q\"\n"), "example.com/q");
        assert_eq!(module_path(b"module `example.com/b`"), "example.com/b");
        assert_eq!(module_path(b"modulex example.com/m\n"), "");
        assert_eq!(module_path(b"go 1.21\n"), "");
        assert_eq!(module_path(b"module \"bad\n"), "");
    }

    #[test]
    fn retract_forms() {
        let gomod = b"module m\n\nretract v1.0.1 // oops\nretract [v1.1.0, v1.1.9]\nretract (\n\tv1.3.0\n\t[\"v1.4.0\", v1.4.2] // r\n)\n";
        let r = retractions(gomod);
        assert_eq!(r.len(), 4, "{r:?}");
        assert!(is_retracted(&r, "v1.0.1"));
        assert!(is_retracted(&r, "v1.1.5"));
        assert!(is_retracted(&r, "v1.4.1"));
        assert!(!is_retracted(&r, "v1.2.0"));
        assert!(!is_retracted(&r, "v1.0.0"));
    }

    #[test]
    fn legacy_go_mod() {
        assert_eq!(legacy("git.corp/x"), b"module git.corp/x\n");
    }
}
