//! HTTP details a downstream cache, curl or the go command's resumable downloads rely on:
//! content types and lengths, strong ETags with immutable caching, conditional requests, ranges,
//! HEAD, both wire forms of `!`-escapes, and fetching only what was asked for.

use std::time::Duration;

use cairn_tests::corpus::m;
use cairn_tests::h1::{latest_path, list_path, percent_bang, sha256_hex, version_path};
use cairn_tests::raw;
use cairn_tests::wait::patience;
use reqwest::Method;

use crate::common::{
    assert_no_error_logs, assert_zip_body, corpus, corpus_fixture, get, start_node, FAST_UPSTREAM,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_files_have_types_lengths_strong_etags_and_ranges() {
    let c = corpus();
    let fixture = corpus_fixture().await;
    let node = start_node(&fixture.url(), FAST_UPSTREAM).await;
    let (module, version) = (m::SIMPLE, "v1.1.0");
    let e = c.entry(module, version);

    for (ext, ctype) in [
        ("info", "application/json"),
        ("mod", "text/plain"),
        ("zip", "application/zip"),
    ] {
        let path = version_path(module, version, ext);
        let r = get(&node, &path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        assert!(
            r.header("content-type").starts_with(ctype),
            "GET {path}: Content-Type {:?}, want {ctype}",
            r.header("content-type")
        );
        assert_eq!(
            r.header("content-length"),
            r.body.len().to_string(),
            "GET {path}: Content-Length"
        );
        let etag = r.header("etag").to_string();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
            "GET {path}: want a strong ETag, got {etag:?}"
        );
        let cc = r.header("cache-control");
        assert!(
            cc.contains("immutable"),
            "GET {path}: Cache-Control {cc:?} lacks immutable"
        );
        match ext {
            "info" => {
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                let want: serde_json::Value = serde_json::from_str(&e.info).unwrap();
                assert_eq!(v["Version"], want["Version"], "GET {path}");
                assert_eq!(v["Time"], want["Time"], "GET {path}");
            }
            "mod" => assert_eq!(r.text(), e.go_mod, "GET {path}"),
            _ => assert_zip_body(&r, c, module, version),
        }

        let cond = node
            .request(Method::GET, &path, &[("if-none-match", &etag)])
            .await
            .unwrap();
        assert_eq!(cond.status, 304, "GET {path} with If-None-Match: {etag}");
        assert!(cond.body.is_empty(), "304 for {path} must have no body");

        let head = raw::request(node.addrs().http, "HEAD", &path, &[], patience(1.0))
            .await
            .unwrap();
        assert_eq!(head.status, 200, "HEAD {path}: {}", head.status_line);
        assert_eq!(
            head.header("content-length"),
            Some(r.body.len().to_string().as_str()),
            "HEAD {path}: Content-Length"
        );
        assert_eq!(
            head.header("etag"),
            Some(etag.as_str()),
            "HEAD {path}: ETag"
        );
        assert!(
            head.body.is_empty(),
            "HEAD {path} sent {} body bytes",
            head.body.len()
        );
    }

    let zip = c.zip_bytes(module, version);
    let path = version_path(module, version, "zip");
    let r = node
        .request(Method::GET, &path, &[("range", "bytes=10-19")])
        .await
        .unwrap();
    assert_eq!(r.status, 206, "GET {path} Range: bytes=10-19");
    assert_eq!(
        r.header("content-range"),
        format!("bytes 10-19/{}", zip.len()),
        "Content-Range"
    );
    assert_eq!(&r.body[..], &zip[10..20], "range bytes");
    assert_eq!(
        r.header("content-length"),
        "10",
        "Content-Length of the range"
    );

    // Resuming (Range + If-Range, as the go command does): a matching ETag gets the range, a stale
    // one gets the whole file.
    let etag = r.header("etag").to_string();
    let r = node
        .request(
            Method::GET,
            &path,
            &[("range", "bytes=100-"), ("if-range", &etag)],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 206, "Range: bytes=100- with If-Range: {etag}");
    assert_eq!(&r.body[..], &zip[100..], "bytes=100- body");
    assert_eq!(
        r.header("content-range"),
        format!("bytes 100-{}/{}", zip.len() - 1, zip.len())
    );
    let r = node
        .request(
            Method::GET,
            &path,
            &[("range", "bytes=100-"), ("if-range", "\"stale\"")],
        )
        .await
        .unwrap();
    assert_eq!(
        r.status, 200,
        "Range with a non-matching If-Range must get the whole file"
    );
    assert_eq!(r.body.len(), zip.len(), "whole file after a stale If-Range");

    // A range request can be the very first request for a zip (a miss).
    let cold = version_path(module, "v1.0.0", "zip");
    let cold_zip = c.zip_bytes(module, "v1.0.0");
    let r = node
        .request(Method::GET, &cold, &[("range", "bytes=0-99")])
        .await
        .unwrap();
    assert_eq!(r.status, 206, "Range on an uncached zip: {}", r.text());
    assert_eq!(&r.body[..], &cold_zip[..100], "range of an uncached zip");

    let list = get(&node, &list_path(module)).await;
    assert_eq!(list.status, 200, "list: {}", list.text());
    assert!(
        list.header("content-type").starts_with("text/plain"),
        "list Content-Type {:?}",
        list.header("content-type")
    );
    let latest = get(&node, &latest_path(module)).await;
    assert_eq!(latest.status, 200, "@latest: {}", latest.text());
    assert!(
        latest
            .header("content-type")
            .starts_with("application/json"),
        "@latest Content-Type {:?}",
        latest.header("content-type")
    );
    assert_no_error_logs(&node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percent_encoded_and_raw_bang_escapes_are_the_same_module() {
    let c = corpus();
    let fixture = corpus_fixture().await;
    let node = start_node(&fixture.url(), FAST_UPSTREAM).await;
    for ext in ["info", "mod", "zip"] {
        let bang = version_path(m::UPPER, m::UPPER_RC, ext);
        let pct = percent_bang(&bang);
        assert!(pct.contains("%21"), "{pct}");
        let a = raw::request(node.addrs().http, "GET", &pct, &[], patience(3.0))
            .await
            .unwrap();
        let b = raw::request(node.addrs().http, "GET", &bang, &[], patience(3.0))
            .await
            .unwrap();
        assert_eq!(
            a.status,
            200,
            "GET {pct}: {} {}",
            a.status_line,
            String::from_utf8_lossy(&a.body)
        );
        assert_eq!(
            b.status,
            200,
            "GET {bang}: {} {}",
            b.status_line,
            String::from_utf8_lossy(&b.body)
        );
        assert_eq!(
            sha256_hex(&a.body),
            sha256_hex(&b.body),
            "{pct} and {bang} must serve the same bytes"
        );
        if ext == "zip" {
            assert_eq!(
                sha256_hex(&a.body),
                c.entry(m::UPPER, m::UPPER_RC).zip_sha256
            );
        }
    }
    let list = raw::request(
        node.addrs().http,
        "GET",
        &percent_bang(&list_path(m::UPPER)),
        &[],
        patience(3.0),
    )
    .await
    .unwrap();
    assert_eq!(list.status, 200, "list via %21: {}", list.status_line);
    let body = String::from_utf8_lossy(&list.body);
    assert!(
        body.lines().any(|l| l == m::UPPER_RC),
        "list of {} lacks {}: {body:?}",
        m::UPPER,
        m::UPPER_RC
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mod_request_does_not_fetch_the_zip() {
    let c = corpus();
    let fixture = corpus_fixture().await;
    let node = start_node(&fixture.url(), FAST_UPSTREAM).await;
    let (module, version) = (m::MANY, "v1.0.0");
    let r = get(&node, &version_path(module, version, "mod")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), c.entry(module, version).go_mod);
    let info = get(&node, &version_path(module, version, "info")).await;
    assert_eq!(info.status, 200, "{}", info.text());
    // An absence check needs an observation window: give a background prefetch time to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let zip = version_path(module, version, "zip");
    assert_eq!(
        fixture.count(&zip),
        0,
        "the upstream was asked for {zip}:\n{}",
        fixture.log_tail(20)
    );
    assert_eq!(
        fixture.bytes_sent(&zip),
        0,
        "the upstream sent bytes of {zip}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_on_a_miss_and_unsatisfiable_ranges() {
    let c = corpus();
    let fixture = corpus_fixture().await;
    let node = start_node(&fixture.url(), FAST_UPSTREAM).await;
    let (module, version) = (m::GOPKG, "v1.1.0");
    let path = version_path(module, version, "zip");
    let len = c.entry(module, version).zip_len;

    let head = raw::request(node.addrs().http, "HEAD", &path, &[], patience(3.0))
        .await
        .unwrap();
    assert_eq!(
        head.status, 200,
        "HEAD on an uncached zip: {}",
        head.status_line
    );
    assert_eq!(
        head.header("content-length"),
        Some(len.to_string().as_str()),
        "HEAD Content-Length"
    );
    assert!(
        head.body.is_empty(),
        "HEAD sent {} body bytes",
        head.body.len()
    );

    let beyond = format!("bytes={}-", len + 10);
    let r = node
        .request(Method::GET, &path, &[("range", &beyond)])
        .await
        .unwrap();
    assert_eq!(r.status, 416, "Range: {beyond} on a {len}-byte zip");
    assert_eq!(
        r.header("content-range"),
        format!("bytes */{len}"),
        "Content-Range of a 416"
    );

    let r = node
        .request(Method::GET, &path, &[("range", "bytes=-10")])
        .await
        .unwrap();
    assert_eq!(r.status, 206, "suffix range bytes=-10");
    let zip = c.zip_bytes(module, version);
    assert_eq!(&r.body[..], &zip[zip.len() - 10..], "suffix range bytes");

    let r = node
        .request(Method::GET, &path, &[("range", "bytes=0-1,5-6")])
        .await
        .unwrap();
    assert!(
        r.status == 200 && r.body.len() as u64 == len || r.status == 206,
        "a multi-range request must get the whole file or a 206, got {} ({} bytes)",
        r.status,
        r.body.len()
    );
    assert_eq!(fixture.count(&path), 1, "upstream requests for {path}");
}

/// With the hot-blob cache off, every zip hit on plain HTTP/1 goes out with `sendfile(2)`
/// (`http.sendfile`, issue 13): the go command still gets every corpus version with the
/// corpus's hashes, ranges still cut the right bytes, and HTTP/2 (never sendfile) agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zips_sent_with_sendfile_reach_the_go_command_byte_for_byte() {
    let Some(go) =
        cairn_tests::gocmd::go("zips_sent_with_sendfile_reach_the_go_command_byte_for_byte")
    else {
        return;
    };
    let c = corpus();
    let fixture = corpus_fixture().await;
    let config = format!("{FAST_UPSTREAM}[cache]\nhot_blob_bytes = 0\n");
    let node = start_node(&fixture.url(), &config).await;
    let all = c.module_versions();
    let sent = || async {
        let m = node.metrics().await.unwrap();
        m.sum("cairn_http_sendfile_bytes_total", &[])
    };

    // The first pass fills (and verifies) every zip; the second is all hits.
    for pass in ["misses", "hits"] {
        let before = sent().await;
        let got = cairn_tests::gocmd::GoEnv::new(&go, &node.url())
            .unwrap()
            .mod_download_ok(&all)
            .await
            .unwrap();
        crate::common::assert_maps_eq(
            &format!("go mod download through cairn ({pass}) vs the corpus"),
            &crate::common::expected_sums(c),
            &crate::common::sums(&got),
        );
        if pass == "hits" {
            let zip_bytes: u64 = all
                .iter()
                .filter_map(|mv| mv.rsplit_once('@'))
                .filter_map(|(module, version)| {
                    std::fs::metadata(c.file(&version_path(module, version, "zip"))).ok()
                })
                .map(|meta| meta.len())
                .sum();
            let by_sendfile = sent().await - before;
            assert!(
                by_sendfile >= zip_bytes as f64,
                "the hits sent {by_sendfile} bytes with sendfile; the zips hold {zip_bytes}"
            );
        }
    }

    let (module, version) = (m::SIMPLE, "v1.1.0");
    let zip = c.zip_bytes(module, version);
    let path = version_path(module, version, "zip");
    for (range, want) in [
        ("bytes=10-19", &zip[10..20]),
        ("bytes=100-", &zip[100..]),
        ("bytes=-7", &zip[zip.len() - 7..]),
    ] {
        let before = sent().await;
        let r = node
            .request(Method::GET, &path, &[("range", range)])
            .await
            .unwrap();
        assert_eq!(r.status, 206, "Range: {range}: {}", r.text());
        assert_eq!(&r.body[..], want, "Range: {range}");
        let by_sendfile = sent().await - before;
        assert_eq!(
            by_sendfile,
            want.len() as f64,
            "Range: {range} went by sendfile"
        );
    }
    // HEAD and HTTP/2 never take the sendfile path.
    let before = sent().await;
    let head = cairn_tests::raw::request(node.addrs().http, "HEAD", &path, &[], patience(1.0))
        .await
        .unwrap();
    assert_eq!(head.status, 200, "HEAD {path}: {}", head.status_line);
    assert!(head.body.is_empty(), "HEAD sent {} bytes", head.body.len());
    // A request with a body (no GOPROXY request has one) is answered and the connection
    // closed: hyper could otherwise answer a later malformed request inside this body.
    let with_body = format!("GET {path} HTTP/1.1\r\nHost: cairn\r\nContent-Length: 5\r\n\r\nhello");
    let r = cairn_tests::raw::send_raw(node.addrs().http, with_body.as_bytes(), patience(5.0))
        .await
        .expect("the connection closes after the answer");
    assert_eq!(r.status, 200, "{}", r.status_line);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(sha256_hex(&r.body), sha256_hex(&zip));
    let by_sendfile = sent().await - before;
    assert_eq!(
        by_sendfile,
        zip.len() as f64,
        "only the GET went by sendfile"
    );
    let before = sent().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2
        .get(format!("{}{path}", node.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    assert_eq!(
        sha256_hex(&r.bytes().await.unwrap()),
        sha256_hex(&zip),
        "the zip over h2c"
    );
    let by_sendfile = sent().await - before;
    assert_eq!(by_sendfile, 0.0, "h2c never uses sendfile");
    assert_no_error_logs(&node);
}
