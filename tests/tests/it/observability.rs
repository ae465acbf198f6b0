//! Issue 11: the shipped alert rules and dashboard, judged against a real cluster through the real
//! Prometheus server.
//!
//! - `shipped_alerts_fire_and_clear_on_a_real_cluster`: Prometheus scrapes a 3-node cluster with
//!   `helm/cairn/files/cairn-alerts.yaml` (hold times shortened, expressions untouched). Killing
//!   the leader fires `CairnNodeDown` for it and makes a survivor raise `CairnPeerDown`; pausing a
//!   node (`SIGSTOP`, scrapes time out) fires `CairnNodeDown`; killing two nodes makes
//!   `CairnNoLeader` go pending, then firing. Each alert clears once the node is back.
//! - `every_metric_the_dashboard_and_alerts_use_exists_on_a_live_node`: `check-queries.py` finds
//!   every metric the dashboard and the rules query on a node that served traffic.
//! - `shipped_alert_rules_pass_promtool`: `promtool check rules`, and `promtool test rules` on the
//!   rule unit tests when they exist.
//!
//! The rules are read generically (alert names only), so the full rule set can replace the file.
//! Tools come from `$CAIRN_PROMETHEUS`, `$CAIRN_PROMTOOL`, `$CAIRN_PYTHON` or `PATH`; when one is
//! missing the test prints `SKIPPED: …`, or fails under `CAIRN_REQUIRE_TOOLS=1`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_tests::cluster::{ClusterConfig, TestCluster};
use cairn_tests::corpus::m;
use cairn_tests::prometheus::{
    prometheus_bin, promtool_bin, tool, AlertState, Prometheus, TEST_HOLD,
};
use cairn_tests::wait::{patience, wait_for};
use tokio::process::Command;

use crate::cluster::{fixture, start, warm};

/// The chart's observability files.
const FILES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../helm/cairn/files");
/// The shipped alert rules.
const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../helm/cairn/files/cairn-alerts.yaml"
);

const NO_LEADER: &str = "CairnNoLeader";
const NODE_DOWN: &str = "CairnNodeDown";
const PEER_DOWN: &str = "CairnPeerDown";
/// The alerts this file drives; other alerts in the rule file are left alone.
const WATCHED: [&str; 3] = [NO_LEADER, NODE_DOWN, PEER_DOWN];

const PENDING_OR_FIRING: &[AlertState] = &[AlertState::Pending, AlertState::Firing];

fn files(name: &str) -> PathBuf {
    Path::new(FILES).join(name)
}

/// Prints how long each transition took, as it happens and as a summary.
struct Timings(Vec<(String, Duration)>);

impl Timings {
    fn record(&mut self, what: &str, since: Instant) {
        let took = since.elapsed();
        println!("{took:>8.2?}  {what}");
        self.0.push((what.to_string(), took));
    }

    fn summary(&self) -> String {
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|(w, d)| format!("  {d:>8.2?}  {w}"))
            .collect();
        lines.join("\n")
    }
}

/// Panics with the error, the cluster's Raft view and the nodes' log tails.
async fn fail(cl: &TestCluster, what: &str, e: anyhow::Error) -> ! {
    panic!(
        "{what}: {e:#}\ncluster:\n{}\n{}",
        cl.describe().await,
        cl.log_tails(15)
    )
}

/// Waits until every node is scraped fine and none of the watched alerts is pending or firing.
async fn wait_quiet(prom: &Prometheus, cl: &TestCluster, instances: &[String], timeout: Duration) {
    if let Err(e) = prom.wait_targets(instances, "up", timeout).await {
        fail(cl, "every node scraped", e).await;
    }
    if let Err(e) = prom.wait_inactive(&WATCHED, timeout).await {
        fail(cl, "the watched alerts inactive", e).await;
    }
}

