//! What the time of one `cairn-bench direct` sample consisted of: the go command's own account
//! (`go mod download -x`), the node's duration histograms, and the git server's request log.

use std::collections::BTreeMap;

use cairn_tests::githttp::{GitServer, Rpc};
use cairn_tests::metrics::Metrics;

use crate::directbench::GitCounts;

/// Parses `go -x` output: `# get <url>: 200 OK (0.012s)` lines become `go GET .<ext>`, and
/// `0.034s # [cd <dir>; ]git [-c k=v …] <cmd> …` lines `go git <cmd>`. What is left of `total`
/// is `go, rest`: process start, the zip's creation (direct mode) and verification, extraction
/// into the module cache, and in direct mode the repository ping (`git ls-remote`, which `-x`
/// echoes without a duration).
pub fn go_parts(stderr: &str, total: f64) -> BTreeMap<String, (f64, f64)> {
    let mut parts: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in stderr.lines() {
        let parsed = if let Some(rest) = line.strip_prefix("# get ") {
            rest.rsplit_once(": ").and_then(|(url, tail)| {
                let secs = tail.rsplit_once('(')?.1.strip_suffix("s)")?.parse().ok()?;
                let last = url.rsplit('/').next()?;
                let what = last.rsplit_once('.').map_or(last, |(_, ext)| ext);
                Some((format!("go GET .{what}"), secs))
            })
        } else if let Some((secs, cmd)) = line.split_once("s # ") {
            secs.parse::<f64>().ok().and_then(|secs| {
                let cmd = cmd.rsplit_once("; ").map_or(cmd, |(_, c)| c);
                let mut words = cmd.split_whitespace();
                (words.next()? == "git").then_some(())?;
                let mut sub = None;
                while let Some(w) = words.next() {
                    if w == "-c" {
                        words.next();
                    } else if !w.starts_with('-') {
                        sub = Some(w);
                        break;
                    }
                }
                Some((format!("go git {}", sub?), secs))
            })
        } else {
            None
        };
        if let Some((key, secs)) = parsed {
            let e = parts.entry(key).or_default();
            e.0 += secs;
            e.1 += 1.0;
        }
    }
    let accounted: f64 = parts.values().map(|(s, _)| s).sum();
    parts.insert("go, rest".to_owned(), ((total - accounted).max(0.0), 1.0));
    parts
}

/// Deltas of the node's duration histograms between two scrapes: requests by endpoint, git
/// commands by subcommand, Raft proposals and log flushes; plus `cairn, outside git`: the
/// GOPROXY requests' time minus the git commands' (building and checking the zip, hashing,
/// storing, committing).
pub fn node_parts(before: &Metrics, after: &Metrics) -> BTreeMap<String, (f64, f64)> {
    let mut parts = BTreeMap::new();
    for (metric, label, name) in [
        (
            "cairn_http_request_duration_seconds",
            "endpoint",
            "cairn http",
        ),
        (
            "cairn_direct_git_command_duration_seconds",
            "command",
            "cairn git",
        ),
        (
            "cairn_raft_propose_duration_seconds",
            "",
            "cairn raft propose",
        ),
        ("cairn_raft_flush_duration_seconds", "", "cairn raft flush"),
    ] {
        let (sum, count) = (format!("{metric}_sum"), format!("{metric}_count"));
        for s in after.samples.iter().filter(|s| s.name == sum) {
            let value = s.labels.get(label).map_or("", String::as_str);
            if value == "metrics" {
                continue;
            }
            let filter: Vec<(&str, &str)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let secs = s.value - before.sum(&sum, &filter);
            let n = after.sum(&count, &filter) - before.sum(&count, &filter);
            if n > 0.0 {
                let key = format!("{name} {value}").trim_end().to_owned();
                let e = parts.entry(key).or_insert((0.0, 0.0));
                e.0 += secs;
                e.1 += n;
            }
        }
    }
    let total = |prefix: &str| -> f64 {
        parts
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, (s, _))| s)
            .sum()
    };
    let outside = total("cairn http ") - total("cairn git ");
    if total("cairn http ") > 0.0 {
        parts.insert("cairn, outside git".to_owned(), (outside.max(0.0), 1.0));
    }
    parts
}

/// What the git server saw since its log was last reset.
pub fn git_counts(server: &GitServer) -> GitCounts {
    let reqs = server.requests();
    let rpc = |k: Rpc| reqs.iter().filter(|r| r.rpc == Some(k)).count();
    GitCounts {
        adverts: reqs
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/info/refs"))
            .count(),
        ls_refs: rpc(Rpc::LsRefs),
        fetches: rpc(Rpc::Fetch),
        total: reqs.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_x_output() {
        let stderr = "mkdir -p /m/cache/vcs # git3 https://git.corp.example/team/service\n\
            # lock /m/cache/vcs/ab.lock\n\
            cd /m/cache/vcs/ab; git init --bare\n\
            0.004s # cd /m/cache/vcs/ab; git init --bare\n\
            0.120s # cd /m/cache/vcs/ab; git -c protocol.version=2 fetch -f --depth=1 origin refs/tags/v1.0.5:refs/tags/v1.0.5\n\
            0.030s # cd /m/cache/vcs/ab; git -c core.autocrlf=input -c core.eol=lf archive --format=zip x\n\
            # get http://127.0.0.1:1/git.corp.example/team/service.git/@v/v1.0.5.info\n\
            # get http://127.0.0.1:1/git.corp.example/team/service.git/@v/v1.0.5.info: 200 OK (0.250s)\n\
            # get http://127.0.0.1:1/git.corp.example/team/service.git/@v/list: 404 Not Found (0.001s)\n";
        let p = go_parts(stderr, 1.0);
        assert_eq!(p["go git init"], (0.004, 1.0));
        assert_eq!(p["go git fetch"], (0.120, 1.0));
        assert_eq!(p["go git archive"], (0.030, 1.0));
        assert_eq!(p["go GET .info"], (0.250, 1.0));
        assert_eq!(p["go GET .list"], (0.001, 1.0));
        assert!((p["go, rest"].0 - 0.595).abs() < 1e-9);
    }
}
