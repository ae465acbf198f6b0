//! Path validity, major version suffixes, `module.Check` and `!`-escaping.

use super::super::*;

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
