//! Zips the go command would refuse: bad names, bad module versions, sizes, broken archives.

use std::io::Cursor;

use zip::write::FullFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::*;
use crate::module::ModuleError;

// === rejected names ===

/// The variant a bad-name case must produce.
#[derive(Debug, Clone, Copy)]
enum Want {
    MissingPrefix,
    PrefixWithoutSlash,
    NotClean,
    InvalidFilePath,
    CaseCollision,
    FileAndDirectory,
    NestedGoMod,
    GoModCase,
}

fn matches_want(err: &ZipError, want: Want) -> bool {
    match want {
        Want::MissingPrefix => matches!(err, ZipError::MissingPrefix { .. }),
        Want::PrefixWithoutSlash => matches!(err, ZipError::PrefixWithoutSlash { .. }),
        Want::NotClean => matches!(err, ZipError::NotClean { .. }),
        Want::InvalidFilePath => matches!(err, ZipError::InvalidFilePath { .. }),
        Want::CaseCollision => matches!(err, ZipError::CaseCollision { .. }),
        Want::FileAndDirectory => matches!(err, ZipError::FileAndDirectory { .. }),
        Want::NestedGoMod => matches!(err, ZipError::NestedGoMod { .. }),
        Want::GoModCase => matches!(err, ZipError::GoModCase { .. }),
    }
}

#[test]
fn bad_names_are_rejected() {
    use Want::*;
    let cases: &[(&[&str], Want)] = &[
        (&["example.com/other@v1.0.0/go.mod"], MissingPrefix),
        (&["example.com/hello@v1.0.1/go.mod"], MissingPrefix),
        (&["example.com/hello/go.mod"], MissingPrefix),
        (&["go.mod"], MissingPrefix),
        (&["example.com/hello@v1.0.0"], PrefixWithoutSlash),
        (&["example.com/hello@v1.0.0/../x.go"], InvalidFilePath),
        (&["example.com/hello@v1.0.0/a/../x.go"], NotClean),
        (&["example.com/hello@v1.0.0/./x.go"], NotClean),
        (&["example.com/hello@v1.0.0/a//x.go"], NotClean),
        (&["example.com/hello@v1.0.0/a/."], NotClean),
        (&["example.com/hello@v1.0.0//x.go"], InvalidFilePath),
        (&["example.com/hello@v1.0.0/..."], InvalidFilePath),
        (&["example.com/hello@v1.0.0/aux.go"], InvalidFilePath),
        (&["example.com/hello@v1.0.0/sub/COM1/x.go"], InvalidFilePath),
        (&["example.com/hello@v1.0.0/a:b"], InvalidFilePath),
        (&["example.com/hello@v1.0.0/x*y"], InvalidFilePath),
        (&["example.com/hello@v1.0.0/\"q\""], InvalidFilePath),
        (&["example.com/hello@v1.0.0/a\\b"], InvalidFilePath),
        (&["example.com/hello@v1.0.0/x."], InvalidFilePath),
        (&["example.com/hello@v1.0.0/e\u{301}.go"], InvalidFilePath),
        (
            &[
                "example.com/hello@v1.0.0/README",
                "example.com/hello@v1.0.0/readme",
            ],
            CaseCollision,
        ),
        (
            &[
                "example.com/hello@v1.0.0/k.go",
                "example.com/hello@v1.0.0/\u{212A}.go",
            ],
            CaseCollision,
        ),
        (
            &[
                "example.com/hello@v1.0.0/Foo/a.go",
                "example.com/hello@v1.0.0/foo/b.go",
            ],
            CaseCollision,
        ),
        (
            &[
                "example.com/hello@v1.0.0/foo/",
                "example.com/hello@v1.0.0/FOO/",
            ],
            CaseCollision,
        ),
        (
            &["example.com/hello@v1.0.0/ß", "example.com/hello@v1.0.0/ẞ"],
            CaseCollision,
        ),
        (
            &[
                "example.com/hello@v1.0.0/a",
                "example.com/hello@v1.0.0/a/b.go",
            ],
            FileAndDirectory,
        ),
        (
            &[
                "example.com/hello@v1.0.0/a/b.go",
                "example.com/hello@v1.0.0/a",
            ],
            FileAndDirectory,
        ),
        (
            &["example.com/hello@v1.0.0/a", "example.com/hello@v1.0.0/a/"],
            FileAndDirectory,
        ),
        (&["example.com/hello@v1.0.0/sub/go.mod"], NestedGoMod),
        (&["example.com/hello@v1.0.0/sub/GO.MOD"], NestedGoMod),
        (&["example.com/hello@v1.0.0/a/b/Go.Mod"], NestedGoMod),
        (&["example.com/hello@v1.0.0/GO.MOD"], GoModCase),
        (&["example.com/hello@v1.0.0/go.MOD"], GoModCase),
    ];
    for (names, want) in cases {
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (*n, &b"x"[..])).collect();
        let zip = build(&entries, CompressionMethod::Stored);
        let err = check(&zip).expect_err(&format!("{names:?} should be rejected"));
        assert!(
            matches_want(&err, *want),
            "{names:?}: want {want:?}, got {err:?}"
        );
        let last = names.last().unwrap();
        assert!(
            err.to_string().contains(&format!("{last:?}")),
            "{names:?}: message {err} should name the entry"
        );
    }
}

