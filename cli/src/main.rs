//! `cairn`: the operator command line. Talks gRPC (`cairn.v1.Admin`) to any node's
//! `--cluster-listen` address.
//!
//! - `cairn status`: the whole cluster, one row per member (each member is asked directly);
//!   exit status 3 when a member is unreachable or not ready, or there is no leader.
//! - `cairn members list|add|remove`: the Raft membership. Changes are sent to the given node,
//!   which forwards them to the leader. Nothing is retried behind the operator's back.
//! - `cairn route <module path>`: which routing rule the path matches on the given node.
//! - `cairn verify`: re-check every version the node stores against the checksum database.
//! - `cairn certs init|node|operator|server`: make a cluster CA and certificates.
//! - `cairn token NAME`: make an access token for the GOPROXY port.
//! - `cairn prefetch`: warm the cluster from go.sum/go.mod files, lists or an index feed
//!   (speaks HTTP to the GOPROXY port, not gRPC).
//! - `cairn pin PATTERN`, `cairn unpin PATTERN`, `cairn pin list`: keep versions on disk.
//! - `cairn deny|purge TARGET [--reason TEXT] [--lift]`, `cairn deny|purge list`: operator
//!   rules against compromised releases (issue 12).
//! - `cairn backup --out DIR`, `cairn backup verify DIR`, `cairn restore --from DIR`: back the
//!   cluster up from one node, check a backup offline, build a new cluster's first data
//!   directory from it.
//!
//! With `--tls-dir` (or `--ca`, `--cert`, `--key`) the CLI speaks mutual TLS to the cluster port
//! as the operator its certificate names.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

mod certs;
mod client;
mod cluster;
mod members;
mod pin;
mod policy;
mod prefetch;
mod route;
mod verify;
// --- backup ---
mod backup;
mod backup_archive;
mod backup_progress;
mod restore;

use cluster::Health;

/// Exit status when the cluster is unhealthy.
const EXIT_UNHEALTHY: u8 = 3;
/// Longest wait for each member's `Status` in the cluster-wide views.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(2);

/// Operate a cairn cluster.
#[derive(Debug, Parser)]
#[command(
    name = "cairn",
    version,
    about = "Operate a cairn Go module mirror cluster"
)]
struct Cli {
    /// A node's cluster (gRPC) address, HOST:PORT or http://HOST:PORT.
    #[arg(
        long,
        global = true,
        env = "CAIRN_NODE",
        default_value = "127.0.0.1:9090"
    )]
    node: String,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Seconds to wait for the node to answer (connecting, and status calls).
    #[arg(long, global = true, default_value_t = 10)]
    timeout_secs: u64,
    /// A `cairn certs` directory: speak mutual TLS with its ca.pem, operator.pem and
    /// operator-key.pem (`certs` commands write there; default ./cairn-certs for them).
    #[arg(long, global = true, env = "CAIRN_TLS_DIR", value_name = "DIR")]
    tls_dir: Option<std::path::PathBuf>,
    /// The cluster CA (PEM), overriding the one in --tls-dir.
    #[arg(long, global = true, env = "CAIRN_CA", value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// The operator certificate (PEM), overriding the one in --tls-dir.
    #[arg(long, global = true, env = "CAIRN_CERT", value_name = "FILE")]
    cert: Option<std::path::PathBuf>,
    /// The operator's private key (PEM), overriding the one in --tls-dir.
    #[arg(long, global = true, env = "CAIRN_KEY", value_name = "FILE")]
    key: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show every member's health, Raft state, lag and blob counts (exit 3 if unhealthy).
    Status,
    /// List, add or remove cluster members.
    #[command(subcommand)]
    Members(MembersCommand),
    /// Show which routing rule a module path matches (its upstream, private, sumdb, denied).
    Route {
        /// The module path, unescaped (corp.example.com/x/y).
        module: String,
    },
    /// Re-check every version the node stores (records, go.mod bytes, zip files on its disk)
    /// against the checksum database, with progress; exit 1 if anything does not match.
    Verify,
    /// Make a cluster CA and node, operator or HTTPS certificates (for tests and small
    /// installations; larger ones use their own PKI, see the README).
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Make an access token for the GOPROXY port: prints the token (give it to its user, once)
    /// and the `[[token]]` entry with its hash for `access.tokens_file`.
    Token {
        /// The identity the token stands for (the `.netrc` login).
        name: String,
        /// Groups of the identity (repeatable), for `group:NAME` access rules.
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// Warm the cluster with what builds need: every version named by go.sum/go.mod files,
    /// directories of them, module@version lists or an index feed, fetched once each through
    /// the GOPROXY port with progress; exit 1 with a list when some failed.
    Prefetch(prefetch::Args),
    /// Pin versions so no node evicts them from its disk (`cairn pin list` lists the pins).
    Pin {
        /// A module glob (corp.example.com/*), optionally @VERSION; or `list`.
        pattern: String,
    },
    /// Remove a pin (exactly as it was pinned).
    Unpin {
        /// The pinned pattern.
        pattern: String,
    },
    /// Refuse PATTERN or PATTERN@VERSION on every node (410 or `policy.deny_status`) and leave it out
    /// of lists and @latest; `--lift` removes the rule; `cairn deny list` shows the rules.
    Deny {
        /// A module path or glob, optionally @VERSION (one exact version); or `list`.
        target: String,
        /// Why (required when adding; shown to refused clients).
        #[arg(long)]
        reason: Option<String>,
        /// Remove the rule instead.
        #[arg(long)]
        lift: bool,
    },
    /// Remove MODULE@VERSION's record and blobs everywhere, leaving a tombstone (410, never
    /// refetched) until `--lift`; `cairn purge list` shows the tombstones.
    Purge {
        /// MODULE@VERSION, or `list`.
        target: String,
        /// Why (required when purging).
        #[arg(long)]
        reason: Option<String>,
        /// Remove the tombstone instead (the next request refills the version).
        #[arg(long)]
        lift: bool,
    },
    /// Back the cluster up from --node into a directory: the replicated state at a known log
    /// index and the blobs it references (`cairn backup verify DIR` checks one offline).
    Backup(BackupArgs),
    /// Build the first data directory of a new cluster from a backup (offline; the backup is
    /// verified first and refused if damaged). Start cairn-node on it, then add the other nodes.
    Restore {
        /// The backup: a directory, or a FILE.zip made by `cairn backup --out FILE.zip`.
        #[arg(long, value_name = "DIR|FILE.zip")]
        from: std::path::PathBuf,
        /// The new data directory (absent or empty).
        #[arg(long, value_name = "DIR")]
        data_dir: std::path::PathBuf,
        /// The restored node's id.
        #[arg(long, default_value_t = 1)]
        node_id: u64,
        /// The restored node's cluster address as other nodes will reach it (its
        /// --cluster-listen, or a stable DNS name); default: the address this node id had in
        /// the backed-up membership.
        #[arg(
            long,
            value_name = "HOST:PORT",
            default_value = "",
            hide_default_value = true
        )]
        cluster_addr: String,
    },
}

