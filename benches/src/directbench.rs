//! `cairn-bench direct`: a cold private fetch through cairn's `direct` source compared with the
//! go command's own direct fetch of the same version, and a second version of the same
//! repository (cairn's mirror already present).
//!
//! One realistic repository ([`crate::directrepo`]: about 400 files, 4 MB, 40 commits, tags
//! `v1.0.0`…`v1.0.9`) is served by `cairn_tests::githttp::GitServer` (`git http-backend` on
//! loopback). The cold version is the middle tag (`v1.0.5`), the second version the next one.
//! Each round starts from nothing and times, in wall seconds:
//!
//! - **go direct, cold**: a fresh `GOMODCACHE`/`GOPATH`, `GOPROXY=direct` (git reaches the
//!   server through an `insteadOf` rule), `go mod download -json <mod>@<cold>`;
//! - **go direct, second version**: the same environment (its `cache/vcs` clone is there),
//!   `<mod>@<second>`;
//! - **cairn (go), cold**: a fresh `cairn-node` (empty data directory, so no mirror) with a
//!   `direct` route and a `[[direct.hosts]]` mapping to the server, a fresh client with
//!   `GOPROXY=<cairn>` and `GONOSUMDB=<pattern>`, `<mod>@<cold>`;
//! - **cairn (go), second version**: a fresh client, `<mod>@<second>` through the same node;
//! - **cairn (go), hit**: a fresh client, `<mod>@<cold>` again (from cairn's cache);
//! - **cairn raw HTTP, cold / second version / hit**: the same three on another fresh node,
//!   without the go command: `GET .info`, `.mod`, `.zip` one after the other, so cairn's own
//!   time is separated from the go command's.
//!
//! The order of the three groups alternates between rounds, so a drift in machine load hits
//! every group alike; an untimed go-direct download first warms the page cache and gives the
//! reference hashes. Every result is verified: `Sum`/`GoModSum` through cairn must equal go
//! direct's, and the raw bodies must hash (`h1:`) to the same values, else the run fails.
//!
//! Besides the times, each sample records the git server's requests (ref advertisements,
//! `ls-refs`, fetches), the go command's own view (`go mod download -x`: every git command and
//! HTTP request it made, with durations) and, for cairn, the deltas of the node's
//! `cairn_http_request_duration_seconds` and `cairn_direct_git_command_duration_seconds`, so the
//! report can say where the time went ([`crate::directparts`]; the table and JSON are
//! [`crate::directreport`]). Figures are printed and written as JSON to
//! `target/bench-direct.json`; speed is measured, never asserted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use cairn_tests::gitcorpus::{insteadof_config, HOST, PRIVATE_PATTERN, TEAM};
use cairn_tests::githttp::GitServer;
use cairn_tests::gocmd::{DirectMode, Download, Go, GoEnv};
use cairn_tests::node::{CairnNode, NodeOptions};

use crate::directparts::{git_counts, go_parts, node_parts};
use crate::directrepo::{self, BuiltRepo, RepoSpec};
use crate::directreport::{self, Scenario};

/// The `direct` source against the go command's direct mode.
#[derive(Debug, clap::Args)]
pub struct DirectArgs {
    /// Rounds; each starts from empty caches and fresh nodes.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Files in the repository's first commit (besides go.mod, LICENSE, README.md).
    #[arg(long, default_value_t = 400)]
    files: usize,
    /// Total size of those files, MB.
    #[arg(long, default_value_t = 4.0)]
    mbytes: f64,
    /// Commits in the repository.
    #[arg(long, default_value_t = 40)]
    commits: usize,
    /// Tags v1.0.0… spread over the commits (at least 2); the middle one is the cold version,
    /// the next one the second version.
    #[arg(long, default_value_t = 10)]
    tags: usize,
    /// The cairn-node binary (default: target/release/cairn-node in the workspace).
    #[arg(long, env = "CAIRN_NODE_BIN")]
    pub node_bin: Option<PathBuf>,
    /// Where to write the JSON results (default: target/bench-direct.json in the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print every go command's `-x` trace (git commands, HTTP requests) to stderr.
    #[arg(long)]
    verbose: bool,
}

