//! Running the provider: open the store and credentials ([`prepare`]), then serve the
//! API on an already-bound listener until the shutdown future resolves ([`serve`]).
//! [`run`] does both, for callers holding a listener and a config.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use prometheus::Registry;
use tokio::net::TcpListener;

use crate::api::app;
use crate::auth::{Credentials, CredentialsError};
use crate::config::Config;
use crate::dispatch::{DispatchConfig, Face, ModelPlane, PlaneError};
use crate::state::{AppState, StateError};
use crate::store::{Store, StoreError};

/// Why the provider could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store could not be opened or is corrupt.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Basic auth is on but the credentials cannot be read.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The shared state could not be built.
    #[error(transparent)]
    State(#[from] StateError),
    /// Serving failed.
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the store in `config.state_dir`, loads credentials when `basic_auth` is on and
/// registers the metrics into `registry`. Fails rather than start with lost state.
pub async fn prepare(config: Config, registry: Registry) -> Result<AppState, ServerError> {
    let dir = config.state_dir.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&dir))
        .await
        .map_err(|e| StoreError::Backend(format!("store open task failed: {e}")))??;
    let credentials = if config.basic_auth {
        Some(Credentials::load(&config.secret_mount_path)?)
    } else {
        None
    };
    tracing::info!(store = %store.path().display(), basic_auth = config.basic_auth, "state opened");
    Ok(AppState::new(
        config,
        Arc::new(store),
        registry,
        credentials,
    )?)
}

/// Puts the model data plane behind `state`'s routes: a [`ModelPlane`] over the
/// workers `dispatch` names answers every invocation (non-model functions get the
/// contract's 503), log request and availability question. A container runtime then
/// wraps these seams in a [`crate::route::KindRouter`] (`runtime::attach`).
/// `gateway_face` adds the gateway's response headers (`up`).
pub fn attach_dataplane(
    state: AppState,
    dispatch: &DispatchConfig,
    gateway_face: bool,
) -> Result<(AppState, ModelPlane), PlaneError> {
    let face = Face { gateway: gateway_face };
    let plane = ModelPlane::start(&state, dispatch, face)?;
    let seams = Arc::new(plane.clone());
    let state = state
        .with_invoker(seams.clone())
        .with_logs(seams.clone())
        .with_availability(seams);
    Ok((state, plane))
}

/// Serves `state` on `listener` until `shutdown` resolves, then drains connections.
/// Requests carry `ConnectInfo<SocketAddr>` (the caller's address, for the invoker's
/// `X-Forwarded-For`).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// [`prepare`] then [`serve`].
pub async fn run(
    listener: TcpListener,
    config: Config,
    registry: Registry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let state = prepare(config, registry).await?;
    serve(listener, state, shutdown).await
}

/// Resolves on SIGTERM or Ctrl-C, logging which.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}