#[test]
fn duplicate_entries_are_rejected() {
    // The zip writer refuses duplicates, so write two names and make them equal afterwards.
    let mut zip = build_prefixed(
        &[("a.go", b"one"), ("b.go", b"two")],
        CompressionMethod::Stored,
    );
    replace_all(&mut zip, b"@v1.0.0/b.go", b"@v1.0.0/a.go");
    let err = check(&zip).unwrap_err();
    assert!(
        matches!(err, ZipError::DuplicateFile { ref path, .. } if path == "a.go"),
        "{err:?}"
    );
}

#[test]
fn non_utf8_names_are_rejected() {
    let mut zip = build_prefixed(&[("a\u{e9}.go", b"x")], CompressionMethod::Stored);
    replace_all(&mut zip, "a\u{e9}.go".as_bytes(), b"a\xff\xfe.go");
    let err = check(&zip).unwrap_err();
    assert!(matches!(err, ZipError::NonUtf8Name { .. }), "{err:?}");
}

#[test]
fn unicode_path_extra_field_cannot_hide_the_real_name() {
    // The zip crate would report the extra field's name; Go (and the hash) use the stored one.
    let stored = format!("{PREFIX}a.go");
    let shown = format!("{PREFIX}b.go");
    let mut field = vec![1u8];
    field.extend(crc32(stored.as_bytes()).to_le_bytes());
    field.extend(shown.as_bytes());
    let mut opts = FullFileOptions::default().compression_method(CompressionMethod::Stored);
    opts.add_extra_data(0x7676, field.into_boxed_slice(), false)
        .unwrap();
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file(stored.as_str(), opts).unwrap();
    w.write_all(b"package a\n").unwrap();
    let mut zip = w.finish().unwrap().into_inner();
    replace_all(&mut zip, &[0x76, 0x76], &[0x75, 0x70]);
    let err = check(&zip).unwrap_err();
    assert!(
        matches!(err, ZipError::InconsistentDirectory { .. }),
        "{err:?}"
    );
}

// === module and version ===

