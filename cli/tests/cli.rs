//! The `cairn` binary's command line.

use std::process::Command;

#[test]
fn status_against_a_dead_address_fails_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["--node", "127.0.0.1:1", "--timeout-secs", "2", "status"])
        .output()
        .expect("run cairn");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("cannot connect"), "{text}");
}

#[test]
fn members_commands_against_a_dead_address_fail_clearly() {
    for args in [
        &["members", "list"][..],
        &["members", "add", "4", "h:9090"][..],
        &["members", "remove", "4"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(["--node", "127.0.0.1:1", "--timeout-secs", "2"])
            .args(args)
            .output()
            .expect("run cairn");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("cannot connect"), "{args:?}: {text}");
    }
}

#[test]
fn bad_arguments_are_rejected_before_any_call() {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["members", "add", "not-a-number", "h:1"])
        .output()
        .expect("run cairn");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("invalid value"), "{text}");
}

/// The offline backup commands fail clearly on what is not a backup, and `restore` never
/// writes into a data directory that is not empty.
#[test]
fn backup_commands_reject_what_is_not_a_backup() {
    let scratch = std::env::temp_dir().join(format!("cairn-cli-backup-{}", std::process::id()));
    let full = scratch.join("data");
    std::fs::create_dir_all(&full).expect("scratch dir");
    std::fs::write(full.join("keep"), b"x").expect("a file");
    let missing = scratch.join("no-backup");
    let (missing_s, full_s) = (missing.display().to_string(), full.display().to_string());
    let cases: [(&[&str], &str); 5] = [
        (&["backup"], "needs --out"),
        (
            &[
                "backup",
                "--state-only",
                "--non-refetchable-only",
                "--out",
                "x",
            ],
            "cannot be used with",
        ),
        (&["backup", "verify", &missing_s], "backup.json is missing"),
        (
            &["restore", "--from", &missing_s, "--data-dir", &full_s],
            "is not empty",
        ),
        (
            &["restore", "--from", &missing_s, "--data-dir", &missing_s],
            "backup.json is missing",
        ),
    ];
    for (args, expect) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(["--node", "127.0.0.1:1", "--timeout-secs", "2"])
            .args(args)
            .output()
            .expect("run cairn");
        assert!(!out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.contains(expect), "{args:?}: {text}");
    }
    assert!(
        !missing.exists(),
        "a refused restore created its data directory"
    );
    assert_eq!(std::fs::read(full.join("keep")).expect("kept"), b"x");
    std::fs::remove_dir_all(&scratch).expect("clean up");
}
