//! Pseudo-versions: syntax, and the timestamp, revision and base they encode (PROTOCOL.md §2.6).
//!
//! The three forms are `vX.0.0-yyyymmddhhmmss-rev` (no base), `vX.Y.(Z+1)-0.yyyymmddhhmmss-rev`
//! (base release `vX.Y.Z`) and `vX.Y.Z-pre.0.yyyymmddhhmmss-rev` (base pre-release
//! `vX.Y.Z-pre`), the last two optionally with `+incompatible`. Matching is done by hand and is
//! equivalent to the go command's regular expression
//! `^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`
//! combined with "valid semver with at least two `-`".

use super::error::ModuleError;
use super::semver;

/// Length of the `yyyymmddhhmmss` timestamp.
const TIMESTAMP_LEN: usize = 14;

/// Reports whether `v` has the syntax of a pseudo-version (Go's `module.IsPseudoVersion`). The
/// timestamp is not checked for being a real date; see [`pseudo_version_time`].
pub fn is_pseudo_version(v: &str) -> bool {
    semver::is_valid(v) && matches_pseudo_syntax(v)
}

/// The regular-expression part of [`is_pseudo_version`], for an already valid semver string.
fn matches_pseudo_syntax(v: &str) -> bool {
    let main = v.split('+').next().unwrap_or_default();
    let Some((before, rev)) = main.rsplit_once('-') else {
        return false;
    };
    if rev.is_empty() || !rev.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let Some(split) = before.len().checked_sub(TIMESTAMP_LEN) else {
        return false;
    };
    match (before.get(..split), before.get(split..)) {
        (Some(head), Some(ts)) => ts.bytes().all(|b| b.is_ascii_digit()) && head_matches(head),
        _ => false,
    }
}

/// Matches the part before the timestamp: `v\d+\.0\.0-` or `v\d+\.\d+\.\d+-([^+]*\.)?0\.`.
fn head_matches(head: &str) -> bool {
    let Some(rest) = head.strip_prefix('v').and_then(skip_digits) else {
        return false;
    };
    if rest == ".0.0-" {
        return true;
    }
    let tail = rest
        .strip_prefix('.')
        .and_then(skip_digits)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(skip_digits)
        .and_then(|r| r.strip_prefix('-'))
        .and_then(|r| r.strip_suffix("0."));
    tail.is_some_and(|t| t.is_empty() || t.ends_with('.'))
}

/// Strips one or more leading ASCII digits, or returns `None` if there are none.
fn skip_digits(s: &str) -> Option<&str> {
    let rest = s.trim_start_matches(|c: char| c.is_ascii_digit());
    (rest.len() < s.len()).then_some(rest)
}

/// The parts of a pseudo-version.
struct Pseudo<'a> {
    /// `vX.0.0`, `vX.Y.(Z+1)-0` or `vX.Y.Z-pre.0`.
    base: &'a str,
    timestamp: &'a str,
    rev: &'a str,
    /// Including the `+`, or empty.
    build: &'a str,
}

/// Splits a pseudo-version into its parts, or fails if it is not one.
fn parse(v: &str) -> Result<Pseudo<'_>, ModuleError> {
    if !is_pseudo_version(v) {
        return Err(ModuleError::NotPseudoVersion {
            version: v.to_string(),
        });
    }
    let build = semver::build(v);
    let main = &v[..v.len() - build.len()];
    let (rest, rev) = main.rsplit_once('-').unwrap_or((main, ""));
    // The timestamp follows the last `.` (forms 2 and 3) or, failing that, the last `-` (form 1).
    let dash = rest.rfind('-').unwrap_or(0);
    let sep = match rest.rfind('.') {
        Some(dot) if dot > dash => dot,
        _ => dash,
    };
    let (base, timestamp) = (&rest[..sep], &rest[sep + 1..]);
    Ok(Pseudo {
        base,
        timestamp,
        rev,
        build,
    })
}

/// The `yyyymmddhhmmss` commit time (UTC) encoded in pseudo-version `v`; fails if `v` is not a
/// pseudo-version or the timestamp is not a real time.
pub fn pseudo_version_time(v: &str) -> Result<String, ModuleError> {
    let p = parse(v)?;
    if !timestamp_ok(p.timestamp) {
        return Err(ModuleError::PseudoVersionTime {
            version: v.to_string(),
            timestamp: p.timestamp.to_string(),
        });
    }
    Ok(p.timestamp.to_string())
}

/// The commit time of pseudo-version `v` as RFC 3339 (`2006-01-02T15:04:05Z`), the form `.info`
/// `Time` fields use.
pub fn pseudo_version_rfc3339(v: &str) -> Result<String, ModuleError> {
    let t = pseudo_version_time(v)?;
    Ok(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &t[0..4],
        &t[4..6],
        &t[6..8],
        &t[8..10],
        &t[10..12],
        &t[12..14]
    ))
}

