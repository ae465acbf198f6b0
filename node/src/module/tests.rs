//! Unit tests for the module rules, table-driven. Expected values follow PROTOCOL.md §2 and were
//! cross-checked against `golang.org/x/mod` (Go 1.26) on tens of thousands of generated inputs.

use std::cmp::Ordering;

use super::*;

// === paths ===

#[test]
fn module_paths() {
    use PathProblem::*;
    let cases: &[(&str, Option<PathProblem>)] = &[
        ("golang.org/x/mod", None),
        ("example.com/foo/v2", None),
        ("example.com/v2", None),
        ("github.com/Azure/x", None),
        ("github.com/BurntSushi/toml", None),
        ("example.com/x_y~z-w.v", None),
        ("x.com", None),
        ("example.com/x~", None),
        ("example.com/x~a1", None),
        ("example.com/con1", None),
        ("example.com/com0", None),
        ("gopkg.in/yaml.v2", None),
        ("gopkg.in/yaml.v0", None),
        ("gopkg.in/user/pkg.v3", None),
        ("gopkg.in/macaroon-bakery.v2-unstable", None),
        ("", Some(Empty)),
        ("-example.com/x", Some(LeadingDash)),
        ("example.com//x", Some(DoubleSlash)),
        ("example.com/x/", Some(TrailingSlash)),
        ("/example.com", Some(EmptyElement)),
        ("example.com/...", Some(DotsElement("...".into()))),
        ("example.com/.x", Some(LeadingDot)),
        ("example.com/x.", Some(TrailingDot)),
        ("example.com/a+b", Some(InvalidChar('+'))),
        ("example.com/a b", Some(InvalidChar(' '))),
        ("example.com/é", Some(InvalidChar('é'))),
        ("example.com/a!b", Some(InvalidChar('!'))),
        ("example.com/con.d/x", Some(WindowsReserved("con".into()))),
        ("example.com/LPT9", Some(WindowsReserved("LPT9".into()))),
        ("example.com/x~1", Some(WindowsShortName)),
        ("example.com/PROGRA~1.d", Some(WindowsShortName)),
        ("localhost/x", Some(FirstElementMissingDot)),
        ("github/x", Some(FirstElementMissingDot)),
        ("Example.com/x", Some(FirstElementInvalidChar('E'))),
        ("ex_ample.com/x", Some(FirstElementInvalidChar('_'))),
        ("example.com/x/v1", Some(BadMajorSuffix)),
        ("example.com/x/v0", Some(BadMajorSuffix)),
        ("example.com/x/v02", Some(BadMajorSuffix)),
        ("example.com/x/v2.0", Some(BadMajorSuffix)),
        ("gopkg.in/yaml", Some(BadMajorSuffix)),
        ("gopkg.in/yaml.v01", Some(BadMajorSuffix)),
        ("gopkg.in/yaml.v00", Some(BadMajorSuffix)),
        ("gopkg.in/yaml.v0-unstable", Some(BadMajorSuffix)),
    ];
    for (path, want) in cases {
        let got = check_path(path);
        match want {
            None => assert!(got.is_ok(), "{path:?}: {got:?}"),
            Some(problem) => assert_eq!(
                got,
                Err(ModuleError::MalformedPath {
                    kind: PathKind::Module,
                    path: path.to_string(),
                    problem: problem.clone(),
                }),
                "{path:?}"
            ),
        }
    }
}

