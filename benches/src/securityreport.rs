//! The report of `cairn-bench security`: the load rows as in the hit benchmark's table, then
//! per part the comparison it exists for (HTTPS/plain ratios with the target's PASS/MISS, the
//! access checks' p50 and CPU-per-request deltas against off, the in-process µs per call, and
//! the cluster figures with mutual TLS and without side by side), and the same as JSON.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::cluster::Profile;
use crate::failover::{self, ProfileSummary};
use crate::replication;
use crate::report::{self, Row};
use crate::securityparts::Micro;
use crate::stats::Summary;

/// Minimum HTTPS/plain throughput ratio (the target).
pub const HTTPS_MIN_RATIO: f64 = 0.8;
/// The scenario the target applies to.
pub const HTTPS_TARGET_SCENARIO: &str = "zip100k";
/// The connection count the target applies to.
pub const HTTPS_TARGET_CONNS: usize = 64;

/// One cluster's rounds.
pub struct ClusterSide {
    /// Its Raft profile and cluster-port security.
    pub profile: Profile,
    /// Replication rounds.
    pub replication: Vec<replication::Round>,
    /// Failover rounds.
    pub failover: Vec<failover::Round>,
}

impl ClusterSide {
    /// No rounds yet.
    pub fn new(profile: Profile) -> ClusterSide {
        ClusterSide {
            profile,
            replication: Vec::new(),
            failover: Vec::new(),
        }
    }

    fn replication_ms(&self, f: fn(&replication::Round) -> Option<f64>) -> Summary {
        Summary::of(&self.replication.iter().filter_map(f).collect::<Vec<_>>())
    }

    /// (label, summary) of every figure compared between the two clusters.
    fn figures(&self) -> Vec<(&'static str, Summary)> {
        let f = ProfileSummary::of(self.profile.name, &self.failover);
        vec![
            (
                "replication: 1st copy",
                self.replication_ms(|r| r.copies_ms(1)),
            ),
            (
                "replication: min_copies (2)",
                self.replication_ms(|r| r.copies_ms(2)),
            ),
            (
                "replication: all 3 copies",
                self.replication_ms(|r| r.copies_ms(3)),
            ),
            (
                "replication: node 1 answered",
                self.replication_ms(|r| Some(r.body_ms)),
            ),
            ("failover: leader elected", f.elected),
            ("failover: leader known", f.known),
            ("failover: first committed write", f.write),
            ("failover: rejoin", f.rejoin),
        ]
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "security": self.profile.security(), "profile": self.profile.name,
            "raft": self.profile.describe,
            "replication": self.replication.iter().map(|r| r.json()).collect::<Vec<_>>(),
            "failover_summary": ProfileSummary::of(self.profile.name, &self.failover).json(),
            "failover": self.failover.iter().map(|r| r.json()).collect::<Vec<_>>(),
        })
    }
}

/// Everything measured.
#[derive(Default)]
pub struct Results {
    /// Median rows `plain` and `https` per scenario.
    pub https: Vec<Row>,
    /// Median rows `off`, `token`, `jwt`.
    pub auth: Vec<Row>,
    /// In-process µs per `authenticate` call.
    pub micro: Vec<Micro>,
    /// The insecure and the mutual-TLS cluster.
    pub cluster: Option<Vec<ClusterSide>>,
}

fn find<'a>(rows: &'a [Row], scenario: &str, server: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.scenario == scenario && r.server == server)
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("n/a".into(), |r| format!("{r:.2}x"))
}

/// HTTPS/plain for one scenario: (ratio by body bytes, verdict).
fn https_verdict(plain: &Row, https: &Row) -> (Option<f64>, &'static str) {
    let r = ratio(https.load.bytes as f64, plain.load.bytes as f64);
    let applies = plain.scenario == HTTPS_TARGET_SCENARIO && plain.conns == HTTPS_TARGET_CONNS;
    let v = match (applies, r) {
        (false, _) => "(no target)",
        (true, Some(r)) if r >= HTTPS_MIN_RATIO && https.load.errors == 0 => "PASS",
        (true, _) => "MISS",
    };
    (r, v)
}

