//! The report of `cairn-bench direct`: its scenarios, the printed table (min / median / max
//! seconds, ratios to the go command's own direct fetches, git requests per round), where the
//! time went, and the JSON document.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::directbench::{GitCounts, Sample};
use crate::stats::Summary;

/// What one timed run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// go direct, fresh module cache, the cold version.
    GoCold,
    /// go direct, same module cache (vcs clone present), the second version.
    GoSecond,
    /// The go command through a fresh node (no mirror), the cold version.
    CairnCold,
    /// The go command through the same node, the second version (mirror present).
    CairnSecond,
    /// The go command through the same node, the cold version again (cache hit).
    CairnHit,
    /// `.info`, `.mod`, `.zip` from another fresh node (no mirror), the cold version.
    RawCold,
    /// The same from that node, the second version (mirror present).
    RawSecond,
    /// The same from that node, the cold version again (cache hit).
    RawHit,
}

impl Scenario {
    /// Stable key for the JSON.
    pub fn key(self) -> &'static str {
        match self {
            Scenario::GoCold => "go_direct_cold",
            Scenario::GoSecond => "go_direct_second_version",
            Scenario::CairnCold => "cairn_go_cold",
            Scenario::CairnSecond => "cairn_go_second_version",
            Scenario::CairnHit => "cairn_go_hit",
            Scenario::RawCold => "cairn_raw_cold",
            Scenario::RawSecond => "cairn_raw_second_version",
            Scenario::RawHit => "cairn_raw_hit",
        }
    }

    /// Label for the table.
    pub fn label(self) -> &'static str {
        match self {
            Scenario::GoCold => "go direct, cold",
            Scenario::GoSecond => "go direct, second version",
            Scenario::CairnCold => "cairn (go cmd), cold: no mirror",
            Scenario::CairnSecond => "cairn (go cmd), second version: mirror",
            Scenario::CairnHit => "cairn (go cmd), hit",
            Scenario::RawCold => "cairn raw HTTP, cold: no mirror",
            Scenario::RawSecond => "cairn raw HTTP, second version: mirror",
            Scenario::RawHit => "cairn raw HTTP, hit",
        }
    }

    fn is_second(self) -> bool {
        matches!(
            self,
            Scenario::GoSecond | Scenario::CairnSecond | Scenario::RawSecond
        )
    }
}

fn seconds(samples: &[Sample]) -> Summary {
    Summary::of(&samples.iter().map(|s| s.secs * 1e3).collect::<Vec<_>>())
}

fn ratio(a: f64, b: f64) -> String {
    if a > 0.0 && b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

/// `a / l / f / t`, each field a range when rounds differ.
fn git_cell(samples: &[Sample]) -> String {
    let field = |f: fn(&GitCounts) -> usize| {
        let v: Vec<usize> = samples.iter().map(|s| f(&s.git)).collect();
        let (lo, hi) = (v.iter().min().copied(), v.iter().max().copied());
        match (lo, hi) {
            (Some(lo), Some(hi)) if lo != hi => format!("{lo}-{hi}"),
            (Some(lo), _) => lo.to_string(),
            _ => "-".into(),
        }
    };
    format!(
        "{} / {} / {} / {}",
        field(|g| g.adverts),
        field(|g| g.ls_refs),
        field(|g| g.fetches),
        field(|g| g.total)
    )
}

/// Per part: median seconds over the rounds (a round without the part counts as 0) and the
/// median count.
fn median_parts(samples: &[Sample]) -> BTreeMap<String, (f64, f64)> {
    let mut names: Vec<&String> = samples.iter().flat_map(|s| s.parts.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let get = |i: usize| -> Vec<f64> {
                let v = samples
                    .iter()
                    .map(|s| s.parts.get(name).map_or(0.0, |p| [p.0, p.1][i]));
                v.collect()
            };
            (
                name.clone(),
                (Summary::of(&get(0)).p50, Summary::of(&get(1)).p50),
            )
        })
        .collect()
}

