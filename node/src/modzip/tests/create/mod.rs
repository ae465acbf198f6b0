//! Tests for building module zips from `git archive` output: a real git archive and x/mod's
//! `zip/testdata/create` vectors with the go command's hashes, archives shaped like git's
//! (directory entries, FAT and Unix modes, symlinks), limits, and errors. Every zip built is
//! run through [`check_zip`], so the go command would accept it, and hashes come from there.
//! The selection rules one by one are in [`rules`].

mod rules;

use std::io::{Cursor, Read, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::{headers, replace_all};
use crate::modzip::create::{file_kind, Source};
use crate::modzip::select::{self, Candidate, FileKind};
use crate::modzip::*;

const MODULE: &str = "example.com/m";
const VERSION: &str = "v1.0.0";

// === helpers ===

/// How an archive entry is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum K {
    /// A regular file (Unix mode 0644).
    File,
    /// A regular file the way git writes non-executables: FAT creator, no attributes.
    Fat,
    /// An executable (Unix mode 0755).
    Exec,
    /// A symlink (Unix S_IFLNK); the content is the target.
    Link,
    /// A directory entry; the name ends in `/`.
    Dir,
    /// An entry without a trailing slash but with the MS-DOS directory attribute.
    FatDir,
    /// A named pipe (Unix S_IFIFO).
    Fifo,
}

/// Builds a zip with these entries, in order, named exactly as given.
fn raw_archive(entries: &[(&str, K, &[u8])]) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, kind, data) in entries {
        match kind {
            K::Dir => w.add_directory(*name, opts).unwrap(),
            K::Link => {
                let target = std::str::from_utf8(data).unwrap();
                w.add_symlink(*name, target, opts).unwrap();
            }
            _ => {
                let mode = if *kind == K::Exec { 0o755 } else { 0o644 };
                w.start_file(*name, opts.unix_permissions(mode)).unwrap();
                w.write_all(data).unwrap();
            }
        }
    }
    let mut zip = w.finish().unwrap().into_inner();
    for (name, kind, _) in entries {
        match kind {
            K::Fat => patch_mode(&mut zip, name, 0x0014, 0),
            K::FatDir => patch_mode(&mut zip, name, 0x0014, 0x10),
            // The zip crate only writes regular files, directories and symlinks.
            K::Fifo => patch_mode(&mut zip, name, 0x0317, 0o010644 << 16),
            _ => {}
        }
    }
    zip
}

/// Like [`raw_archive`], with every name under `prefix/` and a leading `prefix/` entry.
fn archive(entries: &[(&str, K, &[u8])]) -> Vec<u8> {
    let names: Vec<String> = entries
        .iter()
        .map(|(n, ..)| format!("prefix/{n}"))
        .collect();
    let mut all: Vec<(&str, K, &[u8])> = vec![("prefix/", K::Dir, b"")];
    all.extend(
        entries
            .iter()
            .zip(&names)
            .map(|((_, k, d), n)| (n.as_str(), *k, *d)),
    );
    raw_archive(&all)
}

/// Overwrites the creator ("version made by") and external attributes of `name`'s central
/// directory record.
fn patch_mode(zip: &mut [u8], name: &str, made_by: u16, attrs: u32) {
    for (at, central) in headers(zip, name) {
        if central {
            zip[at + 4..at + 6].copy_from_slice(&made_by.to_le_bytes());
            zip[at + 38..at + 42].copy_from_slice(&attrs.to_le_bytes());
        }
    }
}

/// A successful build: the output's names (sorted, prefix stripped), hash and counts.
#[derive(Debug)]
struct Built {
    names: Vec<String>,
    h1: String,
    created: Created,
}

/// Runs [`create_from_git_archive`] on `zip` with default limits.
fn create(zip: &[u8], subdir: &str, license: Option<&[u8]>) -> Result<Built, CreateError> {
    create_with(
        MODULE,
        VERSION,
        zip,
        subdir,
        license,
        &CreateLimits::default(),
    )
}

