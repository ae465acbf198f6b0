//! What the multi-region scenarios run and read: go commands looping in every region, the
//! cross-region request counters, the Raft view of a subset of nodes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_tests::cluster::{RaftView, TestCluster};
use cairn_tests::gocmd::GoEnv;
pub use cairn_tests::netns::deploy::cross_region_counters;
use futures_util::future::join_all;
use tokio::task::JoinHandle;

use crate::cluster::{args, expected, mv};
use crate::common::sums;

/// The leader that every node of `ids` names (and that says it leads), if they agree on one
/// among `ids`.
pub async fn leader_among(c: &TestCluster, ids: &[u64]) -> Option<u64> {
    let views: Vec<RaftView> = join_all(ids.iter().map(|id| c.raft(*id)))
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .ok()?;
    let l = views.first()?.leader_id;
    let agreed = views.iter().all(|v| v.leader_id == l);
    let leads = ids
        .iter()
        .zip(&views)
        .any(|(id, v)| *id == l && v.is_leader);
    (agreed && leads).then_some(l)
}

/// The Raft terms of `ids`.
pub async fn terms(c: &TestCluster, ids: &[u64]) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for id in ids {
        out.insert(*id, c.raft(*id).await.unwrap().term);
    }
    out
}

/// One `go mod download` of a workload.
#[derive(Clone, Debug)]
pub struct Run {
    /// When it started.
    pub start: Instant,
    /// How long it took.
    pub took: Duration,
    /// What it downloaded, as `module@version`.
    pub versions: Vec<String>,
    /// What it downloaded, as (module, version).
    pub pairs: Vec<(String, String)>,
    /// `None`: every version came with the right hashes; else why not.
    pub failure: Option<String>,
}

/// New versions handed out once each, cluster-wide (so each is a cold fill somewhere).
pub type Pool = Arc<Mutex<Vec<(String, String)>>>;

/// Go commands looping in every region until stopped: each run a fresh module cache, one new
/// version from the pool and two old ones.
pub struct Workload {
    stop: Arc<AtomicBool>,
    runs: BTreeMap<String, Arc<Mutex<Vec<Run>>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Workload {
    /// Starts one loop per `(region, env)`; `old` are versions already cached.
    pub fn start(envs: Vec<(String, GoEnv)>, old: Vec<(String, String)>, pool: Pool) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let mut runs = BTreeMap::new();
        let mut tasks = Vec::new();
        for (n, (region, env)) in envs.into_iter().enumerate() {
            let log = Arc::new(Mutex::new(Vec::new()));
            runs.insert(region, log.clone());
            let (stop, old, pool) = (stop.clone(), old.clone(), pool.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = n * 7;
                while !stop.load(Ordering::SeqCst) {
                    let mut versions = vec![old[i % old.len()].clone()];
                    versions.push(old[(i + 3) % old.len()].clone());
                    versions.extend(pool.lock().unwrap().pop());
                    i += 1;
                    let run = download(&env, versions).await;
                    log.lock().unwrap().push(run);
                }
            }));
        }
        Workload { stop, runs, tasks }
    }

    /// The runs of `region` so far.
    pub fn runs(&self, region: &str) -> Vec<Run> {
        self.runs[region].lock().unwrap().clone()
    }

    /// How many runs of `region` started at or after `since` and finished.
    pub fn runs_since(&self, region: &str, since: Instant) -> usize {
        self.runs(region)
            .iter()
            .filter(|r| r.start >= since)
            .count()
    }

    /// Stops every loop after its current run; returns every region's runs.
    pub async fn stop(self) -> BTreeMap<String, Vec<Run>> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.unwrap();
        }
        self.runs
            .into_iter()
            .map(|(r, log)| (r, log.lock().unwrap().clone()))
            .collect()
    }
}

/// One `go mod download` of `versions` in a fresh cache, judged against the corpus.
pub async fn download(env: &GoEnv, versions: Vec<(String, String)>) -> Run {
    let start = Instant::now();
    let env = env.fresh().unwrap();
    let failure = match env.mod_download(&args(&versions)).await {
        Err(e) => Some(format!("{e:#}")),
        Ok((got, out)) => {
            let failed: Vec<String> = got
                .iter()
                .filter(|d| !d.error.is_empty())
                .map(|d| format!("{}@{}: {}", d.path, d.version, d.error))
                .collect();
            if !failed.is_empty() || !out.success {
                Some(format!("{}\n{}", failed.join("\n"), out.stderr))
            } else if sums(&got) != expected(&versions) {
                Some(format!("wrong hashes: {:?}", sums(&got)))
            } else {
                None
            }
        }
    };
    Run {
        start,
        took: start.elapsed(),
        versions: versions.iter().map(|(m, v)| mv(m, v)).collect(),
        pairs: versions,
        failure,
    }
}

/// One line per run, for logs and failure messages.
pub fn describe(runs: &[Run], t0: Instant) -> String {
    runs.iter()
        .map(|r| {
            let at = r.start.saturating_duration_since(t0);
            let what = match &r.failure {
                None => "ok".to_string(),
                Some(f) => format!("FAILED: {f}"),
            };
            format!(
                "  +{at:.1?} ({:.1?}) {}: {what}",
                r.took,
                r.versions.join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
