//! The real Prometheus server (and `promtool`) pointed at a cluster under test.
//!
//! [`Prometheus::start`] writes a config that scrapes the given cairn HTTP addresses every second
//! (job `cairn`, path `/metrics`, 1 s scrape timeout, so a paused node counts as `up == 0` within a
//! scrape) and evaluates a copy of a rule file every second, with every `for:` hold time cut to a
//! few seconds ([`shorten_holds`]). It starts `prometheus` on a free loopback port with its own
//! TSDB directory, waits for `/-/ready`, and kills it on drop (printing its log tail if the test is
//! panicking). [`Prometheus::alerts`], [`Prometheus::targets`], [`Prometheus::rules`] and
//! [`Prometheus::query`] read the HTTP API; the `wait_*` helpers poll it with deadlines and fail
//! with what Prometheus saw.
//!
//! Tools are found through [`tool`]: `$CAIRN_PROMETHEUS` / `$CAIRN_PROMTOOL`, else `PATH`. A missing
//! tool skips the test with a printed `SKIPPED: …` line, or fails it when `CAIRN_REQUIRE_TOOLS=1`.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs::{self, File, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::cluster::free_ports;
use crate::wait::{patience, wait_for};

/// What every `for:` is cut to (at most): long enough to see `pending` before `firing` with a
/// 1 s evaluation interval, short enough that a transition takes seconds.
pub const TEST_HOLD: Duration = Duration::from_secs(3);

/// Scrape and rule-evaluation interval (also the scrape timeout).
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The scrape job name; alert rules select it with `job=~".*cairn.*"`.
pub const JOB: &str = "cairn";

/// Finds a tool: `$env_var` (which must name a file), else `name` on `PATH`. Returns `None` after
/// printing `SKIPPED: …` when it is missing, unless `CAIRN_REQUIRE_TOOLS=1`, in which case it
/// panics. `test` names the caller in the message.
pub fn tool(test: &str, env_var: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = find_tool(env_var, name) {
        return Some(p);
    }
    if std::env::var("CAIRN_REQUIRE_TOOLS").is_ok_and(|v| v == "1") {
        panic!("{test}: {name} not found ({env_var} / PATH) and CAIRN_REQUIRE_TOOLS=1");
    }
    eprintln!("SKIPPED: {name} not found (${env_var} or PATH); test {test} did not run");
    None
}

fn find_tool(env_var: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The `prometheus` binary ([`tool`] with `$CAIRN_PROMETHEUS`).
pub fn prometheus_bin(test: &str) -> Option<PathBuf> {
    tool(test, "CAIRN_PROMETHEUS", "prometheus")
}

/// The `promtool` binary ([`tool`] with `$CAIRN_PROMTOOL`).
pub fn promtool_bin(test: &str) -> Option<PathBuf> {
    tool(test, "CAIRN_PROMTOOL", "promtool")
}

// === rule rewriting ===

/// Rewrites a rule file so every `for:` holds at most `hold`.
///
/// The expressions stay exactly as shipped; only the hold times shrink, so a test sees the real
/// rules go pending and firing in seconds instead of minutes. Rule files are plain YAML where
/// `for:` is always a `key: duration` line of a rule, so a line rewrite is enough (no YAML
/// library): the value is replaced, indentation and any trailing comment are kept. A `for:` whose
/// value is not a duration is left alone.
pub fn shorten_holds(rules: &str, hold: Duration) -> String {
    let mut out = String::with_capacity(rules.len());
    for line in rules.split_inclusive('\n') {
        out.push_str(&shorten_line(line, hold).unwrap_or_else(|| line.to_string()));
    }
    out
}

fn shorten_line(line: &str, hold: Duration) -> Option<String> {
    let body = line.trim_end_matches(['\n', '\r']);
    let eol = &line[body.len()..];
    let rest = body.trim_start();
    let indent = &body[..body.len() - rest.len()];
    let (dash, rest) = match rest.strip_prefix("- ") {
        Some(r) => ("- ", r.trim_start()),
        None => ("", rest),
    };
    let value = rest.strip_prefix("for:")?;
    let (value, comment) = match value.find(" #") {
        Some(i) => (&value[..i], &value[i..]),
        None => (value, ""),
    };
    let value = value.trim().trim_matches(['"', '\'']);
    // Not a duration: not a hold time either (a label named `for`, say); leave the line alone.
    let new = parse_duration(value)?.min(hold);
    Some(format!(
        "{indent}{dash}for: {}ms{comment}{eol}",
        new.as_millis()
    ))
}

/// Parses a Prometheus duration (`30s`, `1m`, `1h30m`, `500ms`; units ms s m h d w y).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit] {
            "ms" => {
                total += Duration::from_millis(n);
                rest = &rest[unit..];
                continue;
            }
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            "y" => 365 * 86_400,
            _ => return None,
        };
        total += Duration::from_secs(n * secs);
        rest = &rest[unit..];
    }
    Some(total)
}

