//! `cairn prefetch`: warms a cluster with what builds need. It reads `go.sum`/`go.mod` files,
//! directories of them, `module@version` lists and index feeds, computes every version a build
//! downloads (each once), and asks the cluster's GOPROXY port for them with bounded
//! concurrency, so that every missing version is filled exactly as a `go` command would fill
//! it. Zips and go.mod files are checked against the go.sum hashes on the way.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use cairn_node::config::ProcessEnv;
use cairn_node::egress::{Egress, EgressSettings};
use futures_util::StreamExt;

mod fetch;
mod index;
mod inputs;
mod progress;

use fetch::Fetcher;
use inputs::{Item, Plan};
use progress::{Progress, Tally};

/// `cairn prefetch` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// go.sum or go.mod files, directories holding them (searched recursively, skipping
    /// vendor/, testdata/ and hidden directories), files listing module@version per line, `-`
    /// for such a list on standard input, or module@version.
    pub inputs: Vec<String>,
    /// The cluster's GOPROXY URL (its load balancer, or any node's --listen address).
    #[arg(long, env = "CAIRN_PROXY", value_name = "URL")]
    pub proxy: String,
    /// Also fetch every version listed by a module index feed (cairn's /index, or
    /// `https://index.golang.org/index`).
    #[arg(long, value_name = "URL")]
    pub from_index: Option<String>,
    /// Start the feed at this RFC 3339 timestamp (the `next since` a previous run printed).
    #[arg(long, value_name = "TIME", requires = "from_index")]
    pub since: Option<String>,
    /// Entries per feed page.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub index_limit: u32,
    /// Versions fetched at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// Bearer token for the GOPROXY port (`cairn token`), when access control is on.
    #[arg(long, env = "CAIRN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Extra CA certificate (PEM) trusted for the proxy's HTTPS, on top of the system store.
    #[arg(long, value_name = "FILE")]
    pub proxy_ca: Option<PathBuf>,
    /// Do not check zips and go.mod files against the go.sum hashes.
    #[arg(long)]
    pub no_verify: bool,
    /// Attempts after a transient failure (network, 5xx, 429) per version.
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// Seconds between progress lines when stderr is not a terminal (CI logs, cron).
    #[arg(long, default_value_t = 10.0, value_name = "SECS", value_parser = positive_secs)]
    pub progress_interval: f64,
    /// Print what would be fetched and stop.
    #[arg(long)]
    pub dry_run: bool,
}

fn positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0 and 86400"
        )),
    }
}

/// One failed version.
#[derive(Debug)]
struct Failure {
    item: Item,
    error: String,
}

/// Runs a prefetch; exit status 1 when some version failed (each is listed).
pub async fn run(args: &Args, json: bool) -> Result<ExitCode> {
    let mut plan = Plan::default();
    for input in &args.inputs {
        plan.add_argument(input)?;
    }
    let client = http_client(args)?;
    let mut walked = None;
    if let Some(url) = &args.from_index {
        let w = index::walk(
            &client,
            url,
            args.since.as_deref(),
            args.index_limit,
            args.token.as_deref(),
            &mut plan,
        )
        .await?;
        walked = Some(w);
    }
    if args.inputs.is_empty() && args.from_index.is_none() {
        bail!("nothing to prefetch: give go.sum/go.mod files, directories, module@version, or --from-index URL");
    }
    if args.dry_run {
        for item in plan.items() {
            println!("{item} {:?}", item.want);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let tmp = tempfile::Builder::new()
        .prefix("cairn-prefetch-")
        .tempdir()
        .context("cannot make a temporary directory for zips")?;
    let fetcher = Fetcher::new(
        client,
        &args.proxy,
        args.token.clone(),
        tmp.path(),
        !args.no_verify,
        args.retries,
    );
    let log_every = Duration::from_secs_f64(args.progress_interval);
    let (tally, failures, elapsed) = fetch_all(&fetcher, &plan, args.concurrency, log_every).await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&tally, &failures, elapsed, walked.as_ref()))?
        );
    } else {
        print!("{}", render(&tally, &failures, elapsed, walked.as_ref()));
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn http_client(args: &Args) -> Result<reqwest::Client> {
    let settings = EgressSettings {
        extra_ca_file: args.proxy_ca.clone(),
        ..EgressSettings::default()
    };
    let egress = Egress::new(&settings, &ProcessEnv).map_err(|errs| {
        let all: Vec<String> = errs.iter().map(ToString::to_string).collect();
        anyhow!("cannot set up HTTPS: {}", all.join("; "))
    })?;
    egress
        .client_builder(true)
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(120))
        .user_agent(concat!("cairn-prefetch/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")
}

async fn fetch_all(
    fetcher: &Fetcher,
    plan: &Plan,
    concurrency: u32,
    log_every: Duration,
) -> (Tally, Vec<Failure>, Duration) {
    let mut tally = Tally {
        total: plan.len() as u64,
        ..Tally::default()
    };
    let mut failures = Vec::new();
    let mut shown = Progress::new(std::io::stderr().is_terminal(), log_every);
    let mut work = futures_util::stream::iter(plan.items().cloned().enumerate())
        .map(|(n, item)| async move {
            let r = fetcher.fetch(&item, n as u64).await;
            (item, r)
        })
        .buffer_unordered(concurrency as usize);
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            next = work.next() => {
                let Some((item, result)) = next else { break };
                tally.done += 1;
                match result {
                    Ok(f) => {
                        tally.bytes += f.bytes;
                        if f.filled {
                            tally.filled += 1;
                        } else if f.cached {
                            tally.cached += 1;
                        }
                    }
                    Err(e) => {
                        tally.failed += 1;
                        failures.push(Failure { item, error: e.to_string() });
                    }
                }
                shown.tick(&tally);
            }
            _ = ticker.tick() => shown.tick(&tally),
        }
    }
    shown.finish();
    failures.sort_by_key(|f| f.item.to_string());
    (tally, failures, shown.elapsed())
}

fn render(
    t: &Tally,
    failures: &[Failure],
    elapsed: Duration,
    walked: Option<&index::Walked>,
) -> String {
    let mut out = format!(
        "prefetched {} versions in {}: {} filled, {} already cached, {} failed ({})\n",
        t.total,
        progress::human_secs(elapsed.as_secs_f64()),
        t.filled,
        t.cached,
        t.failed,
        crate::backup_progress::bytes(t.bytes),
    );
    if let Some(w) = walked {
        out.push_str(&format!(
            "index: {} entries; next run: --since {}\n",
            w.entries,
            w.next_since.as_deref().unwrap_or("(none)")
        ));
    }
    for f in failures {
        out.push_str(&format!("FAILED {}: {}\n", f.item, f.error));
    }
    out
}

fn to_json(
    t: &Tally,
    failures: &[Failure],
    elapsed: Duration,
    walked: Option<&index::Walked>,
) -> serde_json::Value {
    serde_json::json!({
        "versions": t.total,
        "filled": t.filled,
        "cached": t.cached,
        "failed": t.failed,
        "bytes": t.bytes,
        "seconds": elapsed.as_secs_f64(),
        "failures": failures.iter().map(|f| serde_json::json!({
            "module": f.item.module,
            "version": f.item.version,
            "error": f.error,
        })).collect::<Vec<_>>(),
        "index": walked.map(|w| serde_json::json!({
            "entries": w.entries,
            "next_since": w.next_since,
        })),
    })
}