/// Runs [`create_from_git_archive`], then checks the output like the go command would.
fn create_with(
    module: &str,
    version: &str,
    zip: &[u8],
    subdir: &str,
    license: Option<&[u8]>,
    limits: &CreateLimits,
) -> Result<Built, CreateError> {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("archive.zip"), dir.path().join("out.zip"));
    std::fs::write(&input, zip).unwrap();
    let created = create_from_git_archive(module, version, &input, subdir, license, &out, limits)?;
    let bytes = std::fs::read(&out).unwrap();
    let summary = check_zip(Cursor::new(&bytes), module, version, &ZipLimits::default())
        .unwrap_or_else(|e| panic!("the go command would reject the zip: {e}"));
    let prefix = format!("{module}@{version}/");
    let mut names = Vec::new();
    let mut reader = ZipArchive::new(Cursor::new(&bytes)).unwrap();
    for i in 0..reader.len() {
        let file = reader.by_index(i).unwrap();
        assert_eq!(file.compression(), CompressionMethod::Deflated);
        assert!(
            !file.name().ends_with('/'),
            "directory entry {}",
            file.name()
        );
        names.push(file.name().strip_prefix(&prefix).unwrap().to_string());
    }
    names.sort();
    assert_eq!(summary.files, created.files);
    assert_eq!(summary.uncompressed_bytes, created.bytes);
    Ok(Built {
        names,
        h1: summary.h1,
        created,
    })
}

/// The sorted file names a build keeps.
fn kept(zip: &[u8], subdir: &str) -> Vec<String> {
    create(zip, subdir, None).unwrap().names
}

/// The error message of a build that must fail.
fn failure(zip: &[u8], subdir: &str, license: Option<&[u8]>) -> String {
    create(zip, subdir, license).unwrap_err().to_string()
}

/// A candidate for the selection rules alone.
fn candidate(path: &[u8], kind: FileKind, size: u64) -> Candidate {
    Candidate {
        path: path.to_vec(),
        kind,
        size,
        source: Source::License,
    }
}

// === a real git archive ===

/// `git -c core.autocrlf=input -c core.eol=lf archive --format=zip --prefix=prefix/ HEAD` of a
/// repository (with cmd/go's `* -export-subst -export-ignore` in `.git/info/attributes`) holding
/// an executable, file and directory symlinks, a gitlink, vendor/ files under `go 1.24`, a nested
/// module, `.hg_archival.txt`, a non-ASCII name, a `*.txt eol=crlf` attribute, an
/// `export-ignore`d file (kept), and a module `lib/` without LICENSE whose go.mod has no go line.
const GIT_ARCHIVE: &[u8] = include_bytes!("git_archive.zip");

/// The expected hashes are what cmd/go's `coderepo.go` translation plus x/mod v0.42.0
/// `zip.Create` produce from the same archive (checked with a Go program).
#[test]
fn real_git_archive_hashes_like_the_go_command() {
    let built = create_with(
        "example.com/a",
        VERSION,
        GIT_ARCHIVE,
        "",
        None,
        &CreateLimits::default(),
    )
    .unwrap();
    assert_eq!(built.h1, "h1:u0V0ii1l67iRnWXXrRUeiSY7MdS7V0PAv0+nW2RAoa8=");
    assert_eq!(
        built.names,
        [
            ".gitattributes",
            "LICENSE",
            "a.go",
            "go.mod",
            "ignored.go",
            "notes.txt",
            "pkg/p.go",
            "pkg/vendor/vendor.go",
            "run.sh",
            "vendor/x.go",
            "\u{e9}.go",
        ]
    );
    let license: &[u8] = b"license A\n";
    let limits = CreateLimits::default();
    let lib = create_with(
        "example.com/a/lib",
        VERSION,
        GIT_ARCHIVE,
        "lib",
        Some(license),
        &limits,
    )
    .unwrap();
    assert_eq!(lib.h1, "h1:Oopa3iA5eTqqkc8bQIJ1ptE/uOn7+b3+0MVLOfL8vqI=");
    assert_eq!(
        lib.names,
        ["LICENSE", "go.mod", "l.go", "vendor/modules.txt"]
    );
}

// === x/mod zip/testdata/create ===