/// Resolves the node binary (`given`, else the workspace's release build) and exports it as
/// `CAIRN_NODE_BIN`, which is how `cairn_tests::node::CairnNode` finds it (otherwise it looks
/// next to this executable). `main` calls this before the async runtime exists: with no other
/// thread running, setting the variable cannot race a reader.
pub fn export_bin(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let bin = crate::resolve_node_bin(given)?;
    std::env::set_var("CAIRN_NODE_BIN", &bin);
    Ok(bin)
}

/// `Sum` and `GoModSum` of one version.
type Sums = (String, String);

/// One timed run of one scenario.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Wall time, seconds.
    pub secs: f64,
    /// What the git server saw.
    pub git: GitCounts,
    /// Named parts of the time: series → (seconds, count), e.g. `go git fetch`, `go GET .zip`,
    /// `cairn http zip`, `cairn git fetch`, `raw GET .info`.
    pub parts: BTreeMap<String, (f64, f64)>,
}

/// Requests the git server answered during one sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GitCounts {
    /// `GET …/info/refs?service=git-upload-pack`.
    pub adverts: usize,
    /// `git-upload-pack` POSTs listing refs (protocol v2 `ls-refs`).
    pub ls_refs: usize,
    /// `git-upload-pack` POSTs asking for objects (clones and fetches).
    pub fetches: usize,
    /// Every request.
    pub total: usize,
}

/// Everything a round needs.
struct Ctx {
    go: Go,
    server: GitServer,
    repo: BuiltRepo,
    /// (cold version, its sums), (second version, its sums): the reference from go direct.
    cold: (String, Sums),
    second: (String, Sums),
    /// Size of the cold version's zip.
    zip_bytes: u64,
    /// `--verbose`.
    verbose: bool,
    /// Holds the repository; removed when the run ends.
    _work: tempfile::TempDir,
}

/// Runs the benchmark.
pub async fn run(args: DirectArgs, bin: PathBuf) -> anyhow::Result<()> {
    if args.tags < 2 || args.commits < args.tags || args.rounds == 0 || args.files == 0 {
        bail!("need --tags >= 2, --commits >= --tags, --rounds >= 1 and --files >= 1");
    }
    let Some(go) = cairn_tests::gocmd::go("cairn-bench direct") else {
        bail!("the go command is required (on PATH, or CAIRN_GO_BIN)");
    };
    let load_before = crate::loadavg();
    let started = Instant::now();
    let ctx = prepare(&args, go).await?;
    print!("{}", header(&ctx, &bin, &load_before).await);
    let mut results: BTreeMap<Scenario, Vec<Sample>> = BTreeMap::new();
    for r in 0..args.rounds {
        eprintln!("round {}/{}", r + 1, args.rounds);
        round(&ctx, r, &mut results).await?;
    }
    let load_after = crate::loadavg();
    let elapsed = started.elapsed().as_secs_f64();
    let versions = [&ctx.cold.0, &ctx.second.0];
    print!(
        "{}",
        directreport::table(&ctx.repo.module, versions, &results)
    );
    println!("\nload average before: {load_before}; after: {load_after}; total {elapsed:.0} s");
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| crate::workspace_root().join("target/bench-direct.json"));
    let mut meta = meta(&args, &ctx, &bin).await;
    meta["loadavg_before"] = load_before.into();
    meta["loadavg_after"] = load_after.into();
    meta["elapsed_secs"] = elapsed.into();
    directreport::write_json(&out, &results, meta)?;
    println!("results written to {}", out.display());
    Ok(())
}

