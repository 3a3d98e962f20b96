//! The `gpu-worker` binary: `serve` (the worker API; configuration from the
//! environment, see `docs/worker.md`) and `make-model` (write deterministic zoo weights
//! as safetensors).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gpu_worker::config::Config;
use gpu_worker::zoo::{Arch, ModelConfig};

#[derive(Parser)]
#[command(name = "gpu-worker", about = "Locus GPU worker: devices, VRAM cache, Candle models, inference API")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the worker API (the default).
    Serve,
    /// Write deterministic generated weights for a zoo architecture.
    MakeModel {
        /// Architecture (mlp, resnet18, resnet34, resnet50, minilm, bert).
        #[arg(long)]
        arch: String,
        /// Generator seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output safetensors file.
        #[arg(long)]
        out: PathBuf,
        /// Architecture parameters, KEY=VALUE (mlp: input, width, depth, output;
        /// resnets: classes).
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => serve(),
        Command::MakeModel { arch, seed, out, params } => {
            let arch = Arch::parse(&arch)?;
            let params: BTreeMap<String, String> = params.into_iter().collect();
            let config = ModelConfig::from_params(arch, &params)?;
            let bytes = gpu_worker::zoo::write_generated(&config, seed, &out)?;
            println!("wrote {} ({} with seed {seed}, {bytes} bytes of weights)", out.display(), arch.name());
            Ok(())
        }
    }
}

fn serve() -> anyhow::Result<()> {
    let config = Config::from_env().context("reading configuration")?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.port))
            .await
            .with_context(|| format!("binding port {}", config.port))?;
        tracing::info!(addr = %listener.local_addr()?, "listening");
        let registry = prometheus::Registry::new();
        gpu_worker::run(listener, config, registry, shutdown_signal()).await?;
        Ok(())
    })
}

/// SIGTERM or Ctrl-C, whichever comes first; logs which.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("received Ctrl-C"),
        _ = term => tracing::info!("received SIGTERM"),
    }
}