/// golang.org/x/mod v0.42.0 `zip/testdata/create/*.txt` (BSD-licensed, The Go Authors), in txtar
/// form: `key=value` header lines, then `-- name --` files.
const XMOD_VECTORS: &[&str] = &[
    "path=example.com/m\nversion=v1.0.0\nhash=h1:tpqYOOmuilagXzyqoJ3roUjp8gneQeTv5YVpL6BG7/k=\n\
     -- go.mod --\nmodule example.com/m\n\ngo 1.13\n\
     -- m.go --\npackage m\n\nfunc Foo() int { return 42 }\n\
     -- cmd/hello/hello.go --\npackage main\n\nimport (\n  \"fmt\"\n  \"example.com/m\"\n)\n\n\
     func main() {\n  fmt.Println(m.Foo())\n}\n",
    "path=example.com/m\nversion=v1.0.0\nhash=h1:5u93LDLN0Me+NGfZtRpA5mHxY8svfykHpq4CMSaBZyc=\n\
     -- go.mod --\nmodule example.com/m\n\ngo 1.13\n\
     -- vendor/modules.txt --\nincluded\nsee comment in isVendoredPackage and golang.org/issue/31562.\n\
     -- vendor/example.com/x/x.go --\nexcluded\n\
     -- sub/vendor/sub.txt --\nexcluded\n\
     -- pkg/vendor/vendor.go --\nexcluded\nsee comment in isVendoredPackage and golang.org/issue/37397\n",
    "path=example.com/m\nversion=v1.0.0\nhash=h1:mJR1q75yiMK6+CDw6DuhMS4v4hNoLXqkyk2Cph4VS8Q=\n\
     -- go.mod --\nmodule example.com/m\n\ngo 1.24\n\
     modules.txt is excluded in 1.24+. See golang.org/issue/63395\n\
     -- vendor/modules.txt --\nexcluded\nsee comment in isVendoredPackage and golang.org/issue/31562.\n\
     -- vendor/example.com/x/x.go --\nexcluded\n\
     -- sub/vendor/sub.txt --\nexcluded\n\
     -- pkg/vendor/vendor.go --\nincluded\nsee comment in isVendoredPackage and golang.org/issue/37397\n",
    "path=example.com/m\nversion=v1.0.0\nhash=h1:XduFAgX/GaspZa8Jv4pfzoGEzNaU/r88PiCunijw5ok=\n\
     -- go.mod --\nmodule example.com/m\n\ngo 1.13\n\
     -- sub/go.mod --\nmodule example.com/m/sub\n\
     -- sub/x.go' --\ninvalid name, but this shouldn't be read\n",
    "path=example.com/m\nversion=v1.0.0\nhash=h1:xctQQey8/y7IcBjFZDP/onWLSXhlqcsC3i1fgSdpMHk=\n\
     -- a.go --\npackage a\n-- b/GO.MOD --\nMODULE EXAMPLE.COM/M/B\n-- b/b.go --\npackage b\n",
    "path=example.com/m\nversion=v1.0.0\nhash=h1:Mun5l9cBlDnnV6JasTpio2aZJSbFj++h+814mnKC/OM=\n\
     -- go.mod/a.go --\npackage a\n",
    "path=example.com/empty\nversion=v1.0.0\nhash=h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
    "path=example.com/m\nversion=v1.0.0\nwantErr=malformed file path \"bad.go'\": invalid char '\\''\n\
     -- bad.go' --\npackage bad\n",
    "path=example.com/m\nversion=v1.0.0\nwantErr=GO.MOD: go.mod files must have lowercase names\n\
     -- GO.MOD --\nmodule example.com/m\n",
    "path=cache\nversion=v1.0.0\nwantErr=missing dot in first path element\n",
    "path=example.com/m\nversion=v2.0.0\nwantErr=invalid version: should be v0 or v1, not v2\n",
    "path=example.com/m\nversion=v1.0.0+bad\nwantErr=not canonical (should be \"v1.0.0\")\n",
    "path=example.com/m\nversion=v1.0.0\nwantErr=entry \"a.go\" is both a file and a directory\n\
     -- a.go --\npackage a\n-- a.go/b.go --\npackage b\n",
    "path=example.com/m\nversion=v1.0.0\n\
     wantErr=case-insensitive file name collision: \"m.go\" and \"M.GO\"\n\
     -- m.go --\npackage m\n-- M.GO --\npackage m\n",
];

