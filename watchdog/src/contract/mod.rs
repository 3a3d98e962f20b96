//! The function-side HTTP contract shared by the watchdog and gpu-worker.
//!
//! OpenFaaS and Knative expect every function container to behave the same way at its
//! HTTP edge, whatever runs behind it (see `openfaas-contract.md` §4):
//!
//! * **Health** (`GET /_/health`): 200 `OK` once started and while the lock file exists,
//!   503 otherwise.
//! * **Readiness** (`GET /_/ready`): 503 while not accepting, 429 while the in-flight
//!   limit is reached, else 200 (or whatever an optional [`ReadyProbe`] answers).
//! * **In-flight limit**: a request beyond `max_inflight` gets an immediate 429 with the
//!   body `Concurrent request limit exceeded. Max concurrent requests: N`.
//! * **Timeouts**: a per-request deadline (`exec_timeout`, shortened by an `X-Timeout`
//!   header) answered with 504 and `X-OpenFaaS-Internal: <component>`.
//! * **`X-Duration-Seconds`** on every response the [`Contract::wrap`] layer passes.
//! * **Drain**: on shutdown flip to not-ready (delete the lock file), keep serving for one
//!   `healthcheck_interval` so probes notice, then stop accepting and drain in-flight
//!   requests for up to `write_timeout` ([`serve`]).
//!
//! [`Contract`] is a cheap, cloneable handle holding that state; [`Contract::routes`] mounts
//! the health and readiness handlers at any paths; [`Contract::wrap`] applies the limit,
//! the deadline and the duration header to a function router; [`serve`] runs a router
//! on a bound listener with the shutdown sequence.
//!
//! ```no_run
//! # async fn demo(listener: tokio::net::TcpListener) -> std::io::Result<()> {
//! use watchdog::contract::{Contract, ContractConfig, serve};
//! let contract = Contract::new(ContractConfig::new("gpu-worker").with_max_inflight(4));
//! let app = contract
//!     .routes("/_/health", "/_/ready", None)
//!     .merge(contract.routes("/healthz", "/readyz", None))
//!     .merge(contract.wrap(axum::Router::new() /* function routes */));
//! contract.mark_ready()?;
//! serve(listener, app, contract, async { /* SIGTERM */ }).await
//! # }
//! ```

mod error;
mod limit;
mod routes;
mod serve;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ::http::HeaderMap;
use tokio::sync::watch;

pub use self::error::ContractError;
pub use self::limit::InflightGuard;
pub use self::routes::{
    Deadline, ReadyProbe, X_DURATION_SECONDS, X_OPENFAAS_INTERNAL, X_TIMEOUT, enforce,
};
pub use self::serve::serve;

use self::limit::Limiter;

/// How a [`Contract`] behaves. Build with [`ContractConfig::new`] and the `with_*` setters.
#[derive(Debug, Clone)]
pub struct ContractConfig {
    /// Name put in `X-OpenFaaS-Internal` on responses the contract synthesises (429, 504),
    /// so callers can tell them from the function's own: `of-watchdog` or `gpu-worker`.
    pub component: String,
    /// Most requests served at once through [`Contract::wrap`]; 0 means unlimited.
    pub max_inflight: usize,
    /// Hard deadline for one request until its response headers (and, where the server
    /// honours [`Deadline`], its body); `None` means no deadline.
    pub exec_timeout: Option<Duration>,
    /// How long to keep serving after flipping to not-ready on shutdown, so load
    /// balancers and probes see the flip before connections stop being accepted.
    pub healthcheck_interval: Duration,
    /// Longest drain of in-flight requests once accepting stops.
    pub write_timeout: Duration,
    /// Longest wait for a request's headers on a new or idle connection; `None` = no limit.
    pub read_timeout: Option<Duration>,
    /// The lock file whose presence means healthy (of-watchdog's `$TMPDIR/.lock`);
    /// `None` when `suppress_lock` is set, and health follows the accepting flag alone.
    pub lock_file: Option<PathBuf>,
}

impl ContractConfig {
    /// The of-watchdog defaults: unlimited in-flight, 30 s exec, write and read timeouts,
    /// health interval = write timeout, no lock file.
    pub fn new(component: impl Into<String>) -> Self {
        let thirty = Duration::from_secs(30);
        Self {
            component: component.into(),
            max_inflight: 0,
            exec_timeout: Some(thirty),
            healthcheck_interval: thirty,
            write_timeout: thirty,
            read_timeout: Some(thirty),
            lock_file: None,
        }
    }

    /// Sets the in-flight limit (0 = unlimited).
    pub fn with_max_inflight(mut self, max: usize) -> Self {
        self.max_inflight = max;
        self
    }

    /// Sets the exec timeout (`None` = none).
    pub fn with_exec_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.exec_timeout = timeout;
        self
    }

    /// Sets the not-ready period before draining.
    pub fn with_healthcheck_interval(mut self, interval: Duration) -> Self {
        self.healthcheck_interval = interval;
        self
    }

    /// Sets the drain deadline.
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Sets the header read timeout (`None` = none; idle keep-alive connections then stay
    /// open until the client closes them).
    pub fn with_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Sets the lock file (`None` = suppress_lock).
    pub fn with_lock_file(mut self, path: Option<PathBuf>) -> Self {
        self.lock_file = path;
        self
    }
}

