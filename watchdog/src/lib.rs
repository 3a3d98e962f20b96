//! An of-watchdog-compatible function runtime that also honours the Knative runtime
//! contract.
//!
//! * [`contract`]: the function-side HTTP contract (health, readiness, in-flight limit,
//!   timeouts, drain) that gpu-worker shares for its own HTTP front.
//! * [`config`]: of-watchdog's environment variables, plus `PORT` and `K_*`.
//! * [`modes`]: http (reverse proxy to a long-running process), streaming and serializing
//!   (a process forked per request), static files.
//! * [`metrics`]: of-watchdog's `http_*` metrics on the metrics port.
//! * [`run`]: everything wired together on already-bound listeners, with a shutdown
//!   future, so the binary, tests and the provider's process runtime can all embed it.

mod body;
pub mod config;
pub mod contract;
pub mod duration;
pub mod logs;
pub mod metrics;
pub mod modes;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use prometheus::Registry;
use tokio::net::TcpListener;

pub use crate::config::{Config, ConfigError, Mode};
use crate::contract::{Contract, ContractConfig};
use crate::metrics::Metrics;
use crate::modes::{COMPONENT, Function, ReadyPath};

/// Why the watchdog could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The metrics could not be registered (a name already taken in the registry).
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The lock file could not be written.
    #[error("cannot write {path}. To disable lock-file set env suppress_lock=true: {source}")]
    LockFile {
        /// The lock file's path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// The sockets the watchdog serves on, bound by the caller (port 0 in tests).
#[derive(Debug)]
pub struct Listeners {
    /// The function port (`PORT` / `port`).
    pub http: TcpListener,
    /// The metrics port; `None` serves no metrics endpoint.
    pub metrics: Option<TcpListener>,
}

/// Everything the watchdog's router needs.
#[derive(Clone)]
pub struct AppState {
    /// Readiness, limits, timeouts.
    pub contract: Contract,
    /// The HTTP metrics.
    pub metrics: Metrics,
    /// The function in its mode.
    pub function: Function,
    /// `ready_path`, when `/_/ready` is delegated to the function.
    pub ready_path: Option<String>,
}

/// The contract settings a watchdog configuration implies.
pub fn contract_config(config: &Config) -> ContractConfig {
    ContractConfig {
        component: COMPONENT.to_string(),
        max_inflight: config.max_inflight,
        exec_timeout: config.exec_timeout,
        healthcheck_interval: config.healthcheck_interval,
        write_timeout: config.write_timeout,
        read_timeout: Some(config.read_timeout).filter(|d| !d.is_zero()),
        lock_file: (!config.suppress_lock).then(|| config.lock_file.clone()),
    }
}

/// The function port's router: `/_/health` and `/_/ready`, and every other path to the
/// function through the metrics and the contract (limit, timeout, `X-Duration-Seconds`).
pub fn app(state: AppState) -> Router {
    let function = state.function.router();
    let probe = state.ready_path.map(|path| {
        Arc::new(ReadyPath {
            function: function.clone(),
            path,
            timeout: state.contract.config().exec_timeout,
        }) as Arc<dyn contract::ReadyProbe>
    });
    let invoke = state.metrics.wrap(
        state
            .contract
            .wrap(Router::new().fallback_service(function)),
    );
    state
        .contract
        .routes("/_/health", "/_/ready", probe)
        .merge(invoke)
}

/// Runs the watchdog until `shutdown` resolves, then drains (not-ready, wait
/// `healthcheck_interval`, drain up to `write_timeout`), stops the http-mode process and
/// returns.
pub async fn run(
    listeners: Listeners,
    config: Config,
    registry: Registry,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let contract = Contract::new(contract_config(&config));
    let metrics = Metrics::new(&registry, &config.knative)?;
    log_start(&config, &listeners);
    let function = Function::start(&config, &contract);
    if function.ready_at_start() {
        contract.mark_ready().map_err(|source| Error::LockFile {
            path: config.lock_file.display().to_string(),
            source,
        })?;
    }
    if config.suppress_lock {
        tracing::info!(
            "Warning: \"suppress_lock\" is enabled. No automated health-checks will be in place for your function."
        );
    }

    let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics_server = listeners.metrics.map(|listener| {
        tokio::spawn(async move {
            let stopped = async {
                let _ = metrics_stopped.await;
            };
            axum::serve(listener, crate::metrics::metrics_app(registry))
                .with_graceful_shutdown(stopped)
                .await
        })
    });

    let state = AppState {
        contract: contract.clone(),
        metrics,
        function: function.clone(),
        ready_path: config.ready_path.clone(),
    };
    let served = contract::serve(listeners.http, app(state), contract, shutdown).await;
    function
        .stop(config.write_timeout.min(Duration::from_secs(10)))
        .await;
    let _ = metrics_stop.send(());
    if let Some(server) = metrics_server {
        match server.await {
            Ok(Err(e)) => tracing::info!("metrics server error: {e}"),
            Err(e) => tracing::info!("metrics server task failed: {e}"),
            Ok(Ok(())) => {}
        }
    }
    Ok(served?)
}

fn log_start(config: &Config, listeners: &Listeners) {
    let port = listeners
        .http
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(config.port);
    tracing::info!(
        "Watchdog mode: {}\tfprocess: {:?}",
        config.mode.as_str(),
        config.fprocess.join(" ")
    );
    if let Some(service) = &config.knative.service {
        tracing::info!(
            "Knative service: {service}\trevision: {}\tconfiguration: {}",
            config.knative.revision.as_deref().unwrap_or("-"),
            config.knative.configuration.as_deref().unwrap_or("-")
        );
    }
    tracing::info!(
        "Timeouts: read: {} write: {} hard: {} health: {}",
        duration::display(config.read_timeout),
        duration::display(config.write_timeout),
        duration::display(config.exec_timeout.unwrap_or_default()),
        duration::display(config.healthcheck_interval)
    );
    tracing::info!("Listening on port: {port}");
    if let Some(metrics) = listeners.metrics.as_ref().and_then(|l| l.local_addr().ok()) {
        tracing::info!("Metrics listening on port: {}", metrics.port());
    }
}