/// A parsed txtar vector: `key=value` header lines and `(name, content)` files.
struct Txtar<'a> {
    header: Vec<(&'a str, &'a str)>,
    files: Vec<(String, String)>,
}

/// Splits a txtar text into its header and its files.
fn txtar(text: &str) -> Txtar<'_> {
    let (mut header, mut files) = (Vec::new(), Vec::<(String, String)>::new());
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("-- ").and_then(|l| l.strip_suffix(" --")) {
            files.push((name.to_string(), String::new()));
        } else if let Some((_, content)) = files.last_mut() {
            content.push_str(line);
            content.push('\n');
        } else if let Some(kv) = line.split_once('=') {
            header.push(kv);
        }
    }
    Txtar { header, files }
}

#[test]
fn xmod_create_vectors() {
    for text in XMOD_VECTORS {
        let Txtar { header, files } = txtar(text);
        let get = |key: &str| header.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let entries: Vec<(&str, K, &[u8])> = files
            .iter()
            .map(|(n, d)| (n.as_str(), K::Fat, d.as_bytes()))
            .collect();
        let zip = archive(&entries);
        let (module, version) = (get("path").unwrap(), get("version").unwrap());
        let limits = CreateLimits::default();
        let result = create_with(module, version, &zip, "", None, &limits);
        match (get("hash"), get("wantErr")) {
            (Some(hash), None) => assert_eq!(result.unwrap().h1, hash, "{text}"),
            (None, Some(want)) => {
                let err = result.unwrap_err().to_string();
                assert!(err.contains(want), "{err:?} lacks {want:?}");
            }
            _ => unreachable!(),
        }
    }
}

/// `dup_file.txt`: a git archive cannot hold the same name twice (and the zip crate merges
/// duplicates, so the build refuses such an archive as inconsistent); the rule itself is here.
#[test]
fn xmod_dup_file_vector() {
    let files = [
        candidate(b"dup.go", FileKind::Regular, 10),
        candidate(b"dup.go", FileKind::Regular, 10),
    ];
    let err = select::select(&files, None, &CreateLimits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dup.go: multiple entries for file \"dup.go\""
    );

    let mut zip = archive(&[
        ("dup.go", K::File, b"package d1\n"),
        ("dup.gX", K::File, b"x"),
    ]);
    replace_all(&mut zip, b"prefix/dup.gX", b"prefix/dup.go");
    assert!(matches!(
        create(&zip, "", None),
        Err(CreateError::InconsistentArchive { .. })
    ));
}

// === git archive shapes ===

#[test]
fn git_archive_entries_are_translated_like_coderepo() {
    let zip = archive(&[
        ("go.mod", K::Fat, b"module example.com/m\n\ngo 1.21\n"),
        ("LICENSE", K::Fat, b"license\n"),
        ("a.go", K::Fat, b"package a\n"),
        ("run.sh", K::Exec, b"#!/bin/sh\n"),
        ("link.go", K::Link, b"a.go"),
        ("pipe", K::Fifo, b""),
        ("weird", K::FatDir, b""),
        ("pkg/", K::Dir, b""),
        ("pkg/p.go", K::File, b"package p\n"),
        (".hg_archival.txt", K::Fat, b"repo: x\n"),
        ("pkg/.hg_archival.txt", K::Fat, b"kept below the root\n"),
    ]);
    let built = create(&zip, "", None).unwrap();
    assert_eq!(
        built.names,
        [
            "LICENSE",
            "a.go",
            "go.mod",
            "pkg/.hg_archival.txt",
            "pkg/p.go",
            "run.sh"
        ]
    );
    assert_eq!(built.created.files, 6);
    assert_eq!(
        built.created.omitted, 4,
        "link.go, pipe, weird, .hg_archival.txt"
    );
}