#[test]
fn bad_module_or_version_is_rejected_before_reading() {
    let zip = build_prefixed(&[("go.mod", GOMOD)], CompressionMethod::Stored);
    let cases: &[(&str, &str)] = &[
        ("Example.com/hello", "v1.0.0"),
        ("example.com/hello", "v1.0"),
        ("example.com/hello", "v1.0.0+meta"),
        ("example.com/hello", "master"),
        ("example.com/hello", "v2.0.0"),
        ("example.com/hello/v2", "v1.0.0"),
        ("example.com/hello", ""),
    ];
    for (module, version) in cases {
        let err = check_zip(Cursor::new(&zip), module, version, &ZipLimits::default()).unwrap_err();
        assert!(
            matches!(err, ZipError::Module(_)),
            "{module}@{version}: {err:?}"
        );
    }
    let err = check_zip(Cursor::new(&zip), MODULE, "v1.0", &ZipLimits::default()).unwrap_err();
    assert!(
        matches!(err, ZipError::Module(ModuleError::NotCanonical { ref canonical, .. }) if canonical == "v1.0.0"),
        "{err:?}"
    );
}

// === sizes ===

#[test]
fn size_limits() {
    let limits = ZipLimits {
        max_zip_bytes: 1 << 20,
        max_uncompressed_bytes: 10_000,
        max_gomod_bytes: 100,
        max_license_bytes: 200,
    };
    let big_gomod = [b'm'; 101];
    let big_license = [b'l'; 201];
    let half = vec![b'x'; 5_000];
    let more = vec![b'x'; 5_001];
    let err = check_with(
        &build_prefixed(&[("go.mod", &big_gomod)], CompressionMethod::Deflated),
        &limits,
    );
    assert!(
        matches!(
            err,
            Err(ZipError::GoModTooLarge {
                size: 101,
                limit: 100,
                ..
            })
        ),
        "{err:?}"
    );
    let err = check_with(
        &build_prefixed(&[("LICENSE", &big_license)], CompressionMethod::Deflated),
        &limits,
    );
    assert!(
        matches!(
            err,
            Err(ZipError::LicenseTooLarge {
                size: 201,
                limit: 200,
                ..
            })
        ),
        "{err:?}"
    );
    let err = check_with(
        &build_prefixed(&[("a", &half), ("b", &more)], CompressionMethod::Deflated),
        &limits,
    );
    assert!(
        matches!(err, Err(ZipError::UncompressedTooLarge { limit: 10_000 })),
        "{err:?}"
    );
    let ok = check_with(
        &build_prefixed(&[("a", &half), ("b", &half)], CompressionMethod::Deflated),
        &limits,
    );
    assert_eq!(ok.unwrap().uncompressed_bytes, 10_000);
    let zip = build_prefixed(&[("go.mod", GOMOD)], CompressionMethod::Stored);
    let tiny = ZipLimits {
        max_zip_bytes: zip.len() as u64 - 1,
        ..ZipLimits::default()
    };
    let err = check_with(&zip, &tiny).unwrap_err();
    assert!(matches!(err, ZipError::ZipTooLarge { .. }), "{err:?}");
    let exact = ZipLimits {
        max_zip_bytes: zip.len() as u64,
        ..ZipLimits::default()
    };
    assert!(check_with(&zip, &exact).is_ok());
}

#[test]
fn honest_bomb_is_refused_from_the_headers_alone() {
    let limits = ZipLimits {
        max_uncompressed_bytes: 1 << 20,
        ..ZipLimits::default()
    };
    for size in [2 << 20, 64 << 20] {
        let zeros = vec![0u8; size];
        let zip = build_prefixed(
            &[("go.mod", GOMOD), ("zeros", &zeros)],
            CompressionMethod::Deflated,
        );
        let compressed = zip.len() as u64;
        let mut reader = Counting {
            inner: Cursor::new(zip),
            read: 0,
        };
        let err = check_zip(&mut reader, MODULE, VERSION, &limits).unwrap_err();
        assert!(
            matches!(err, ZipError::UncompressedTooLarge { limit } if limit == 1 << 20),
            "{err:?}"
        );
        if size == 64 << 20 {
            // Only the end of the file (end record, central directory) was read, not the data.
            assert!(
                reader.read < compressed / 4,
                "read {} of {compressed} bytes",
                reader.read
            );
        }
    }
}

