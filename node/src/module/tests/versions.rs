//! Semantic versions, canonical forms, sorting, pseudo-versions and the Unicode tables.

use std::cmp::Ordering;

use super::super::*;

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
