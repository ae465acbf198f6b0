//! Unit tests for module zip checking and hashing: the PROTOCOL.md §4 vectors, and zips built in
//! memory (stored and deflated), some patched byte-wise to lie about sizes, names or methods.

use std::io::{Cursor, Read, Seek, SeekFrom, Write};

use sha2::{Digest, Sha256};
use zip::write::{FullFileOptions, SimpleFileOptions};
use zip::{CompressionMethod, ZipWriter};

use super::check::Reading;
use super::names::is_clean;
use super::*;
use crate::module::ModuleError;

const MODULE: &str = "example.com/hello";
const VERSION: &str = "v1.0.0";
const PREFIX: &str = "example.com/hello@v1.0.0/";
const GOMOD: &[u8] = b"module example.com/hello\n";
const HELLO: &[u8] = b"package hello\n";
/// PROTOCOL.md §4: go.mod + hello.go.
const HELLO_H1: &str = "h1:v/u/g2S1hZaWZImyAVXAGG42N1pWX/UTgAYidytBT84=";
/// PROTOCOL.md §4: the same plus the directory entry `example.com/hello@v1.0.0/`.
const HELLO_WITH_DIR_H1: &str = "h1:eE6bwlwZ+8S14Du75iEpnYFMKrqOAkUshJMUr6PB2R4=";

/// A list of `(name, content)` entries.
type Entries<'a> = &'a [(&'a str, &'a [u8])];

// === helpers ===

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Builds a zip; names ending in `/` become directory entries.
fn build(entries: &[(&str, &[u8])], method: CompressionMethod) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(method);
    for (name, data) in entries {
        if name.ends_with('/') && data.is_empty() {
            w.add_directory(*name, opts).unwrap();
        } else {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

/// Entries with every name under the hello module prefix.
fn prefixed<'a>(entries: &[(&str, &'a [u8])]) -> Vec<(String, &'a [u8])> {
    entries
        .iter()
        .map(|(n, d)| (format!("{PREFIX}{n}"), *d))
        .collect()
}

fn build_prefixed(entries: &[(&str, &[u8])], method: CompressionMethod) -> Vec<u8> {
    let owned = prefixed(entries);
    let refs: Vec<(&str, &[u8])> = owned.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    build(&refs, method)
}

fn check(zip: &[u8]) -> Result<ZipSummary, ZipError> {
    check_zip(Cursor::new(zip), MODULE, VERSION, &ZipLimits::default())
}

fn check_with(zip: &[u8], limits: &ZipLimits) -> Result<ZipSummary, ZipError> {
    check_zip(Cursor::new(zip), MODULE, VERSION, limits)
}

/// Offsets of the local (`central == false`) and central headers of entry `name`.
fn headers(zip: &[u8], name: &str) -> Vec<(usize, bool)> {
    let mut found = Vec::new();
    for i in 0..zip.len().saturating_sub(46) {
        let (central, name_at) = match &zip[i..i + 4] {
            b"PK\x01\x02" => (true, 46),
            b"PK\x03\x04" => (false, 30),
            _ => continue,
        };
        let len_at = if central { 28 } else { 26 };
        let len = u16::from_le_bytes([zip[i + len_at], zip[i + len_at + 1]]) as usize;
        if zip.get(i + name_at..i + name_at + len) == Some(name.as_bytes()) {
            found.push((i, central));
        }
    }
    assert!(!found.is_empty(), "no headers for {name}");
    found
}

/// Overwrites the declared uncompressed size of `name` in both headers.
fn patch_size(zip: &mut [u8], name: &str, size: u32) {
    for (at, central) in headers(zip, name) {
        let off = at + if central { 24 } else { 22 };
        zip[off..off + 4].copy_from_slice(&size.to_le_bytes());
    }
}

/// Overwrites the compression method of `name` in both headers.
fn patch_method(zip: &mut [u8], name: &str, method: u16) {
    for (at, central) in headers(zip, name) {
        let off = at + if central { 10 } else { 8 };
        zip[off..off + 2].copy_from_slice(&method.to_le_bytes());
    }
}

