//! The `zip.Create` selection rules one by one (vendor/, nested modules, invalid names,
//! collisions, non-UTF-8 names) and Go's file modes, through archives or straight on candidates.

use super::*;

// === selection rules ===

#[test]
fn vendor_rules_follow_the_root_go_line() {
    let files = |gomod: &'static [u8]| -> Vec<(&'static str, K, &'static [u8])> {
        vec![
            ("go.mod", K::Fat, gomod),
            ("vendor/modules.txt", K::Fat, b"m\n"),
            ("vendor/x.go", K::Fat, b"x\n"),
            ("vendor/a/b.go", K::Fat, b"b\n"),
            ("pkg/vendor/vendor.go", K::Fat, b"v\n"),
            ("pkg/vendor/a/b.go", K::Fat, b"b\n"),
            ("a/vendor/b/vendor/c.go", K::Fat, b"c\n"),
            ("vendored.go", K::Fat, b"v\n"),
        ]
    };
    let old = ["go.mod", "vendor/modules.txt", "vendor/x.go", "vendored.go"];
    let new = [
        "go.mod",
        "pkg/vendor/vendor.go",
        "vendor/x.go",
        "vendored.go",
    ];
    let cases: &[(&[u8], &[&str])] = &[
        (b"module example.com/m\n", &old),
        (b"module example.com/m\ngo 1.13\n", &old),
        (b"module example.com/m\ngo 1.23.9\n", &old),
        (b"module example.com/m\ngo 1.24\n", &new),
        (b"module example.com/m\ngo 1.24rc1\n", &new),
        (b"module example.com/m\ngo 1.25.0 // comment\n", &new),
        // ParseLax fails on the whole file, so there is no go version.
        (b"module example.com/m\ngo 1.25.0\nrequire bad\n", &old),
        (b"module example.com/m\ngo 1.25.0\n/* no */\n", &old),
    ];
    for (gomod, want) in cases {
        let gomod: &'static [u8] = gomod;
        let zip = archive(&files(gomod));
        let mut want = want.to_vec();
        want.sort();
        assert_eq!(kept(&zip, ""), want, "{:?}", String::from_utf8_lossy(gomod));
    }
}

#[test]
fn go_line_is_read_from_the_selected_root_only() {
    // In a subdir build the module's own go.mod decides, not the repository root's.
    let zip = archive(&[
        ("go.mod", K::Fat, b"module example.com/root\ngo 1.13\n"),
        ("sub/go.mod", K::Fat, b"module example.com/m\ngo 1.24\n"),
        ("sub/vendor/modules.txt", K::Fat, b"m\n"),
    ]);
    assert_eq!(kept(&zip, "sub"), ["go.mod"]);
    // A symlinked go.mod is neither read nor kept.
    let zip = archive(&[
        ("real.mod", K::Fat, b"module example.com/m\ngo 1.24\n"),
        ("go.mod", K::Link, b"real.mod"),
        ("vendor/modules.txt", K::Fat, b"m\n"),
    ]);
    assert_eq!(kept(&zip, ""), ["real.mod", "vendor/modules.txt"]);
}

#[test]
fn nested_modules_are_left_out() {
    let zip = archive(&[
        ("go.mod", K::Fat, b"module example.com/m\n"),
        ("a.go", K::Fat, b"package a\n"),
        ("sub/go.mod", K::Fat, b"module example.com/m/sub\n"),
        ("sub/x.go", K::Fat, b"package x\n"),
        ("sub/deep/y.go", K::Fat, b"package y\n"),
        ("cap/Go.Mod", K::Fat, b"module example.com/m/cap\n"),
        ("cap/z.go", K::Fat, b"package z\n"),
        ("linked/go.mod", K::Link, b"../go.mod"),
        ("linked/w.go", K::Fat, b"package w\n"),
        ("go.mod.d/v.go", K::Fat, b"package v\n"),
        ("subx/u.go", K::Fat, b"package u\n"),
    ]);
    let built = create(&zip, "", None).unwrap();
    assert_eq!(
        built.names,
        [
            "a.go",
            "go.mod",
            "go.mod.d/v.go",
            "linked/w.go",
            "subx/u.go"
        ],
        "a symlinked go.mod does not make a nested module"
    );
    assert_eq!(built.created.omitted, 6);
}

#[test]
fn invalid_files_fail_the_whole_zip_and_are_all_listed() {
    let zip = archive(&[
        ("ok.go", K::Fat, b"package ok\n"),
        ("aux.go", K::Fat, b"x"),
        ("a:b", K::Fat, b"x"),
        ("Go.mod", K::Fat, b"module example.com/m\n"),
        (
            "vendor/a/aux.go",
            K::Fat,
            b"omitted before the path check\n",
        ),
    ]);
    let err = failure(&zip, "", None);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].starts_with("aux.go: malformed file path \"aux.go\""),
        "{err}"
    );
    assert!(
        lines[1].starts_with("a:b: malformed file path \"a:b\""),
        "{err}"
    );
    assert_eq!(lines[2], "Go.mod: go.mod files must have lowercase names");
}