/// Builds and serves the repository, and takes the reference sums (see [`warm_up`]).
async fn prepare(args: &DirectArgs, go: Go) -> anyhow::Result<Ctx> {
    let work = tempfile::Builder::new()
        .prefix("cairn-bench-direct-")
        .tempdir()?;
    let spec = RepoSpec {
        files: args.files,
        bytes: (args.mbytes * 1e6) as usize,
        commits: args.commits,
        tags: args.tags,
    };
    eprintln!(
        "building the repository ({} files, {} commits)",
        spec.files, spec.commits
    );
    let dir = work.path().to_path_buf();
    let repo = tokio::task::spawn_blocking(move || directrepo::build(&dir, spec))
        .await
        .context("the repository builder panicked")??;
    let server = GitServer::start(&repo.root).await?;
    // The middle tag (v1.0.5 of ten), and the next one; `run` made sure there are two.
    let c = (args.tags / 2).min(args.tags - 2);
    let (cold, second) = (repo.tags[c].clone(), repo.tags[c + 1].clone());
    let (reference, zip_bytes) =
        warm_up(&go, &server, &repo.module, [&cold, &second], args.verbose).await?;
    let [cold_sums, second_sums] = reference;
    Ok(Ctx {
        go,
        server,
        repo,
        cold: (cold, cold_sums),
        second: (second, second_sums),
        zip_bytes,
        verbose: args.verbose,
        _work: work,
    })
}

/// The JSON `meta` object: machine, tools, repository and versions.
async fn meta(args: &DirectArgs, ctx: &Ctx, bin: &Path) -> serde_json::Value {
    serde_json::json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu_model": cpu_model(),
        "node_bin": bin.display().to_string(),
        "go_version": tool_version(&ctx.go.bin, "version").await,
        "git_version": tool_version(&cairn_tests::gitrepo::git_bin(), "--version").await,
        "rounds": args.rounds,
        "module": ctx.repo.module, "cold_version": ctx.cold.0, "second_version": ctx.second.0,
        "sum_cold": ctx.cold.1.0, "sum_second": ctx.second.1.0,
        "repository": {
            "files_first_commit": args.files, "mbytes_first_commit": args.mbytes,
            "commits": args.commits, "tags": ctx.repo.tags,
            "head_files": ctx.repo.head_files, "head_bytes": ctx.repo.head_bytes,
            "bare_bytes": ctx.repo.bare_bytes, "zip_bytes_cold_version": ctx.zip_bytes,
            "build_secs": ctx.repo.build_secs,
        },
    })
}

/// An untimed go-direct download of both versions: warms the page cache (repository, go and
/// git binaries) and yields the reference sums and the cold version's zip size.
async fn warm_up(
    go: &Go,
    server: &GitServer,
    module: &str,
    versions: [&String; 2],
    verbose: bool,
) -> anyhow::Result<([Sums; 2], u64)> {
    let env = go_direct_env(go, server)?;
    let (a, _) = go_download(&env, module, versions[0], verbose).await?;
    let (b, _) = go_download(&env, module, versions[1], verbose).await?;
    let zip_bytes = std::fs::metadata(&a.zip).map_or(0, |m| m.len());
    Ok(([(a.sum, a.go_mod_sum), (b.sum, b.go_mod_sum)], zip_bytes))
}

/// One round: the three groups, in an order that alternates between rounds.
async fn round(
    ctx: &Ctx,
    r: usize,
    results: &mut BTreeMap<Scenario, Vec<Sample>>,
) -> anyhow::Result<()> {
    let mut groups = [0, 1, 2];
    if r % 2 == 1 {
        groups.reverse();
    }
    for g in groups {
        let samples = match g {
            0 => go_direct(ctx).await.context("go direct")?,
            1 => cairn_go(ctx)
                .await
                .context("cairn through the go command")?,
            _ => cairn_raw(ctx).await.context("cairn, raw HTTP")?,
        };
        for (scenario, sample) in samples {
            let g = sample.git;
            eprintln!(
                "  {:<40} {:>7.3} s   git: {} adverts, {} ls-refs, {} fetches",
                scenario.label(),
                sample.secs,
                g.adverts,
                g.ls_refs,
                g.fetches
            );
            results.entry(scenario).or_default().push(sample);
        }
    }
    Ok(())
}

