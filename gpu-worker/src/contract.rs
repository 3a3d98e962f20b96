//! The pod's HTTP contract: liveness (`/healthz`), readiness (`/readyz`, not ready
//! while draining) and the SIGTERM drain (flip readiness, wait one probe period so
//! load balancers notice, then stop accepting and let in-flight requests finish).
//!
//! Kept small and self-contained so it can be swapped for the shared
//! `watchdog::contract` once that lands: the worker only uses [`Lifecycle`],
//! [`routes`] and [`drain`].

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use http::StatusCode;

/// Whether the pod is ready; shared by the server and the drain.
#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: AtomicBool,
}

impl Lifecycle {
    /// A ready lifecycle.
    pub fn new() -> Arc<Self> {
        Arc::new(Lifecycle::default())
    }

    /// Whether new work should be sent here.
    pub fn is_ready(&self) -> bool {
        !self.draining.load(Ordering::SeqCst)
    }

    /// Whether a drain has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Starts draining: readiness goes false and stays false.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(l): State<Arc<Lifecycle>>) -> (StatusCode, &'static str) {
    if l.is_ready() { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "draining") }
}

/// `/healthz` and `/readyz`.
pub fn routes(lifecycle: Arc<Lifecycle>) -> Router {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).with_state(lifecycle)
}

/// The graceful-shutdown trigger: after `shutdown` fires, marks the pod not ready and
/// waits `probe_period` before returning (at which point the server stops accepting
/// and drains).
pub async fn drain(shutdown: impl Future<Output = ()>, lifecycle: Arc<Lifecycle>, probe_period: Duration) {
    shutdown.await;
    lifecycle.begin_drain();
    tracing::info!(probe_period = ?probe_period, "draining: not ready, waiting one probe period");
    tokio::time::sleep(probe_period).await;
    tracing::info!("draining: no longer accepting, finishing in-flight requests");
}

/// SIGTERM or Ctrl-C, whichever comes first; logs which.
pub async fn shutdown_signal() {
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
