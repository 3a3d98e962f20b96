//! The worker API (axum): inference for a (function, model) on a chosen device, load /
//! evict / status for the provider, health, readiness and metrics. Handlers decode,
//! validate, call the device layer and encode; the cache rules live in the devices.
//! Health, readiness and the in-flight limit on `/v1/infer` are the shared
//! `watchdog::contract`'s.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{HeaderMap, StatusCode, header};
use prometheus::{Encoder, Registry, TextEncoder};
use serde::Deserialize;
use watchdog::contract::{Contract, ContractError, enforce};

use crate::backend::BackendKind;
use crate::device::{Admission, DeviceHandle, Ticket};
use crate::error::WorkerError;
use crate::metrics::Metrics;
use crate::models::{Resolved, Resolver};
use crate::tasks::{InferInput, InferMode, tensor::looks_like_kserve};
use crate::wire::{self, CacheReport, EvictRequest, EvictResponse, InferReport, LoadRequest, ModelSpec, WorkerStatus};

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The devices, in order.
    pub devices: Arc<Vec<DeviceHandle>>,
    /// Spec checking and load preparation.
    pub resolver: Arc<Resolver>,
    /// The worker's metrics.
    pub metrics: Metrics,
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// The shared HTTP contract: readiness, the in-flight limit, drain.
    pub contract: Contract,
    /// Which backend runs the models.
    pub backend: BackendKind,
    /// Largest request body, bytes.
    pub max_body_bytes: u64,
    /// Default classes per image classification.
    pub top_k: usize,
}

impl AppState {
    /// The device called `name` (`cpu:0`) or with index `name` (`0`); the first if `None`.
    pub fn device(&self, name: Option<&str>) -> Result<&DeviceHandle, WorkerError> {
        let found = match name.map(str::trim) {
            None | Some("") => self.devices.first(),
            Some(n) => self.devices.iter().find(|d| d.name() == n).or_else(|| n.parse::<usize>().ok().and_then(|i| self.devices.get(i))),
        };
        found.ok_or_else(|| WorkerError::UnknownDevice {
            name: name.unwrap_or_default().to_string(),
            known: self.devices.iter().map(|d| d.name().to_string()).collect::<Vec<_>>().join(", "),
        })
    }

    fn fail(&self, e: WorkerError) -> Response {
        self.metrics.failures.with_label_values(&[e.error_type()]).inc();
        e.into_response()
    }
}

/// The worker's router. `/v1/infer` goes through the contract (in-flight limit, an
/// `X-Timeout` deadline, `X-Duration-Seconds`); health and readiness are the contract's,
/// at `/healthz` + `/readyz` (Kubernetes: liveness stays 200 through a drain) and
/// `/_/health` + `/_/ready` (OpenFaaS: health turns 503 on SIGTERM, as of-watchdog's).
pub fn app(state: AppState) -> Router {
    let inference = Router::new()
        .route("/v1/infer", post(infer))
        .route_layer(middleware::from_fn_with_state(state.contract.clone(), enforce))
        .route_layer(middleware::from_fn_with_state(state.clone(), mark_refusals));
    Router::new()
        .route("/v1/models/load", post(load))
        .route("/v1/models/evict", post(evict))
        .route("/v1/status", get(status))
        .route("/metrics", get(metrics))
        .merge(inference)
        .with_state(state.clone())
        .merge(state.contract.kubernetes_routes("/healthz", "/readyz"))
        .merge(state.contract.routes("/_/health", "/_/ready", None))
}