#[test]
fn import_and_file_paths() {
    // (path, import ok, file ok)
    let cases: &[(&str, bool, bool)] = &[
        ("example.com/a+b", true, true),
        ("Example.com/x", true, true),
        ("localhost/x", true, true),
        ("example.com/x/v1", true, true),
        ("-x", false, true),
        (".github/workflows/ci.yml", true, true),
        ("a b/c", false, true),
        ("a!#$%&()+,-=@[]^_{}~", false, true),
        ("ünïcödé/日本.go", false, true),
        ("\u{212A}.go", false, true),
        ("x~1", false, true),
        ("e\u{301}.go", false, false),
        ("Ⅻ.go", false, false),
        ("a:b", false, false),
        ("x*y", false, false),
        ("\"q\"", false, false),
        ("it's", false, false),
        ("a<b>", false, false),
        ("a?b", false, false),
        ("a`b", false, false),
        ("a|b", false, false),
        ("a\\b", false, false),
        ("aux.go", false, false),
        ("sub/Con", false, false),
        ("a/../b", false, false),
        ("a/./b", false, false),
        ("/abs", false, false),
        ("x.", false, false),
        ("", false, false),
    ];
    for (path, import_ok, file_ok) in cases {
        assert_eq!(
            check_import_path(path).is_ok(),
            *import_ok,
            "import {path:?}"
        );
        assert_eq!(check_file_path(path).is_ok(), *file_ok, "file {path:?}");
    }
    let err = check_file_path("a:b").unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed file path \"a:b\": invalid char ':'"
    );
}

#[test]
fn split_path_versions() {
    let cases: &[(&str, Option<(&str, &str)>)] = &[
        ("example.com/m", Some(("example.com/m", ""))),
        ("example.com/m/v2", Some(("example.com/m", "/v2"))),
        ("example.com/m/v10", Some(("example.com/m", "/v10"))),
        ("example.com/v2", Some(("example.com", "/v2"))),
        ("example.com/m/v", Some(("example.com/m/v", ""))),
        ("example.com/m/x2", Some(("example.com/m/x2", ""))),
        ("example.com/mv2", Some(("example.com/mv2", ""))),
        ("v2", Some(("v2", ""))),
        ("example.com/m/v1", None),
        ("example.com/m/v0", None),
        ("example.com/m/v02", None),
        ("example.com/m/v2.0", None),
        ("example.com/m/v.2", None),
        ("gopkg.in/yaml.v2", Some(("gopkg.in/yaml", ".v2"))),
        ("gopkg.in/yaml.v0", Some(("gopkg.in/yaml", ".v0"))),
        ("gopkg.in/yaml.v1", Some(("gopkg.in/yaml", ".v1"))),
        ("gopkg.in/user/pkg.v3", Some(("gopkg.in/user/pkg", ".v3"))),
        (
            "gopkg.in/bakery.v2-unstable",
            Some(("gopkg.in/bakery", ".v2-unstable")),
        ),
        ("gopkg.in/yaml", None),
        ("gopkg.in/yaml/v2", None),
        ("gopkg.in/yaml.v01", None),
        ("gopkg.in/yaml.v0-unstable", None),
    ];
    for (path, want) in cases {
        assert_eq!(split_path_version(path), *want, "{path:?}");
    }
}

#[test]
fn path_majors() {
    // (version, path major, ok)
    let cases: &[(&str, &str, bool)] = &[
        ("v0.1.0", "", true),
        ("v1.9.9", "", true),
        ("v2.0.0", "", false),
        ("v2.0.0+incompatible", "", true),
        (
            "v2.0.1-0.20200722182040-012345abcdef+incompatible",
            "",
            true,
        ),
        ("v2.0.0", "/v2", true),
        ("v2.0.0+incompatible", "/v2", true),
        ("v3.0.0", "/v2", false),
        ("v1.0.0", "/v2", false),
        ("v2.0.0", ".v2", true),
        ("v2.1.0", ".v2-unstable", true),
        ("v0.0.0-20161208181325-20d25e280405", ".v1", true),
        ("v0.1.0", ".v1", false),
        ("v0.1.0", ".v0", true),
        ("v1.0.0", ".v0", false),
        ("master", "", false),
    ];
    for (version, major, ok) in cases {
        assert_eq!(
            check_path_major(version, major).is_ok(),
            *ok,
            "{version} {major:?}"
        );
    }
    let err = check_path_major("v3.0.0", "/v2").unwrap_err();
    assert_eq!(
        err.to_string(),
        "version \"v3.0.0\": invalid version: should be v2, not v3"
    );
}

