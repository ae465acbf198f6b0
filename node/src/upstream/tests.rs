//! Scenario tests of [`Upstream`] against scripted local HTTP servers and `file://` trees.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::test_server::{Reply, TestServer};
use super::*;

const MAX: u64 = 1 << 20;

/// Fast settings: no retries, tiny backoff, no system proxy (a CI `HTTP_PROXY` must not
/// intercept 127.0.0.1).
fn settings() -> UpstreamSettings {
    UpstreamSettings {
        retries: 0,
        backoff_base_ms: 1,
        backoff_max_ms: 20,
        connect_timeout_ms: 1_000,
        first_byte_timeout_ms: 5_000,
        transfer_timeout_secs: 10,
        system_proxy: false,
        ..UpstreamSettings::default()
    }
}

fn upstream(list: &str, settings: &UpstreamSettings) -> Upstream {
    Upstream::new(list, settings).unwrap()
}

async fn always(reply: fn() -> Reply) -> TestServer {
    TestServer::start(move |_, _| reply()).await
}

fn reason_of(err: &UpstreamError) -> String {
    match err {
        UpstreamError::Failed { reason, .. } => reason.clone(),
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn not_found_moves_to_next_entry_even_with_comma() {
    let a = always(|| Reply::status(404)).await;
    let b = always(|| Reply::ok("v1.0.0\n")).await;
    let up = upstream(&format!("{},{}", a.url(), b.url()), &settings());
    let got = up
        .fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap();
    assert_eq!(&got.body[..], b"v1.0.0\n");
    assert_eq!(got.source, b.url());
    assert_eq!((a.hits(), b.hits()), (1, 1));
}

#[tokio::test]
async fn failure_stops_the_walk_with_comma() {
    let a = always(|| Reply::status(500)).await;
    let b = always(|| Reply::ok("v1.0.0\n")).await;
    let up = upstream(&format!("{},{}", a.url(), b.url()), &settings());
    let err = up
        .fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Failed { source, .. } if *source == a.url()),
        "{err}"
    );
    assert!(reason_of(&err).contains("500"));
    assert_eq!(b.hits(), 0);
}

#[tokio::test]
async fn failure_moves_on_with_pipe() {
    let a = always(|| Reply::status(500)).await;
    let b = always(|| Reply::ok("v1.0.0\n")).await;
    let up = upstream(&format!("{}|{}", a.url(), b.url()), &settings());
    let got = up
        .fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap();
    assert_eq!(got.source, b.url());
}

#[tokio::test]
async fn failure_beats_a_later_not_found() {
    let a = always(|| Reply::status(502)).await;
    let b = always(|| Reply::status(404)).await;
    let up = upstream(&format!("{}|{}", a.url(), b.url()), &settings());
    let err = up
        .fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Failed { .. }), "{err}");
}