#[test]
fn subdir_keeps_only_its_files_and_adds_the_root_license() {
    let zip = archive(&[
        ("LICENSE", K::Fat, b"root license\n"),
        ("README", K::Fat, b"outside\n"),
        ("sub/", K::Dir, b""),
        ("sub/go.mod", K::Fat, b"module example.com/m\n"),
        ("sub/x.go", K::Fat, b"package x\n"),
        ("subway/y.go", K::Fat, b"package y\n"),
    ]);
    let license: &[u8] = b"root license\n";
    for subdir in ["sub", "sub/", "/sub/"] {
        let built = create(&zip, subdir, Some(license)).unwrap();
        assert_eq!(built.names, ["LICENSE", "go.mod", "x.go"], "{subdir:?}");
    }
    assert_eq!(kept(&zip, "sub"), ["go.mod", "x.go"], "no license passed");
    let whole = create(&zip, "", Some(b"ignored")).unwrap().names;
    assert_eq!(
        whole,
        ["LICENSE", "README", "subway/y.go"],
        "sub/ is a nested module"
    );
}

#[test]
fn module_license_wins_even_when_it_is_left_out() {
    let with_license = archive(&[
        ("sub/go.mod", K::Fat, b"module example.com/m\n"),
        ("sub/LICENSE", K::Fat, b"module license\n"),
    ]);
    let built = create(&with_license, "sub", Some(b"root")).unwrap();
    assert_eq!(built.names, ["LICENSE", "go.mod"]);

    // A LICENSE symlink counts as present (coderepo checks the name only), then is omitted.
    let symlink = archive(&[
        ("sub/go.mod", K::Fat, b"module example.com/m\n"),
        ("sub/LICENSE", K::Link, b"../LICENSE"),
    ]);
    assert_eq!(kept(&symlink, "sub"), ["go.mod"]);
    assert_eq!(
        create(&symlink, "sub", Some(b"root")).unwrap().names,
        ["go.mod"]
    );

    // Only the exact name counts: the added LICENSE then collides with `license`.
    let lower = archive(&[("sub/license", K::Fat, b"lower\n")]);
    let err = failure(&lower, "sub", Some(b"root"));
    assert_eq!(
        err,
        "LICENSE: case-insensitive file name collision: \"license\" and \"LICENSE\""
    );
}

#[test]
fn top_level_directory_errors() {
    let zip = raw_archive(&[("noslash", K::File, b"x")]);
    assert_eq!(
        failure(&zip, "", None),
        "missing top-level directory prefix (entry \"noslash\")"
    );
    let zip = raw_archive(&[("a/x", K::File, b"x"), ("b/y", K::File, b"y")]);
    assert!(matches!(
        create(&zip, "", None),
        Err(CreateError::MultipleTopLevel { entry }) if entry == "b/y"
    ));
    // Entries outside the subdir are still checked against the top-level prefix.
    let zip = raw_archive(&[("a/sub/x", K::File, b"x"), ("b/y", K::File, b"y")]);
    assert!(create(&zip, "sub", None).is_err());
    // The first entry decides the prefix, whatever it is called.
    let zip = raw_archive(&[("top/", K::Dir, b""), ("top/x.go", K::File, b"x")]);
    assert_eq!(kept(&zip, ""), ["x.go"]);
    let empty = raw_archive(&[]);
    assert_eq!(create(&empty, "", None).unwrap().created.files, 0);
}

// === limits and sizes ===

#[test]
fn limits() {
    let big = vec![b'x'; 100_000];
    let zip = archive(&[
        ("go.mod", K::Fat, b"module example.com/m\n"),
        ("LICENSE", K::Fat, b"0123456789"),
        ("big.go", K::Fat, &big),
    ]);
    let run = |limits: CreateLimits| {
        create_with(MODULE, VERSION, &zip, "", None, &limits).map(|b| b.created.bytes)
    };
    let base = CreateLimits::default();
    assert_eq!(run(base).unwrap(), 21 + 10 + 100_000);
    let exact = CreateLimits {
        max_total: 100_031,
        ..base
    };
    assert_eq!(run(exact).unwrap(), 100_031);
    let total = run(CreateLimits {
        max_total: 100_030,
        ..base
    })
    .unwrap_err();
    assert_eq!(
        total.to_string(),
        "module source tree too large (max size is 100030 bytes)"
    );
    let archive = run(CreateLimits {
        max_total: 100,
        ..base
    })
    .unwrap_err();
    assert!(
        matches!(archive, CreateError::ArchiveTooLarge { limit: 100, .. }),
        "{archive}"
    );
    let gomod = run(CreateLimits {
        max_go_mod: 20,
        ..base
    })
    .unwrap_err();
    assert_eq!(
        gomod.to_string(),
        "go.mod: go.mod file too large (max size is 20 bytes)"
    );
    let license = run(CreateLimits {
        max_license: 9,
        ..base
    })
    .unwrap_err();
    assert_eq!(
        license.to_string(),
        "LICENSE: LICENSE file too large (max size is 9 bytes)"
    );

    // The total counts kept files only, and is reported before invalid files.
    let files = [
        candidate(b"vendor/a/big", FileKind::Regular, 1000),
        candidate(b"a", FileKind::Regular, 60),
        candidate(b"aux.go", FileKind::Regular, 1),
        candidate(b"b", FileKind::Regular, 60),
    ];
    let limits = CreateLimits {
        max_total: 100,
        ..base
    };
    let err = select::select(&files, None, &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "module source tree too large (max size is 100 bytes)"
    );
}

