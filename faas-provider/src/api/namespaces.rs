//! `/system/namespaces` (list) and `/system/namespace/{name}` CRUD (contract §1.5:
//! POST 201, GET 200, PUT 202, DELETE 202; a namespace must carry `openfaas=1`).

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};

use super::JsonBody;
use super::extract::read_body;
use crate::error::ProviderError;
use crate::names::{self, NameKind};
use crate::state::AppState;
use crate::types::FunctionNamespace;

pub(super) fn router() -> MethodRouter<AppState> {
    get(one).post(create).put(update).delete(delete)
}

pub(super) async fn list(
    State(state): State<AppState>,
) -> Result<Json<Vec<String>>, ProviderError> {
    let namespaces = state.store.call(|s| s.namespaces()).await?;
    Ok(Json(namespaces.into_iter().map(|n| n.name).collect()))
}

/// The namespace name from the path or the body; both given must agree.
fn resolve_name(path: Option<&str>, body: &str) -> Result<String, ProviderError> {
    let path = path.unwrap_or("");
    let name = match (path.is_empty(), body.is_empty()) {
        (false, false) if path != body => {
            return Err(ProviderError::BadRequest(format!(
                "namespace name in the path ({path}) does not match the body ({body})"
            )));
        }
        (false, _) => path,
        (true, _) => body,
    };
    if name.is_empty() {
        return Err(ProviderError::BadRequest(
            "namespace name is required".into(),
        ));
    }
    names::validate(NameKind::Namespace, name)?;
    Ok(name.to_string())
}

/// Parses a namespace body and checks it is OpenFaaS-enabled.
async fn enabled_body(
    path: Option<String>,
    state: &AppState,
    request: Request,
) -> Result<FunctionNamespace, ProviderError> {
    let bytes = read_body(request, state).await?;
    let mut ns: FunctionNamespace = JsonBody::lenient(&bytes)?;
    ns.name = resolve_name(path.as_deref(), &ns.name)?;
    if !ns.is_openfaas_enabled() {
        return Err(ProviderError::BadRequest(format!(
            "namespace {} must have the label openfaas=1",
            ns.name
        )));
    }
    Ok(ns)
}

async fn one(
    State(state): State<AppState>,
    path: Option<Path<String>>,
) -> Result<Response, ProviderError> {
    let name = resolve_name(path.as_ref().map(|p| p.0.as_str()), "")?;
    let ns = state.store.call(move |s| s.namespace(&name)).await?;
    Ok(Json(ns).into_response())
}

async fn create(
    State(state): State<AppState>,
    path: Option<Path<String>>,
    request: Request,
) -> Result<StatusCode, ProviderError> {
    let ns = enabled_body(path.map(|p| p.0), &state, request).await?;
    state.store.call(move |s| s.create_namespace(&ns)).await?;
    Ok(StatusCode::CREATED)
}

async fn update(
    State(state): State<AppState>,
    path: Option<Path<String>>,
    request: Request,
) -> Result<StatusCode, ProviderError> {
    let ns = enabled_body(path.map(|p| p.0), &state, request).await?;
    state.store.call(move |s| s.update_namespace(&ns)).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn delete(
    State(state): State<AppState>,
    path: Option<Path<String>>,
    request: Request,
) -> Result<StatusCode, ProviderError> {
    let bytes = read_body(request, &state).await?;
    let body: FunctionNamespace = JsonBody::lenient(&bytes)?;
    let name = resolve_name(path.as_ref().map(|p| p.0.as_str()), &body.name)?;
    state.store.call(move |s| s.delete_namespace(&name)).await?;
    Ok(StatusCode::ACCEPTED)
}