/// Replaces every occurrence of `from` with the same-length `to`.
fn replace_all(zip: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut n = 0;
    for i in 0..=zip.len() - from.len() {
        if &zip[i..i + from.len()] == from {
            zip[i..i + from.len()].copy_from_slice(to);
            n += 1;
        }
    }
    assert!(n > 0);
}

/// Plain CRC-32 (IEEE), for the Unicode path extra field test.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A `Read + Seek` that counts the bytes read from the underlying zip.
struct Counting {
    inner: Cursor<Vec<u8>>,
    read: u64,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl Seek for Counting {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

// === hashes ===

#[test]
fn gomod_hash_vectors() {
    let cases: &[(&[u8], &str)] = &[
        (GOMOD, "h1:fpu2YBs8Cn+uPELS7pdczZmF9hlK1PibTkwahffYMfo="),
        (b"", "h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY="),
        (
            b"module github.com/pkg/errors\n",
            "h1:bwawxfHBFNV+L2hUp1rHADufV3IMtnDRdf1r5NINEl0=",
        ),
    ];
    for (content, want) in cases {
        assert_eq!(
            hash_gomod(content),
            *want,
            "{:?}",
            String::from_utf8_lossy(content)
        );
    }
}

#[test]
fn hash_files_vectors_and_order() {
    let gomod = format!("{PREFIX}go.mod");
    let hello = format!("{PREFIX}hello.go");
    let two = [
        (hello.as_str(), sha256(HELLO)),
        (gomod.as_str(), sha256(GOMOD)),
    ];
    assert_eq!(
        hash_files(two).unwrap(),
        HELLO_H1,
        "input order must not matter"
    );
    let three = [
        (gomod.as_str(), sha256(GOMOD)),
        (PREFIX, sha256(b"")),
        (hello.as_str(), sha256(HELLO)),
    ];
    assert_eq!(hash_files(three).unwrap(), HELLO_WITH_DIR_H1);
    assert_eq!(
        hash_files([("go.mod", sha256(GOMOD))]).unwrap(),
        hash_gomod(GOMOD)
    );
    assert_eq!(
        hash_files([]).unwrap(),
        "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
    let err = hash_files([("a\nb", sha256(b""))]).unwrap_err();
    assert!(
        matches!(err, ZipError::NewlineInName { ref name } if name == "a\nb"),
        "{err}"
    );
}

#[test]
fn empty_sha256_constant() {
    assert_eq!(super::hash::EMPTY_SHA256, sha256(b""));
}

// === good zips ===

#[test]
fn good_zips_hash_like_go() {
    let cases: &[(Entries, &str)] = &[
        (&[("go.mod", GOMOD), ("hello.go", HELLO)], HELLO_H1),
        (&[("hello.go", HELLO), ("go.mod", GOMOD)], HELLO_H1),
        (
            &[("", b""), ("go.mod", GOMOD), ("hello.go", HELLO)],
            HELLO_WITH_DIR_H1,
        ),
    ];
    for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
        for (entries, want) in cases {
            let zip = build_prefixed(entries, method);
            let sum = check(&zip).unwrap_or_else(|e| panic!("{method:?} {entries:?}: {e}"));
            assert_eq!(sum.h1, *want, "{method:?} {entries:?}");
            assert_eq!(sum.files, 2);
            assert_eq!(sum.uncompressed_bytes, (GOMOD.len() + HELLO.len()) as u64);
            assert_eq!(sum.gomod.as_deref(), Some(GOMOD));
        }
    }
}

#[test]
fn directory_entries_are_hashed_as_empty_files() {
    let zip = build_prefixed(
        &[("sub/", b""), ("sub/x.go", b"package sub\n")],
        CompressionMethod::Deflated,
    );
    let sum = check(&zip).unwrap();
    let dir = format!("{PREFIX}sub/");
    let file = format!("{PREFIX}sub/x.go");
    let want = hash_files([
        (dir.as_str(), sha256(b"")),
        (file.as_str(), sha256(b"package sub\n")),
    ])
    .unwrap();
    assert_eq!(sum.h1, want);
    assert_eq!((sum.files, sum.gomod), (1, None));
}

#[test]
fn accepted_edge_cases() {
    let big = vec![b'x'; 3000];
    let cases: &[(&str, Entries)] = &[
        ("empty zip", &[]),
        ("directory named go.mod", &[("go.mod/a.go", b"package a\n")]),
        ("unicode letters", &[("ünïcödé/日本.go", b"x")]),
        (
            "LICENSE below root is not limited",
            &[("sub/LICENSE", &big)],
        ),
        (
            "dotted names",
            &[(".github/x.yml", b""), ("a..b", b""), ("a/.b", b"")],
        ),
        (
            "allowed punctuation",
            &[("a b!#$%&()+,-=@[]^_{}~.txt", b"")],
        ),
        (
            "same directory many times",
            &[("a/b/c.go", b""), ("a/b/d.go", b""), ("a/e.go", b"")],
        ),
        (
            "vendor and testdata",
            &[("vendor/x/y.go", b""), ("testdata/go.sum", b"")],
        ),
    ];
    let limits = ZipLimits {
        max_license_bytes: 1000,
        ..ZipLimits::default()
    };
    for (what, entries) in cases {
        let zip = build_prefixed(entries, CompressionMethod::Deflated);
        let sum = check_with(&zip, &limits).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(sum.files, entries.len(), "{what}");
    }
}

#[test]
fn prepended_data_is_tolerated() {
    let mut zip = b"#!/bin/sh\nexit 0\n".to_vec();
    zip.extend(build_prefixed(
        &[("go.mod", GOMOD), ("hello.go", HELLO)],
        CompressionMethod::Stored,
    ));
    assert_eq!(check(&zip).unwrap().h1, HELLO_H1);
}

#[test]
fn incompatible_version_is_accepted() {
    let zip = build(
        &[("example.com/m@v2.0.0+incompatible/m.go", b"package m\n")],
        CompressionMethod::Deflated,
    );
    let sum = check_zip(
        Cursor::new(&zip),
        "example.com/m",
        "v2.0.0+incompatible",
        &ZipLimits::default(),
    );
    assert_eq!(sum.unwrap().files, 1);
}

#[test]
fn default_limits_are_go_limits() {
    let l = ZipLimits::default();
    assert_eq!(l.max_zip_bytes, 500 * 1024 * 1024);
    assert_eq!(l.max_uncompressed_bytes, 500 * 1024 * 1024);
    assert_eq!(l.max_gomod_bytes, 16 * 1024 * 1024);
    assert_eq!(l.max_license_bytes, 16 * 1024 * 1024);
}

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

// === helpers of the checker ===

#[test]
fn clean_paths_match_go_path_clean() {
    let cases: &[(&str, bool)] = &[
        ("a", true),
        ("a/b", true),
        ("..", true),
        ("../a", true),
        ("../../a", true),
        ("/", true),
        (".", true),
        ("/a", true),
        ("", false),
        ("a/", false),
        ("a//b", false),
        ("./a", false),
        ("a/.", false),
        ("a/..", false),
        ("a/../b", false),
        ("/..", false),
        ("/../a", false),
        ("//a", false),
        ("a/./b", false),
    ];
    for (path, want) in cases {
        assert_eq!(is_clean(path), *want, "{path:?}");
    }
}

#[test]
fn error_messages_are_lowercase_and_name_the_entry() {
    let zip = build(
        &[("example.com/hello@v1.0.0/sub/go.mod", b"x")],
        CompressionMethod::Stored,
    );
    let msg = check(&zip).unwrap_err().to_string();
    assert_eq!(
        msg,
        "zip entry \"example.com/hello@v1.0.0/sub/go.mod\": go.mod file not in module root directory"
    );
}