/// The whole report.
pub fn render(res: &Results, conns: usize) -> String {
    let mut out = String::new();
    if !res.https.is_empty() {
        let _ = writeln!(
            out,
            "\n== HTTPS vs plain HTTP hits, one node, both listeners (median runs) =="
        );
        out.push_str(&report::table(&res.https));
        https_summary(&mut out, &res.https);
    }
    if !res.auth.is_empty() {
        let _ = writeln!(
            out,
            "\n== Access checks: info hits at {conns} connections, plain HTTP (median runs) =="
        );
        out.push_str(&report::table(&res.auth));
        auth_summary(&mut out, &res.auth);
    }
    if !res.micro.is_empty() {
        let _ = writeln!(out, "\n== In-process Access::authenticate, one thread ==");
        for m in &res.micro {
            let _ = writeln!(
                out,
                "{:<14} {:>9.2} us/call  ({} calls)",
                m.name, m.us_per_call, m.calls
            );
        }
    }
    if let Some(sides) = &res.cluster {
        cluster_summary(&mut out, sides);
    }
    for row in res.https.iter().chain(&res.auth) {
        if let Some(err) = &row.load.first_error {
            let _ = writeln!(out, "first error, {} {}: {err}", row.scenario, row.server);
        }
    }
    out
}

fn https_summary(out: &mut String, rows: &[Row]) {
    for plain in rows.iter().filter(|r| r.server == "plain") {
        let Some(https) = find(rows, plain.scenario, "https") else {
            continue;
        };
        let (r, v) = https_verdict(plain, https);
        let _ = writeln!(
            out,
            "{} at {} conns: HTTPS/plain throughput {}; p50 {:.2} -> {:.2} ms, p99 {:.2} -> {:.2} ms; \
             server CPU/req {:.0} -> {:.0} us, client CPU {:.0}% -> {:.0}%; target >= {HTTPS_MIN_RATIO}x \
             ({HTTPS_TARGET_SCENARIO}, {HTTPS_TARGET_CONNS} conns): {v}",
            plain.scenario,
            plain.conns,
            fmt_ratio(r),
            plain.load.quantile_ms(0.5),
            https.load.quantile_ms(0.5),
            plain.load.quantile_ms(0.99),
            https.load.quantile_ms(0.99),
            plain.cpu_us_per_req(),
            https.cpu_us_per_req(),
            plain.client_cpu_pct,
            https.client_cpu_pct,
        );
    }
}

fn auth_summary(out: &mut String, rows: &[Row]) {
    let Some(off) = find(rows, "info", "off") else {
        return;
    };
    let _ = writeln!(
        out,
        "{:<8} {:>9} {:>8} {:>8} {:>12} {:>12} {:>14}",
        "access", "req/s", "vs off", "p50 ms", "p50 delta", "CPU/req", "CPU/req delta"
    );
    for r in rows {
        let dp50 = r.load.quantile_ms(0.5) - off.load.quantile_ms(0.5);
        let dcpu = r.cpu_us_per_req() - off.cpu_us_per_req();
        let _ = writeln!(
            out,
            "{:<8} {:>9.0} {:>8} {:>8.3} {:>+9.1} us {:>9.1} us {:>+11.1} us",
            r.server,
            r.rps(),
            fmt_ratio(ratio(r.rps(), off.rps())),
            r.load.quantile_ms(0.5),
            dp50 * 1e3,
            r.cpu_us_per_req(),
            dcpu
        );
    }
    let _ = writeln!(
        out,
        "(a closed loop turns per-request cost into queueing, so compare the p50 delta and the \
         server CPU time per request; CPU/req = server CPU seconds in the window / requests)"
    );
}

