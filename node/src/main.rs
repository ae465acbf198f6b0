//! `cairn-node`: flags → configuration → logging → node → exit code.

use std::process::ExitCode;

use anyhow::Context;
use cairn_node::config::{Config, Flags, LogFormat, ProcessEnv};
use clap::Parser;

fn main() -> ExitCode {
    let flags = Flags::parse();
    let config = match Config::load(&flags, &ProcessEnv) {
        Ok(c) => c,
        Err(errs) => {
            eprintln!("cairn-node: invalid configuration:\n{errs}\nSee `cairn-node --help` and the README's configuration section.");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cairn-node: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if flags.check_upstream {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let outcomes = runtime.block_on(cairn_node::egress::check::run(
            &config,
            std::time::Duration::from_secs(15),
        ));
        print!(
            "{}",
            cairn_node::egress::check::render(&config.egress, &outcomes)
        );
        return match outcomes.iter().all(|o| o.ok) {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        };
    }
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "cairn-node failed");
            eprintln!("cairn-node: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let metrics = cairn_node::metrics::install().context("installing the metrics recorder")?;
    let shutdown = cairn_node::shutdown::on_signals().context("installing signal handlers")?;
    let node = cairn_node::Node::bind(config, metrics)
        .await
        .context("starting the node")?;
    node.run(shutdown).await.context("running the node")?;
    Ok(())
}

fn init_tracing(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Human => builder.init(),
    }
}
