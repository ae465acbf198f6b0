//! Module-aware version helpers: canonical forms that keep `+incompatible`, and list ordering
//! (PROTOCOL.md §2.4, §2.5).

use super::semver;

/// The canonical form of `v` as the go command uses for module versions (Go's
/// `module.CanonicalVersion`): like [`semver::canonical`] but keeps a `+incompatible` build
/// suffix. Returns `""` for an invalid version.
///
/// `v1.2` → `v1.2.0`, `v1.2.3+meta` → `v1.2.3`, `v2.0.0+incompatible` unchanged.
pub fn canonical_version(v: &str) -> String {
    let mut canonical = semver::canonical(v);
    if semver::build(v) == "+incompatible" {
        canonical.push_str("+incompatible");
    }
    canonical
}

/// Reports whether `v` is a valid version equal to its [`canonical_version`] (what `.mod` and
/// `.zip` requests, zip prefixes and `@v/list` lines require). The empty string is not canonical.
pub fn is_canonical(v: &str) -> bool {
    !v.is_empty() && canonical_version(v) == v
}

/// Sorts versions the way the go command sorts `@v/list`: semantic version order, ties (such as
/// `v1.0.0` and `v1.0.0+meta`, or two invalid strings) broken by plain string comparison.
pub fn sort_versions(versions: &mut [String]) {
    semver::sort(versions);
}