#[test]
fn module_versions() {
    // (path, version, ok) for `check`; `check_canonical` additionally needs a canonical version.
    let cases: &[(&str, &str, bool)] = &[
        ("example.com/m", "v1.2.3", true),
        ("example.com/m", "v0.0.0-20200101000000-abcdef123456", true),
        ("example.com/m", "v1.2", true),
        ("example.com/m", "v2.0.0", false),
        ("example.com/m", "v2.0.0+incompatible", true),
        ("example.com/m", "v1.0.0+incompatible", true),
        ("example.com/m/v2", "v2.0.0", true),
        ("example.com/m/v2", "v2.0.0+incompatible", true),
        ("example.com/m/v2", "v1.0.0", false),
        ("example.com/m/v3", "v2.0.0", false),
        ("gopkg.in/yaml.v2", "v2.4.0", true),
        ("gopkg.in/yaml.v2", "v1.0.0", false),
        (
            "gopkg.in/check.v1",
            "v0.0.0-20161208181325-20d25e280405",
            true,
        ),
        (
            "gopkg.in/check.v1",
            "v1.0.0-20201130134442-10cb98267c6c",
            true,
        ),
        ("gopkg.in/check.v1", "v0.1.0", false),
        ("example.com/m", "1.2.3", false),
        ("example.com/m", "master", false),
        ("example.com/m", "", false),
        ("Example.com/m", "v1.0.0", false),
    ];
    for (path, version, ok) in cases {
        assert_eq!(check(path, version).is_ok(), *ok, "{path}@{version}");
    }
    let err = check("example.com/m", "v2.0.0").unwrap_err();
    assert_eq!(
        err.to_string(),
        "example.com/m@v2.0.0: invalid version: should be v0 or v1, not v2"
    );
    let err = check("example.com/m", "1.2.3").unwrap_err();
    assert_eq!(
        err.to_string(),
        "example.com/m@1.2.3: invalid version: not a semantic version"
    );
    let err = check_path("localhost/x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed module path \"localhost/x\": missing dot in first path element"
    );
}

#[test]
fn canonical_module_versions() {
    let cases: &[(&str, &str, bool)] = &[
        ("example.com/m", "v1.2.3", true),
        ("example.com/m", "v2.0.0+incompatible", true),
        ("example.com/m", "v1.2.3-pre.1", true),
        ("example.com/m", "v1.2", false),
        ("example.com/m", "v1", false),
        ("example.com/m", "v1.2.3+meta", false),
        ("example.com/m/v2", "v2.0.0", true),
        ("example.com/m/v2", "v3.0.0", false),
    ];
    for (path, version, ok) in cases {
        assert_eq!(
            check_canonical(path, version).is_ok(),
            *ok,
            "{path}@{version}"
        );
    }
    let err = check_canonical("example.com/m", "v1.2").unwrap_err();
    assert_eq!(
        err.to_string(),
        "example.com/m@v1.2: version is not canonical (should be \"v1.2.0\")"
    );
}

// === escaping ===

#[test]
fn escaping_round_trips() {
    let paths: &[(&str, &str)] = &[
        ("github.com/BurntSushi/toml", "github.com/!burnt!sushi/toml"),
        (
            "github.com/Azure/azure-sdk-for-go",
            "github.com/!azure/azure-sdk-for-go",
        ),
        ("golang.org/x/mod", "golang.org/x/mod"),
        ("example.com/M", "example.com/!m"),
        ("example.com/ABC", "example.com/!a!b!c"),
    ];
    for (path, escaped) in paths {
        assert_eq!(escape_path(path).as_deref(), Ok(*escaped), "{path}");
        assert_eq!(unescape_path(escaped).as_deref(), Ok(*path), "{escaped}");
    }
    let versions: &[(&str, &str)] = &[
        ("v1.0.0-RC1", "v1.0.0-!r!c1"),
        ("v1.2.3", "v1.2.3"),
        ("v2.0.0+incompatible", "v2.0.0+incompatible"),
        ("master", "master"),
        ("Feature-X", "!feature-!x"),
        ("abc1234", "abc1234"),
    ];
    for (version, escaped) in versions {
        assert_eq!(
            escape_version(version).as_deref(),
            Ok(*escaped),
            "{version}"
        );
        assert_eq!(
            unescape_version(escaped).as_deref(),
            Ok(*version),
            "{escaped}"
        );
    }
}