#[tokio::test]
async fn transient_503_is_retried_until_success() {
    let server = TestServer::start(|_, n| {
        if n < 2 {
            Reply::status(503)
        } else {
            Reply::ok("{}")
        }
    })
    .await;
    let up = upstream(
        &server.url(),
        &UpstreamSettings {
            retries: 3,
            ..settings()
        },
    );
    let got = up
        .fetch("example.com/m", UpstreamFile::Info("v1.0.0"), MAX)
        .await
        .unwrap();
    assert_eq!(&got.body[..], b"{}");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn retries_are_bounded() {
    let server = always(|| Reply::status(500)).await;
    let up = upstream(
        &server.url(),
        &UpstreamSettings {
            retries: 2,
            ..settings()
        },
    );
    assert!(up
        .fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .is_err());
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn not_found_is_never_retried_and_keeps_the_upstream_text() {
    let server =
        always(|| Reply::text(404, "not found: unknown revision v9.9.9\n\nmore detail")).await;
    let up = upstream(
        &server.url(),
        &UpstreamSettings {
            retries: 3,
            ..settings()
        },
    );
    let err = up
        .fetch("example.com/m", UpstreamFile::Info("v9.9.9"), MAX)
        .await
        .unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.to_string(), "not found: unknown revision v9.9.9");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn gone_is_not_found_and_other_4xx_is_a_failure_without_retry() {
    let gone = always(|| Reply::status(410)).await;
    let up = upstream(&gone.url(), &settings());
    assert!(up
        .fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap_err()
        .is_not_found());
    let forbidden = always(|| Reply::text(403, "module is blocked by policy")).await;
    let up = upstream(
        &forbidden.url(),
        &UpstreamSettings {
            retries: 3,
            ..settings()
        },
    );
    let err = up
        .fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap_err();
    assert!(
        reason_of(&err).contains("403 Forbidden: module is blocked by policy"),
        "{err}"
    );
    assert_eq!(forbidden.hits(), 1);
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let server = TestServer::start(|_, n| match n {
        0 => Reply::status(429).header("Retry-After", "1"),
        _ => Reply::ok("ok"),
    })
    .await;
    let slow = UpstreamSettings {
        retries: 1,
        backoff_max_ms: 5_000,
        ..settings()
    };
    let up = upstream(&server.url(), &slow);
    let start = Instant::now();
    up.fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn retry_after_is_capped_by_backoff_max() {
    let server = TestServer::start(|_, n| match n {
        0 => Reply::status(503).header("Retry-After", "3600"),
        _ => Reply::ok("ok"),
    })
    .await;
    let up = upstream(
        &server.url(),
        &UpstreamSettings {
            retries: 1,
            ..settings()
        },
    );
    let start = Instant::now();
    up.fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn breaker_opens_fails_fast_and_probes_after_cooldown() {
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&healthy);
    let server = TestServer::start(move |_, _| match flag.load(Ordering::SeqCst) {
        true => Reply::ok("v1.0.0\n"),
        false => Reply::status(500),
    })
    .await;
    let s = UpstreamSettings {
        breaker_failures: 2,
        breaker_cooldown_secs: 1,
        ..settings()
    };
    let up = upstream(&server.url(), &s);
    for _ in 0..2 {
        let err = up
            .fetch("example.com/m", UpstreamFile::List, MAX)
            .await
            .unwrap_err();
        assert!(matches!(err, UpstreamError::Failed { .. }));
    }
    let err = up
        .fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UpstreamError::BreakerOpen { source, .. } if *source == server.url()),
        "{err}"
    );
    assert_eq!(
        server.hits(),
        2,
        "an open breaker must not contact the upstream"
    );

    healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    up.fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap();
    up.fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap();
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn breaker_open_falls_through_with_pipe() {
    let a = always(|| Reply::status(500)).await;
    let b = always(|| Reply::ok("x")).await;
    let s = UpstreamSettings {
        breaker_failures: 1,
        ..settings()
    };
    let up = upstream(&format!("{}|{}", a.url(), b.url()), &s);
    up.fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap();
    up.fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap();
    assert_eq!((a.hits(), b.hits()), (1, 2));
}

#[tokio::test]
async fn first_byte_timeout_fails_the_attempt() {
    let server = always(|| Reply::Stall).await;
    let up = upstream(
        &server.url(),
        &UpstreamSettings {
            first_byte_timeout_ms: 200,
            ..settings()
        },
    );
    let start = Instant::now();
    let err = up
        .fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(reason_of(&err).contains("first_byte_timeout_ms"), "{err}");
}

#[tokio::test]
async fn connection_refused_is_a_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let up = upstream(&format!("http://{addr}"), &settings());
    let err = up
        .fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Failed { .. }), "{err}");
}