#[test]
fn collisions_include_omitted_files_and_directories() {
    // The collision check runs before symlinks are omitted.
    let zip = archive(&[("a.go", K::Fat, b"x"), ("A.go", K::Link, b"a.go")]);
    assert_eq!(
        failure(&zip, "", None),
        "A.go: case-insensitive file name collision: \"a.go\" and \"A.go\""
    );
    let zip = archive(&[("Dir/a.go", K::Fat, b"x"), ("dir/b.go", K::Fat, b"y")]);
    assert_eq!(
        failure(&zip, "", None),
        "dir/b.go: case-insensitive file name collision: \"Dir\" and \"dir\""
    );
    let zip = archive(&[("x", K::Fat, b"x"), ("x/y.go", K::Fat, b"y")]);
    assert_eq!(
        failure(&zip, "", None),
        "x/y.go: entry \"x\" is both a file and a directory"
    );
    // Unicode simple folding: K (Kelvin sign) and k.
    let zip = archive(&[("k.go", K::Fat, b"x"), ("\u{212a}.go", K::Fat, b"y")]);
    assert!(failure(&zip, "", None).contains("case-insensitive file name collision"));
    // An MS-DOS directory without a slash is a directory for the check, then omitted.
    let zip = archive(&[("d", K::FatDir, b""), ("d/x.go", K::Fat, b"x")]);
    assert_eq!(kept(&zip, ""), ["d/x.go"]);
}

#[test]
fn names_that_are_not_utf8() {
    let mut zip = archive(&[("@@.go", K::Fat, b"x"), ("vendor/a/@@.go", K::Fat, b"y")]);
    replace_all(&mut zip, b"/@@.go", b"/\xff\xfe.go");
    assert_eq!(
        failure(&zip, "", None),
        "\u{fffd}\u{fffd}.go: malformed file path \"\\xff\\xfe.go\": invalid UTF-8"
    );
    let mut zip = archive(&[("ok.go", K::Fat, b"x"), ("vendor/a/@@.go", K::Fat, b"y")]);
    replace_all(&mut zip, b"/@@.go", b"/\xff\xfe.go");
    assert_eq!(kept(&zip, ""), ["ok.go"], "omitted before the UTF-8 check");
}

#[test]
fn unclean_and_absolute_paths_are_invalid() {
    let zip = raw_archive(&[("p/", K::Dir, b""), ("p/a//b.go", K::File, b"x")]);
    assert_eq!(failure(&zip, "", None), "a//b.go: file path is not clean");
    let zip = raw_archive(&[("p/", K::Dir, b""), ("p//abs.go", K::File, b"x")]);
    assert_eq!(
        failure(&zip, "", None),
        "/abs.go: file path is not relative"
    );
    let zip = raw_archive(&[("p/", K::Dir, b""), ("p/a/../b.go", K::File, b"x")]);
    assert_eq!(failure(&zip, "", None), "a/../b.go: file path is not clean");
}

#[test]
fn each_path_is_reported_once() {
    let files = [
        candidate(b"aux.go", FileKind::Regular, 1),
        candidate(b"aux.go", FileKind::Regular, 1),
        candidate(b"vendor/a/b.go", FileKind::Regular, 1),
        candidate(b"vendor/a/b.go", FileKind::Regular, 1),
    ];
    let err = select::select(&files, None, &CreateLimits::default()).unwrap_err();
    assert_eq!(err.to_string().lines().count(), 1, "{err}");
}

// === modes ===

#[test]
fn file_kinds_follow_go_file_header_mode() {
    let unix = |mode: u32| mode << 16;
    let cases: &[(u16, u32, FileKind)] = &[
        (0x0014, 0, FileKind::Regular),    // git: FAT, no attributes
        (0x0014, 0x10, FileKind::Dir),     // git: directories
        (0x0014, 0x11, FileKind::Dir),     // read-only directory
        (0x0014, 0x01, FileKind::Regular), // read-only file
        (0x0b14, 0x10, FileKind::Dir),     // NTFS
        (0x0e14, 0x10, FileKind::Dir),     // VFAT
        (0x0a14, 0x10, FileKind::Regular), // another creator: mode 0
        (0x0317, unix(0o100755), FileKind::Regular),
        (0x0317, unix(0o120777), FileKind::Symlink),
        (0x1317, unix(0o120777), FileKind::Symlink), // macOS
        (0x0317, unix(0o040755), FileKind::Dir),
        (0x0317, unix(0o010644), FileKind::Other),
        (0x0317, unix(0o140644), FileKind::Other),
        (0x0317, unix(0o060644), FileKind::Other),
        (0x0317, unix(0o020644), FileKind::Other),
        (0x0317, unix(0o000644), FileKind::Regular), // no type bits
        (0x0317, unix(0o030644), FileKind::Regular), // unknown type
        (0x0317, 0x10, FileKind::Regular),           // Unix creator: DOS bits ignored
    ];
    for (made_by, attrs, want) in cases {
        assert_eq!(
            file_kind(*made_by, *attrs),
            *want,
            "{made_by:#x} {attrs:#x}"
        );
    }
}