#[test]
fn escaping_rejects() {
    for path in ["Example.com/x", "example.com/x/v1", "", "example.com/a!b"] {
        assert!(escape_path(path).is_err(), "escape_path {path:?}");
    }
    for version in ["", "a/b", "v1!", "..", "v1.", "con", "vé", "a:b"] {
        assert!(
            escape_version(version).is_err(),
            "escape_version {version:?}"
        );
    }
    let bad_escapes = [
        "github.com/BurntSushi/toml",
        "github.com/!Burnt/toml",
        "github.com/!!burnt/toml",
        "github.com/!1/toml",
        "example.com/x!",
        "example.com/é",
        "!example.com/x",
        "example.com/x/v1",
    ];
    for escaped in bad_escapes {
        assert!(unescape_path(escaped).is_err(), "unescape_path {escaped:?}");
    }
    for escaped in [
        "v1.0.0-RC1",
        "v1.0.0-!",
        "v1.0.0-!!r",
        "v1.0.0-!1",
        "vé",
        "a/b",
        "con",
    ] {
        assert!(
            unescape_version(escaped).is_err(),
            "unescape_version {escaped:?}"
        );
    }
    assert_eq!(
        unescape_path("example.com/x!").unwrap_err().to_string(),
        "invalid escaped module path \"example.com/x!\""
    );
    assert_eq!(
        unescape_path("!example.com/x").unwrap_err().to_string(),
        "malformed module path \"Example.com/x\": invalid char 'E' in first path element"
    );
}

// === semver ===

#[test]
fn semver_parts() {
    // (version, valid, canonical, major, prerelease, build)
    let cases: &[(&str, bool, &str, &str, &str, &str)] = &[
        ("v1.2.3", true, "v1.2.3", "v1", "", ""),
        ("v1.2", true, "v1.2.0", "v1", "", ""),
        ("v1", true, "v1.0.0", "v1", "", ""),
        ("v0.0.0", true, "v0.0.0", "v0", "", ""),
        ("v1.2.3-rc.1", true, "v1.2.3-rc.1", "v1", "-rc.1", ""),
        (
            "v1.2.3-rc.1+build.5",
            true,
            "v1.2.3-rc.1",
            "v1",
            "-rc.1",
            "+build.5",
        ),
        ("v1.2.3+meta", true, "v1.2.3", "v1", "", "+meta"),
        ("v1.2.3+001", true, "v1.2.3", "v1", "", "+001"),
        (
            "v2.0.0+incompatible",
            true,
            "v2.0.0",
            "v2",
            "",
            "+incompatible",
        ),
        ("v1.2.3-0a.1", true, "v1.2.3-0a.1", "v1", "-0a.1", ""),
        ("v1.2.3--", true, "v1.2.3--", "v1", "--", ""),
        (
            "v123456789012345678901234567890.0.0",
            true,
            "v123456789012345678901234567890.0.0",
            "v123456789012345678901234567890",
            "",
            "",
        ),
        ("1.2.3", false, "", "", "", ""),
        ("v", false, "", "", "", ""),
        ("", false, "", "", "", ""),
        ("v01.2.3", false, "", "", "", ""),
        ("v1.02.3", false, "", "", "", ""),
        ("v1.2.03", false, "", "", "", ""),
        ("v1.2-pre", false, "", "", "", ""),
        ("v1-pre", false, "", "", "", ""),
        ("v1.2+meta", false, "", "", "", ""),
        ("v1.2.3-01", false, "", "", "", ""),
        ("v1.2.3-", false, "", "", "", ""),
        ("v1.2.3-a..b", false, "", "", "", ""),
        ("v1.2.3+", false, "", "", "", ""),
        ("v1.2.3+a+b", false, "", "", "", ""),
        ("v1.2.3-a_b", false, "", "", "", ""),
        ("v1.2.3.4", false, "", "", "", ""),
        ("V1.2.3", false, "", "", "", ""),
        ("v1.2.3 ", false, "", "", "", ""),
    ];
    for &(v, valid, canonical, major, pre, build) in cases {
        assert_eq!(semver::is_valid(v), valid, "is_valid {v:?}");
        assert_eq!(semver::canonical(v), canonical, "canonical {v:?}");
        assert_eq!(semver::major(v), major, "major {v:?}");
        assert_eq!(semver::prerelease(v), pre, "prerelease {v:?}");
        assert_eq!(semver::build(v), build, "build {v:?}");
        assert_eq!(
            semver::is_prerelease(v),
            !pre.is_empty(),
            "is_prerelease {v:?}"
        );
    }
    assert_eq!(semver::major_minor("v1.2.3"), "v1.2");
    assert_eq!(semver::major_minor("v3"), "v3.0");
    assert_eq!(semver::major_minor("bad"), "");
}