#[test]
fn license_bytes_obey_the_license_limit() {
    let zip = archive(&[("sub/go.mod", K::Fat, b"module example.com/m\n")]);
    let limits = CreateLimits {
        max_license: 4,
        ..CreateLimits::default()
    };
    let err = create_with(MODULE, VERSION, &zip, "sub", Some(b"12345"), &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "LICENSE: LICENSE file too large (max size is 4 bytes)"
    );
}

#[test]
fn entry_sizes_must_match_their_headers() {
    let mut zip = archive(&[("a.go", K::File, b"package a\n")]);
    super::patch_size(&mut zip, "prefix/a.go", 5);
    let err = create(&zip, "", None).unwrap_err();
    assert!(
        matches!(
            err,
            CreateError::LargerThanDeclared { .. } | CreateError::ReadEntry { .. }
        ),
        "{err}"
    );
    let mut zip = archive(&[("a.go", K::File, b"package a\n")]);
    super::patch_size(&mut zip, "prefix/a.go", 50);
    assert!(create(&zip, "", None).is_err());
}

#[test]
fn module_and_version_are_checked_first() {
    let zip = archive(&[("a.go", K::File, b"package a\n")]);
    let limits = CreateLimits::default();
    let run = |module, version| create_with(module, version, &zip, "", None, &limits);
    assert!(matches!(
        run("example.com/m", "v1.0"),
        Err(CreateError::Module(_))
    ));
    assert!(matches!(
        run("example.com/m/v2", "v1.0.0"),
        Err(CreateError::Module(_))
    ));
    assert!(run("example.com/m/v2", "v2.0.0").is_ok());
    assert!(run("example.com/m", "v2.0.0+incompatible").is_ok());
}

#[test]
fn missing_archive_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = create_from_git_archive(
        MODULE,
        VERSION,
        &dir.path().join("missing.zip"),
        "",
        None,
        &dir.path().join("out.zip"),
        &CreateLimits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, CreateError::Io(_)), "{err}");
    assert!(!Path::new(&dir.path().join("out.zip")).exists());
}

#[test]
fn output_is_not_created_when_files_are_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("archive.zip");
    std::fs::write(&input, archive(&[("aux.go", K::Fat, b"x")])).unwrap();
    let out = dir.path().join("out.zip");
    let limits = CreateLimits::default();
    assert!(create_from_git_archive(MODULE, VERSION, &input, "", None, &out, &limits).is_err());
    assert!(!out.exists());
}

#[test]
fn contents_are_copied_exactly() {
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let zip = archive(&[("big.bin", K::Fat, &big), ("empty", K::Fat, b"")]);
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("a.zip"), dir.path().join("o.zip"));
    std::fs::write(&input, &zip).unwrap();
    let limits = CreateLimits::default();
    create_from_git_archive(MODULE, VERSION, &input, "", None, &out, &limits).unwrap();
    let mut reader = ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
    let mut data = Vec::new();
    let name = format!("{MODULE}@{VERSION}/big.bin");
    reader
        .by_name(&name)
        .unwrap()
        .read_to_end(&mut data)
        .unwrap();
    assert_eq!(data, big);
    assert_eq!(
        reader
            .by_name(&format!("{MODULE}@{VERSION}/empty"))
            .unwrap()
            .size(),
        0
    );
}
