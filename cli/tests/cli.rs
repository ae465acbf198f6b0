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
