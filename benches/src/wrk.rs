//! The external load generator: [wrk](https://github.com/wg/wrk) run as a child process, so the
//! load does not share this process (or its runtime) with the measurement and the comparison
//! with nginx uses the tool nginx is usually measured with (issue 13 asks for an external one).
//!
//! One run is a warm-up invocation (connections opened, nothing counted) followed by a measured
//! one. A small Lua `done` hook prints the counts and latency percentiles (microseconds) on one
//! line that [`parse`] reads; wrk does not check body lengths, so the bench compares the servers'
//! bytes once before loading them (`warm_and_compare`) and counts non-2xx answers and socket
//! errors as errors.
//!
//! wrk is not installed by the bench: when it is missing, [`find`] says how to install it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::load::{LatencySummary, LoadResult};

/// wrk threads: the issue's measurements used 2 (one per core of the reference machine).
pub const THREADS: usize = 2;

/// The Lua hook that prints one machine-readable summary line.
const SCRIPT: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("CAIRN-WRK %d %d %d %d %d %d %d %d\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"#;

/// The wrk binary on `PATH` (installed with apt-get when missing and possible), or an error
/// saying how to install it.
pub fn find() -> anyhow::Result<PathBuf> {
    crate::servers::find_or_install("wrk", "wrk").map_err(|why| {
        anyhow::anyhow!(
            "--load wrk, but wrk is not on PATH and {why}; install it (Debian/Ubuntu: \
             `sudo apt-get install -y wrk`; macOS: `brew install wrk`) or use --load inproc"
        )
    })
}

/// What one wrk run loads.
#[derive(Debug, Clone)]
pub struct WrkSpec {
    /// The wrk binary.
    pub bin: PathBuf,
    /// Where the Lua hook is written.
    pub script: PathBuf,
    /// Server address.
    pub addr: SocketAddr,
    /// URL path to GET.
    pub path: String,
    /// Body length of each response (body bytes = requests × this).
    pub expected_bytes: u64,
    /// Concurrent connections.
    pub conns: usize,
}

/// Writes the Lua hook next to the other work files.
pub fn write_script(work: &Path) -> anyhow::Result<PathBuf> {
    let path = work.join("cairn-wrk.lua");
    std::fs::write(&path, SCRIPT).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Runs wrk for `secs` (rounded to whole seconds, at least 1) and parses its summary.
pub async fn run(spec: &WrkSpec, secs: f64) -> anyhow::Result<LoadResult> {
    let url = format!("http://{}{}", spec.addr, spec.path);
    // wrk takes whole seconds (`s`, `m`, `h` units only).
    let secs = secs.round().max(1.0) as u64;
    let out = tokio::process::Command::new(&spec.bin)
        .arg(format!("-t{}", THREADS.min(spec.conns.max(1))))
        .arg(format!("-c{}", spec.conns))
        .arg(format!("-d{secs}s"))
        .arg("--timeout")
        .arg("30s")
        .arg("-s")
        .arg(&spec.script)
        .arg(&url)
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {}", spec.bin.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk exited with {}: {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse(&stdout, spec.expected_bytes)
}

/// Reads the `CAIRN-WRK` line out of wrk's output.
pub fn parse(stdout: &str, expected_bytes: u64) -> anyhow::Result<LoadResult> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("CAIRN-WRK "))
        .with_context(|| format!("no summary line in wrk's output:\n{stdout}"))?;
    let n: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad wrk summary {line:?}"))?;
    let &[requests, duration_us, socket_errors, status_errors, p50, p90, p99, max] = &n[..] else {
        bail!("bad wrk summary {line:?}");
    };
    let us = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    let errors = socket_errors + status_errors;
    Ok(LoadResult {
        requests,
        bytes: requests * expected_bytes,
        errors,
        first_error: (errors > 0).then(|| {
            format!("wrk: {socket_errors} socket errors, {status_errors} non-2xx/3xx answers")
        }),
        latencies_us: Vec::new(),
        summary: Some(LatencySummary {
            p50: us(p50),
            p90: us(p90),
            p99: us(p99),
            max: us(max),
            window: Duration::from_micros(duration_us),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_summary_line() {
        let out = "Running 1s test\nCAIRN-WRK 1000 5000000 2 1 150 300 900 2000\n";
        let r = parse(out, 10).unwrap();
        assert_eq!((r.requests, r.bytes, r.errors), (1000, 10_000, 3));
        assert_eq!(r.quantile_ms(0.99), 0.9);
        assert_eq!(r.quantile_ms(1.0), 2.0);
        assert!(parse("nothing", 1).is_err());
    }
}