/// `cairn backup`: flags of a backup run, or the `verify` subcommand.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct BackupArgs {
    #[command(subcommand)]
    verify: Option<BackupCommand>,
    /// The backup directory (created if needed; a re-run copies only new blobs), or FILE.zip
    /// for a full backup as one file.
    #[arg(long, value_name = "DIR|FILE.zip")]
    out: Option<std::path::PathBuf>,
    /// Only the replicated state, no blob (blobs come back from the upstreams).
    #[arg(long, conflicts_with = "non_refetchable_only")]
    state_only: bool,
    /// Only the blobs that cannot be fetched again (versions from `direct` sources).
    #[arg(long)]
    non_refetchable_only: bool,
    /// Re-hash blobs already in DIR instead of trusting their name and size.
    #[arg(long)]
    verify_existing: bool,
    /// Blobs streamed at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// After a successful run, delete blob files in DIR that this backup does not include
    /// (versions purged since an earlier run, leftovers of interrupted runs).
    #[arg(long)]
    prune: bool,
}

#[derive(Debug, Subcommand)]
enum BackupCommand {
    /// Check a backup offline: manifest, state hash, every blob's size and sha256 (exit 1 on
    /// any problem, each one listed).
    Verify {
        /// The backup: a directory, or a FILE.zip.
        dir: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum MembersCommand {
    /// List the members with their role and whether they answer.
    List,
    /// Add node ID at ADDR (its --cluster-listen address): a learner first, then, once caught
    /// up, a voter. Start the node first, with --peers naming the cluster and itself.
    Add {
        /// The new node's id (never used before in this cluster).
        id: u64,
        /// Its cluster address, HOST:PORT (a stable DNS name, e.g. the pod's headless name).
        addr: String,
        /// Keep it a learner (replicates, does not vote).
        #[arg(long)]
        learner: bool,
        /// Promote it even if its region would then hold a majority of the voters (losing
        /// that region would then lose the quorum).
        #[arg(long)]
        force_placement: bool,
        /// Seconds to wait for the change (the leader may wait for the learner to catch up).
        #[arg(long, default_value_t = 420)]
        wait_secs: u64,
    },
    /// Remove node ID from the membership (then stop it; it is not told).
    Remove {
        /// The node's id.
        id: u64,
        /// Seconds to wait for the change.
        #[arg(long, default_value_t = 180)]
        wait_secs: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cairn: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cairn: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let timeout = Duration::from_secs(cli.timeout_secs);
    if let Command::Token { name, groups } = &cli.command {
        print!("{}", certs::token(name, groups));
        return Ok(ExitCode::SUCCESS);
    }
    match &cli.command {
        Command::Backup(BackupArgs {
            verify: Some(BackupCommand::Verify { dir }),
            ..
        }) => return backup_verify(&cli, dir).await,
        Command::Restore {
            from,
            data_dir,
            node_id,
            cluster_addr,
        } => {
            let unpacked = unpack_if_archive(from).await?;
            let args = restore::RestoreArgs {
                from: unpacked
                    .as_ref()
                    .map_or(from.as_path(), |u| u.path())
                    .to_path_buf(),
                data_dir: data_dir.clone(),
                node_id: *node_id,
                cluster_addr: cluster_addr.clone(),
            };
            let summary = restore::restore(&args).await?;
            if cli.json {
                let json = restore::restored_json(&summary);
                println!("{}", serde_json::to_string_pretty(&json)?);
            } else {
                print!("{}", restore::render_restored(&summary));
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Prefetch(args) => return prefetch::run(args, cli.json).await,
        _ => {}
    }
    if let Command::Certs(cmd) = &cli.command {
        let dir = cli
            .tls_dir
            .clone()
            .unwrap_or_else(|| std::path::PathBuf::from("cairn-certs"));
        return certs::run(cmd, &dir).map(|()| ExitCode::SUCCESS);
    }
    client::init_tls(
        cli.tls_dir.as_deref(),
        cli.ca.as_deref(),
        cli.cert.as_deref(),
        cli.key.as_deref(),
    )?;
    match &cli.command {
        Command::Certs(_)
        | Command::Token { .. }
        | Command::Prefetch(_)
        | Command::Restore { .. } => Ok(ExitCode::SUCCESS),
        Command::Backup(args) => backup(&cli, timeout, args).await,
        Command::Status => status(&cli, timeout).await,
        Command::Deny {
            target,
            reason,
            lift,
        } => policy_command(&cli, timeout, "deny", target, reason.as_deref(), *lift).await,
        Command::Purge {
            target,
            reason,
            lift,
        } => policy_command(&cli, timeout, "purge", target, reason.as_deref(), *lift).await,
        Command::Route { module } => {
            let reply = route::route(&cli.node, timeout, module).await?;
            if cli.json {
                let json = route::to_json(module, &reply);
                println!("{}", serde_json::to_string_pretty(&json)?);
            } else {
                print!("{}", route::render(module, &reply));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify => {
            let report = verify::verify(&cli.node, timeout).await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&report.to_json())?);
            } else {
                print!("{}", report.render());
            }
            Ok(match report.findings.is_empty() {
                true => ExitCode::SUCCESS,
                false => ExitCode::FAILURE,
            })
        }
        Command::Pin { pattern } if pattern == "list" => {
            let reply = pin::list(&cli.node, timeout).await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&pin::list_json(&reply))?);
            } else {
                print!("{}", pin::render_list(&reply));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Pin { pattern } | Command::Unpin { pattern } => {
            let add = matches!(cli.command, Command::Pin { .. });
            let reply = pin::change(&cli.node, timeout, pattern, add).await?;
            if cli.json {
                let json = serde_json::json!({"pattern": pattern, "changed": reply.changed});
                println!("{}", serde_json::to_string_pretty(&json)?);
            } else {
                print!("{}", pin::render_change(pattern, add, &reply));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Members(MembersCommand::List) => {
            let view = cluster::gather(&cli.node, timeout, MEMBER_TIMEOUT.min(timeout)).await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&view.to_json())?);
            } else {
                print!("{}", members::render_list(&view));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Members(MembersCommand::Add {
            id,
            addr,
            learner,
            force_placement,
            wait_secs,
        }) => {
            let wait = Duration::from_secs(*wait_secs);
            let reply = members::add(
                &cli.node,
                timeout,
                wait,
                *id,
                addr,
                *learner,
                *force_placement,
            )
            .await?;
            print_change(
                &cli,
                &reply,
                &format!(
                    "node {id} added as a {}",
                    if *learner { "learner" } else { "voter" }
                ),
            )
        }
        Command::Members(MembersCommand::Remove { id, wait_secs }) => {
            let wait = Duration::from_secs(*wait_secs);
            let reply = members::remove(&cli.node, timeout, wait, *id).await?;
            print_change(
                &cli,
                &reply,
                &format!("node {id} removed; stop its process"),
            )
        }
    }
}

async fn status(cli: &Cli, timeout: Duration) -> Result<ExitCode> {
    let view = cluster::gather(&cli.node, timeout, MEMBER_TIMEOUT.min(timeout)).await?;
    let verdict = view.verdict();
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&view.to_json())?);
    } else {
        print!("{}", view.render_table());
    }
    if verdict.health == Health::Unhealthy {
        if cli.json {
            eprintln!("{}", verdict.summary);
        }
        return Ok(ExitCode::from(EXIT_UNHEALTHY));
    }
    Ok(ExitCode::SUCCESS)
}

/// `cairn deny ...` / `cairn purge ...` (`kind` is `deny` or `purge`).
async fn policy_command(
    cli: &Cli,
    timeout: Duration,
    kind: &str,
    target: &str,
    reason: Option<&str>,
    lift: bool,
) -> Result<ExitCode> {
    if target == "list" {
        let reply = policy::list(&cli.node, timeout).await?;
        if cli.json {
            let json = policy::to_json(&reply, kind);
            println!("{}", serde_json::to_string_pretty(&json)?);
        } else {
            print!("{}", policy::render(&reply, kind));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let reply = match kind {
        "deny" => policy::deny(&cli.node, timeout, target, reason, lift).await?,
        _ => policy::purge(&cli.node, timeout, target, reason, lift).await?,
    };
    let done = match (kind, lift) {
        ("deny", false) => "denied",
        ("deny", true) => "deny rule lifted",
        (_, false) => "purged",
        (_, true) => "purge lifted",
    };
    if cli.json {
        let json = serde_json::json!({"target": target, "action": done, "outcome": reply.outcome});
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!("{target}: {done} ({})", reply.outcome);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_change(
    cli: &Cli,
    reply: &cairn_proto::v1::MembershipReply,
    what: &str,
) -> Result<ExitCode> {
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&members::reply_json(reply))?
        );
    } else {
        println!("{what}; membership now:");
        print!("{}", members::render_reply(reply));
    }
    Ok(ExitCode::SUCCESS)
}

// === backup ===

async fn backup(cli: &Cli, timeout: Duration, args: &BackupArgs) -> Result<ExitCode> {
    let Some(out) = args.out.clone() else {
        anyhow::bail!("cairn backup needs --out DIR (or: cairn backup verify DIR)");
    };
    let mode = match (args.state_only, args.non_refetchable_only) {
        (true, _) => cairn_node::backup::Mode::StateOnly,
        (_, true) => cairn_node::backup::Mode::NonRefetchableOnly,
        _ => cairn_node::backup::Mode::Full,
    };
    let file = backup_archive::is_archive(&out).then(|| out.clone());
    let out = match &file {
        Some(f) => {
            let stage = backup_archive::staging_dir(f);
            if stage.exists() {
                std::fs::remove_dir_all(&stage)
                    .with_context(|| format!("cannot clear {}", stage.display()))?;
            }
            stage
        }
        None => out,
    };
    let opts = backup::Options {
        out,
        mode,
        verify_existing: args.verify_existing,
        concurrency: args.concurrency,
        prune: args.prune,
    };
    let summary = backup::run(&cli.node, timeout, &opts).await?;
    if let Some(f) = file {
        let stage = opts.out.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            backup_archive::pack(&stage, &f)?;
            std::fs::remove_dir_all(&stage)
                .with_context(|| format!("cannot remove {}", stage.display()))
        })
        .await??;
    }
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&summary.to_json())?);
    } else {
        print!("{}", summary.render());
    }
    Ok(ExitCode::SUCCESS)
}

async fn backup_verify(cli: &Cli, dir: &std::path::Path) -> Result<ExitCode> {
    let unpacked = unpack_if_archive(dir).await?;
    let v = restore::verify(unpacked.as_ref().map_or(dir, |u| u.path())).await?;
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&restore::verified_json(&v))?
        );
    } else {
        print!("{}", restore::render_verified(dir, &v));
    }
    Ok(match v.is_sound() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}

/// A backup file (`*.zip`) unpacked into a temporary directory; `None` for a directory.
async fn unpack_if_archive(path: &std::path::Path) -> Result<Option<backup_archive::Unpacked>> {
    if !backup_archive::is_archive(path) {
        return Ok(None);
    }
    let p = path.to_path_buf();
    let unpacked = tokio::task::spawn_blocking(move || backup_archive::unpack(&p)).await??;
    Ok(Some(unpacked))
}
