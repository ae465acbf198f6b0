//! The results: one [`Row`] per (scenario, connections, server), printed as a table with each
//! cairn row compared against the static server's row for the same scenario and connection
//! count, a memory-growth verdict per connection count, and the same data as JSON.
//!
//! Targets (issue 13): cairn hits at ≥ 1.0× the static server's req/s with a p99 no worse than
//! its (`p99≤ref` / `p99>ref`, at every connection count); p99 under 10 ms at 64 connections; resident memory that does not grow with zip size, judged here as
//! "peak RSS with 10 MiB zips exceeds peak RSS with 100 KiB zips by less than 1 MiB per
//! connection" (buffering whole zips would cost about 10 MiB per connection).
//!
//! The cairn/static ratio compares body bytes delivered inside the window. In steady state that
//! is the req/s ratio, but it is not quantized when one response takes longer than the window
//! (512 connections × 10 MiB: a whole wave of requests may complete after the window closes).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::load::LoadResult;
use crate::procstat::MemoryPeak;

/// Minimum cairn/static req/s ratio (issue 13: at least nginx's requests/s).
pub const MIN_RATIO: f64 = 1.0;
/// Maximum p99 latency (ms), applied at [`P99_CONNS`] connections.
pub const MAX_P99_MS: f64 = 10.0;
/// The connection count the p99 target applies to.
pub const P99_CONNS: usize = 64;
/// Allowed peak-RSS growth from 100 KiB to 10 MiB zips, per connection (KiB).
pub const RSS_GROWTH_KIB_PER_CONN: u64 = 1024;

/// One measured run.
#[derive(Debug, Clone)]
pub struct Row {
    /// Scenario name (`info`, `zip100k`, `zip10m`).
    pub scenario: &'static str,
    /// Body size of each response.
    pub body_bytes: u64,
    /// Concurrent connections.
    pub conns: usize,
    /// Server name (`cairn`, `nginx`, `hyper-static`).
    pub server: String,
    /// Load generator counts.
    pub load: LoadResult,
    /// Length of the measurement window, seconds.
    pub window_secs: f64,
    /// Server CPU over the window, % of one core (all its processes).
    pub server_cpu_pct: f64,
    /// Load generator CPU over the window, % of one core.
    pub client_cpu_pct: f64,
    /// Server memory over the whole run (warm-up included).
    pub mem: MemoryPeak,
}

impl Row {
    /// Completed requests per second.
    pub fn rps(&self) -> f64 {
        self.load.requests as f64 / self.window_secs
    }

    /// Body megabytes (10^6) per second.
    pub fn mbps(&self) -> f64 {
        self.load.bytes as f64 / self.window_secs / 1e6
    }

    /// Server CPU time per completed request, microseconds.
    pub fn cpu_us_per_req(&self) -> f64 {
        if self.load.requests == 0 {
            return 0.0;
        }
        self.server_cpu_pct / 100.0 * self.window_secs * 1e6 / self.load.requests as f64
    }

    fn is_cairn(&self) -> bool {
        self.server == "cairn"
    }
}

/// The static row matching a cairn row.
fn reference<'a>(rows: &'a [Row], cairn: &Row) -> Option<&'a Row> {
    rows.iter()
        .find(|r| !r.is_cairn() && r.scenario == cairn.scenario && r.conns == cairn.conns)
}

/// cairn's throughput ratio to the static server (by bytes delivered, see the module doc) and its
/// verdicts against the throughput and latency targets, e.g. `thr PASS p99 MISS`.
fn verdict(rows: &[Row], row: &Row) -> (Option<f64>, String) {
    let ratio = reference(rows, row)
        .filter(|s| s.load.bytes > 0)
        .map(|s| row.load.bytes as f64 / s.load.bytes as f64);
    let mut v = match ratio {
        Some(r) if r >= MIN_RATIO => "thr PASS".to_owned(),
        Some(_) => "thr MISS".to_owned(),
        None => "thr n/a".to_owned(),
    };
    if row.conns == P99_CONNS {
        let p99_ok = |r: &Row| r.load.quantile_ms(0.99) < MAX_P99_MS && r.load.requests > 0;
        v.push_str(if p99_ok(row) {
            " p99 PASS"
        } else {
            " p99 MISS"
        });
        // A closed loop's latency is at least conns × body / bandwidth (Little's law), so for
        // large bodies the static server cannot meet it either; say so.
        if !p99_ok(row) && reference(rows, row).is_some_and(|s| !p99_ok(s)) {
            v.push_str(" (static too)");
        }
    }
    if let Some(reference) = reference(rows, row) {
        let no_worse = row.load.quantile_ms(0.99) <= reference.load.quantile_ms(0.99);
        v.push_str(if no_worse { " p99≤ref" } else { " p99>ref" });
    }
    if row.load.errors > 0 {
        v.push_str(" ERRORS");
    }
    (ratio, v)
}