fn cluster_summary(out: &mut String, sides: &[ClusterSide]) {
    let [insecure, mtls] = sides else {
        return;
    };
    let p = insecure.profile;
    let _ = writeln!(
        out,
        "\n== Cluster port: mutual TLS vs insecure, 3 nodes each ({}: {}), rounds alternating (ms) ==",
        p.name, p.describe
    );
    let _ = writeln!(
        out,
        "{:<34} {:>20} {:>20} {:>12}",
        "figure (min / median / max)", "insecure", "mtls", "mtls/insec."
    );
    for ((name, a), (_, b)) in insecure.figures().into_iter().zip(mtls.figures()) {
        let _ = writeln!(
            out,
            "{name:<34} {:>20} {:>20} {:>12}",
            a.min_med_max(),
            b.min_med_max(),
            fmt_ratio(ratio(b.p50, a.p50).filter(|_| a.n > 0 && b.n > 0))
        );
    }
    for side in sides {
        let unverified = side.replication.iter().filter(|r| !r.verified).count();
        let f = ProfileSummary::of(side.profile.name, &side.failover);
        if unverified > 0 || f.valid.0 < f.valid.1 {
            let _ = writeln!(
                out,
                "  {}: {unverified} replication round(s) NOT verified; {} of {} failover rounds verified (the others are left out)",
                side.profile.security(),
                f.valid.0,
                f.valid.1
            );
        }
    }
    let _ = writeln!(
        out,
        "(replication: ms from the request until k nodes held the blob; failover figures as in \
         `cairn-bench cluster`; with few rounds the election timeout's randomness dominates)"
    );
}

/// Writes the results, with `meta`, as JSON to `path`.
pub fn write_json(path: &Path, res: &Results, meta: serde_json::Value) -> anyhow::Result<()> {
    let comparisons: Vec<serde_json::Value> = res
        .https
        .iter()
        .filter(|r| r.server == "plain")
        .filter_map(|plain| {
            let https = find(&res.https, plain.scenario, "https")?;
            let (r, v) = https_verdict(plain, https);
            Some(json!({
                "scenario": plain.scenario, "conns": plain.conns,
                "https_over_plain_bytes": r,
                "https_over_plain_rps": ratio(https.rps(), plain.rps()),
                "verdict": v,
            }))
        })
        .collect();
    let off = find(&res.auth, "info", "off");
    let deltas: Vec<serde_json::Value> = res
        .auth
        .iter()
        .filter_map(|r| {
            let off = off?;
            Some(json!({
                "access": r.server,
                "rps_over_off": ratio(r.rps(), off.rps()),
                "p50_delta_us": (r.load.quantile_ms(0.5) - off.load.quantile_ms(0.5)) * 1e3,
                "server_cpu_us_per_req_delta": r.cpu_us_per_req() - off.cpu_us_per_req(),
            }))
        })
        .collect();
    let cluster = res.cluster.as_ref().map(|sides| {
        let ratios: Vec<serde_json::Value> = match &sides[..] {
            [a, b] => a
                .figures()
                .into_iter()
                .zip(b.figures())
                .map(|((name, a), (_, b))| {
                    json!({ "figure": name, "insecure_p50_ms": a.p50, "mtls_p50_ms": b.p50,
                            "mtls_over_insecure": ratio(b.p50, a.p50) })
                })
                .collect(),
            _ => Vec::new(),
        };
        json!({ "sides": sides.iter().map(ClusterSide::json).collect::<Vec<_>>(), "medians": ratios })
    });
    let doc = json!({
        "meta": meta,
        "targets": { "https_min_ratio": HTTPS_MIN_RATIO, "scenario": HTTPS_TARGET_SCENARIO,
                     "conns": HTTPS_TARGET_CONNS },
        "https": { "rows": res.https.iter().map(report::row_json).collect::<Vec<_>>(),
                   "comparisons": comparisons },
        "auth": { "rows": res.auth.iter().map(report::row_json).collect::<Vec<_>>(),
                  "deltas_vs_off": deltas },
        "micro": res.micro.iter().map(|m| json!({ "credential": m.name, "calls": m.calls,
                                                   "us_per_call": m.us_per_call })).collect::<Vec<_>>(),
        "cluster": cluster,
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("writing {}", path.display()))
}
