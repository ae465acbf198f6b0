//! Tests of the audit log: settings, the line format, rotation, flush and dropping.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::event::rfc3339_millis;
use super::*;

fn settings(target: &Path, max_bytes: u64, max_files: usize) -> AuditSettings {
    AuditSettings {
        target: target.to_string_lossy().into_owned(),
        max_bytes,
        max_files,
    }
}

fn client() -> SocketAddr {
    "192.0.2.7:51234".parse().unwrap()
}

fn request(id: &str) -> RequestEvent<'_> {
    RequestEvent {
        identity: Some("ci-bot"),
        auth_method: Some("token"),
        client: client(),
        module: "example.com/m",
        version: Some("v1.2.3"),
        kind: "zip",
        status: 200,
        bytes: 1234,
        cache: "hit",
        node: 2,
        request_id: id,
    }
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ids(path: &Path) -> Vec<String> {
    lines(path)
        .iter()
        .map(|v| v["request_id"].as_str().unwrap().to_owned())
        .collect()
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

// === settings ===

#[test]
fn default_settings_are_off_and_valid() {
    let s = AuditSettings::default();
    assert_eq!(s.target(), AuditTarget::Off);
    assert_eq!(s.max_bytes, 100 << 20);
    assert_eq!(s.max_files, 10);
    assert_eq!(s.validate(), Ok(()));
    let parsed: AuditSettings = toml::from_str("").unwrap();
    assert_eq!(parsed, s);
}

#[test]
fn settings_parse_targets_and_reject_unknown_keys() {
    let s: AuditSettings = toml::from_str("target = \"stdout\"").unwrap();
    assert_eq!(s.target(), AuditTarget::Stdout);
    let s: AuditSettings =
        toml::from_str("target = \"/var/log/cairn/audit.log\"\nmax_bytes = 1024\nmax_files = 3")
            .unwrap();
    assert_eq!(
        s.target(),
        AuditTarget::File("/var/log/cairn/audit.log".into())
    );
    assert!(toml::from_str::<AuditSettings>("max_size = 5").is_err());
}

#[test]
fn invalid_settings_report_every_problem() {
    let s = AuditSettings {
        target: " ".into(),
        max_bytes: 0,
        max_files: 5000,
    };
    let errs = s.validate().unwrap_err();
    assert_eq!(
        errs,
        vec![
            AuditSettingsError::EmptyTarget,
            AuditSettingsError::ZeroMaxBytes,
            AuditSettingsError::TooManyFiles(5000),
        ]
    );
    let dir = AuditSettings {
        target: "/var/log/".into(),
        ..AuditSettings::default()
    };
    let msg = dir.validate().unwrap_err()[0].to_string();
    assert!(
        msg.starts_with("audit.target:") && msg.contains("names a directory"),
        "{msg}"
    );
    let err = AuditLog::open(&s).unwrap_err();
    assert!(
        matches!(err, AuditError::Invalid(ref v) if v.len() == 3),
        "{err}"
    );
}

#[test]
fn a_missing_directory_is_an_open_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("no/such/dir/audit.log");
    let err = AuditLog::open(&settings(&path, 1024, 1)).unwrap_err();
    assert!(matches!(err, AuditError::Open { .. }), "{err}");
    assert!(err.to_string().contains("no/such/dir/audit.log"), "{err}");
}

// === lines ===

#[test]
fn timestamps_are_rfc3339_utc_with_millis() {
    assert_eq!(rfc3339_millis(1_700_000_000, 7), "2023-11-14T22:13:20.007Z");
    assert_eq!(rfc3339_millis(0, 999), "1970-01-01T00:00:00.999Z");
}

#[tokio::test]
async fn lines_are_json_with_every_field() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    let log = AuditLog::open(&settings(&path, 1 << 20, 2)).unwrap();
    log.request(request("req-1"));
    log.request(RequestEvent {
        identity: None,
        auth_method: None,
        version: None,
        kind: "list",
        cache: "none",
        status: 404,
        ..request("req-2")
    });
    log.admin(AdminEvent {
        identity: "alice",
        client: None,
        action: "members.add",
        target: "node 4 at 10.0.0.4:9090",
        result: "ok",
        node: 1,
    });
    log.flush().await;
    let got = lines(&path);
    assert_eq!(got.len(), 3);
    let r = &got[0];
    assert_eq!(r["type"], "request");
    assert_eq!(r["identity"], "ci-bot");
    assert_eq!(r["auth_method"], "token");
    assert_eq!(r["client"], "192.0.2.7:51234");
    assert_eq!(r["module"], "example.com/m");
    assert_eq!(r["version"], "v1.2.3");
    assert_eq!(r["kind"], "zip");
    assert_eq!(r["status"], 200);
    assert_eq!(r["bytes"], 1234);
    assert_eq!(r["cache"], "hit");
    assert_eq!(r["node"], 2);
    assert_eq!(r["request_id"], "req-1");
    let ts = r["ts"].as_str().unwrap();
    assert_eq!((ts.len(), &ts[19..20], &ts[23..]), (24, ".", "Z"), "{ts}");
    assert!(got[1]["identity"].is_null() && got[1]["version"].is_null());
    assert_eq!(got[1]["status"], 404);
    let a = &got[2];
    assert_eq!(a["type"], "admin");
    assert_eq!(a["identity"], "alice");
    assert!(a["client"].is_null());
    assert_eq!(a["action"], "members.add");
    assert_eq!(a["target"], "node 4 at 10.0.0.4:9090");
    assert_eq!(a["result"], "ok");
    assert_eq!(a["node"], 1);
    assert_eq!(
        log.stats(),
        AuditStats {
            written: 3,
            ..AuditStats::default()
        }
    );
}