#[tokio::test]
async fn truncated_body_is_a_failure_and_is_retried() {
    let server = TestServer::start(|_, _| Reply::Truncated {
        declared: 1000,
        body: vec![b'z'; 10],
    })
    .await;
    let up = upstream(
        &server.url(),
        &UpstreamSettings {
            retries: 1,
            ..settings()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.zip");
    let err = up
        .fetch_to_file("example.com/m", UpstreamFile::Zip("v1.0.0"), &dest, MAX)
        .await
        .unwrap_err();
    assert!(reason_of(&err).starts_with("body truncated"), "{err}");
    assert_eq!(server.hits(), 2);
    let err = up
        .fetch("example.com/m", UpstreamFile::Mod("v1.0.0"), MAX)
        .await
        .unwrap_err();
    assert!(reason_of(&err).starts_with("body truncated"), "{err}");
}

#[tokio::test]
async fn transfer_timeout_cuts_a_stalled_body() {
    let server = TestServer::start(|_, _| Reply::StallBody {
        declared: 1000,
        body: vec![b'z'; 10],
    })
    .await;
    let up = upstream(
        &server.url(),
        &UpstreamSettings {
            transfer_timeout_secs: 1,
            ..settings()
        },
    );
    let start = Instant::now();
    let err = up
        .fetch("example.com/m", UpstreamFile::Mod("v1.0.0"), MAX)
        .await
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(4));
    assert!(reason_of(&err).contains("transfer_timeout_secs"), "{err}");
}

#[tokio::test]
async fn body_over_max_bytes_is_a_failure_not_a_truncation() {
    let announced = always(|| Reply::ok(vec![b'a'; 100])).await;
    let up = upstream(
        &announced.url(),
        &UpstreamSettings {
            retries: 2,
            ..settings()
        },
    );
    let err = up
        .fetch("example.com/m", UpstreamFile::Mod("v1.0.0"), 50)
        .await
        .unwrap_err();
    assert!(reason_of(&err).contains("limit of 50 bytes"), "{err}");
    assert_eq!(announced.hits(), 1, "too large is not retried");

    let streamed = always(|| Reply::CloseDelimited {
        body: vec![b'a'; 100],
    })
    .await;
    let up = upstream(&streamed.url(), &settings());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.zip");
    let err = up
        .fetch_to_file("example.com/m", UpstreamFile::Zip("v1.0.0"), &dest, 50)
        .await
        .unwrap_err();
    assert!(reason_of(&err).contains("limit of 50 bytes"), "{err}");
    let ok = up
        .fetch("example.com/m", UpstreamFile::Mod("v1.0.0"), 100)
        .await
        .unwrap();
    assert_eq!(ok.body.len(), 100);
}

#[tokio::test]
async fn zip_is_streamed_to_the_destination() {
    let server = always(|| Reply::ok(vec![7u8; 300_000])).await;
    let up = upstream(&server.url(), &settings());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.zip");
    let got = up
        .fetch_to_file("example.com/m", UpstreamFile::Zip("v1.0.0"), &dest, MAX)
        .await
        .unwrap();
    assert_eq!(got.size, 300_000);
    assert_eq!(std::fs::read(&dest).unwrap(), vec![7u8; 300_000]);
}

#[tokio::test]
async fn module_paths_are_case_and_percent_escaped_on_the_wire() {
    let server = always(|| Reply::ok("{}")).await;
    let up = upstream(&format!("{}/base/", server.url()), &settings());
    up.fetch("github.com/Azure/X", UpstreamFile::Info("v1.0.0"), MAX)
        .await
        .unwrap();
    up.fetch("github.com/Azure/X", UpstreamFile::Latest, MAX)
        .await
        .unwrap();
    up.fetch(
        "example.com/m",
        UpstreamFile::Mod("v2.0.0+incompatible"),
        MAX,
    )
    .await
    .unwrap();
    assert_eq!(
        server.paths(),
        [
            "/base/github.com/%21azure/%21x/@v/v1.0.0.info",
            "/base/github.com/%21azure/%21x/@latest",
            "/base/example.com/m/@v/v2.0.0+incompatible.mod",
        ]
    );
}

#[tokio::test]
async fn unsafe_module_paths_never_reach_an_upstream() {
    let server = always(|| Reply::ok("{}")).await;
    let up = upstream(&server.url(), &settings());
    let err = up
        .fetch("example.com/../etc", UpstreamFile::List, MAX)
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::InvalidRequest { .. }));
    assert_eq!(server.hits(), 0);
}

fn write(root: &std::path::Path, rel: &str, body: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

#[tokio::test]
async fn file_tree_hit_and_miss() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "github.com/!azure/x/@v/list", b"v1.0.0\n");
    write(
        dir.path(),
        "github.com/!azure/x/@latest",
        b"{\"Version\":\"v1.0.0\"}",
    );
    write(dir.path(), "github.com/!azure/x/@v/v1.0.0.zip", b"PK-zip");
    let list = format!("file://{}", dir.path().display());
    let up = upstream(&list, &settings());
    let got = up
        .fetch("github.com/Azure/x", UpstreamFile::List, MAX)
        .await
        .unwrap();
    assert_eq!(
        (&got.body[..], got.source.as_str()),
        (&b"v1.0.0\n"[..], list.as_str())
    );
    let latest = up
        .fetch("github.com/Azure/x", UpstreamFile::Latest, MAX)
        .await
        .unwrap();
    assert!(latest.body.starts_with(b"{\"Version\""));
    let dest = dir.path().join("out.zip");
    let zip = up
        .fetch_to_file(
            "github.com/Azure/x",
            UpstreamFile::Zip("v1.0.0"),
            &dest,
            MAX,
        )
        .await
        .unwrap();
    assert_eq!(
        (zip.size, std::fs::read(&dest).unwrap()),
        (6, b"PK-zip".to_vec())
    );
    let err = up
        .fetch("github.com/Azure/x", UpstreamFile::Info("v2.0.0"), MAX)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = up
        .fetch("github.com/Azure/x", UpstreamFile::List, 3)
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Failed { .. }), "{err}");
}