/// go direct: cold, then the second version in the same environment.
async fn go_direct(ctx: &Ctx) -> anyhow::Result<Vec<(Scenario, Sample)>> {
    let env = go_direct_env(&ctx.go, &ctx.server)?;
    let mut out = Vec::new();
    for (scenario, (version, sums)) in [
        (Scenario::GoCold, &ctx.cold),
        (Scenario::GoSecond, &ctx.second),
    ] {
        ctx.server.reset_log();
        let (d, mut sample) = go_download(&env, &ctx.repo.module, version, ctx.verbose).await?;
        sample.git = git_counts(&ctx.server);
        check_sums(scenario, version, &(d.sum, d.go_mod_sum), sums)?;
        out.push((scenario, sample));
    }
    Ok(out)
}

/// Through a fresh node with the go command: cold, second version, hit (a fresh client each).
async fn cairn_go(ctx: &Ctx) -> anyhow::Result<Vec<(Scenario, Sample)>> {
    let node = start_node(&ctx.server).await?;
    let mut out = Vec::new();
    for (scenario, (version, sums)) in [
        (Scenario::CairnCold, &ctx.cold),
        (Scenario::CairnSecond, &ctx.second),
        (Scenario::CairnHit, &ctx.cold),
    ] {
        let env = GoEnv::new(&ctx.go, &node.url())?.with_nosumdb(PRIVATE_PATTERN);
        ctx.server.reset_log();
        let before = node.metrics().await?;
        let (d, mut sample) = go_download(&env, &ctx.repo.module, version, ctx.verbose)
            .await
            .with_context(|| format!("cairn-node log tail:\n{}", node.log_tail(30)))?;
        sample.git = git_counts(&ctx.server);
        sample
            .parts
            .extend(node_parts(&before, &node.metrics().await?));
        check_sums(scenario, version, &(d.sum, d.go_mod_sum), sums)?;
        out.push((scenario, sample));
    }
    Ok(out)
}

/// Through another fresh node without the go command: `.info`, `.mod`, `.zip` in sequence.
async fn cairn_raw(ctx: &Ctx) -> anyhow::Result<Vec<(Scenario, Sample)>> {
    let node = start_node(&ctx.server).await?;
    let mut out = Vec::new();
    for (scenario, (version, sums)) in [
        (Scenario::RawCold, &ctx.cold),
        (Scenario::RawSecond, &ctx.second),
        (Scenario::RawHit, &ctx.cold),
    ] {
        ctx.server.reset_log();
        let before = node.metrics().await?;
        let mut sample = Sample::default();
        let mut bodies = Vec::new();
        let start = Instant::now();
        for ext in ["info", "mod", "zip"] {
            let path = cairn_tests::h1::version_path(&ctx.repo.module, version, ext);
            let t = Instant::now();
            let resp = node.get(&path).await?;
            let secs = t.elapsed().as_secs_f64();
            if resp.status != 200 {
                bail!(
                    "GET {path}: {} {}\ncairn-node log tail:\n{}",
                    resp.status,
                    resp.text(),
                    node.log_tail(30)
                );
            }
            sample.parts.insert(format!("raw GET .{ext}"), (secs, 1.0));
            bodies.push(resp.body);
        }
        sample.secs = start.elapsed().as_secs_f64();
        sample.git = git_counts(&ctx.server);
        sample
            .parts
            .extend(node_parts(&before, &node.metrics().await?));
        let info: serde_json::Value = serde_json::from_slice(&bodies[0])?;
        if info["Version"].as_str() != Some(version.as_str()) {
            bail!(
                "{}: .info names {:?}, not {version}",
                scenario.label(),
                info["Version"]
            );
        }
        let got = (
            cairn_tests::h1::zip_h1(&bodies[2])?,
            cairn_tests::h1::mod_h1(&bodies[1]),
        );
        check_sums(scenario, version, &got, sums)?;
        out.push((scenario, sample));
    }
    Ok(out)
}

