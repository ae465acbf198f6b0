//! Process resource readings from `/proc`: resident memory (`VmRSS`, `VmHWM`) and CPU time
//! (`utime + stime`) of a server process and its direct children (nginx's workers), sampled
//! while a scenario runs so the report can show peak memory and CPU use per scenario.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Clock ticks per second for `/proc/<pid>/stat`, from `getconf CLK_TCK` (100 on Linux).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// `pid` and its direct children (`/proc/<pid>/task/*/children`), e.g. nginx master and workers.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return pids;
    };
    for task in tasks.flatten() {
        let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        pids.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
    }
    pids
}

/// `(VmRSS, VmHWM)` of one process, in KiB.
fn status_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Summed `(VmRSS, VmHWM)` of a process tree, in KiB.
pub fn tree_memory_kib(pids: &[u32]) -> (u64, u64) {
    pids.iter()
        .filter_map(|p| status_kib(*p))
        .fold((0, 0), |(r, h), (r2, h2)| (r + r2, h + h2))
}

/// CPU ticks (`utime + stime`) of one process; `pid` 0 means this process.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let path = if pid == 0 {
        "/proc/self/stat".to_owned()
    } else {
        format!("/proc/{pid}/stat")
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU ticks (`cutime + cstime`) of this process's waited-for children (e.g. wrk runs).
pub fn children_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    // cutime is field 16, cstime 17 (indexes 13 and 14 after the command name).
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(13) + field(14)
}

/// Summed CPU ticks of a process tree (`[0]` is this process).
pub fn tree_cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| cpu_ticks(*p)).sum()
}

/// Resets `VmHWM` of each process to its current RSS (`echo 5 > /proc/<pid>/clear_refs`), so
/// the high-water mark read after a scenario belongs to that scenario. Best effort.
pub fn reset_hwm(pids: &[u32]) {
    for pid in pids {
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    }
}

/// Peak memory seen by a [`Sampler`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryPeak {
    /// Highest summed `VmRSS` sampled, KiB.
    pub peak_rss_kib: u64,
    /// Summed `VmHWM` at the end (since the last [`reset_hwm`]), KiB.
    pub hwm_kib: u64,
}

/// Samples the summed RSS of a process tree every `interval` until stopped.
pub struct Sampler {
    stop: watch::Sender<bool>,
    task: JoinHandle<MemoryPeak>,
}

impl Sampler {
    /// Starts sampling `pids` (after resetting their high-water marks).
    pub fn start(pids: Vec<u32>, interval: Duration) -> Sampler {
        reset_hwm(&pids);
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut peak = MemoryPeak::default();
            let mut tick = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let (rss, _) = tree_memory_kib(&pids);
                peak.peak_rss_kib = peak.peak_rss_kib.max(rss);
            }
            let (rss, hwm) = tree_memory_kib(&pids);
            peak.peak_rss_kib = peak.peak_rss_kib.max(rss);
            peak.hwm_kib = hwm;
            peak
        });
        Sampler { stop, task }
    }

    /// Stops sampling and returns the peak.
    pub async fn finish(self) -> MemoryPeak {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}