#[test]
fn semver_compare() {
    use Ordering::*;
    let cases: &[(&str, &str, Ordering)] = &[
        ("v1.2.3", "v1.2.3", Equal),
        ("v1.2", "v1.2.0", Equal),
        ("v1", "v1.0.0", Equal),
        ("v1.2.3+a", "v1.2.3+b", Equal),
        ("v1.2.3", "v1.2.4", Less),
        ("v1.10.0", "v1.9.0", Greater),
        ("v2.0.0", "v10.0.0", Less),
        ("v1.0.0-rc.1", "v1.0.0", Less),
        ("v1.0.0-alpha", "v1.0.0-alpha.1", Less),
        ("v1.0.0-alpha.1", "v1.0.0-alpha.beta", Less),
        ("v1.0.0-alpha.beta", "v1.0.0-beta", Less),
        ("v1.0.0-beta.2", "v1.0.0-beta.11", Less),
        ("v1.0.0-beta.11", "v1.0.0-rc.1", Less),
        ("v1.0.0-1", "v1.0.0-a", Less),
        ("v1.0.0-A", "v1.0.0-a", Less),
        ("v0.0.0-20200101000000-abcdef123456", "v0.0.0", Less),
        ("v1.2.4-0.20200101000000-abcdef123456", "v1.2.3", Greater),
        (
            "v99999999999999999999.0.0",
            "v18446744073709551615.0.0",
            Greater,
        ),
        (
            "v1.18446744073709551616.0",
            "v1.18446744073709551615.0",
            Greater,
        ),
        (
            "v1.0.0-99999999999999999999999",
            "v1.0.0-100000000000000000000000",
            Less,
        ),
        ("bad", "v0.0.0", Less),
        ("v0.0.0", "", Greater),
        ("bad", "worse", Equal),
        ("", "", Equal),
    ];
    for (a, b, want) in cases {
        assert_eq!(semver::compare(a, b), *want, "{a} vs {b}");
        assert_eq!(semver::compare(b, a), want.reverse(), "{b} vs {a}");
    }
}