#[tokio::test]
async fn file_tree_miss_falls_through_to_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = always(|| Reply::ok("v1.0.0\n")).await;
    let up = upstream(
        &format!("file://{},{}", dir.path().display(), server.url()),
        &settings(),
    );
    let got = up
        .fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap();
    assert_eq!(got.source, server.url());
}

#[tokio::test]
async fn unreadable_file_is_a_failure() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "example.com/m/@v/list", b"v1.0.0\n");
    let path = dir.path().join("example.com/m/@v/list");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&path).is_ok() {
        return; // running as root: permissions are not enforced
    }
    let up = upstream(&format!("file://{}", dir.path().display()), &settings());
    let err = up
        .fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap_err();
    assert!(reason_of(&err).contains("permission denied"), "{err}");
}

#[tokio::test]
async fn off_and_direct_end_the_walk() {
    let server = always(|| Reply::status(404)).await;
    let up = upstream(&format!("{},off", server.url()), &settings());
    let err = up
        .fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Off), "{err}");
    let up = upstream("direct", &settings());
    let err = up
        .fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::DirectUnsupported));
    let failing = always(|| Reply::status(500)).await;
    let up = upstream(&format!("{},direct", failing.url()), &settings());
    let err = up
        .fetch("example.com/m", UpstreamFile::List, MAX)
        .await
        .unwrap_err();
    assert!(
        matches!(err, UpstreamError::Failed { .. }),
        "`,` stops before direct: {err}"
    );
}

#[tokio::test]
async fn get_url_returns_bodies_and_not_found() {
    let server = TestServer::start(|path, _| match path {
        "/sumdb/sum.golang.org/latest" => Reply::ok("go.sum database tree\n"),
        _ => Reply::text(404, "no such tile"),
    })
    .await;
    let up = upstream("off", &settings());
    let base = format!("{}/sumdb/sum.golang.org", server.url());
    let got = up.get_url(&format!("{base}/latest"), MAX).await.unwrap();
    assert_eq!(
        (&got.body[..], got.source.as_str()),
        (&b"go.sum database tree\n"[..], server.url().as_str())
    );
    let err = up
        .get_url(&format!("{base}/tile/8/0/x001"), MAX)
        .await
        .unwrap_err();
    assert!(
        err.is_not_found() && err.to_string() == "no such tile",
        "{err}"
    );
    let err = up.get_url("ftp://example.com/x", MAX).await.unwrap_err();
    assert!(matches!(err, UpstreamError::InvalidRequest { .. }));
}

#[tokio::test]
async fn get_url_under_an_entry_uses_that_entry() {
    let server = always(|| Reply::ok("ok")).await;
    let base = format!("{}/go", server.url());
    let up = upstream(&base, &settings());
    let got = up
        .get_url(&format!("{base}/sumdb/sum.golang.org/supported"), MAX)
        .await
        .unwrap();
    assert_eq!(got.source, base);
}

#[tokio::test]
async fn concurrency_cap_queues_instead_of_failing() {
    let server =
        always(|| Reply::Delayed(Duration::from_millis(300), Box::new(Reply::ok("x")))).await;
    let s = UpstreamSettings {
        max_concurrent: 1,
        first_byte_timeout_ms: 1_000,
        ..settings()
    };
    let up = upstream(&server.url(), &s);
    let start = Instant::now();
    let fetches = (0..4).map(|_| up.fetch("example.com/m", UpstreamFile::List, MAX));
    let results = futures_util::future::join_all(fetches).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(
        start.elapsed() >= Duration::from_millis(1_150),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn invalid_configuration_lists_every_problem() {
    let bad = UpstreamSettings {
        max_concurrent: 0,
        ..settings()
    };
    let err = Upstream::new("foo,ftp://x.example", &bad).unwrap_err();
    let UpstreamConfigError::Invalid { problems } = &err else {
        panic!("{err}");
    };
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(err
        .to_string()
        .starts_with("invalid upstream configuration: "));
}

#[test]
fn describe_shows_the_chain() {
    let up = upstream("proxy.golang.org|file:///srv/goproxy,direct", &settings());
    assert_eq!(
        up.describe(),
        "https://proxy.golang.org|file:///srv/goproxy,direct"
    );
}
