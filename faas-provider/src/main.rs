//! The `faas-provider` binary: parse the command line, then either serve the provider API
//! (config from the environment, a fresh metrics registry, bind, print the bound address
//! as `listening on ADDR`, run until SIGTERM/Ctrl-C) or run the simulator.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use faas_provider::cli::{Cli, Command};
use faas_provider::config::Config;
use faas_provider::server;

fn main() -> anyhow::Result<()> {
    match Cli::parse().command() {
        Command::Serve => serve(),
        Command::Up(args) => up(args),
        // Before any thread exists: a replica may enter its own mount namespace.
        Command::Watchdog => faas_provider::runtime::child::main().context("replica failed"),
        Command::Simulate(args) => {
            locus_scheduler::sim::run(&args, &mut std::io::stdout()).context("simulation failed")
        }
    }
}

#[tokio::main]
async fn serve() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = Config::from_env()?;
    tracing::debug!(?config, "configuration");
    let addr = SocketAddr::new(config.bind_address, config.port);
    let state = server::prepare(config, prometheus::Registry::new()).await?;
    let dispatch = faas_provider::dispatch::DispatchConfig::from_env()?;
    let (state, _plane) = server::attach_dataplane(state, &dispatch, false)?;
    let (state, processes) = faas_provider::runtime::attach(state).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind {addr}"))?;
    let bound = listener.local_addr()?;
    // One line tests and scripts can wait for instead of polling the port.
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    tracing::info!(%bound, "faas-provider serving");
    server::serve(listener, state, server::shutdown_signal()).await?;
    if let Some(processes) = processes {
        processes.shutdown().await;
    }
    Ok(())
}

#[tokio::main]
async fn up(args: faas_provider::up::UpArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let env: Vec<(String, String)> = watchdog::config::env_pairs().collect();
    let addr = faas_provider::up::default_addr(args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind {addr}"))?;
    faas_provider::up::run(listener, args, env, server::shutdown_signal()).await?;
    Ok(())
}