/// Checks that Prometheus loaded the watched alerts with shortened holds and that every alert
/// rule in the file evaluates without error against cairn's real metrics.
async fn assert_rules_loaded(prom: &Prometheus) {
    let rules = wait_for("every alert rule evaluated", patience(1.0), || async {
        let rules = prom.rules().await.ok()?;
        rules.iter().all(|r| r.health != "unknown").then_some(rules)
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", prom.log_tail(20)));
    for name in WATCHED {
        let r = rules.iter().find(|r| r.name == name);
        let r = r.unwrap_or_else(|| panic!("{RULES} has no alert {name}; it has {rules:#?}"));
        assert!(r.hold <= TEST_HOLD, "{name} holds {:?}", r.hold);
        println!("{name}: {} (for {:?} in the test)", r.query, r.hold);
    }
    let broken: Vec<_> = rules.iter().filter(|r| r.health != "ok").collect();
    assert!(
        broken.is_empty(),
        "alert rules that fail to evaluate: {broken:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_alerts_fire_and_clear_on_a_real_cluster() {
    let Some(bin) = prometheus_bin("shipped_alerts_fire_and_clear_on_a_real_cluster") else {
        return;
    };
    let begin = Instant::now();
    let fixture = fixture().await;
    let mut cl = start(3, &fixture.url(), &ClusterConfig::fast()).await;
    let inst: BTreeMap<u64, String> = cl
        .ids()
        .into_iter()
        .map(|id| (id, cl.http_addr(id).to_string()))
        .collect();
    let all: Vec<String> = inst.values().cloned().collect();
    let mut t = Timings(Vec::new());

    let since = Instant::now();
    let prom = Prometheus::start(&bin, &cl.http_addrs(), Path::new(RULES))
        .await
        .unwrap_or_else(|e| panic!("starting prometheus: {e:#}"));
    t.record("prometheus ready", since);
    // The first scrape comes late: Prometheus's discovery manager hands targets to the scrape
    // manager at most every 5 s, static ones included.
    let since = Instant::now();
    wait_quiet(&prom, &cl, &all, patience(2.0)).await;
    t.record(
        "first scrapes: all targets up, watched alerts inactive",
        since,
    );
    assert_rules_loaded(&prom).await;

    node_down_and_peer_down_on_a_dead_leader(&prom, &mut cl, &inst, &mut t).await;
    wait_quiet(&prom, &cl, &all, patience(2.0)).await;
    node_down_on_a_paused_node(&prom, &mut cl, &inst, &mut t).await;
    wait_quiet(&prom, &cl, &all, patience(2.0)).await;
    no_leader_on_quorum_loss(&prom, &mut cl, &all, &mut t).await;

    println!(
        "transitions (scrape and evaluation every 1 s, holds cut to {TEST_HOLD:?}):\n{}\n\
         whole test: {:.1?}",
        t.summary(),
        begin.elapsed()
    );
}

/// Scenario 1: `kill -9` the leader; Prometheus sees it down and a survivor's liveness prober
/// sees the dead peer. Restarted, both alerts clear.
async fn node_down_and_peer_down_on_a_dead_leader(
    prom: &Prometheus,
    cl: &mut TestCluster,
    inst: &BTreeMap<u64, String>,
    t: &mut Timings,
) {
    let leader = cl.wait_for_leader().await.unwrap();
    let killed = Instant::now();
    cl.kill9(leader).await;
    println!("killed the leader, node {leader} ({})", inst[&leader]);

    let peer = leader.to_string();
    let seen = prom
        .wait_alert(
            PEER_DOWN,
            PENDING_OR_FIRING,
            &[("peer", &peer)],
            patience(2.0),
        )
        .await;
    let seen = match seen {
        Ok(a) => a,
        Err(e) => fail(cl, "CairnPeerDown for the dead leader", e).await,
    };
    t.record(&format!("kill -9 leader -> {seen}"), killed);
    let reporter = seen.labels.get("instance").map(String::as_str);
    assert!(
        reporter.is_some_and(|r| r != inst[&leader] && inst.values().any(|i| i == r)),
        "CairnPeerDown should come from a survivor, not {reporter:?}: {seen}"
    );

    let down = &[("instance", inst[&leader].as_str())];
    let firing = prom
        .wait_alert(NODE_DOWN, &[AlertState::Firing], down, patience(2.0))
        .await;
    match firing {
        Ok(a) => t.record(&format!("kill -9 leader -> {a}"), killed),
        Err(e) => fail(cl, "CairnNodeDown firing for the dead leader", e).await,
    }

    let restarted = Instant::now();
    cl.restart(leader).await.unwrap();
    t.record(&format!("restart node {leader} -> ready"), restarted);
    if let Err(e) = prom
        .wait_inactive(&[NODE_DOWN, PEER_DOWN], patience(2.0))
        .await
    {
        fail(cl, "CairnNodeDown and CairnPeerDown to clear", e).await;
    }
    t.record(
        "restart -> CairnNodeDown, CairnPeerDown inactive",
        restarted,
    );
}

/// Scenario 2: a node that is "cut" (`SIGSTOP`: connections are accepted by the kernel but never
/// answered) fails its scrapes by timeout, so `up == 0` fires `CairnNodeDown`; `SIGCONT` clears it.
async fn node_down_on_a_paused_node(
    prom: &Prometheus,
    cl: &mut TestCluster,
    inst: &BTreeMap<u64, String>,
    t: &mut Timings,
) {
    let leader = cl.wait_for_leader().await.unwrap();
    let paused = *cl.ids().iter().find(|&&id| id != leader).unwrap();
    let stopped = Instant::now();
    cl.sigstop(paused).await.unwrap();
    println!("paused node {paused} ({}) with SIGSTOP", inst[&paused]);

    let down = &[("instance", inst[&paused].as_str())];
    let firing = prom
        .wait_alert(NODE_DOWN, &[AlertState::Firing], down, patience(2.0))
        .await;
    match firing {
        Ok(a) => t.record(&format!("SIGSTOP -> {a}"), stopped),
        Err(e) => fail(cl, "CairnNodeDown firing for the paused node", e).await,
    }
    let up = prom
        .query(&format!("up{{instance=\"{}\"}}", inst[&paused]))
        .await
        .unwrap();
    assert!(
        matches!(up.as_slice(), [(_, v)] if *v == 0.0),
        "up of the paused node: {up:?}"
    );

    let resumed = Instant::now();
    cl.sigcont(paused).await.unwrap();
    if let Err(e) = prom.wait_inactive(&[NODE_DOWN], patience(2.0)).await {
        fail(cl, "CairnNodeDown to clear after SIGCONT", e).await;
    }
    t.record("SIGCONT -> CairnNodeDown inactive", resumed);
}

/// Scenario 3: two of three nodes die; the survivor cannot elect anyone and reports
/// `cairn_raft_is_leader 0`, so `CairnNoLeader` goes pending, then firing. Restarting both
/// restores quorum and clears it.
async fn no_leader_on_quorum_loss(
    prom: &Prometheus,
    cl: &mut TestCluster,
    all: &[String],
    t: &mut Timings,
) {
    // The leader is one of the two, so the survivor cannot still be leader of a lost quorum.
    let leader = cl.wait_for_leader().await.unwrap();
    let other = *cl.ids().iter().find(|&&id| id != leader).unwrap();
    let killed = Instant::now();
    cl.kill9(leader).await;
    cl.kill9(other).await;
    println!("killed nodes {leader} (leader) and {other}");

    for state in [AlertState::Pending, AlertState::Firing] {
        match prom
            .wait_alert(NO_LEADER, &[state], &[], patience(2.0))
            .await
        {
            Ok(a) => t.record(&format!("kill two -> {a}"), killed),
            Err(e) => fail(cl, &format!("CairnNoLeader {state:?}"), e).await,
        }
    }
    let is_leader = prom.query("cairn_raft_is_leader").await.unwrap();
    assert!(
        is_leader.len() == 1 && is_leader[0].1 == 0.0,
        "the survivor alone should report cairn_raft_is_leader 0: {is_leader:?}"
    );

    let restarted = Instant::now();
    for id in [leader, other] {
        cl.restart(id).await.unwrap();
    }
    t.record("restart both -> ready", restarted);
    wait_quiet(prom, cl, all, patience(3.0)).await;
    t.record("restart both -> every watched alert inactive", restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_alerts_use_exists_on_a_live_node() {
    let test = "every_metric_the_dashboard_and_alerts_use_exists_on_a_live_node";
    let (script, dashboard) = (files("check-queries.py"), files("cairn-dashboard.json"));
    let missing: Vec<PathBuf> = [script.clone(), dashboard.clone(), PathBuf::from(RULES)]
        .into_iter()
        .filter(|p| !p.is_file())
        .collect();
    if !missing.is_empty() {
        // They come from other branches; the test runs once they are merged.
        eprintln!("SKIPPED: {missing:?} not in this tree; test {test} did not run");
        return;
    }
    let Some(python) = tool(test, "CAIRN_PYTHON", "python3") else {
        return;
    };
    let fixture = fixture().await;
    let cl = start(3, &fixture.url(), &ClusterConfig::fast()).await;
    serve_some_traffic(&cl).await;

    let page = cl.node(1).get("/metrics").await.unwrap();
    assert_eq!(page.status, 200, "GET /metrics: {}", page.text());
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("node1.metrics.txt");
    std::fs::write(&metrics, &page.body).unwrap();

    let out = Command::new(&python)
        .arg(&script)
        .arg("--dashboard")
        .arg(&dashboard)
        .arg("--rules")
        .arg(RULES)
        .arg("--metrics")
        .arg(&metrics)
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "check-queries.py {}: some queried metric is not on a live node:\n{text}\n\
         ----- node 1 /metrics names:\n{}",
        out.status,
        metric_names(&page.text())
    );
    println!("check-queries.py:\n{text}");
}

/// Misses, hits, a list, a `@latest` and a not-found through node 1, then replication to every
/// node, so request, cache, upstream and replication metrics all have samples.
async fn serve_some_traffic(cl: &TestCluster) {
    let versions: Vec<(String, String)> = [(m::SIMPLE, "v1.1.0"), (m::MODV2, "v2.1.0")]
        .iter()
        .map(|(m, v)| (m.to_string(), v.to_string()))
        .collect();
    let shas = warm(&cl.url(1), &versions).await;
    warm(&cl.url(1), &versions).await;
    for path in [
        format!("/{}/@v/list", m::SIMPLE),
        format!("/{}/@latest", m::SIMPLE),
        "/example.com/does-not-exist/@v/v1.0.0.info".to_string(),
    ] {
        let r = cl.node(1).get(&path).await.unwrap();
        assert!(
            matches!(r.status, 200 | 404 | 410),
            "GET {path}: {} {}",
            r.status,
            r.text()
        );
    }
    cl.wait_blobs_everywhere(&shas).await.unwrap();
    // Per-peer gauges (`cairn_peer_up`, replication lag) first appear after a liveness round that
    // saw the whole membership, which can come after the first requests were served.
    cl.wait_liveness_agrees().await.unwrap();
}

/// The distinct sample names on a `/metrics` page, one per line.
fn metric_names(page: &str) -> String {
    let names: std::collections::BTreeSet<&str> = page
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    names.into_iter().collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn shipped_alert_rules_pass_promtool() {
    let test = "shipped_alert_rules_pass_promtool";
    let Some(promtool) = promtool_bin(test) else {
        return;
    };
    let check = run(&promtool, &["check", "rules", RULES]).await;
    assert!(check.0, "promtool check rules {RULES}:\n{}", check.1);
    println!("{}", check.1.trim());

    let unit = files("cairn-alerts.test.yaml");
    if !unit.is_file() {
        eprintln!(
            "SKIPPED: {} not in this tree; `promtool test rules` did not run",
            unit.display()
        );
        return;
    }
    let unit = unit.to_string_lossy().into_owned();
    let tested = run(&promtool, &["test", "rules", &unit]).await;
    assert!(tested.0, "promtool test rules {unit}:\n{}", tested.1);
    println!("{}", tested.1.trim());
}

/// Runs `bin args` in the chart's files directory (rule unit tests name their rule files
/// relative to it) → (success, stdout + stderr).
async fn run(bin: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin)
        .args(args)
        .current_dir(FILES)
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
