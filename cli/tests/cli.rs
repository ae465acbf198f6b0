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
