//! `/system/functions` (list, deploy, update, delete), `/system/function/{name}` (status)
//! and `/system/scale-function/{name}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use time::OffsetDateTime;

use super::{JsonBody, Params};
use crate::deploy::{self, DEFAULT_REPLICAS};
use crate::error::ProviderError;
use crate::events::FunctionEvent;
use crate::models::{self, FunctionKind, FunctionRuntime};
use crate::names::{self, NameKind};
use crate::state::AppState;
use crate::store::FunctionRecord;
use crate::types::{
    DeleteFunctionRequest, FunctionDeployment, FunctionStatus, ScaleServiceRequest,
};

/// Label added to every function's labels on output (the certifier expects it).
pub const FAAS_FUNCTION_LABEL: &str = "faas_function";

pub(super) fn router() -> MethodRouter<AppState> {
    get(list).post(create).put(update).delete(delete)
}

/// The wire status of a stored function: what was deployed, plus `faas_function`, the
/// desired replicas and the availability view's ready replicas.
pub fn status_of(state: &AppState, record: &FunctionRecord) -> FunctionStatus {
    let d = &record.deployment;
    let (kind, runtime) = crate::runtime::describe(record, state.config.function_runtime);
    let mut labels = d.labels.clone().unwrap_or_default();
    labels.insert(FAAS_FUNCTION_LABEL.to_string(), d.service.clone());
    FunctionStatus {
        name: d.service.clone(),
        image: d.image.clone(),
        namespace: d.namespace.clone(),
        env_process: d.env_process.clone(),
        env_vars: d.env_vars.clone(),
        constraints: d.constraints.clone(),
        secrets: d.secrets.clone(),
        labels: Some(labels),
        annotations: d.annotations.clone(),
        limits: d.limits.clone(),
        requests: d.requests.clone(),
        read_only_root_filesystem: d.read_only_root_filesystem,
        invocation_count: state
            .metrics
            .invocation_count(&format!("{}.{}", d.service, d.namespace)),
        replicas: record.replicas,
        available_replicas: state.availability.available_replicas(record),
        created_at: record.created_at,
        usage: state.availability.usage(record),
        kind: kind.to_string(),
        runtime: runtime.to_string(),
        gpu: state.availability.gpu_status(record),
    }
}

/// Whether this provider runs a function of this kind ([`models::admit`]) and, for the
/// process runtime, whether its `fprocess` can run on this host.
fn admit(state: &AppState, valid: &deploy::ValidDeployment) -> Result<(), ProviderError> {
    models::admit(&valid.kind, state.config.function_runtime)?;
    if valid.kind == FunctionKind::Container
        && state.config.function_runtime == FunctionRuntime::Process
    {
        crate::runtime::process::check_deployment(&valid.deployment)
            .map_err(ProviderError::BadRequest)?;
    }
    Ok(())
}

/// The namespace named by `?namespace=` (or the default), validated.
fn query_namespace(params: &Params) -> Result<String, ProviderError> {
    let ns = names::resolve_namespace("", params.get("namespace"));
    names::validate(NameKind::Namespace, &ns)?;
    Ok(ns)
}

async fn list(State(state): State<AppState>, params: Params) -> Result<Response, ProviderError> {
    let ns = query_namespace(&params)?;
    let records = state.store.call(move |s| s.functions(&ns)).await?;
    let list: Vec<FunctionStatus> = records.iter().map(|r| status_of(&state, r)).collect();
    Ok(Json(list).into_response())
}

async fn create(
    State(state): State<AppState>,
    params: Params,
    JsonBody(body): JsonBody<FunctionDeployment>,
) -> Result<StatusCode, ProviderError> {
    let valid = deploy::validate(body, params.get("namespace"))?;
    admit(&state, &valid)?;
    let record = FunctionRecord {
        replicas: valid.scale_min.unwrap_or(DEFAULT_REPLICAS),
        created_at: OffsetDateTime::now_utc(),
        deployment: valid.deployment,
    };
    let stored = record.clone();
    state
        .store
        .call(move |s| s.create_function(&stored))
        .await?;
    state.publish(FunctionEvent::Deployed(record));
    Ok(StatusCode::ACCEPTED)
}

async fn update(
    State(state): State<AppState>,
    params: Params,
    JsonBody(body): JsonBody<FunctionDeployment>,
) -> Result<StatusCode, ProviderError> {
    let valid = deploy::validate(body, params.get("namespace"))?;
    admit(&state, &valid)?;
    let (deployment, scale_min) = (valid.deployment, valid.scale_min);
    let record = state
        .store
        .call(move |s| s.update_function(deployment, scale_min))
        .await?;
    state.publish(FunctionEvent::Updated(record));
    Ok(StatusCode::ACCEPTED)
}

async fn delete(
    State(state): State<AppState>,
    params: Params,
    JsonBody(body): JsonBody<DeleteFunctionRequest>,
) -> Result<StatusCode, ProviderError> {
    if body.function_name.is_empty() {
        return Err(ProviderError::BadRequest("functionName is required".into()));
    }
    names::validate(NameKind::Function, &body.function_name)?;
    let ns = names::resolve_namespace(&body.namespace, params.get("namespace"));
    names::validate(NameKind::Namespace, &ns)?;
    let name = body.function_name;
    let record = state
        .store
        .call(move |s| s.delete_function(&ns, &name))
        .await?;
    state.publish(FunctionEvent::Deleted(record));
    Ok(StatusCode::ACCEPTED)
}

/// Resolves `name[.ns]` from the path, `?namespace=` and the default.
fn target(param: &str, body_ns: &str, params: &Params) -> Result<(String, String), ProviderError> {
    let (name, suffix) = names::split_name(param);
    names::validate(NameKind::Function, name)?;
    let query = suffix.or(params.get("namespace"));
    let ns = names::resolve_namespace(body_ns, query);
    names::validate(NameKind::Namespace, &ns)?;
    Ok((name.to_string(), ns))
}

pub(super) async fn status(
    State(state): State<AppState>,
    Path(param): Path<String>,
    params: Params,
) -> Result<Json<FunctionStatus>, ProviderError> {
    let (name, ns) = target(&param, "", &params)?;
    let record = state.store.call(move |s| s.function(&ns, &name)).await?;
    Ok(Json(status_of(&state, &record)))
}

pub(super) async fn scale(
    State(state): State<AppState>,
    Path(param): Path<String>,
    params: Params,
    JsonBody(body): JsonBody<ScaleServiceRequest>,
) -> Result<StatusCode, ProviderError> {
    let param = if param.is_empty() {
        body.service_name.as_str()
    } else {
        param.as_str()
    };
    let (name, ns) = target(param, &body.namespace, &params)?;
    let replicas = body.replicas;
    let record = state
        .store
        .call(move |s| s.scale_function(&ns, &name, replicas))
        .await?;
    state.publish(FunctionEvent::Scaled(record));
    Ok(StatusCode::ACCEPTED)
}
