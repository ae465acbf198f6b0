//! Module, import and file path validity and major-version suffixes (PROTOCOL.md §2.1, §2.3).
//!
//! Mirrors the go command's `module.CheckPath`, `CheckImportPath`, `CheckFilePath`,
//! `SplitPathVersion`, `CheckPathMajor` and `Check`, problem for problem.

use super::error::{ModuleError, PathKind, PathProblem};
use super::{semver, unicode, version};

/// Windows device names; an element whose part before the first dot equals one of these
/// (ASCII case-insensitively) is rejected. COM0/LPT0 are deliberately absent, as in Go.
const WINDOWS_RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Checks that `path` is a valid module path (Go's `module.CheckPath`): the common path rules with
/// the module character set, a lowercase first element containing a dot, and a well-formed major
/// version suffix.
pub fn check_path(path: &str) -> Result<(), ModuleError> {
    check_module_path(path).map_err(|problem| malformed(PathKind::Module, path, problem))
}

/// Checks that `path` is a valid import path (Go's `module.CheckImportPath`): like a module path
/// element-wise, plus `+`, but without the first-element and major-suffix rules.
pub fn check_import_path(path: &str) -> Result<(), ModuleError> {
    check_common(path, PathKind::Import)
        .map_err(|problem| malformed(PathKind::Import, path, problem))
}

/// Checks that `path` is a valid file path inside a module zip (Go's `module.CheckFilePath`).
pub fn check_file_path(path: &str) -> Result<(), ModuleError> {
    check_common(path, PathKind::File).map_err(|problem| malformed(PathKind::File, path, problem))
}

/// Builds the `MalformedPath` error for `path`.
fn malformed(kind: PathKind, path: &str, problem: PathProblem) -> ModuleError {
    ModuleError::MalformedPath {
        kind,
        path: path.to_string(),
        problem,
    }
}

/// The module-only rules on top of [`check_common`].
fn check_module_path(path: &str) -> Result<(), PathProblem> {
    check_common(path, PathKind::Module)?;
    let first = path.split('/').next().unwrap_or_default();
    if first.is_empty() {
        return Err(PathProblem::LeadingSlash);
    }
    if !first.contains('.') {
        return Err(PathProblem::FirstElementMissingDot);
    }
    if first.starts_with('-') {
        return Err(PathProblem::FirstElementLeadingDash);
    }
    if let Some(c) = first.chars().find(|&c| !first_element_char_ok(c)) {
        return Err(PathProblem::FirstElementInvalidChar(c));
    }
    split_path_version(path).ok_or(PathProblem::BadMajorSuffix)?;
    Ok(())
}

/// The rules shared by module, import and file paths (Go's `checkPath`).
fn check_common(path: &str, kind: PathKind) -> Result<(), PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    if path.starts_with('-') && kind != PathKind::File {
        return Err(PathProblem::LeadingDash);
    }
    if path.contains("//") {
        return Err(PathProblem::DoubleSlash);
    }
    if path.ends_with('/') {
        return Err(PathProblem::TrailingSlash);
    }
    path.split('/').try_for_each(|elem| check_elem(elem, kind))
}

/// Checks one `/`-free path element against the rules for `kind` (Go's `checkElem`). Versions are
/// checked as file-path elements before they are escaped.
pub(super) fn check_elem(elem: &str, kind: PathKind) -> Result<(), PathProblem> {
    if elem.is_empty() {
        return Err(PathProblem::EmptyElement);
    }
    if elem.bytes().all(|b| b == b'.') {
        return Err(PathProblem::DotsElement(elem.to_string()));
    }
    if elem.starts_with('.') && kind == PathKind::Module {
        return Err(PathProblem::LeadingDot);
    }
    if elem.ends_with('.') {
        return Err(PathProblem::TrailingDot);
    }
    if let Some(c) = elem.chars().find(|&c| !char_ok(c, kind)) {
        return Err(PathProblem::InvalidChar(c));
    }
    let short = elem.split('.').next().unwrap_or_default();
    if WINDOWS_RESERVED
        .iter()
        .any(|bad| bad.eq_ignore_ascii_case(short))
    {
        return Err(PathProblem::WindowsReserved(short.to_string()));
    }
    if kind != PathKind::File && is_windows_short_name(short) {
        return Err(PathProblem::WindowsShortName);
    }
    Ok(())
}