/// The Prometheus configuration: one job scraping `targets` every [`INTERVAL`], `rules` evaluated
/// every [`INTERVAL`].
pub fn config_yaml(targets: &[SocketAddr], rules: &Path) -> String {
    let secs = INTERVAL.as_secs();
    let mut out = String::new();
    let _ = writeln!(out, "global:");
    let _ = writeln!(out, "  scrape_interval: {secs}s");
    // Default 10 s: a SIGSTOPped node would take 10 s to count as down.
    let _ = writeln!(out, "  scrape_timeout: {secs}s");
    let _ = writeln!(out, "  evaluation_interval: {secs}s");
    let _ = writeln!(out, "rule_files:\n  - '{}'", rules.display());
    let _ = writeln!(out, "scrape_configs:");
    let _ = writeln!(out, "  - job_name: {JOB}");
    let _ = writeln!(out, "    metrics_path: /metrics");
    let _ = writeln!(out, "    static_configs:\n      - targets:");
    for t in targets {
        let _ = writeln!(out, "          - '{t}'");
    }
    out
}

// === API types ===

/// The state of an alert, as `/api/v1/alerts` reports it (inactive alerts are not listed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertState {
    /// The expression holds, not yet for the rule's `for:`.
    Pending,
    /// The expression has held for the rule's `for:`.
    Firing,
    /// Resolved or never active.
    Inactive,
}

impl AlertState {
    fn parse(s: &str) -> AlertState {
        match s {
            "pending" => AlertState::Pending,
            "firing" => AlertState::Firing,
            _ => AlertState::Inactive,
        }
    }
}

/// One active alert.
#[derive(Clone, Debug)]
pub struct Alert {
    /// `alertname`.
    pub name: String,
    /// Pending or firing.
    pub state: AlertState,
    /// Every label, `alertname` included.
    pub labels: BTreeMap<String, String>,
}

impl Alert {
    /// Whether every `(key, value)` in `filter` is among the labels.
    pub fn has_labels(&self, filter: &[(&str, &str)]) -> bool {
        filter
            .iter()
            .all(|(k, v)| self.labels.get(*k).is_some_and(|l| l == v))
    }
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<String> = self
            .labels
            .iter()
            .filter(|(k, _)| *k != "alertname")
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        write!(
            f,
            "{} {:?} {{{}}}",
            self.name,
            self.state,
            labels.join(", ")
        )
    }
}

/// One scrape target.
#[derive(Clone, Debug)]
pub struct Target {
    /// `instance` label (`127.0.0.1:<port>`).
    pub instance: String,
    /// `up`, `down` or `unknown`.
    pub health: String,
    /// The last scrape error ("" when none).
    pub last_error: String,
}

/// One loaded alerting rule, from `/api/v1/rules`.
#[derive(Clone, Debug)]
pub struct LoadedRule {
    /// The alert name.
    pub name: String,
    /// The PromQL expression.
    pub query: String,
    /// The (shortened) hold time.
    pub hold: Duration,
    /// `ok`, `err` or `unknown`.
    pub health: String,
    /// The last evaluation error ("" when none).
    pub last_error: String,
}

#[derive(Deserialize)]
struct ApiResp<T> {
    status: String,
    data: Option<T>,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize)]
struct AlertsData {
    alerts: Vec<RawAlert>,
}

