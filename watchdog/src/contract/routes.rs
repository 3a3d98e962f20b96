//! The contract's HTTP surface: health and readiness handlers, and the layer that applies
//! the in-flight limit, the exec timeout and `X-Duration-Seconds` to function routes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use http::{HeaderValue, StatusCode};
use tokio::time::Instant;

use super::{Contract, ContractError};
use crate::body::Holding;

/// Header naming the component that synthesised a response (429, 500, 504).
pub const X_OPENFAAS_INTERNAL: &str = "x-openfaas-internal";
/// Header carrying the seconds spent serving a request, `%f`-formatted as Go does.
pub const X_DURATION_SECONDS: &str = "x-duration-seconds";
/// Request header that shortens the exec timeout for one call (a Go duration).
pub const X_TIMEOUT: &str = "x-timeout";

/// The absolute deadline of a request, put in its extensions by [`Contract::wrap`] when a
/// timeout applies, so handlers can stop child work (kill a process, cut a proxied body)
/// at the same instant the contract answers 504.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    /// When the request's time is up.
    pub at: Instant,
    /// The timeout it was computed from (for log lines).
    pub timeout: Duration,
}

/// An extra readiness check consulted by `/_/ready` once the contract itself is ready and
/// below its limit: the watchdog passes the probe to the function at `ready_path`;
/// gpu-worker can check its devices. The probe's response is returned as is.
pub trait ReadyProbe: Send + Sync + 'static {
    /// Answers one readiness request.
    fn probe(&self, request: Request) -> BoxFuture<'static, Response>;
}

#[derive(Clone)]
struct ReadyState {
    contract: Contract,
    probe: Option<Arc<dyn ReadyProbe>>,
}

impl Contract {
    /// A router answering `GET health_path` and `GET ready_path` (other methods get 405),
    /// with `X-Duration-Seconds` on every answer.
    /// Call it once per pair of paths and merge the routers to serve several pairs
    /// (`/_/health` + `/healthz`). These routes bypass the in-flight limit.
    pub fn routes(
        &self,
        health_path: &str,
        ready_path: &str,
        probe: Option<Arc<dyn ReadyProbe>>,
    ) -> Router {
        let state = ReadyState {
            contract: self.clone(),
            probe,
        };
        Router::new()
            .route(health_path, get(health))
            .route(ready_path, get(ready))
            .with_state(state)
            .layer(middleware::from_fn(stamp_duration))
    }

    /// Kubernetes probes: `GET live_path` answers 200 `OK` while the process serves, a
    /// graceful drain included (a liveness probe that fails while in-flight requests
    /// finish could have the kubelet kill the container under them); `GET ready_path`
    /// is the contract's readiness, 503 from SIGTERM on. OpenFaaS's `/_/health` keeps
    /// of-watchdog's meaning (503 once draining): serve it with [`Contract::routes`].
    pub fn kubernetes_routes(&self, live_path: &str, ready_path: &str) -> Router {
        let state = ReadyState {
            contract: self.clone(),
            probe: None,
        };
        Router::new()
            .route(live_path, get(|| async { (StatusCode::OK, "OK") }))
            .route(ready_path, get(ready))
            .with_state(state)
            .layer(middleware::from_fn(stamp_duration))
    }

    /// Applies the contract to `router` (every route and its fallback): 429 beyond
    /// `max_inflight`, 504 past the request's timeout, a [`Deadline`] extension, and
    /// `X-Duration-Seconds` on every response. The in-flight slot is held until the response
    /// body is finished, so drains and limits cover streamed responses.
    pub fn wrap(&self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(self.clone(), enforce))
    }
}

async fn health(State(state): State<ReadyState>) -> Response {
    if state.contract.is_healthy() {
        (StatusCode::OK, "OK").into_response()
    } else {
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    }
}

async fn ready(State(state): State<ReadyState>, request: Request) -> Response {
    if !state.contract.is_healthy() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if state.contract.limit_reached() {
        return StatusCode::TOO_MANY_REQUESTS.into_response();
    }
    match &state.probe {
        Some(probe) => probe.probe(request).await,
        None => StatusCode::OK.into_response(),
    }
}

/// The middleware behind [`Contract::wrap`], for callers that need it on a subset of
/// routes: `router.route_layer(axum::middleware::from_fn_with_state(contract, enforce))`.
pub async fn enforce(
    State(contract): State<Contract>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let guard = match contract.try_acquire() {
        Ok(guard) => guard,
        Err(error) => {
            tracing::warn!("{} {} - 429 - {error}", request.method(), request.uri());
            return with_duration(error.into_response(), started);
        }
    };
    let timeout = contract.timeout_for(request.headers());
    let response = match timeout {
        Some(timeout) => {
            request.extensions_mut().insert(Deadline {
                at: started + timeout,
                timeout,
            });
            let (method, uri) = (request.method().clone(), request.uri().clone());
            match tokio::time::timeout(timeout, next.run(request)).await {
                Ok(response) => response,
                Err(_) => {
                    tracing::warn!(
                        "{method} {uri} - 504 - killed due to exec_timeout: {}",
                        crate::duration::display(timeout)
                    );
                    ContractError::Timeout {
                        timeout_seconds: timeout.as_secs_f64(),
                        component: contract.config().component.clone(),
                    }
                    .into_response()
                }
            }
        }
        None => next.run(request).await,
    };
    let response = with_duration(response, started);
    response.map(|body| Holding::wrap(body, guard))
}

/// `X-Duration-Seconds` alone, for the health and readiness routes.
async fn stamp_duration(request: Request, next: Next) -> Response {
    let started = Instant::now();
    with_duration(next.run(request).await, started)
}

/// Sets `X-Duration-Seconds` to the time since `started`, unless the handler already did.
pub(crate) fn with_duration(mut response: Response<Body>, started: Instant) -> Response<Body> {
    if !response.headers().contains_key(X_DURATION_SECONDS) {
        let seconds = format!("{:.6}", started.elapsed().as_secs_f64());
        if let Ok(value) = HeaderValue::from_str(&seconds) {
            response.headers_mut().insert(X_DURATION_SECONDS, value);
        }
    }
    response
}