/// The printed report.
pub fn table(
    module: &str,
    [cold, second]: [&String; 2],
    results: &BTreeMap<Scenario, Vec<Sample>>,
) -> String {
    let mut out = String::new();
    let rounds = results.values().map(Vec::len).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "\n== direct source vs the go command: {module}, cold {cold}, second version {second}; \
         {rounds} rounds, wall seconds =="
    );
    let _ = writeln!(
        out,
        "{:<40} {:>7} {:>7} {:>7}  {:>8} {:>8}   git requests per round",
        "scenario", "min", "median", "max", "/go cold", "/go 2nd"
    );
    let _ = writeln!(
        out,
        "{:<40} {:>7} {:>7} {:>7}  {:>8} {:>8}   (adverts / ls-refs / fetches / all)",
        "", "", "", "", "", ""
    );
    let median = |s: Scenario| results.get(&s).map_or(0.0, |v| seconds(v).p50);
    let (go_cold, go_second) = (median(Scenario::GoCold), median(Scenario::GoSecond));
    for (scenario, samples) in results {
        let s = seconds(samples);
        let second_ratio = if scenario.is_second() {
            ratio(s.p50, go_second)
        } else {
            "-".into()
        };
        let _ = writeln!(
            out,
            "{:<40} {:>7.3} {:>7.3} {:>7.3}  {:>8} {:>8}   {}",
            scenario.label(),
            s.min / 1e3,
            s.p50 / 1e3,
            s.max / 1e3,
            ratio(s.p50, go_cold),
            second_ratio,
            git_cell(samples)
        );
    }
    let _ = writeln!(
        out,
        "\n== where the time went: median over rounds, seconds (count) ==\n\
         go git/GET: what `go mod download -x` timed. go, rest: the remainder (process start,\n\
         \x20 zip creation in direct mode, verification, extraction, direct mode's untimed ping).\n\
         cairn http/git/raft: deltas of the node's histograms. cairn, outside git: its GOPROXY\n\
         \x20 requests minus its git commands (zip re-encoding, checks, hashing, fsync, Raft).\n\
         raw GET: this client's view of each request."
    );
    for (scenario, samples) in results {
        let _ = writeln!(
            out,
            "{} — total {:.3}",
            scenario.label(),
            seconds(samples).p50 / 1e3
        );
        for (name, (secs, n)) in median_parts(samples) {
            let _ = writeln!(out, "    {name:<36} {secs:>7.3} ({n})");
        }
    }
    out
}

/// Writes the JSON document: `meta`, then one entry per scenario with its summary (ms), ratios,
/// and every round's seconds, git requests and parts.
pub fn write_json(
    path: &Path,
    results: &BTreeMap<Scenario, Vec<Sample>>,
    meta: serde_json::Value,
) -> anyhow::Result<()> {
    let median = |s: Scenario| results.get(&s).map_or(0.0, |v| seconds(v).p50);
    let (go_cold, go_second) = (median(Scenario::GoCold), median(Scenario::GoSecond));
    let scenarios: Vec<serde_json::Value> = results
        .iter()
        .map(|(scenario, samples)| {
            let s = seconds(samples);
            let parts = |p: &BTreeMap<String, (f64, f64)>| -> serde_json::Value {
                p.iter()
                    .map(|(k, (secs, n))| (k.clone(), json!({ "secs": secs, "count": n })))
                    .collect::<serde_json::Map<_, _>>()
                    .into()
            };
            let rounds: Vec<serde_json::Value> = samples
                .iter()
                .map(|x| {
                    json!({
                        "secs": x.secs,
                        "git": { "adverts": x.git.adverts, "ls_refs": x.git.ls_refs,
                                 "fetches": x.git.fetches, "total": x.git.total },
                        "parts": parts(&x.parts),
                    })
                })
                .collect();
            json!({
                "key": scenario.key(), "label": scenario.label(),
                "summary_ms": s.json(),
                "ratio_to_go_direct_cold": if go_cold > 0.0 { s.p50 / go_cold } else { f64::NAN },
                "ratio_to_go_direct_second": if scenario.is_second() && go_second > 0.0 {
                    Some(s.p50 / go_second)
                } else {
                    None
                },
                "parts_median": parts(&median_parts(samples)),
                "rounds": rounds,
            })
        })
        .collect();
    let doc = json!({ "meta": meta, "scenarios": scenarios });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("writing {}", path.display()))
}
