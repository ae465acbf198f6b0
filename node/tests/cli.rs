//! The `cairn-node` binary's command line: help text and configuration errors.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cairn-node"))
}

#[test]
fn help_documents_every_flag() {
    let out = bin().arg("--help").output().expect("run cairn-node --help");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--data-dir",
        "--upstream",
        "--config",
        "--node-id",
        "--cluster-listen",
        "--peers",
        "--log-format",
        "--log-level",
        "--upstream-error-status",
        "--shutdown-grace-secs",
        "CAIRN_LISTEN",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help:\n{text}");
    }
}

#[test]
fn invalid_configuration_reports_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bin()
        .args([
            "--listen",
            "not-an-address",
            "--node-id",
            "0",
            "--upstream",
            "ftp://x",
            "--log-format",
            "xml",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("CAIRN_CONFIG")
        .output()
        .expect("run cairn-node");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = String::from_utf8_lossy(&out.stderr);
    for key in ["listen", "node_id", "upstream", "log_format"] {
        assert!(text.contains(key), "{key} missing from:\n{text}");
    }
}
