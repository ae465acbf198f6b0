//! Unit tests for module zip checking and hashing: the PROTOCOL.md §4 vectors, and zips built in
//! memory (stored and deflated), some patched byte-wise to lie about sizes, names or methods.
//! Accepted zips and the shared helpers are here, rejected ones in [`reject`]. Verdicts and hashes
//! were cross-checked against the go command's `zip.CheckZip`, `zip.Unzip` and `dirhash.HashZip`.

mod create;
mod reject;

use std::io::{Cursor, Read, Seek, SeekFrom, Write};

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::check::Reading;
use super::names::is_clean;
use super::*;

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

/// A zip written by the go command's own `zip.CreateFromDir` (Deflate, data descriptors, a UTF-8
/// name): `go.mod`, `hello.go`, `LICENSE`, `empty.txt`, `sub/ünï.go`. Hash from `dirhash.HashZip`.
const GO_MADE_ZIP: &[u8] = include_bytes!("go_made.zip");

#[test]
fn zip_made_by_go_is_accepted_with_its_hash() {
    let sum = check(GO_MADE_ZIP).unwrap();
    assert_eq!(sum.h1, "h1:cnv54c9bCRQn9zHicCYGFJkRrY1CBYz86H4gnapzGcs=");
    assert_eq!(sum.files, 5);
    assert_eq!(
        sum.gomod.as_deref(),
        Some(&b"module example.com/hello\n\ngo 1.21\n"[..])
    );
    assert_eq!(sum.uncompressed_bytes, 34 + 14 + 13 + 12);
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