#[test]
fn lying_bomb_stops_after_its_declared_size() {
    let zeros = vec![0u8; 64 << 20];
    let name = format!("{PREFIX}zeros");
    let mut zip = build(&[(name.as_str(), &zeros)], CompressionMethod::Deflated);
    patch_size(&mut zip, &name, 1000);
    let compressed = zip.len() as u64;
    let mut reader = Counting {
        inner: Cursor::new(zip),
        read: 0,
    };
    let err = check_zip(&mut reader, MODULE, VERSION, &ZipLimits::default()).unwrap_err();
    assert!(
        matches!(err, ZipError::LargerThanDeclared { declared: 1000, .. }),
        "{err:?}"
    );
    assert!(
        reader.read < compressed / 4,
        "read {} of {compressed} bytes",
        reader.read
    );
}

#[test]
fn running_total_stops_an_endless_stream() {
    let mut reading = Reading::new(1 << 20);
    let mut endless = std::io::repeat(0);
    let err = reading
        .digest(&mut endless, "endless", u64::MAX, None)
        .unwrap_err();
    assert!(
        matches!(err, ZipError::UncompressedTooLarge { limit } if limit == 1 << 20),
        "{err:?}"
    );
    assert!(
        reading.used() <= (1 << 20) + 64 * 1024,
        "read {} bytes",
        reading.used()
    );
}

#[test]
fn actual_size_must_equal_declared_size() {
    for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
        let name = format!("{PREFIX}hello.go");
        let mut zip = build(&[(name.as_str(), HELLO)], method);
        patch_size(&mut zip, &name, HELLO.len() as u32 - 1);
        let err = check(&zip).unwrap_err();
        assert!(
            matches!(err, ZipError::LargerThanDeclared { declared: 13, .. }),
            "{method:?}: {err:?}"
        );

        let mut zip = build(&[(name.as_str(), HELLO)], method);
        patch_size(&mut zip, &name, HELLO.len() as u32 + 1);
        let err = check(&zip).unwrap_err();
        assert!(
            matches!(
                err,
                ZipError::SmallerThanDeclared {
                    declared: 15,
                    actual: 14,
                    ..
                }
            ),
            "{method:?}: {err:?}"
        );
    }
}

// === broken archives ===

#[test]
fn truncated_zips_are_rejected() {
    let zip = build_prefixed(
        &[("go.mod", GOMOD), ("hello.go", HELLO)],
        CompressionMethod::Deflated,
    );
    for keep in [0, 4, zip.len() / 2, zip.len() - 30, zip.len() - 1] {
        let err = check(&zip[..keep]).unwrap_err();
        assert!(
            matches!(err, ZipError::Malformed(_) | ZipError::Io(_)),
            "kept {keep}: {err:?}"
        );
    }
}

#[test]
fn corrupt_data_is_rejected() {
    for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
        let data = vec![b'a'; 4000];
        let mut zip = build_prefixed(&[("a.txt", &data)], method);
        let at = headers(&zip, &format!("{PREFIX}a.txt"))[0].0 + 30 + PREFIX.len() + 5 + 2;
        zip[at] ^= 0x55;
        let err = check(&zip).unwrap_err();
        assert!(
            matches!(err, ZipError::ReadEntry { .. }),
            "{method:?}: {err:?}"
        );
    }
}

#[test]
fn unsupported_compression_is_rejected() {
    let name = format!("{PREFIX}hello.go");
    let mut zip = build(&[(name.as_str(), HELLO)], CompressionMethod::Deflated);
    patch_method(&mut zip, &name, 12);
    let err = check(&zip).unwrap_err();
    assert!(
        matches!(err, ZipError::UnsupportedCompression { method: 12, .. }),
        "{err:?}"
    );
}

#[test]
fn directory_entries_with_data_are_rejected() {
    let zip = build_prefixed(&[("sub/", b"data")], CompressionMethod::Stored);
    let err = check(&zip).unwrap_err();
    assert!(matches!(err, ZipError::DirectoryWithData { .. }), "{err:?}");
}
