//! Container functions: every deployment without `locus.io/model`.
//!
//! * [`process`]: the process runtime (`function_runtime=process`, `up`'s default): each
//!   replica is a local process of Locus's watchdog ([`child`], [`replica`]) running the
//!   function's `fprocess`; replicas follow the committed [`FunctionEvent`]s, crashed ones
//!   are restarted, and a request to a function at zero replicas starts one and waits.
//! * [`fallback`]: forwarding everything about container functions to another provider
//!   (`function_runtime=fallback`), merging lists and namespaces.
//! * [`logbook`]: the bounded per-function log rings the process runtime feeds.
//!
//! Errors the runtime answers itself are [`RuntimeError`]s: one status table, plain-text
//! bodies, `X-OpenFaaS-Internal: proxy` as faas-provider's proxy marks its own answers.
//!
//! [`FunctionEvent`]: crate::events::FunctionEvent

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::dataplane::{Availability, Invocation, Invoker, LogRequest, LogSource};
use crate::error::{Origin, plain_text_error};
use crate::models::{FunctionKind, FunctionRuntime};
use crate::route::KindRouter;
use crate::state::AppState;
use crate::store::FunctionRecord;
use crate::types::LogMessage;

pub mod child;
pub mod face;
pub mod fallback;
mod keeper;
mod lifecycle;
pub mod logbook;
pub mod process;
mod proxy;
pub mod replica;

pub use logbook::LogBook;
pub use process::{ProcessRuntime, StartupError};

/// Plugs the configured container runtime into `state`: with `function_runtime=process`
/// it starts a [`ProcessRuntime`] and routes by kind, the seams `state` already holds
/// (the model data plane, or the control plane's defaults) serving model functions.
/// Returns the runtime too, so the caller can [`ProcessRuntime::shutdown`] it after
/// serving. Other settings leave `state` as it is (`fallback` acts in the router).
pub async fn attach(
    state: AppState,
) -> Result<(AppState, Option<Arc<ProcessRuntime>>), StartupError> {
    match state.config.function_runtime {
        FunctionRuntime::Process => {}
        FunctionRuntime::Fallback => {
            fallback::Fallback::check_url(state.config.fallback_provider_url.as_deref())
                .map_err(StartupError::Fallback)?;
            return Ok((state, None));
        }
        FunctionRuntime::None => return Ok((state, None)),
    }
    let runtime = ProcessRuntime::start(&state).await?;
    let models = Arc::new(Seams::of(&state));
    let router = Arc::new(
        KindRouter::new(state.store.clone(), models).with_containers(Arc::new(runtime.clone())),
    );
    let state = state
        .with_invoker(router.clone())
        .with_logs(router.clone())
        .with_availability(router);
    Ok((state, Some(runtime)))
}

/// The status's `kind` and `runtime` words for a stored function.
pub fn describe(record: &FunctionRecord, runtime: FunctionRuntime) -> (&'static str, &'static str) {
    match crate::models::classify(&record.deployment) {
        Ok(FunctionKind::Model(_)) => ("model", ""),
        _ => (
            "container",
            match runtime {
                FunctionRuntime::Process => {
                    "process: the image is recorded, not pulled; envProcess runs as a local watchdog process"
                }
                FunctionRuntime::Fallback => "fallback provider",
                FunctionRuntime::None => "",
            },
        ),
    }
}

/// A state's three seams as one data plane.
struct Seams {
    invoker: Arc<dyn Invoker>,
    logs: Arc<dyn LogSource>,
    availability: Arc<dyn Availability>,
}

impl Seams {
    fn of(state: &AppState) -> Self {
        Seams {
            invoker: state.invoker.clone(),
            logs: state.logs.clone(),
            availability: state.availability.clone(),
        }
    }
}

impl Invoker for Seams {
    fn invoke(&self, invocation: Invocation) -> BoxFuture<'static, Response> {
        self.invoker.invoke(invocation)
    }
}

impl LogSource for Seams {
    fn logs(&self, request: LogRequest) -> BoxStream<'static, LogMessage> {
        self.logs.logs(request)
    }
}

impl Availability for Seams {
    fn available_replicas(&self, function: &FunctionRecord) -> u64 {
        self.availability.available_replicas(function)
    }

    fn gpu_status(&self, function: &FunctionRecord) -> Option<serde_json::Value> {
        self.availability.gpu_status(function)
    }

    fn usage(&self, function: &FunctionRecord) -> Option<crate::types::FunctionUsage> {
        self.availability.usage(function)
    }
}

/// What the container runtimes answer when they cannot serve a request.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No replica became ready in time (a function held at zero, or one that keeps
    /// failing to start).
    #[error("No endpoints available for: {target}. {why}")]
    NotReady {
        /// The name as invoked.
        target: String,
        /// Why, for the caller (the last start failure, if any).
        why: String,
    },
    /// A ready replica could not be reached.
    #[error("Can't reach service for: {0}.")]
    Unreachable(String),
    /// The fallback provider could not be reached.
    #[error("the fallback provider at {url} cannot be reached: {why}")]
    FallbackUnreachable {
        /// Its URL.
        url: String,
        /// Why.
        why: String,
    },
    /// The fallback provider did not answer in time.
    #[error("the fallback provider at {url} did not answer within {}", humantime::format_duration(*.within))]
    FallbackTimeout {
        /// Its URL.
        url: String,
        /// The configured `fallback_timeout`.
        within: std::time::Duration,
    },
    /// A request the fallback layer could not read or answer.
    #[error("{0}")]
    BadRequest(String),
}

impl RuntimeError {
    /// A stable snake_case name, sent as `X-Locus-Error`.
    pub fn error_type(&self) -> &'static str {
        match self {
            RuntimeError::NotReady { .. } => "not_ready",
            RuntimeError::Unreachable(_) => "unreachable",
            RuntimeError::FallbackUnreachable { .. } => "fallback_unreachable",
            RuntimeError::FallbackTimeout { .. } => "fallback_timeout",
            RuntimeError::BadRequest(_) => "bad_request",
        }
    }

    /// The HTTP status (faas-provider's proxy: 503 unresolvable, 500 unreachable; a
    /// gateway's: 502 upstream down, 504 upstream slow).
    pub fn status(&self) -> StatusCode {
        match self {
            RuntimeError::NotReady { .. } => StatusCode::SERVICE_UNAVAILABLE,
            RuntimeError::Unreachable(_) => StatusCode::INTERNAL_SERVER_ERROR,
            RuntimeError::FallbackUnreachable { .. } => StatusCode::BAD_GATEWAY,
            RuntimeError::FallbackTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            RuntimeError::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for RuntimeError {
    fn into_response(self) -> Response {
        plain_text_error(
            self.status(),
            &self.to_string(),
            self.error_type(),
            Origin::Proxy,
        )
    }
}
