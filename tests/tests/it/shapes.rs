//! Valid but unusual upstream answers must pass through untouched: zips with directory entries,
//! stored (uncompressed) entries or the bare `module@version/` entry (all hashed by go, so never
//! repacked), and `.info` answers to non-canonical queries (`@master`, `@v1.2`), which legitimately
//! name a different version than the one asked for.

use bytes::Bytes;
use cairn_tests::corpus::{m, time_n, Corpus, ModuleSpec};
use cairn_tests::fixture::{Fixture, Override};
use cairn_tests::gocmd::{go, GoEnv};
use cairn_tests::h1::{self, version_path};
use std::io::{Cursor, Write};
use zip::write::SimpleFileOptions;

use crate::common::{corpus, corpus_fixture, get, start_node, FAST_UPSTREAM};

const ODD: &str = "example.com/oddzip";

/// A zip with a bare prefix entry, directory entries and a stored entry, like some VCS exports.
fn odd_zip(version: &str) -> Vec<u8> {
    let prefix = format!("{ODD}@{version}/");
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let deflate = SimpleFileOptions::default();
    let stored = deflate.compression_method(zip::CompressionMethod::Stored);
    w.add_directory(prefix.clone(), deflate).unwrap();
    w.start_file(format!("{prefix}go.mod"), deflate).unwrap();
    w.write_all(format!("module {ODD}\n\ngo 1.21\n").as_bytes())
        .unwrap();
    w.add_directory(format!("{prefix}pkg/"), deflate).unwrap();
    w.start_file(format!("{prefix}pkg/pkg.go"), stored).unwrap();
    w.write_all(b"package pkg\n").unwrap();
    w.start_file(format!("{prefix}odd.go"), deflate).unwrap();
    w.write_all(b"package oddzip\n").unwrap();
    w.finish().unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusual_but_valid_zips_are_served_byte_for_byte() {
    let Some(go) = go("unusual_but_valid_zips_are_served_byte_for_byte") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let version = "v1.0.0";
    let c = Corpus::write(
        dir.path(),
        &[ModuleSpec::new(ODD).version(version, &time_n(1))],
    )
    .unwrap();
    let zip = odd_zip(version);
    std::fs::write(c.file(&version_path(ODD, version, "zip")), &zip).unwrap();
    let want_h1 = h1::zip_h1(&zip).unwrap();
    let fixture = Fixture::start(Some(dir.path())).await.unwrap();
    let node = start_node(&fixture.url(), FAST_UPSTREAM).await;

    let r = get(&node, &version_path(ODD, version, "zip")).await;
    assert_eq!(r.status, 200, "GET the odd zip: {}", r.text());
    assert_eq!(
        h1::sha256_hex(&r.body),
        h1::sha256_hex(&zip),
        "cairn must serve the upstream zip byte for byte ({} bytes, want {})",
        r.body.len(),
        zip.len()
    );
    let direct = GoEnv::new(&go, &c.file_url()).unwrap();
    let mv = [format!("{ODD}@{version}")];
    let d = direct.mod_download_ok(&mv).await.unwrap();
    assert_eq!(
        d[0].sum, want_h1,
        "go over file:// vs our hash of the odd zip"
    );
    let d = GoEnv::new(&go, &node.url())
        .unwrap()
        .mod_download_ok(&mv)
        .await
        .unwrap();
    assert_eq!(d[0].sum, want_h1, "go through cairn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_canonical_info_queries_resolve_to_another_version() {
    let c = corpus();
    let fixture = corpus_fixture().await;
    let resolved = c.entry(m::SIMPLE, "v1.2.0").info.clone();
    for query in ["master", "v1.2", "abcdef123456"] {
        let path = version_path(m::SIMPLE, query, "info");
        fixture.set_override(&path, Override::Body(Bytes::from(resolved.clone())));
    }
    let node = start_node(&fixture.url(), FAST_UPSTREAM).await;
    for query in ["master", "v1.2", "abcdef123456"] {
        let path = version_path(m::SIMPLE, query, "info");
        let r = get(&node, &path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        assert_eq!(v["Version"], "v1.2.0", "GET {path} answered {}", r.text());
    }
    if let Some(go) = go("non_canonical_info_queries_resolve_to_another_version") {
        let env = GoEnv::new(&go, &node.url()).unwrap();
        let info = env.list_query(m::SIMPLE, "master").await.unwrap();
        assert_eq!(info.version, "v1.2.0", "go list -m {}@master", m::SIMPLE);
        let d = env
            .mod_download_ok(&[format!("{}@master", m::SIMPLE)])
            .await
            .unwrap();
        assert_eq!(d[0].sum, c.entry(m::SIMPLE, "v1.2.0").zip_h1);
    }
}
