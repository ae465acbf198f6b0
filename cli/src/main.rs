//! `cairn`: the operator command line. Talks gRPC to any node's `--cluster-listen` address.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use cairn_proto::v1::admin_client::AdminClient;
use cairn_proto::v1::{StatusReply, StatusRequest};
use clap::{Parser, Subcommand};

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
    /// Seconds to wait for the node to answer.
    #[arg(long, global = true, default_value_t = 10)]
    timeout_secs: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the node's health, Raft state, members and blob counts.
    Status,
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
    match cli.command {
        Command::Status => {
            let reply = status(&cli.node, Duration::from_secs(cli.timeout_secs)).await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&to_json(&reply))?);
            } else {
                print!("{}", render(&reply));
            }
            Ok(if reply.ready {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
    }
}

async fn status(node: &str, timeout: Duration) -> Result<StatusReply> {
    let uri = if node.contains("://") {
        node.to_string()
    } else {
        format!("http://{node}")
    };
    let channel = tonic::transport::Endpoint::from_shared(uri.clone())
        .with_context(|| format!("{node:?} is not a valid node address (expected HOST:PORT)"))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {uri}: is cairn-node running with --cluster-listen at that address?"))?;
    let reply = AdminClient::new(channel)
        .status(StatusRequest {})
        .await
        .with_context(|| format!("status request to {uri} failed"))?;
    Ok(reply.into_inner())
}

fn render(r: &StatusReply) -> String {
    let leader = if r.leader_id == 0 {
        "none".to_string()
    } else {
        r.leader_id.to_string()
    };
    let mut out = format!(
        "node {id} (cairn {ver}, up {up}s)\n  health:  {health}\n  ready:   {ready}\n  raft:    {state}, term {term}, leader {leader}\n  log:     last index {last}, applied {applied}\n  blobs:   {blobs} ({bytes} bytes), version records {recs}\n  listen:  http {http}, cluster {cluster}\n  members:\n",
        id = r.node_id, ver = r.version, up = r.uptime_seconds, health = r.health, ready = r.ready,
        state = r.raft_state, term = r.current_term, last = r.last_log_index, applied = r.last_applied_index,
        blobs = r.blob_count, bytes = r.blob_bytes, recs = r.version_records, http = r.listen_addr, cluster = r.cluster_addr,
    );
    for m in &r.members {
        let role = if m.voter { "voter" } else { "learner" };
        out.push_str(&format!(
            "    {} {} {} (matched index {})\n",
            m.id, m.addr, role, m.matched_index
        ));
    }
    out
}

fn to_json(r: &StatusReply) -> serde_json::Value {
    serde_json::json!({
        "node_id": r.node_id, "version": r.version, "health": r.health, "ready": r.ready,
        "raft_state": r.raft_state, "current_term": r.current_term,
        "leader_id": if r.leader_id == 0 { serde_json::Value::Null } else { r.leader_id.into() },
        "last_log_index": r.last_log_index, "last_applied_index": r.last_applied_index,
        "members": r.members.iter().map(|m| serde_json::json!({"id": m.id, "addr": m.addr, "voter": m.voter, "matched_index": m.matched_index})).collect::<Vec<_>>(),
        "blob_count": r.blob_count, "blob_bytes": r.blob_bytes, "version_records": r.version_records,
        "listen_addr": r.listen_addr, "cluster_addr": r.cluster_addr, "uptime_seconds": r.uptime_seconds,
    })
}
