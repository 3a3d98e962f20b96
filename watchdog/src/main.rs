//! The `watchdog` binary: load the configuration from the environment, bind the function
//! and metrics ports, print the bound address, and run until SIGTERM or Ctrl-C.

use anyhow::Context;
use prometheus::Registry;
use tokio::net::TcpListener;
use watchdog::{Config, Listeners};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    watchdog::logs::init();
    let config = Config::from_env().context("invalid watchdog configuration")?;
    let http = TcpListener::bind((config.bind_address, config.port))
        .await
        .with_context(|| format!("binding port {}", config.port))?;
    let metrics = TcpListener::bind((config.bind_address, config.metrics_port))
        .await
        .with_context(|| format!("binding metrics port {}", config.metrics_port))?;
    // One machine-readable line on stdout, so a caller that passed port 0 learns the port.
    println!("Listening on 127.0.0.1:{}", http.local_addr()?.port());
    let listeners = Listeners {
        http,
        metrics: Some(metrics),
    };
    watchdog::run(listeners, config, Registry::new(), shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C, logging which.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::info!("Unable to listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = terminate => tracing::info!("Received SIGTERM"),
        result = tokio::signal::ctrl_c() => match result {
            Ok(()) => tracing::info!("Received Ctrl-C"),
            Err(e) => tracing::info!("Unable to listen for Ctrl-C: {e}"),
        },
    }
}