/// Counts the contract's own refusals (429 over the limit, 504 past a deadline) in
/// `request_failures_total{error_type}` and marks them `x-locus-error: worker`, like every
/// other error the worker produces; their bodies stay of-watchdog's plain text.
async fn mark_refusals(State(s): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if let Some(refusal) = response.extensions().get::<ContractError>() {
        s.metrics.failures.with_label_values(&[refusal.error_type()]).inc();
        response.headers_mut().insert(wire::ERROR_MARKER, http::HeaderValue::from_static("worker"));
    }
    response
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, WorkerError> {
    h.get(name)
        .map(|v| v.to_str().map_err(|_| WorkerError::BadRequest(format!("header {name} is not visible ASCII"))))
        .transpose()
}

fn spec_from_headers(h: &HeaderMap) -> Result<ModelSpec, WorkerError> {
    let required = |name: &str| {
        header_str(h, name)?.filter(|v| !v.trim().is_empty()).ok_or_else(|| WorkerError::BadRequest(format!("missing header {name}")))
    };
    let memory_bytes = header_str(h, wire::MEMORY)?
        .map(|m| wire::parse_bytes(m).map_err(|e| WorkerError::BadRequest(format!("header {}: {e}", wire::MEMORY))))
        .transpose()?;
    Ok(ModelSpec { arch: required(wire::MODEL)?.to_string(), weights: required(wire::WEIGHTS)?.to_string(), memory_bytes })
}

/// The provider's plan for this request: its place in the device's order (`x-locus-order`)
/// and the victims its cache view evicts for it (`x-locus-evict`, one value per key).
fn admission_from_headers(h: &HeaderMap, device: &DeviceHandle) -> Result<Admission, WorkerError> {
    let turn = header_str(h, wire::ORDER)?
        .map(|v| v.parse::<Ticket>().map_err(|e| WorkerError::BadRequest(format!("header {}: {e}", wire::ORDER))))
        .transpose()?
        .map(|t| device.turn(t));
    let victims = h
        .get_all(wire::EVICT)
        .iter()
        .map(|v| v.to_str().map(str::to_string).map_err(|_| WorkerError::BadRequest(format!("header {} is not visible ASCII", wire::EVICT))))
        .collect::<Result<Vec<_>, _>>()?;
    // The handler infers as soon as it is admitted.
    Ok(Admission { turn, victims, in_order: true })
}

async fn read_body(body: Body, limit: u64) -> Result<bytes::Bytes, WorkerError> {
    axum::body::to_bytes(body, limit as usize).await.map_err(|e| {
        let too_big = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_big { WorkerError::PayloadTooLarge(limit) } else { WorkerError::Body(e.to_string()) }
    })
}

/// Query parameters of `/v1/infer`.
#[derive(Debug, Deserialize)]
struct InferQuery {
    top_k: Option<usize>,
}

fn mode_of(h: &HeaderMap, r: &Resolved, body: &[u8]) -> Result<InferMode, WorkerError> {
    match header_str(h, wire::MODE)? {
        Some("task") => return Ok(InferMode::Task),
        Some("tensor") => return Ok(InferMode::Tensor),
        Some(other) => return Err(WorkerError::BadRequest(format!("header {}: `{other}` is not task or tensor", wire::MODE))),
        None => {}
    }
    let kserve = r.arch.task() == locus_vram::profile::Task::Tensor || looks_like_kserve(body);
    Ok(if kserve { InferMode::Tensor } else { InferMode::Task })
}

fn is_json(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"))
}

async fn infer(State(s): State<AppState>, Query(q): Query<InferQuery>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let h = &parts.headers;
    let checked = (|| {
        let spec = spec_from_headers(h)?;
        let device = s.device(header_str(h, wire::DEVICE)?)?.clone();
        Ok::<_, WorkerError>((s.resolver.resolve(&spec)?, device))
    })();
    let (resolved, device) = match checked {
        Ok(x) => x,
        Err(e) => return s.fail(e),
    };
    // Taken before the body is read: if this request ends early, dropping its turn lets
    // the next one in the provider's order go at once.
    let admission = match admission_from_headers(h, &device) {
        Ok(a) => a,
        Err(e) => return s.fail(e),
    };
    let declared_len = h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared_len.is_some_and(|len| len > s.max_body_bytes) {
        return s.fail(WorkerError::PayloadTooLarge(s.max_body_bytes));
    }
    let body = match read_body(body, s.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return s.fail(e),
    };
    let mode = match mode_of(h, &resolved, &body) {
        Ok(m) => m,
        Err(e) => return s.fail(e),
    };
    let top_k = q.top_k.unwrap_or(s.top_k).clamp(1, 1000);
    let input = InferInput { body, json: is_json(h), mode, top_k };
    // The emulated backend never looks at bodies, so load tests may send anything.
    let checked = match s.backend {
        BackendKind::Candle => crate::tasks::precheck(resolved.arch.task(), &input),
        BackendKind::Emulated => Ok(()),
    };
    if let Err(e) = checked {
        return s.fail(WorkerError::Device(crate::device::DeviceError::Backend(e.into())));
    }
    let meta = (resolved.spec.arch.clone(), resolved.spec.weights.clone());
    let acquired = device.admit(&resolved.key, meta, admission, || s.resolver.prepare(&resolved)).await;
    let (guard, cache) = match acquired {
        Ok(x) => x,
        Err(e) => return s.fail(e),
    };
    let ran = device.infer(&guard, input).await;
    drop(guard);
    let function = header_str(h, wire::FUNCTION).ok().flatten().unwrap_or("-");
    tracing::debug!(function, model = %resolved.key, device = device.name(), cache = cache.outcome.as_str(), ok = ran.is_ok(), "inference");
    let (mut resp, compute_ms) = match ran {
        Ok((out, ms)) => ((StatusCode::OK, [(header::CONTENT_TYPE, out.content_type)], out.body).into_response(), ms),
        // The model was still loaded (and victims evicted): report that too.
        Err(e) => (s.fail(e.into()), 0.0),
    };
    InferReport { cache, compute_ms }.to_headers(resp.headers_mut());
    resp
}

async fn load(State(s): State<AppState>, body: Result<Json<LoadRequest>, axum::extract::rejection::JsonRejection>) -> Response {
    let result = async {
        let Json(req) = body.map_err(|e| WorkerError::BadRequest(e.body_text()))?;
        let device = s.device(req.device.as_deref())?.clone();
        let resolved = s.resolver.resolve(&req.model)?;
        let meta = (resolved.spec.arch.clone(), resolved.spec.weights.clone());
        let (_guard, report): (_, CacheReport) = device.acquire(&resolved.key, meta, || s.resolver.prepare(&resolved)).await?;
        Ok::<_, WorkerError>(Json(report))
    }
    .await;
    result.map_or_else(|e| s.fail(e), IntoResponse::into_response)
}

async fn evict(State(s): State<AppState>, body: Result<Json<EvictRequest>, axum::extract::rejection::JsonRejection>) -> Response {
    let result = async {
        let Json(req) = body.map_err(|e| WorkerError::BadRequest(e.body_text()))?;
        let device = s.device(Some(&req.device))?;
        let freed_bytes = device.evict(&req.model_key).await?;
        Ok::<_, WorkerError>(Json(EvictResponse { device: device.name().to_string(), model_key: req.model_key, freed_bytes }))
    }
    .await;
    result.map_or_else(|e| s.fail(e), IntoResponse::into_response)
}

async fn status(State(s): State<AppState>) -> Json<WorkerStatus> {
    Json(WorkerStatus {
        backend: s.backend.name().to_string(),
        draining: s.contract.is_draining(),
        devices: s.devices.iter().map(DeviceHandle::status).collect(),
    })
}

async fn metrics(State(s): State<AppState>) -> Response {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&s.registry.gather(), &mut buf) {
        Ok(()) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], buf).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests;