/// The revision identifier (usually a 12-digit commit hash prefix) of pseudo-version `v`.
pub fn pseudo_version_rev(v: &str) -> Result<String, ModuleError> {
    Ok(parse(v)?.rev.to_string())
}

/// The version pseudo-version `v` was derived from (Go's `module.PseudoVersionBase`), or `""` if
/// it has no base (form `vX.0.0-…`). `v1.2.4-0.…` → `v1.2.3`; `v1.2.3-pre.0.…` → `v1.2.3-pre`;
/// the build suffix (`+incompatible`) is kept.
pub fn pseudo_version_base(v: &str) -> Result<String, ModuleError> {
    let p = parse(v)?;
    match semver::prerelease(p.base) {
        "" if p.build.is_empty() => Ok(String::new()),
        "" => Err(ModuleError::PseudoVersionBuildWithoutBase {
            version: v.to_string(),
            build: p.build.to_string(),
        }),
        "-0" => {
            let release = &p.base[..p.base.len() - 2];
            let (head, patch) = release.rsplit_once('.').unwrap_or(("", release));
            let patch =
                dec_decimal(patch).ok_or_else(|| ModuleError::PseudoVersionNegativePatch {
                    version: v.to_string(),
                    base: release.to_string(),
                })?;
            Ok(format!("{head}.{patch}{}", p.build))
        }
        _ => {
            let base = p.base.strip_suffix(".0").unwrap_or(p.base);
            Ok(format!("{base}{}", p.build))
        }
    }
}

/// Builds a pseudo-version (Go's `module.PseudoVersion`): `major` (`v0` if empty) is used when
/// there is no valid `older` base tag; `timestamp` is the commit time as `yyyymmddhhmmss` UTC and
/// `rev` the 12-digit short hash. The build suffix of `older` (`+incompatible`) is kept.
pub fn pseudo_version(major: &str, older: &str, timestamp: &str, rev: &str) -> String {
    let major = if major.is_empty() { "v0" } else { major };
    let segment = format!("{timestamp}-{rev}");
    let build = semver::build(older);
    let base = semver::canonical(older);
    if base.is_empty() {
        return format!("{major}.0.0-{segment}");
    }
    if semver::is_prerelease(&base) {
        return format!("{base}.0.{segment}{build}");
    }
    let (head, patch) = base.rsplit_once('.').unwrap_or(("", &base));
    format!("{head}.{}-0.{segment}{build}", inc_decimal(patch))
}

/// Whether `ts` is a valid `yyyymmddhhmmss` UTC time (as Go's `time.Parse` would accept it).
fn timestamp_ok(ts: &str) -> bool {
    if ts.len() != TIMESTAMP_LEN || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let num = |range: std::ops::Range<usize>| ts[range].parse::<u32>().unwrap_or(u32::MAX);
    let (year, month, day) = (num(0..4), num(4..6), num(6..8));
    let (hour, minute, second) = (num(8..10), num(10..12), num(12..14));
    (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month)
        && hour < 24
        && minute < 60
        && second < 60
}

/// Days in `month` (1-12) of proleptic Gregorian `year`.
fn days_in_month(year: u32, month: u32) -> u32 {
    // Leap years: divisible by 4, and not by 100 unless by 400 (for a multiple of 100, that is
    // a multiple of 16). Written without `x % n == 0`, which clippy wants as `is_multiple_of`,
    // an API newer than the workspace's rust-version.
    let by_4 = year.trailing_zeros() >= 2;
    let by_100 = year / 100 * 100 == year;
    let leap = by_4 && (!by_100 || year.trailing_zeros() >= 4);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Adds one to a decimal digit string (`"9"` → `"10"`).
fn inc_decimal(decimal: &str) -> String {
    let mut digits = decimal.as_bytes().to_vec();
    let mut i = digits.len();
    while i > 0 && digits[i - 1] == b'9' {
        digits[i - 1] = b'0';
        i -= 1;
    }
    if i > 0 {
        digits[i - 1] += 1;
    } else {
        digits.insert(0, b'1');
    }
    String::from_utf8_lossy(&digits).into_owned()
}

/// Subtracts one from a decimal digit string without leading zeros (`"10"` → `"9"`); `None` for
/// `"0"`.
fn dec_decimal(decimal: &str) -> Option<String> {
    let mut digits = decimal.as_bytes().to_vec();
    let mut i = digits.len();
    while i > 0 && digits[i - 1] == b'0' {
        digits[i - 1] = b'9';
        i -= 1;
    }
    if i == 0 {
        return None;
    }
    if i == 1 && digits[0] == b'1' && digits.len() > 1 {
        digits.remove(0);
    } else {
        digits[i - 1] -= 1;
    }
    Some(String::from_utf8_lossy(&digits).into_owned())
}
