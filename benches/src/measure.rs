//! One measured run: the closed-loop load ([`crate::load`]) against one server address while the
//! server's memory is sampled and the CPU time of it and of this process is read at the window's
//! edges. Shared by the hit benchmark and `cairn-bench security`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;

use crate::corpus::Target;
use crate::load::{self, Client};
use crate::procstat;
use crate::report::Row;
use crate::wrk;

/// How long each part of a run lasts, seconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Connections open and requests flow, nothing counted.
    pub warmup_secs: f64,
    /// The measurement window.
    pub duration_secs: f64,
    /// Idle pause after the run, so its tail does not overlap the next run.
    pub pause_secs: f64,
}

/// What is loaded: a name for the report, the process to sample and the address to hit.
#[derive(Debug, Clone)]
pub struct Subject {
    /// Row name (`cairn`, `nginx`, `https`, …).
    pub name: String,
    /// Server process id (its direct children are sampled too).
    pub pid: u32,
    /// Address the load goes to.
    pub addr: SocketAddr,
}

/// One run: load on `subject` through `client` while sampling its memory and the CPU of it and
/// of this process.
pub async fn run(
    timing: Timing,
    subject: &Subject,
    target: &Target,
    conns: usize,
    client: Client,
) -> anyhow::Result<Row> {
    let pids = procstat::tree(subject.pid);
    let sampler = procstat::Sampler::start(pids.clone(), Duration::from_millis(100));
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(timing.warmup_secs);
    let measure_to = measure_from + Duration::from_secs_f64(timing.duration_secs);
    let spec = load::LoadSpec {
        addr: subject.addr,
        path: target.path.clone(),
        expected_bytes: target.bytes,
        conns,
        measure_from,
        measure_to,
        client,
    };
    let load = tokio::spawn(load::run(spec));
    tokio::time::sleep_until(measure_from).await;
    let (srv0, cli0) = (
        procstat::tree_cpu_ticks(&pids),
        procstat::tree_cpu_ticks(&[0]),
    );
    tokio::time::sleep_until(measure_to).await;
    let (srv1, cli1) = (
        procstat::tree_cpu_ticks(&pids),
        procstat::tree_cpu_ticks(&[0]),
    );
    let load = load.await.context("the load generator panicked")?;
    let mem = sampler.finish().await;
    tokio::time::sleep(Duration::from_secs_f64(timing.pause_secs)).await;
    let pct = |ticks: u64| ticks as f64 / procstat::clock_ticks() / timing.duration_secs * 100.0;
    Ok(Row {
        scenario: target.scenario,
        body_bytes: target.bytes,
        conns,
        server: subject.name.clone(),
        load,
        window_secs: timing.duration_secs,
        server_cpu_pct: pct(srv1.saturating_sub(srv0)),
        client_cpu_pct: pct(cli1.saturating_sub(cli0)),
        mem,
    })
}

/// One run with wrk as the load generator ([`crate::wrk`]): a warm-up invocation, then a
/// measured one while the server's memory is sampled; client CPU is wrk's own.
pub async fn run_wrk(
    timing: Timing,
    subject: &Subject,
    target: &Target,
    conns: usize,
    bin: &std::path::Path,
    script: &std::path::Path,
) -> anyhow::Result<Row> {
    let pids = procstat::tree(subject.pid);
    let spec = wrk::WrkSpec {
        bin: bin.to_path_buf(),
        script: script.to_path_buf(),
        addr: subject.addr,
        path: target.path.clone(),
        expected_bytes: target.bytes,
        conns,
    };
    let sampler = procstat::Sampler::start(pids.clone(), Duration::from_millis(100));
    if timing.warmup_secs > 0.0 {
        wrk::run(&spec, timing.warmup_secs).await?;
    }
    let (srv0, cli0) = (
        procstat::tree_cpu_ticks(&pids),
        procstat::children_cpu_ticks(),
    );
    let load = wrk::run(&spec, timing.duration_secs).await?;
    let (srv1, cli1) = (
        procstat::tree_cpu_ticks(&pids),
        procstat::children_cpu_ticks(),
    );
    let mem = sampler.finish().await;
    tokio::time::sleep(Duration::from_secs_f64(timing.pause_secs)).await;
    let window_secs = load
        .summary
        .map(|s| s.window.as_secs_f64())
        .filter(|w| *w > 0.0)
        .unwrap_or(timing.duration_secs);
    let pct = |ticks: u64| ticks as f64 / procstat::clock_ticks() / window_secs * 100.0;
    Ok(Row {
        scenario: target.scenario,
        body_bytes: target.bytes,
        conns,
        server: subject.name.clone(),
        load,
        window_secs,
        server_cpu_pct: pct(srv1.saturating_sub(srv0)),
        client_cpu_pct: pct(cli1.saturating_sub(cli0)),
        mem,
    })
}
