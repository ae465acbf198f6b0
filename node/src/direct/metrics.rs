//! Metrics of `direct` fetching. Labels are bounded: `command` is a git subcommand cairn runs
//! (`ls-remote`, `fetch`, `init`, `log`, `cat-file`, `archive`, …) and `result` is `ok|error`;
//! repository URLs and module paths never become labels.

use std::time::Duration;

use metrics::{counter, describe_counter, describe_histogram, histogram, Unit};

/// git commands run, by subcommand and result.
pub const GIT_COMMANDS_TOTAL: &str = "cairn_direct_git_commands_total";
/// Duration of git commands, by subcommand.
pub const GIT_COMMAND_SECONDS: &str = "cairn_direct_git_command_duration_seconds";
/// Bare mirrors created (first clone of a repository on this node).
pub const CLONES_TOTAL: &str = "cairn_direct_clones_total";
/// Incremental fetches into an existing mirror (only when the remote's refs changed).
pub const FETCHES_TOTAL: &str = "cairn_direct_fetches_total";
/// Files answered by the direct source, by kind and result.
pub const REQUESTS_TOTAL: &str = "cairn_direct_requests_total";

/// Registers units and help texts; called once at startup by the root `metrics` module.
pub fn describe() {
    describe_counter!(
        GIT_COMMANDS_TOTAL,
        Unit::Count,
        "git commands run for direct modules, by subcommand and result (ok|error)."
    );
    describe_histogram!(
        GIT_COMMAND_SECONDS,
        Unit::Seconds,
        "Duration of git commands run for direct modules, by subcommand."
    );
    describe_counter!(
        CLONES_TOTAL,
        Unit::Count,
        "Bare git mirrors created on this node (one per repository, kept across restarts)."
    );
    describe_counter!(
        FETCHES_TOTAL,
        Unit::Count,
        "Incremental git fetches into existing mirrors (run only when the remote's refs changed)."
    );
    describe_counter!(
        REQUESTS_TOTAL,
        Unit::Count,
        "Files answered by the direct source, by kind (list|latest|info|mod|zip) and result (ok|not_found|error)."
    );
}

pub(crate) fn git_command(command: &str, elapsed: Duration, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    counter!(GIT_COMMANDS_TOTAL, "command" => command.to_owned(), "result" => result).increment(1);
    histogram!(GIT_COMMAND_SECONDS, "command" => command.to_owned()).record(elapsed.as_secs_f64());
}

pub(crate) fn clone_done() {
    counter!(CLONES_TOTAL).increment(1);
}

pub(crate) fn fetch_done() {
    counter!(FETCHES_TOTAL).increment(1);
}

pub(crate) fn request(kind: &'static str, result: &'static str) {
    counter!(REQUESTS_TOTAL, "kind" => kind, "result" => result).increment(1);
}