#[test]
fn version_sorting() {
    let mut list: Vec<String> = [
        "v1.10.0",
        "v1.2.0",
        "v1.2.0+b",
        "v1.2.0+a",
        "v1.2",
        "v1.0.0-rc.1",
        "junk",
        "v1.0.0",
        "v2.0.0+incompatible",
        "v0.9.0",
        "v100000000000000000000.0.0",
        "v1.0.0-alpha",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    sort_versions(&mut list);
    let want = [
        "junk",
        "v0.9.0",
        "v1.0.0-alpha",
        "v1.0.0-rc.1",
        "v1.0.0",
        "v1.2",
        "v1.2.0",
        "v1.2.0+a",
        "v1.2.0+b",
        "v1.10.0",
        "v2.0.0+incompatible",
        "v100000000000000000000.0.0",
    ];
    assert_eq!(list, want);
}

#[test]
fn canonical_versions() {
    let cases: &[(&str, &str, bool)] = &[
        ("v1.2.3", "v1.2.3", true),
        ("v1.2", "v1.2.0", false),
        ("v1", "v1.0.0", false),
        ("v1.2.3+meta", "v1.2.3", false),
        ("v2.0.0+incompatible", "v2.0.0+incompatible", true),
        ("v2.0+incompatible", "", false),
        ("v1.2.3-pre+incompatible", "v1.2.3-pre+incompatible", true),
        ("v1.2.3+incompatible.x", "v1.2.3", false),
        ("master", "", false),
        ("", "", false),
    ];
    for (v, canonical, is) in cases {
        assert_eq!(canonical_version(v), *canonical, "canonical_version {v:?}");
        assert_eq!(is_canonical(v), *is, "is_canonical {v:?}");
    }
}

// === pseudo-versions ===

#[test]
fn pseudo_version_syntax() {
    let valid = [
        "v0.0.0-20191109021931-daa7c04131f5",
        "v2.0.0-20191109021931-daa7c04131f5",
        "v1.2.4-0.20191109021931-daa7c04131f5",
        "v1.2.4-0.20191109021931-daa7c04131f5+incompatible",
        "v2.0.1-0.20200722182040-012345abcdef+incompatible",
        "v1.2.3-pre.0.20191109021931-daa7c04131f5",
        "v1.2.3-rc.1.0.20191109021931-daa7c04131f5",
        "v1.2.3-a-b.0.20191109021931-daa7c04131f5",
        "v1.0.0-20191109021931-daa7c04131f5",
        "v0.0.0-00000000000000-000000000000",
        "v0.0.0-20191109021931-X",
        "v1.2.0-0.20191109021931-daa7c04131f5",
        "v0.0.0-20201301000000-daa7c04131f5",
    ];
    let invalid = [
        "v1.2.3",
        "v0.0.0-2019110902193-daa7c04131f5",
        "v0.0.0-201911090219311-daa7c04131f5",
        "v0.0.0-20191109021931-",
        "v0.0.0-20191109021931-daa7c-04131f5",
        "v0.0.0-20191109021931.daa7c04131f5",
        "v1.2.3-20191109021931-daa7c04131f5",
        "v1.2.4-1.20191109021931-daa7c04131f5",
        "v1.2.3-pre.20191109021931-daa7c04131f5",
        "v01.0.0-20191109021931-daa7c04131f5",
        "v1.0-20191109021931-daa7c04131f5",
        "0.0.0-20191109021931-daa7c04131f5",
        "v0.0.0-20191109021931-daa7c04131f5+",
        "v0.0.0-2019110902193a-daa7c04131f5",
        "",
    ];
    for v in valid {
        assert!(is_pseudo_version(v), "{v} should be a pseudo-version");
    }
    for v in invalid {
        assert!(!is_pseudo_version(v), "{v} should not be a pseudo-version");
    }
}

#[test]
fn pseudo_version_parts() {
    // (version, time or error, rev, base or error)
    type Case = (
        &'static str,
        Result<&'static str, ()>,
        &'static str,
        Result<&'static str, ()>,
    );
    let cases: &[Case] = &[
        (
            "v0.0.0-20191109021931-daa7c04131f5",
            Ok("20191109021931"),
            "daa7c04131f5",
            Ok(""),
        ),
        (
            "v2.0.0-20191109021931-daa7c04131f5",
            Ok("20191109021931"),
            "daa7c04131f5",
            Ok(""),
        ),
        (
            "v1.2.4-0.20191109021931-daa7c04131f5",
            Ok("20191109021931"),
            "daa7c04131f5",
            Ok("v1.2.3"),
        ),
        (
            "v1.2.10-0.20191109021931-daa7c04131f5",
            Ok("20191109021931"),
            "daa7c04131f5",
            Ok("v1.2.9"),
        ),
        (
            "v1.2.100-0.20191109021931-daa7c04131f5",
            Ok("20191109021931"),
            "daa7c04131f5",
            Ok("v1.2.99"),
        ),
        (
            "v2.0.1-0.20200722182040-012345abcdef+incompatible",
            Ok("20200722182040"),
            "012345abcdef",
            Ok("v2.0.0+incompatible"),
        ),
        (
            "v1.2.3-pre.0.20191109021931-daa7c04131f5",
            Ok("20191109021931"),
            "daa7c04131f5",
            Ok("v1.2.3-pre"),
        ),
        (
            "v1.2.3-rc.1.0.20191109021931-daa7c04131f5",
            Ok("20191109021931"),
            "daa7c04131f5",
            Ok("v1.2.3-rc.1"),
        ),
        (
            "v1.2.0-0.20191109021931-daa7c04131f5",
            Ok("20191109021931"),
            "daa7c04131f5",
            Err(()),
        ),
        (
            "v2.0.0-20191109021931-daa7c04131f5+incompatible",
            Ok("20191109021931"),
            "daa7c04131f5",
            Err(()),
        ),
        (
            "v0.0.0-20240229235959-daa7c04131f5",
            Ok("20240229235959"),
            "daa7c04131f5",
            Ok(""),
        ),
        (
            "v0.0.0-20230229000000-daa7c04131f5",
            Err(()),
            "daa7c04131f5",
            Ok(""),
        ),
        (
            "v0.0.0-20201301000000-daa7c04131f5",
            Err(()),
            "daa7c04131f5",
            Ok(""),
        ),
        (
            "v0.0.0-20200101240000-daa7c04131f5",
            Err(()),
            "daa7c04131f5",
            Ok(""),
        ),
        (
            "v0.0.0-20200101235960-daa7c04131f5",
            Err(()),
            "daa7c04131f5",
            Ok(""),
        ),
        (
            "v0.0.0-20200100000000-daa7c04131f5",
            Err(()),
            "daa7c04131f5",
            Ok(""),
        ),
    ];
    for &(v, time, rev, base) in cases {
        assert_eq!(
            pseudo_version_time(v).as_deref().map_err(|_| ()),
            time,
            "time {v}"
        );
        assert_eq!(pseudo_version_rev(v).as_deref(), Ok(rev), "rev {v}");
        assert_eq!(
            pseudo_version_base(v).as_deref().map_err(|_| ()),
            base,
            "base {v}"
        );
    }
    for not_pseudo in ["v1.2.3", "master", ""] {
        let want = Err(ModuleError::NotPseudoVersion {
            version: not_pseudo.to_string(),
        });
        assert_eq!(pseudo_version_time(not_pseudo), want);
        assert_eq!(pseudo_version_rev(not_pseudo), want);
        assert_eq!(pseudo_version_base(not_pseudo), want);
    }
    assert_eq!(
        pseudo_version_rfc3339("v1.2.4-0.20191109021931-daa7c04131f5").as_deref(),
        Ok("2019-11-09T02:19:31Z")
    );
    assert_eq!(
        pseudo_version_base("v1.2.0-0.20191109021931-daa7c04131f5")
            .unwrap_err()
            .to_string(),
        "invalid pseudo-version \"v1.2.0-0.20191109021931-daa7c04131f5\": \
         version before v1.2.0 would have negative patch number"
    );
}

#[test]
fn pseudo_version_generation() {
    let (ts, rev) = ("20191109021931", "daa7c04131f5");
    let cases: &[(&str, &str, &str)] = &[
        ("", "", "v0.0.0-20191109021931-daa7c04131f5"),
        ("v2", "", "v2.0.0-20191109021931-daa7c04131f5"),
        ("v0", "v1.2.3", "v1.2.4-0.20191109021931-daa7c04131f5"),
        ("v0", "v1.2.9", "v1.2.10-0.20191109021931-daa7c04131f5"),
        ("v0", "v1.2.99", "v1.2.100-0.20191109021931-daa7c04131f5"),
        (
            "v0",
            "v1.2.3-pre",
            "v1.2.3-pre.0.20191109021931-daa7c04131f5",
        ),
        (
            "v0",
            "v1.2.3+meta",
            "v1.2.4-0.20191109021931-daa7c04131f5+meta",
        ),
        (
            "v2",
            "v2.0.0+incompatible",
            "v2.0.1-0.20191109021931-daa7c04131f5+incompatible",
        ),
    ];
    for (major, older, want) in cases {
        let got = pseudo_version(major, older, ts, rev);
        assert_eq!(got, *want, "{major} {older}");
        assert!(is_pseudo_version(&got), "{got}");
        let base = pseudo_version_base(&got).unwrap();
        if !older.is_empty() && !older.contains("+meta") {
            assert_eq!(base, *older, "base of {got}");
        }
    }
}

// === unicode ===

#[test]
fn unicode_letters_and_folding() {
    assert_eq!(unicode::UNICODE_VERSION, "15.0.0");
    let letters = [
        'a',
        'Z',
        'é',
        'ß',
        'ſ',
        'K',
        'Σ',
        'ж',
        '日',
        'ǅ',
        'ª',
        '\u{2F800}',
    ];
    let not_letters = [
        '1',
        '_',
        ' ',
        '\u{301}',
        'Ⅻ',
        '١',
        '\u{93E}',
        '€',
        '\u{200B}',
        '\u{10FFFF}',
    ];
    for c in letters {
        assert!(unicode::is_letter(c), "{c:?} is a letter");
    }
    for c in not_letters {
        assert!(!unicode::is_letter(c), "{c:?} is not a letter");
    }
    let same: &[(&str, &str)] = &[
        ("README", "readme"),
        ("k.go", "\u{212A}.go"),
        ("K", "\u{212A}"),
        ("s", "ſ"),
        ("ß", "ẞ"),
        ("Σ", "ς"),
        ("σ", "ς"),
        ("ǅ", "Ǆ"),
        ("Å", "\u{212B}"),
        ("Ꭰ", "ꭰ"),
    ];
    for (a, b) in same {
        assert_eq!(unicode::fold_key(a), unicode::fold_key(b), "{a} ~ {b}");
    }
    let different: &[(&str, &str)] = &[("i", "ı"), ("i", "İ"), ("ss", "ß"), ("a", "á")];
    for (a, b) in different {
        assert_ne!(unicode::fold_key(a), unicode::fold_key(b), "{a} !~ {b}");
    }
    assert_eq!(unicode::fold_key("Go.MOD"), "go.mod");
}

#[test]
fn pseudo_version_leap_years() {
    let cases: &[(&str, bool)] = &[
        ("20240229000000", true),
        ("20230229000000", false),
        ("20000229000000", true),
        ("19000229000000", false),
        ("21000229000000", false),
        ("24000229000000", true),
        ("00000229000000", true),
        ("20240230000000", false),
        ("20240431000000", false),
        ("20241231235959", true),
    ];
    for (ts, ok) in cases {
        let v = format!("v0.0.0-{ts}-abcdef123456");
        assert_eq!(pseudo_version_time(&v).is_ok(), *ok, "{v}");
    }
}