#[derive(Deserialize)]
struct RawAlert {
    labels: BTreeMap<String, String>,
    state: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetsData {
    active_targets: Vec<RawTarget>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTarget {
    labels: BTreeMap<String, String>,
    health: String,
    #[serde(default)]
    last_error: String,
}

#[derive(Deserialize)]
struct RulesData {
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
struct RawGroup {
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRule {
    name: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    duration: f64,
    #[serde(default)]
    health: String,
    #[serde(default)]
    last_error: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryData {
    result: Vec<RawSample>,
}

#[derive(Deserialize)]
struct RawSample {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

// === impl Prometheus ===

/// A running Prometheus server, killed on drop.
pub struct Prometheus {
    child: Child,
    dir: TempDir,
    url: String,
    client: reqwest::Client,
}

impl Prometheus {
    /// Starts `bin` (see [`prometheus_bin`]) scraping `targets` with a copy of `rules` whose hold
    /// times are shortened ([`shorten_holds`]), and waits until it is ready. Retries on a new port
    /// when another process took the one picked.
    pub async fn start(
        bin: &Path,
        targets: &[SocketAddr],
        rules: &Path,
    ) -> anyhow::Result<Prometheus> {
        let mut dir = tempfile::Builder::new()
            .prefix("cairn-prometheus-")
            .tempdir()?;
        let text =
            fs::read_to_string(rules).with_context(|| format!("reading {}", rules.display()))?;
        let rules_copy = dir.path().join("rules.yaml");
        fs::write(&rules_copy, shorten_holds(&text, TEST_HOLD))?;
        let config = dir.path().join("prometheus.yml");
        fs::write(&config, config_yaml(targets, &rules_copy))?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(3))
            .build()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_ports(1)?[0];
            let child = spawn(bin, dir.path(), port)?;
            let mut p = Prometheus {
                child,
                url: format!("http://127.0.0.1:{port}"),
                dir,
                client: client.clone(),
            };
            match p.wait_ready().await {
                Ok(()) => return Ok(p),
                Err(e) if attempt < 3 && p.log().contains("address already in use") => {
                    eprintln!("prometheus: port {port} taken, retrying: {e:#}");
                    let _ = p.child.start_kill();
                    let _ = p.child.wait().await;
                    // Take the directory back for the next attempt; `p` is dropped empty-handed.
                    dir = std::mem::replace(&mut p.dir, TempDir::new()?);
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let url = format!("{}/-/ready", self.url);
        let waited = wait_for(format!("GET {url} -> 200"), patience(3.0), || {
            let exited = self.child.try_wait();
            let (client, url) = (self.client.clone(), url.clone());
            async move {
                match exited {
                    Ok(Some(st)) => Some(Err(anyhow::anyhow!("prometheus exited early: {st}"))),
                    Err(e) => Some(Err(e.into())),
                    Ok(None) => {
                        let r = client.get(&url).send().await.ok()?;
                        (r.status() == 200).then_some(Ok(()))
                    }
                }
            }
        })
        .await;
        waited.and_then(|r| r).map_err(|e| self.with_log(e))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The Prometheus log so far.
    pub fn log(&self) -> String {
        crate::node::read_log(&self.dir.path().join("prometheus.log"))
    }

    /// The last `n` log lines.
    pub fn log_tail(&self, n: usize) -> String {
        crate::node::tail(&self.log(), n)
    }

    /// The rule file Prometheus evaluates (the shortened copy).
    pub fn rules_copy(&self) -> PathBuf {
        self.dir.path().join("rules.yaml")
    }

    fn with_log(&self, e: anyhow::Error) -> anyhow::Error {
        e.context(format!("prometheus log tail:\n{}", self.log_tail(30)))
    }

    async fn api<T: DeserializeOwned>(&self, path_and_query: &str) -> anyhow::Result<T> {
        let url = format!("{}{path_and_query}", self.url);
        let r = self
            .client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = r.status();
        let body = r.bytes().await?;
        let parsed: ApiResp<T> = serde_json::from_slice(&body).with_context(|| {
            format!(
                "GET {url} -> {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(500)])
            )
        })?;
        match (parsed.status.as_str(), parsed.data) {
            ("success", Some(data)) => Ok(data),
            _ => bail!("GET {url} -> {status}: {} {}", parsed.status, parsed.error),
        }
    }

    /// Every pending or firing alert (`/api/v1/alerts`).
    pub async fn alerts(&self) -> anyhow::Result<Vec<Alert>> {
        let data: AlertsData = self.api("/api/v1/alerts").await?;
        Ok(data
            .alerts
            .into_iter()
            .map(|a| Alert {
                name: a.labels.get("alertname").cloned().unwrap_or_default(),
                state: AlertState::parse(&a.state),
                labels: a.labels,
            })
            .collect())
    }

    /// Every active scrape target (`/api/v1/targets`).
    pub async fn targets(&self) -> anyhow::Result<Vec<Target>> {
        let data: TargetsData = self.api("/api/v1/targets?state=active").await?;
        Ok(data
            .active_targets
            .into_iter()
            .map(|t| Target {
                instance: t.labels.get("instance").cloned().unwrap_or_default(),
                health: t.health,
                last_error: t.last_error,
            })
            .collect())
    }

    /// Every loaded alerting rule (`/api/v1/rules?type=alert`).
    pub async fn rules(&self) -> anyhow::Result<Vec<LoadedRule>> {
        let data: RulesData = self.api("/api/v1/rules?type=alert").await?;
        Ok(data
            .groups
            .into_iter()
            .flat_map(|g| g.rules)
            .filter(|r| r.kind == "alerting")
            .map(|r| LoadedRule {
                name: r.name,
                query: r.query,
                hold: Duration::from_secs_f64(r.duration),
                health: r.health,
                last_error: r.last_error,
            })
            .collect())
    }

    /// An instant query (`/api/v1/query`) → (labels, value) per series.
    pub async fn query(&self, expr: &str) -> anyhow::Result<Vec<(BTreeMap<String, String>, f64)>> {
        let url = reqwest::Url::parse_with_params("http://x/api/v1/query", [("query", expr)])?;
        let path = format!("{}?{}", url.path(), url.query().unwrap_or(""));
        let data: QueryData = self.api(&path).await?;
        Ok(data
            .result
            .into_iter()
            .map(|s| (s.metric, s.value.1.parse().unwrap_or(f64::NAN)))
            .collect())
    }

    /// Alerts and targets as Prometheus sees them now, for failure messages.
    pub async fn describe(&self) -> String {
        let mut out = String::from("alerts:\n");
        match self.alerts().await {
            Ok(a) if a.is_empty() => out.push_str("  (none)\n"),
            Ok(a) => a.iter().for_each(|a| {
                let _ = writeln!(out, "  {a}");
            }),
            Err(e) => {
                let _ = writeln!(out, "  error: {e:#}");
            }
        }
        out.push_str("targets:\n");
        match self.targets().await {
            Ok(ts) => ts.iter().for_each(|t| {
                let _ = writeln!(out, "  {} {} {}", t.instance, t.health, t.last_error);
            }),
            Err(e) => {
                let _ = writeln!(out, "  error: {e:#}");
            }
        }
        out
    }

    /// Waits until an alert `name` whose labels include `labels` is in one of `states`; returns it.
    pub async fn wait_alert(
        &self,
        name: &str,
        states: &[AlertState],
        labels: &[(&str, &str)],
        timeout: Duration,
    ) -> anyhow::Result<Alert> {
        let what = format!("alert {name} {states:?} with labels {labels:?}");
        let found = wait_for(what, timeout, || async {
            self.alerts()
                .await
                .ok()?
                .into_iter()
                .find(|a| a.name == name && states.contains(&a.state) && a.has_labels(labels))
        })
        .await;
        self.or_describe(found).await
    }

    /// Waits until no alert named in `names` is pending or firing.
    pub async fn wait_inactive(&self, names: &[&str], timeout: Duration) -> anyhow::Result<()> {
        let what = format!("alerts {names:?} to be inactive");
        let done = wait_for(what, timeout, || async {
            let alerts = self.alerts().await.ok()?;
            let active = alerts
                .iter()
                .any(|a| names.contains(&a.name.as_str()) && a.state != AlertState::Inactive);
            (!active).then_some(())
        })
        .await;
        self.or_describe(done).await
    }

    /// Waits until every target in `instances` has health `health` (`up` or `down`).
    pub async fn wait_targets(
        &self,
        instances: &[String],
        health: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let what = format!("targets {instances:?} to be {health}");
        let done = wait_for(what, timeout, || async {
            let targets = self.targets().await.ok()?;
            let all = instances.iter().all(|i| {
                targets
                    .iter()
                    .any(|t| &t.instance == i && t.health == health)
            });
            all.then_some(())
        })
        .await;
        self.or_describe(done).await
    }

    async fn or_describe<T>(&self, r: anyhow::Result<T>) -> anyhow::Result<T> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => Err(e.context(format!(
                "{}prometheus log tail:\n{}",
                self.describe().await,
                self.log_tail(20)
            ))),
        }
    }
}

fn spawn(bin: &Path, dir: &Path, port: u16) -> anyhow::Result<Child> {
    let log: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("prometheus.log"))?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!(
        "--config.file={}",
        dir.join("prometheus.yml").display()
    ))
    .arg(format!(
        "--storage.tsdb.path={}",
        dir.join("tsdb").display()
    ))
    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
    .current_dir(dir)
    .stdin(Stdio::null())
    .stdout(log.try_clone()?)
    .stderr(log)
    .kill_on_drop(true);
    // Scrapes go to loopback targets; keep the machine's proxies out of them.
    for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        cmd.env_remove(k);
    }
    cmd.spawn()
        .with_context(|| format!("spawning {}", bin.display()))
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- prometheus log tail ({}):\n{}\n-----",
                self.dir.path().join("prometheus.log").display(),
                self.log_tail(40)
            );
        }
        let _ = self.child.start_kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_prometheus() {
        let d = |s| parse_duration(s);
        assert_eq!(d("30s"), Some(Duration::from_secs(30)));
        assert_eq!(d("1m"), Some(Duration::from_secs(60)));
        assert_eq!(d("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(d("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(d("0s"), Some(Duration::ZERO));
        assert_eq!(d("1x"), None);
        assert_eq!(d(""), None);
    }

    #[test]
    fn holds_are_cut_and_everything_else_kept() {
        let rules = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 1m  # one minute\n        labels:\n          for: keep\n      - alert: B\n        expr: x\n        for: \"1s\"\n      - for: 10m\n        alert: C\n";
        let out = shorten_holds(rules, Duration::from_secs(3));
        assert_eq!(
            out,
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 3000ms # one minute\n        labels:\n          for: keep\n      - alert: B\n        expr: x\n        for: 1000ms\n      - for: 3000ms\n        alert: C\n"
        );
    }
}