/// The shared contract state: readiness, the in-flight limiter and the drain signal.
/// Cloning is cheap; every clone sees the same state.
#[derive(Clone, Debug)]
pub struct Contract {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ContractConfig,
    /// `true` between [`Contract::mark_ready`] and [`Contract::mark_not_ready`]; a watch
    /// channel so [`Contract::wait_ready`] can await the flip instead of polling.
    accepting: watch::Sender<bool>,
    /// Set by [`Contract::begin_shutdown`]; once draining, the contract never turns ready
    /// again (a late `mark_ready`, e.g. an upstream coming up, is ignored).
    draining: std::sync::atomic::AtomicBool,
    limiter: Limiter,
}

impl Contract {
    /// A contract that is not yet ready (health and readiness answer 503).
    pub fn new(config: ContractConfig) -> Self {
        let limiter = Limiter::new(config.max_inflight);
        let (accepting, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                config,
                accepting,
                limiter,
                draining: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// The configuration this contract was built with.
    pub fn config(&self) -> &ContractConfig {
        &self.inner.config
    }

    /// Marks the server started: writes the lock file (when one is configured) and flips
    /// to accepting. Fails, leaving the server not ready, if the lock cannot be written.
    /// Does nothing once shutdown has begun.
    pub fn mark_ready(&self) -> std::io::Result<()> {
        if self.is_draining() {
            return Ok(());
        }
        if let Some(path) = &self.inner.config.lock_file {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, b"")?;
            tracing::info!("Writing lock-file to: {}", path.display());
        }
        self.inner.accepting.send_replace(true);
        Ok(())
    }

    /// Flips to not accepting and deletes the lock file, so health and readiness answer 503.
    pub fn mark_not_ready(&self) {
        self.inner.accepting.send_replace(false);
        if let Some(path) = &self.inner.config.lock_file {
            tracing::info!("Removing lock-file : {}", path.display());
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("Unable to remove lock-file {}: {e}", path.display()),
            }
        }
    }

    /// Whether [`Contract::begin_shutdown`] has been called.
    pub fn is_draining(&self) -> bool {
        self.inner
            .draining
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether the server is accepting work (set by [`Contract::mark_ready`]).
    pub fn is_accepting(&self) -> bool {
        *self.inner.accepting.borrow()
    }

    /// Health as `/_/health` reports it: accepting, and the lock file (if any) exists.
    pub fn is_healthy(&self) -> bool {
        self.is_accepting()
            && self
                .inner
                .config
                .lock_file
                .as_ref()
                .is_none_or(|path| path.exists())
    }

    /// Resolves once the contract is accepting (immediately if it already is).
    pub async fn wait_ready(&self) {
        let mut rx = self.inner.accepting.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail while we hold it.
        let _ = rx.wait_for(|accepting| *accepting).await;
    }

    /// Takes one in-flight slot, or fails with [`ContractError::Overloaded`] when
    /// `max_inflight` slots are taken. The slot is released when the guard drops.
    pub fn try_acquire(&self) -> Result<InflightGuard, ContractError> {
        self.inner
            .limiter
            .try_acquire()
            .ok_or_else(|| ContractError::Overloaded {
                max_inflight: self.inner.config.max_inflight,
                component: self.inner.config.component.clone(),
            })
    }

    /// Whether a new request would be refused with 429 right now.
    pub fn limit_reached(&self) -> bool {
        self.inner.limiter.is_full()
    }

    /// Requests currently holding an in-flight slot.
    pub fn in_flight(&self) -> usize {
        self.inner.limiter.in_flight()
    }

    /// Resolves once no request holds an in-flight slot.
    pub async fn drained(&self) {
        self.inner.limiter.idle().await;
    }

    /// The deadline for one request: `exec_timeout`, shortened by a valid `X-Timeout`
    /// header (a Go duration such as `500ms` or plain seconds) that is no longer than it.
    pub fn timeout_for(&self, headers: &HeaderMap) -> Option<Duration> {
        let exec = self.inner.config.exec_timeout;
        let asked = headers
            .get(X_TIMEOUT)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::duration::parse(v).ok())
            .filter(|d| !d.is_zero());
        match (exec, asked) {
            (Some(exec), Some(asked)) if asked <= exec => Some(asked),
            (None, Some(asked)) => Some(asked),
            (exec, _) => exec,
        }
    }

    /// The first half of the shutdown sequence: flip to not-ready (deleting the lock file)
    /// and keep serving for `healthcheck_interval` so probes and routers notice.
    pub async fn begin_shutdown(&self, reason: &str) {
        let interval = self.inner.config.healthcheck_interval;
        tracing::info!(
            "{reason}: no new connections in {}",
            crate::duration::display(interval)
        );
        self.inner
            .draining
            .store(true, std::sync::atomic::Ordering::Release);
        self.mark_not_ready();
        tokio::time::sleep(interval).await;
    }
}
