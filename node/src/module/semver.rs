//! Semantic versions as the go command understands them (`golang.org/x/mod/semver` semantics).
//!
//! A version is `vMAJOR[.MINOR[.PATCH[-PRERELEASE][+BUILD]]]`. Numbers have no leading zeros and
//! any length, so they are compared as digit strings (length first), never parsed into integers.
//! The shorthands `vMAJOR` and `vMAJOR.MINOR` are valid but not canonical. Invalid versions sort
//! before every valid one and are equal to each other.

use std::cmp::Ordering;

/// The pieces of a valid version, borrowed from the input (missing parts filled with `"0"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parsed<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    /// What `canonical` appends to a shorthand (`".0.0"`, `".0"` or `""`).
    short: &'static str,
    /// Including the leading `-`, or empty.
    prerelease: &'a str,
    /// Including the leading `+`, or empty.
    build: &'a str,
}

/// Parses `v`, or returns `None` if it is not a valid semantic version.
fn parse(v: &str) -> Option<Parsed<'_>> {
    let rest = v.strip_prefix('v')?;
    let (major, rest) = parse_number(rest)?;
    let mut p = Parsed {
        major,
        minor: "0",
        patch: "0",
        short: ".0.0",
        prerelease: "",
        build: "",
    };
    if rest.is_empty() {
        return Some(p);
    }
    let (minor, rest) = parse_number(rest.strip_prefix('.')?)?;
    p.minor = minor;
    p.short = ".0";
    if rest.is_empty() {
        return Some(p);
    }
    let (patch, mut rest) = parse_number(rest.strip_prefix('.')?)?;
    p.patch = patch;
    p.short = "";
    if rest.starts_with('-') {
        let end = rest.find('+').unwrap_or(rest.len());
        p.prerelease = &rest[..end];
        rest = &rest[end..];
        if !identifiers_ok(&p.prerelease[1..], true) {
            return None;
        }
    }
    if rest.starts_with('+') {
        p.build = rest;
        if !identifiers_ok(&rest[1..], false) {
            return None;
        }
        rest = "";
    }
    rest.is_empty().then_some(p)
}

/// Splits a leading decimal number (no leading zero unless it is `0`) off `s`.
fn parse_number(s: &str) -> Option<(&str, &str)> {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    if end == 0 || (end > 1 && s.starts_with('0')) {
        return None;
    }
    Some(s.split_at(end))
}

/// Checks dot-separated identifiers of `[0-9A-Za-z-]`; pre-release numbers may not have a leading
/// zero, build identifiers may.
fn identifiers_ok(s: &str, prerelease: bool) -> bool {
    s.split('.').all(|id| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !(prerelease && is_number(id) && id.len() > 1 && id.starts_with('0'))
    })
}

/// Whether `s` is made only of ASCII digits (an empty string counts, as in Go).
fn is_number(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// Reports whether `v` is a valid semantic version (leading `v` required).
pub fn is_valid(v: &str) -> bool {
    parse(v).is_some()
}

/// The canonical form of `v`: missing `.0`s added, build metadata dropped; `""` if `v` is invalid.
///
/// `v1.2` → `v1.2.0`, `v1.2.3+meta` → `v1.2.3`. See [`crate::module::canonical_version`] for the
/// module-aware variant that keeps `+incompatible`.
pub fn canonical(v: &str) -> String {
    match parse(v) {
        None => String::new(),
        Some(p) if !p.build.is_empty() => v[..v.len() - p.build.len()].to_string(),
        Some(p) => format!("{v}{}", p.short),
    }
}

/// The major version prefix of `v` (`v2` for `v2.1.0`), or `""` if `v` is invalid.
pub fn major(v: &str) -> &str {
    match parse(v) {
        Some(p) => &v[..1 + p.major.len()],
        None => "",
    }
}

/// The `vMAJOR.MINOR` prefix of `v` (`v2.1` for `v2.1.3`, `v2.0` for `v2`), or `""` if invalid.
pub fn major_minor(v: &str) -> String {
    match parse(v) {
        Some(p) => format!("v{}.{}", p.major, p.minor),
        None => String::new(),
    }
}

/// The pre-release suffix of `v` including its `-` (`-rc.1` for `v1.0.0-rc.1+b`), or `""`.
pub fn prerelease(v: &str) -> &str {
    parse(v).map_or("", |p| p.prerelease)
}

/// The build suffix of `v` including its `+` (`+incompatible` for `v2.0.0+incompatible`), or `""`.
pub fn build(v: &str) -> &str {
    parse(v).map_or("", |p| p.build)
}

/// Reports whether `v` is a valid version with a pre-release suffix.
pub fn is_prerelease(v: &str) -> bool {
    !prerelease(v).is_empty()
}

/// Compares two versions with Go's rules: numbers by value (any length), then pre-release per
/// semver 2.0.0 (a release is greater than its pre-releases). Build metadata is ignored. Invalid
/// versions are less than valid ones and equal to each other.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => compare_number(x.major, y.major)
            .then_with(|| compare_number(x.minor, y.minor))
            .then_with(|| compare_number(x.patch, y.patch))
            .then_with(|| compare_prerelease(x.prerelease, y.prerelease)),
    }
}

/// Sorts versions in increasing [`compare`] order, breaking ties with plain string comparison
/// (the order the go command uses for `@v/list`).
pub fn sort(list: &mut [String]) {
    list.sort_by(|a, b| compare(a, b).then_with(|| a.cmp(b)));
}

/// Compares two decimal strings without leading zeros: shorter is smaller, then lexically.
fn compare_number(x: &str, y: &str) -> Ordering {
    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
}

/// Compares two pre-release suffixes (each `""` or `-id.id...`).
fn compare_prerelease(x: &str, y: &str) -> Ordering {
    match (x.is_empty(), y.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut xs = x[1..].split('.');
    let mut ys = y[1..].split('.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(a), Some(b)) => match compare_identifier(a, b) {
                Ordering::Equal => {}
                other => return other,
            },
        }
    }
}

/// Compares one pre-release identifier: numeric ones by value and before alphanumeric ones.
fn compare_identifier(a: &str, b: &str) -> Ordering {
    match (is_number(a), is_number(b)) {
        (true, true) => compare_number(a, b),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}