/// Whether `short` ends in `~` followed by one or more ASCII digits (`PROGRA~1`).
fn is_windows_short_name(short: &str) -> bool {
    match short.rfind('~') {
        Some(tilde) => {
            let suffix = &short[tilde + 1..];
            !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// Whether `c` may appear in an element of a `kind` path.
fn char_ok(c: char, kind: PathKind) -> bool {
    match kind {
        PathKind::Module => module_char_ok(c),
        PathKind::Import => module_char_ok(c) || c == '+',
        PathKind::File if c.is_ascii() => {
            c.is_ascii_alphanumeric() || "!#$%&()+,-.=@[]^_{}~ ".contains(c)
        }
        PathKind::File => unicode::is_letter(c),
    }
}

/// The module path character set: ASCII letters, digits and `- . _ ~`.
fn module_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// The first element of a module path (the host) allows only `a-z 0-9 . -`.
fn first_element_char_ok(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
}

/// Splits a module path into its prefix and major version suffix (Go's `SplitPathVersion`).
///
/// Returns `(prefix, "/vN")` for a `/vN` suffix (N ≥ 2, no leading zero, no dots), `(path, "")`
/// when the last element is not of the `v<digits/dots>` shape, and `None` when it is but is
/// malformed (`/v0`, `/v1`, `/v01`, `/v2.0`). `gopkg.in/` paths must end in `.vN` or
/// `.vN-unstable` (`.v0` allowed, no other leading zero) and give `(prefix, ".vN[-unstable]")`.
pub fn split_path_version(path: &str) -> Option<(&str, &str)> {
    if path.starts_with("gopkg.in/") {
        return split_gopkg_in(path);
    }
    let bytes = path.as_bytes();
    let mut i = bytes.len();
    let mut dot = false;
    while i > 0 && (bytes[i - 1].is_ascii_digit() || bytes[i - 1] == b'.') {
        dot |= bytes[i - 1] == b'.';
        i -= 1;
    }
    if i <= 1 || i == bytes.len() || bytes[i - 1] != b'v' || bytes[i - 2] != b'/' {
        return Some((path, ""));
    }
    let (prefix, major) = path.split_at(i - 2);
    if dot || major.as_bytes()[2] == b'0' || major == "/v1" {
        return None;
    }
    Some((prefix, major))
}

/// The `gopkg.in/...pkg.vN[-unstable]` form of [`split_path_version`].
fn split_gopkg_in(path: &str) -> Option<(&str, &str)> {
    let bytes = path.as_bytes();
    let mut i = path.strip_suffix("-unstable").unwrap_or(path).len();
    while i > 0 && bytes[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i <= 1 || bytes[i - 1] != b'v' || bytes[i - 2] != b'.' {
        return None;
    }
    let (prefix, major) = path.split_at(i - 2);
    if major.len() <= 2 || (major.as_bytes()[2] == b'0' && major != ".v0") {
        return None;
    }
    Some((prefix, major))
}

/// Checks that `version`'s major fits the path's major suffix `path_major` (from
/// [`split_path_version`]); Go's `CheckPathMajor`.
///
/// An empty suffix allows v0, v1 and any `+incompatible` version; `/vN` and `.vN` (with
/// `-unstable` ignored) require major vN. For `gopkg.in/….v1`, `v0.0.0-…` pseudo-versions are
/// also accepted (an old go command bug that is now frozen into go.sum files).
pub fn check_path_major(version: &str, path_major: &str) -> Result<(), ModuleError> {
    let mut suffix = path_major;
    if suffix.starts_with(".v") {
        suffix = suffix.strip_suffix("-unstable").unwrap_or(suffix);
    }
    if version.starts_with("v0.0.0-") && suffix == ".v1" {
        return Ok(());
    }
    let actual = semver::major(version);
    let expected = if suffix.is_empty() {
        if actual == "v0" || actual == "v1" || semver::build(version) == "+incompatible" {
            return Ok(());
        }
        "v0 or v1"
    } else if let Some(want) = suffix.strip_prefix(['/', '.']) {
        if actual == want {
            return Ok(());
        }
        want
    } else {
        suffix
    };
    Err(ModuleError::WrongMajor {
        path: String::new(),
        version: version.to_string(),
        expected: expected.to_string(),
        actual: actual.to_string(),
    })
}

/// Checks a module path and version together (Go's `module.Check`): [`check_path`], a valid
/// semantic version, and [`check_path_major`]. Non-canonical versions pass; see
/// [`check_canonical`].
pub fn check(path: &str, version: &str) -> Result<(), ModuleError> {
    check_path(path)?;
    if !semver::is_valid(version) {
        return Err(ModuleError::NotSemver {
            path: path.to_string(),
            version: version.to_string(),
        });
    }
    let (_, path_major) = split_path_version(path).unwrap_or((path, ""));
    check_path_major(version, path_major).map_err(|err| match err {
        ModuleError::WrongMajor {
            version,
            expected,
            actual,
            ..
        } => ModuleError::WrongMajor {
            path: path.to_string(),
            version,
            expected,
            actual,
        },
        other => other,
    })
}

/// [`check`] plus the requirement that `version` is canonical (what `.mod`, `.zip` and module zip
/// prefixes need): `v1.2` or `v1.2.3+meta` are rejected, `v2.0.0+incompatible` is fine.
pub fn check_canonical(path: &str, version: &str) -> Result<(), ModuleError> {
    check_path(path)?;
    if semver::is_valid(version) && !version::is_canonical(version) {
        return Err(ModuleError::NotCanonical {
            path: path.to_string(),
            version: version.to_string(),
            canonical: version::canonical_version(version),
        });
    }
    check(path, version)
}
