//! Turning "which file of which module" into the relative request path of the GOPROXY protocol:
//! case-encoding (`!x` for uppercase `X`) for both URLs and file trees, and the go command's
//! percent-encoding (`url.PathEscape` with `/` kept) for URLs.

use super::error::UpstreamError;

/// Which file of a module to fetch. Module paths and versions are unescaped (`github.com/Azure/x`,
/// `v1.2.3`); this layer case-encodes and percent-encodes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamFile<'a> {
    /// `@v/list`: the known versions.
    List,
    /// `@latest`: the version to use when the list has nothing suitable.
    Latest,
    /// `@v/<version>.info`: metadata of a version, or the resolver for a non-canonical query.
    Info(&'a str),
    /// `@v/<version>.mod`: the go.mod file of a version.
    Mod(&'a str),
    /// `@v/<version>.zip`: the module zip of a version.
    Zip(&'a str),
}

/// Bounded label for metrics and logs: which kind of upstream request this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    List,
    Latest,
    Info,
    Mod,
    Zip,
    Sumdb,
}

impl Kind {
    /// The metric label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::List => "list",
            Kind::Latest => "latest",
            Kind::Info => "info",
            Kind::Mod => "mod",
            Kind::Zip => "zip",
            Kind::Sumdb => "sumdb",
        }
    }
}

impl UpstreamFile<'_> {
    /// The metric kind of this file.
    pub(crate) fn kind(&self) -> Kind {
        match self {
            UpstreamFile::List => Kind::List,
            UpstreamFile::Latest => Kind::Latest,
            UpstreamFile::Info(_) => Kind::Info,
            UpstreamFile::Mod(_) => Kind::Mod,
            UpstreamFile::Zip(_) => Kind::Zip,
        }
    }
}

/// The case-encoded path of `file` relative to a proxy base, e.g. `github.com/!azure/x/@v/list`.
/// The module path and version are checked by [`crate::module`] while escaping; on top of that,
/// paths that could escape a file tree (`..`, `.`, empty components) or that contain control
/// characters or backslashes are refused again here, as defence in depth.
pub(crate) fn relative_path(
    module: &str,
    file: &UpstreamFile<'_>,
) -> Result<String, UpstreamError> {
    check_module(module)?;
    let module = crate::module::escape_path(module)
        .map_err(|e| invalid(format!("module path {module:?}: {e}")))?;
    let (version, ext) = match file {
        UpstreamFile::List => return Ok(format!("{module}/@v/list")),
        UpstreamFile::Latest => return Ok(format!("{module}/@latest")),
        UpstreamFile::Info(v) => (v, "info"),
        UpstreamFile::Mod(v) => (v, "mod"),
        UpstreamFile::Zip(v) => (v, "zip"),
    };
    check_version(version)?;
    let version = crate::module::escape_version(version)
        .map_err(|e| invalid(format!("version {version:?}: {e}")))?;
    Ok(format!("{module}/@v/{version}.{ext}"))
}

fn check_module(module: &str) -> Result<(), UpstreamError> {
    let bad_component = module
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..");
    if bad_component || has_unsafe_chars(module) {
        return Err(invalid(format!("unsafe module path {module:?}")));
    }
    Ok(())
}

fn check_version(version: &str) -> Result<(), UpstreamError> {
    let bad = version.is_empty() || version == "." || version == ".." || version.contains('/');
    if bad || has_unsafe_chars(version) {
        return Err(invalid(format!("unsafe version {version:?}")));
    }
    Ok(())
}

fn has_unsafe_chars(s: &str) -> bool {
    s.chars().any(|c| c.is_control() || c == '\\')
}

fn invalid(reason: String) -> UpstreamError {
    UpstreamError::InvalidRequest { reason }
}

/// The go command's `pathEscape`: `url.PathEscape`, then `%2F` turned back into `/`. Keeps ASCII
/// letters, digits, `-_.~`, `$&+:=@` and `/`; percent-encodes every other byte (so `!` → `%21`).
pub(crate) fn path_escape(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() + 16);
    for &b in s.as_bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-_.~$&+:=@/".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_percent_escaping_matches_the_go_command() {
        let rel = relative_path("github.com/Azure/X", &UpstreamFile::List).unwrap();
        assert_eq!(rel, "github.com/!azure/!x/@v/list");
        assert_eq!(path_escape(&rel), "github.com/%21azure/%21x/@v/list");
        let rel =
            relative_path("example.com/m", &UpstreamFile::Zip("v2.0.0+incompatible")).unwrap();
        assert_eq!(
            path_escape(&rel),
            "example.com/m/@v/v2.0.0+incompatible.zip"
        );
        let rel = relative_path("example.com/m", &UpstreamFile::Info("v1.0.0-RC1")).unwrap();
        assert_eq!(rel, "example.com/m/@v/v1.0.0-!r!c1.info");
        let rel = relative_path("gopkg.in/yaml.v3", &UpstreamFile::Latest).unwrap();
        assert_eq!(rel, "gopkg.in/yaml.v3/@latest");
        assert_eq!(path_escape("a b?#%ü"), "a%20b%3F%23%25%C3%BC");
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for module in ["", "a/../b", "/abs", "a//b", "a/./b", "a\\b", "a\nb", "a/"] {
            let err = relative_path(module, &UpstreamFile::List).unwrap_err();
            assert!(
                matches!(err, UpstreamError::InvalidRequest { .. }),
                "{module:?}"
            );
        }
        for version in ["", "..", "v1/../x", "v1\0"] {
            assert!(relative_path("a.b/c", &UpstreamFile::Mod(version)).is_err());
        }
    }
}