/// A fresh node: everything public is `off`, the private pattern goes to `direct`, and
/// `git.corp.example/team/<name>.git` maps to `<server>/team/<name>.git`.
async fn start_node(server: &GitServer) -> anyhow::Result<CairnNode> {
    let config = format!(
        "[[routes]]\nname = \"corp\"\npatterns = \"{PRIVATE_PATTERN}\"\nupstream = \"direct\"\n\n\
         [[direct.hosts]]\nprefix = \"{HOST}/{TEAM}\"\nurl = \"{}/{TEAM}\"\n",
        server.url()
    );
    CairnNode::start(NodeOptions::new("off").config(&config)).await
}

/// A fresh go environment in direct mode whose git reaches `server`.
fn go_direct_env(go: &Go, server: &GitServer) -> anyhow::Result<GoEnv> {
    GoEnv::direct(
        go,
        DirectMode {
            private: PRIVATE_PATTERN.to_owned(),
            git_config: insteadof_config(&server.url()),
            insecure: String::new(),
        },
    )
}

/// `go mod download -json -x <module>@<version>`, timed; the sample's parts are what `-x`
/// reported (git commands and HTTP requests with their durations).
async fn go_download(
    env: &GoEnv,
    module: &str,
    version: &str,
    verbose: bool,
) -> anyhow::Result<(Download, Sample)> {
    let arg = format!("{module}@{version}");
    let start = Instant::now();
    let out = env
        .run(&env.workdir(), &["mod", "download", "-json", "-x", &arg])
        .await?;
    let secs = start.elapsed().as_secs_f64();
    if verbose {
        eprintln!(
            "--- {} ({secs:.3} s)\n{}",
            out.describe,
            out.stderr.trim_end()
        );
    }
    let out = out.ok()?;
    let d: Download = serde_json::from_str(&out.stdout)
        .with_context(|| format!("parsing the output of {}: {}", out.describe, out.stdout))?;
    if !d.error.is_empty() {
        bail!("{}: {}", out.describe, d.error);
    }
    let parts = go_parts(&out.stderr, secs);
    Ok((
        d,
        Sample {
            secs,
            git: GitCounts::default(),
            parts,
        },
    ))
}

fn check_sums(scenario: Scenario, version: &str, got: &Sums, want: &Sums) -> anyhow::Result<()> {
    if got != want {
        bail!(
            "{} of {version}: Sum/GoModSum {got:?} differ from go direct's {want:?}",
            scenario.label()
        );
    }
    Ok(())
}

async fn header(ctx: &Ctx, bin: &Path, load: &str) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let r = &ctx.repo;
    format!(
        "cairn-bench direct: {cpus} CPUs ({}), load average {load}\n\
         go: {}; git: {}\ncairn-node: {}\n\
         repository: {} — {} files, {:.1} MB at {}, {} tags, bare repository {:.1} MB on disk \
         (built in {:.1} s)\n\
         git server: {} (git http-backend); cold version {} (zip {:.1} MB), second version {}\n",
        cpu_model(),
        tool_version(&ctx.go.bin, "version").await,
        tool_version(&cairn_tests::gitrepo::git_bin(), "--version").await,
        bin.display(),
        r.module,
        r.head_files,
        r.head_bytes as f64 / 1e6,
        r.tags.last().map_or("?", String::as_str),
        r.tags.len(),
        r.bare_bytes as f64 / 1e6,
        r.build_secs,
        ctx.server.url(),
        ctx.cold.0,
        ctx.zip_bytes as f64 / 1e6,
        ctx.second.0,
    )
}

/// The first line of `<bin> <arg>`'s output, or `unknown`.
async fn tool_version(bin: &Path, arg: &str) -> String {
    tokio::process::Command::new(bin)
        .arg(arg)
        .output()
        .await
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines().next().map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
