//! The model data plane: invocations of model functions go through the central queue
//! of the pure scheduler (owned by an [`actor`]) to the worker GPU it picks, and back.
//!
//! - [`config`]: `workers`, `policy` and its knobs, `queue_capacity`, `request_timeout`, ...
//! - [`actor`]: the scheduler's owner; [`view`]: what status routes read without it;
//! - [`workers`]: the worker API client; [`discovery`] and [`membership`]: which workers
//!   exist and whether they are healthy; reconciliation rides on the health round;
//! - [`invoke`]: one invocation, streamed both ways; [`body`]: the re-sendable body;
//!   [`describe`]: a call without input, answered without a GPU;
//! - [`idle`]: scale from zero on a request, and unload after `scale.zero-duration`;
//! - [`metrics`]: `locus_provider_*`; [`error`]: 400/429/503/504/500 as the contract says.
//!
//! [`ModelPlane`] is the [`Invoker`], [`LogSource`] and [`Availability`] for model
//! functions; `crate::route::KindRouter` puts it behind the provider's routes.

pub mod actor;
pub mod body;
pub mod config;
pub mod describe;
pub mod discovery;
pub mod error;
pub mod idle;
pub mod invoke;
pub mod membership;
pub mod metrics;
pub mod view;
pub mod workers;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::dataplane::{Availability, Invocation, Invoker, LogRequest, LogSource, NoLogs};
use crate::events::FunctionEvent;
use crate::metrics::Metrics;
use crate::models::{self, FunctionKind};
use crate::state::AppState;
use crate::store::{FunctionRecord, Store, StoreError};
use crate::types::LogMessage;

pub use config::DispatchConfig;
pub use error::DispatchError;
pub use view::ModelView;

use actor::{Actor, Command, ModelRef};
use discovery::{SourceError, WorkerSource};
use metrics::DispatchMetrics;
use view::SharedView;
use workers::WorkerClient;

/// How the plane faces its callers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Face {
    /// Add the gateway's `X-Call-Id` and `X-Start-Time` to every answer (`up`, where no
    /// gateway stands in front).
    pub gateway: bool,
}

/// Why the data plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum PlaneError {
    /// The `workers` setting is malformed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Its metrics could not be registered.
    #[error("cannot register data-plane metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// What the invocation path shares.
pub struct Inner {
    commands: mpsc::UnboundedSender<Command>,
    next_id: AtomicU64,
    client: WorkerClient,
    store: Arc<Store>,
    events: broadcast::Sender<FunctionEvent>,
    provider_metrics: Arc<Metrics>,
    view: SharedView,
    deadline: Option<Duration>,
    max_retries: u32,
    retry_buffer: usize,
    face: Face,
    /// Last invocation of each `(namespace, name)`, for idle unload.
    last_used: Mutex<HashMap<(String, String), Instant>>,
    metrics: DispatchMetrics,
}

/// The model functions' data plane. Cheap to clone.
#[derive(Clone)]
pub struct ModelPlane {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ModelPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelPlane").finish_non_exhaustive()
    }
}

impl ModelPlane {
    /// Starts the actor, the health round and the idle-unload loop for `state`'s store,
    /// registering `locus_provider_*` in `state.registry`. Must run inside a tokio
    /// runtime; the tasks end when the last clone of the plane is dropped.
    pub fn start(
        state: &AppState,
        config: &DispatchConfig,
        face: Face,
    ) -> Result<Self, PlaneError> {
        let source = WorkerSource::parse(&config.workers)?;
        let metrics = DispatchMetrics::new(&state.registry)?;
        let view = SharedView::default();
        let started = Instant::now();
        let (commands, receiver) = mpsc::unbounded_channel();
        let actor = Actor::new(config.scheduler(), metrics.clone(), view.clone());
        tokio::spawn(actor::run(actor, receiver, started));
        let client = WorkerClient::new();
        tokio::spawn(membership::run(
            source,
            client.clone(),
            commands.downgrade(),
            config.health_interval,
            config.reconcile_interval,
        ));
        let inner = Arc::new(Inner {
            commands,
            next_id: AtomicU64::new(1),
            client,
            store: state.store.clone(),
            events: state.events.clone(),
            provider_metrics: state.metrics.clone(),
            view,
            deadline: config.deadline(state.config.read_timeout),
            max_retries: config.max_retries,
            retry_buffer: config.retry_buffer_bytes,
            face,
            last_used: Mutex::new(HashMap::new()),
            metrics,
        });
        tokio::spawn(idle::run(Arc::downgrade(&inner), config.health_interval));
        Ok(ModelPlane { inner })
    }

