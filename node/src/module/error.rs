//! The error type of the module rules: what is wrong with which module path, file path or version.
//!
//! Messages are lowercase and name the offending input, so they can be sent to a Go client as a
//! plain-text 400/404 body (`malformed module path "x": missing dot in first path element`).

use std::fmt;

/// Which set of path rules was applied (Go has three, see PROTOCOL.md §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathKind {
    /// A module path (`golang.org/x/mod`).
    Module,
    /// An import path (module rules plus `+`).
    Import,
    /// A file path inside a module zip (wider character set, Unicode letters).
    File,
}

impl fmt::Display for PathKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathKind::Module => "module",
            PathKind::Import => "import",
            PathKind::File => "file",
        })
    }
}

/// One reason a path (or a version used as a file-name element) is malformed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathProblem {
    /// The path is the empty string.
    #[error("empty string")]
    Empty,
    /// Module and import paths may not start with `-`.
    #[error("leading dash")]
    LeadingDash,
    /// The path contains `//`.
    #[error("double slash")]
    DoubleSlash,
    /// The path ends in `/`.
    #[error("trailing slash")]
    TrailingSlash,
    /// A `/`-separated element is empty (e.g. a leading `/`).
    #[error("empty path element")]
    EmptyElement,
    /// An element made only of dots (`.`, `..`, `...`).
    #[error("invalid path element {0:?}")]
    DotsElement(String),
    /// A module path element starts with `.`.
    #[error("leading dot in path element")]
    LeadingDot,
    /// An element ends with `.`.
    #[error("trailing dot in path element")]
    TrailingDot,
    /// A character outside the allowed set for this kind of path.
    #[error("invalid char {0:?}")]
    InvalidChar(char),
    /// The part of an element before its first dot is a Windows device name (`CON`, `aux`, ...).
    #[error("{0:?} disallowed as path element component on Windows")]
    WindowsReserved(String),
    /// The part of an element before its first dot ends in `~` and digits (`PROGRA~1`).
    #[error("trailing tilde and digits in path element")]
    WindowsShortName,
    /// The module path starts with `/`.
    #[error("leading slash")]
    LeadingSlash,
    /// The first element of a module path has no dot (`localhost/x`, `github/x`).
    #[error("missing dot in first path element")]
    FirstElementMissingDot,
    /// The first element of a module path starts with `-`.
    #[error("leading dash in first path element")]
    FirstElementLeadingDash,
    /// The first element of a module path may only hold `a-z 0-9 . -`.
    #[error("invalid char {0:?} in first path element")]
    FirstElementInvalidChar(char),
    /// The major version suffix is malformed (`/v1`, `/v0`, `/v02`, `/v2.0`, bad `gopkg.in` form).
    #[error("invalid major version suffix")]
    BadMajorSuffix,
}

/// Everything that can be wrong with a module path, version or escaped form of either.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModuleError {
    /// A module, import or file path breaks the path rules.
    #[error("malformed {kind} path {path:?}: {problem}")]
    MalformedPath {
        /// Which rules were applied.
        kind: PathKind,
        /// The offending path.
        path: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// The version is not a valid semantic version (`1.2.3`, `v1.02.0`, `master`).
    #[error("{path}@{version}: invalid version: not a semantic version")]
    NotSemver {
        /// The module path.
        path: String,
        /// The offending version.
        version: String,
    },
    /// The version's major does not match the path's major suffix.
    #[error("{}: invalid version: should be {expected}, not {actual}", subject(.path, .version))]
    WrongMajor {
        /// The module path, or empty when only the suffix was known ([`super::check_path_major`]).
        path: String,
        /// The offending version.
        version: String,
        /// What the suffix allows (`v0 or v1`, `v2`).
        expected: String,
        /// The version's major (`v3`), empty if the version is not semver.
        actual: String,
    },
    /// A version that is valid but not canonical where only canonical versions are allowed.
    #[error("{}: version is not canonical (should be {canonical:?})", subject(.path, .version))]
    NotCanonical {
        /// The module path (may be empty).
        path: String,
        /// The offending version.
        version: String,
        /// Its canonical form, empty if there is none.
        canonical: String,
    },
    /// A version string that cannot be used in a URL or file name (fails the file-element rules).
    #[error("disallowed version string {version:?}: {problem}")]
    DisallowedVersion {
        /// The offending version.
        version: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// An escaped module path or version breaks the `!x` encoding (uppercase, non-ASCII, bad `!`).
    #[error("invalid escaped {what} {escaped:?}")]
    BadEscape {
        /// `"module path"` or `"version"`.
        what: &'static str,
        /// The escaped input.
        escaped: String,
    },
    /// The string does not have the syntax of a pseudo-version.
    #[error("invalid pseudo-version {version:?}: syntax error")]
    NotPseudoVersion {
        /// The offending version.
        version: String,
    },
    /// The 14-digit timestamp of a pseudo-version is not a real UTC time.
    #[error("invalid pseudo-version {version:?}: malformed time {timestamp:?}")]
    PseudoVersionTime {
        /// The offending version.
        version: String,
        /// Its `yyyymmddhhmmss` part.
        timestamp: String,
    },
    /// A base-less pseudo-version (`vX.0.0-...`) carries build metadata (`+incompatible`).
    #[error(
        "invalid pseudo-version {version:?}: lacks base version, but has build metadata {build:?}"
    )]
    PseudoVersionBuildWithoutBase {
        /// The offending version.
        version: String,
        /// The build suffix.
        build: String,
    },
    /// A `vX.Y.0-0.…` pseudo-version: its base would need patch number -1.
    #[error("invalid pseudo-version {version:?}: version before {base} would have negative patch number")]
    PseudoVersionNegativePatch {
        /// The offending version.
        version: String,
        /// The release it claims to follow (`vX.Y.0`).
        base: String,
    },
}

/// `path@version`, or just `version "v"` when the path is unknown.
fn subject(path: &str, version: &str) -> String {
    if path.is_empty() {
        format!("version {version:?}")
    } else {
        format!("{path}@{version}")
    }
}