#[tokio::test]
async fn clones_share_one_writer_and_reopening_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    let s = settings(&path, 1 << 20, 2);
    let log = AuditLog::open(&s).unwrap();
    let clone = log.clone();
    clone.request(request("a"));
    log.flush().await;
    assert_eq!(ids(&path), ["a"]);
    drop((log, clone));
    let again = AuditLog::open(&s).unwrap();
    again.request(request("b"));
    again.flush().await;
    assert_eq!(ids(&path), ["a", "b"]);
}

// === rotation ===

/// The length of one `request(id)` line with a two-character id.
async fn line_len(dir: &Path) -> u64 {
    let path = dir.join("probe.log");
    let log = AuditLog::open(&settings(&path, 1 << 20, 0)).unwrap();
    log.request(request("00"));
    log.flush().await;
    std::fs::metadata(&path).unwrap().len()
}

#[tokio::test]
async fn rotation_keeps_max_files_and_never_exceeds_max_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let len = line_len(tmp.path()).await;
    let path = tmp.path().join("audit.log");
    // Room for two and a half lines: two per file.
    let max_bytes = len * 5 / 2;
    let log = AuditLog::open(&settings(&path, max_bytes, 3)).unwrap();
    for i in 0..20 {
        log.request(request(&format!("{i:02}")));
    }
    log.flush().await;
    assert_eq!(ids(&path), ["18", "19"]);
    assert_eq!(ids(&numbered(&path, 1)), ["16", "17"]);
    assert_eq!(ids(&numbered(&path, 2)), ["14", "15"]);
    assert_eq!(ids(&numbered(&path, 3)), ["12", "13"]);
    assert!(!numbered(&path, 4).exists());
    for p in [path.clone(), numbered(&path, 1), numbered(&path, 3)] {
        assert!(std::fs::metadata(&p).unwrap().len() <= max_bytes);
    }
    assert_eq!(log.stats().written, 20);
}

#[tokio::test]
async fn a_line_larger_than_max_bytes_is_written_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    let log = AuditLog::open(&settings(&path, 10, 2)).unwrap();
    for id in ["a", "b", "c"] {
        log.request(request(id));
    }
    log.flush().await;
    assert_eq!(ids(&path), ["c"]);
    assert_eq!(ids(&numbered(&path, 1)), ["b"]);
    assert_eq!(ids(&numbered(&path, 2)), ["a"]);
    assert_eq!(log.stats().write_errors, 0);
}

#[tokio::test]
async fn max_files_zero_starts_the_file_afresh() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    let log = AuditLog::open(&settings(&path, 10, 0)).unwrap();
    for id in ["a", "b"] {
        log.request(request(id));
    }
    log.flush().await;
    assert_eq!(ids(&path), ["b"]);
    assert!(!numbered(&path, 1).exists());
}

// === off, flush and dropping ===

#[tokio::test]
async fn off_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    for log in [
        AuditLog::off(),
        AuditLog::open(&AuditSettings::default()).unwrap(),
    ] {
        assert!(!log.is_on());
        log.request(request("x"));
        log.flush().await;
        assert_eq!(log.stats(), AuditStats::default());
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_events() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    let (log, gate) = AuditLog::open_gated(&settings(&path, 1 << 20, 1), 2).unwrap();
    for i in 0..5 {
        log.request(request(&format!("{i}")));
    }
    assert_eq!(log.stats().dropped, 3);
    assert_eq!(log.stats().written, 0);
    gate.send(()).unwrap();
    log.flush().await;
    assert_eq!(ids(&path), ["0", "1"]);
    assert_eq!(
        log.stats(),
        AuditStats {
            written: 2,
            dropped: 3,
            write_errors: 0
        }
    );
}