    /// Waits until the health round has seen `workers` workers up, or `limit` passes;
    /// true when they are. For start-up (`up`) and tests.
    pub async fn wait_for_gpus(&self, gpus: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.inner.view.read(|s| s.gpus.len()) >= gpus {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Resolves once the actor has handled every event sent before this call (answers
    /// already returned to callers included), so the view reflects them.
    pub async fn settled(&self) {
        let (reply, done) = tokio::sync::oneshot::channel();
        if self.inner.commands.send(Command::Barrier(reply)).is_ok() {
            let _ = done.await;
        }
    }

    /// The GPU view of a model function: where its model is resident and its hits and
    /// misses; `None` for other functions.
    pub fn model_view(&self, record: &FunctionRecord) -> Option<ModelView> {
        let (model, _) = model_of(record)?;
        Some(self.inner.view.model(&model.key))
    }
}

/// The model of a model function, and its weights URI as written.
fn model_of(record: &FunctionRecord) -> Option<(ModelRef, String)> {
    let spec = match models::classify(&record.deployment).ok()? {
        FunctionKind::Model(spec) => spec,
        #[allow(unreachable_patterns)]
        _ => return None,
    };
    let weights = record
        .deployment
        .annotations
        .as_ref()?
        .get(models::WEIGHTS)?
        .trim()
        .to_string();
    let model = ModelRef {
        key: gpu_worker::wire::model_key(&spec.arch, &weights),
        arch: spec.arch,
        memory_bytes: spec.memory_bytes,
    };
    Some((model, weights))
}

impl Inner {
    fn publish(&self, event: FunctionEvent) {
        let record = event.record();
        let key = format!("{}.{}", record.name(), record.namespace());
        self.provider_metrics
            .set_service_count(&key, record.replicas);
        tracing::info!(function = %key, event = event.kind(), replicas = record.replicas, "function scaled by the data plane");
        let _ = self.events.send(event);
    }

    async fn call(self: Arc<Self>, inv: Invocation) -> Response {
        let arrived = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let call_id = inv
            .request
            .headers()
            .get("x-call-id")
            .cloned()
            .unwrap_or_else(|| {
                HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("uuid is ASCII")
            });
        let request_type = inv.request.headers().get(header::CONTENT_TYPE).cloned();
        let target = (
            inv.namespace.clone(),
            inv.function.clone(),
            inv.target.clone(),
        );
        let empty = describe::has_no_body(&inv.request);
        let response = match self.prepare(target).await {
            Ok((model, weights)) if empty => {
                let gpu = self.view.model(&model.key);
                let function = format!("{}.{}", inv.function, inv.namespace);
                describe::without_input(inv.request.method(), function, &model, weights, gpu)
            }
            Ok((model, weights)) => {
                let headers = invoke::upstream_headers(&inv, &model, &weights, &call_id);
                invoke::dispatch(&self, inv, model, headers)
                    .await
                    .map_or_else(IntoResponse::into_response, IntoResponse::into_response)
            }
            Err(response) => response,
        };
        let gateway = self.face.gateway.then_some((&call_id, arrived));
        invoke::finish(response, request_type, gateway)
    }

    /// Finds the function's model and scales the function up if it is at zero.
    async fn prepare(
        &self,
        (namespace, function, target): (String, String, String),
    ) -> Result<(ModelRef, String), Response> {
        let no_endpoints = || DispatchError::NoEndpoints(target.clone()).into_response();
        let record = match self.store.function(&namespace, &function) {
            Ok(record) => record,
            Err(StoreError::NotFound(_)) => return Err(no_endpoints()),
            Err(e) => return Err(crate::error::ProviderError::Store(e).into_response()),
        };
        let found = model_of(&record).ok_or_else(no_endpoints)?;
        if let Ok(mut used) = self.last_used.lock() {
            used.insert((namespace, function), Instant::now());
        }
        if record.replicas == 0 {
            idle::scale_up(self, &record)
                .await
                .map_err(|e| crate::error::ProviderError::Store(e).into_response())?;
        }
        Ok(found)
    }
}

impl Invoker for ModelPlane {
    fn invoke(&self, invocation: Invocation) -> BoxFuture<'static, Response> {
        Box::pin(self.inner.clone().call(invocation))
    }
}

impl LogSource for ModelPlane {
    /// Model functions run inside workers and write no function log of their own.
    fn logs(&self, request: LogRequest) -> BoxStream<'static, LogMessage> {
        NoLogs.logs(request)
    }
}

impl Availability for ModelPlane {
    /// Zero when scaled to zero; otherwise the desired replicas, capped by the up GPUs
    /// that can hold the model (zero when none can).
    fn available_replicas(&self, function: &FunctionRecord) -> u64 {
        if function.replicas == 0 {
            return 0;
        }
        let Some((model, _)) = model_of(function) else {
            return 0;
        };
        let bytes = model.memory_bytes.unwrap_or_else(|| {
            locus_vram::profile::profile(&model.arch).map_or(0, |p| p.weight_bytes)
        });
        function.replicas.min(self.inner.view.gpus_that_fit(bytes))
    }

    fn gpu_status(&self, function: &FunctionRecord) -> Option<serde_json::Value> {
        serde_json::to_value(self.model_view(function)?).ok()
    }

    fn usage(&self, function: &FunctionRecord) -> Option<crate::types::FunctionUsage> {
        let view = self.model_view(function)?;
        let copies = view.resident.len() as f64;
        (copies > 0.0).then_some(crate::types::FunctionUsage {
            cpu: 0.0,
            total_memory_bytes: view.bytes as f64 * copies,
        })
    }
}

#[cfg(test)]
mod tests;