/// Renders the results table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:>5} {:<12} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>9} {:>6} {:>8} {:>6}  targets",
        "scenario", "conns", "server", "req/s", "MB/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
        "errors", "srvCPU", "CPU/req", "cliCPU", "peakRSS", "ratio"
    );
    for row in rows {
        let (ratio, v) = if row.is_cairn() {
            verdict(rows, row)
        } else {
            (None, String::new())
        };
        let l = &row.load;
        let _ = writeln!(
            out,
            "{:<8} {:>5} {:<12} {:>9.0} {:>8.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>5.0}% {:>7.0}us {:>5.0}% {:>6.1}Mi {:>6}  {}",
            row.scenario,
            row.conns,
            row.server,
            row.rps(),
            row.mbps(),
            l.quantile_ms(0.5),
            l.quantile_ms(0.9),
            l.quantile_ms(0.99),
            l.quantile_ms(1.0),
            l.errors,
            row.server_cpu_pct,
            row.cpu_us_per_req(),
            row.client_cpu_pct,
            row.mem.peak_rss_kib as f64 / 1024.0,
            ratio.map(|r| format!("{r:.2}x")).unwrap_or_default(),
            v
        );
    }
    out
}

/// Renders, per server and connection count, peak RSS with 100 KiB vs 10 MiB zips.
pub fn memory(rows: &[Row]) -> String {
    let mut out = String::new();
    let mut keys: Vec<(String, usize)> = rows.iter().map(|r| (r.server.clone(), r.conns)).collect();
    keys.sort();
    keys.dedup();
    for (server, conns) in keys {
        let find = |s: &str| {
            rows.iter()
                .find(|r| r.server == server && r.conns == conns && r.scenario == s)
        };
        let (Some(small), Some(large)) = (find("zip100k"), find("zip10m")) else {
            continue;
        };
        let growth = large.mem.peak_rss_kib as i64 - small.mem.peak_rss_kib as i64;
        let limit = RSS_GROWTH_KIB_PER_CONN * conns as u64;
        let mark = if server != "cairn" {
            "(reference)"
        } else if growth < limit as i64 {
            "PASS"
        } else {
            "MISS"
        };
        let _ = writeln!(
            out,
            "{server:<12} {conns:>4} conns: peak RSS 100KiB {:.1} MiB (HWM {:.1}), 10MiB {:.1} MiB (HWM {:.1}), growth {:+.1} MiB, limit {:.0} MiB  {mark}",
            small.mem.peak_rss_kib as f64 / 1024.0,
            small.mem.hwm_kib as f64 / 1024.0,
            large.mem.peak_rss_kib as f64 / 1024.0,
            large.mem.hwm_kib as f64 / 1024.0,
            growth as f64 / 1024.0,
            limit as f64 / 1024.0,
        );
    }
    out
}

/// One row as JSON: counts, rates, latency percentiles, CPU and memory.
pub fn row_json(r: &Row) -> serde_json::Value {
    let l = &r.load;
    json!({
        "scenario": r.scenario,
        "body_bytes": r.body_bytes,
        "conns": r.conns,
        "server": r.server,
        "requests": l.requests,
        "req_per_sec": r.rps(),
        "mb_per_sec": r.mbps(),
        "latency_ms": {
            "p50": l.quantile_ms(0.5), "p90": l.quantile_ms(0.9),
            "p99": l.quantile_ms(0.99), "max": l.quantile_ms(1.0),
        },
        "errors": l.errors,
        "first_error": l.first_error,
        "window_secs": r.window_secs,
        "server_cpu_pct": r.server_cpu_pct,
        "server_cpu_us_per_req": r.cpu_us_per_req(),
        "client_cpu_pct": r.client_cpu_pct,
        "server_peak_rss_kib": r.mem.peak_rss_kib,
        "server_hwm_kib": r.mem.hwm_kib,
    })
}

/// Writes all rows, with `meta` (machine, settings), as JSON to `path`.
pub fn write_json(path: &Path, rows: &[Row], meta: serde_json::Value) -> anyhow::Result<()> {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let (ratio, verdict) = if r.is_cairn() {
                verdict(rows, r)
            } else {
                (None, String::new())
            };
            let mut row = row_json(r);
            row["ratio_vs_static"] = json!(ratio);
            row["verdict"] = json!(verdict);
            row
        })
        .collect();
    let doc = json!({ "meta": meta, "targets": {
        "min_ratio": MIN_RATIO, "max_p99_ms": MAX_P99_MS, "p99_conns": P99_CONNS,
        "rss_growth_kib_per_conn": RSS_GROWTH_KIB_PER_CONN,
    }, "rows": rows });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(&doc)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
