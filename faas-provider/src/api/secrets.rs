//! `/system/secrets`: create, update, list (names only, never values) and delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{MethodRouter, get};

use super::{JsonBody, Params};
use crate::error::ProviderError;
use crate::names::{self, NameKind};
use crate::state::AppState;
use crate::types::Secret;

pub(super) fn router() -> MethodRouter<AppState> {
    get(list).post(create).put(update).delete(delete)
}

/// The secret's validated name and namespace (body, then query, then default).
fn target(secret: &Secret, params: &Params) -> Result<(String, String), ProviderError> {
    names::validate(NameKind::Secret, &secret.name)?;
    let ns = names::resolve_namespace(&secret.namespace, params.get("namespace"));
    names::validate(NameKind::Namespace, &ns)?;
    Ok((secret.name.clone(), ns))
}

async fn list(
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Vec<Secret>>, ProviderError> {
    let ns = names::resolve_namespace("", params.get("namespace"));
    names::validate(NameKind::Namespace, &ns)?;
    let lookup = ns.clone();
    let names = state.store.call(move |s| s.secrets(&lookup)).await?;
    let list = names
        .into_iter()
        .map(|name| Secret {
            name,
            namespace: ns.clone(),
            ..Default::default()
        })
        .collect();
    Ok(Json(list))
}

async fn create(
    State(state): State<AppState>,
    params: Params,
    JsonBody(secret): JsonBody<Secret>,
) -> Result<StatusCode, ProviderError> {
    let (name, ns) = target(&secret, &params)?;
    let value = secret.bytes();
    state
        .store
        .call(move |s| s.create_secret(&ns, &name, &value))
        .await?;
    Ok(StatusCode::ACCEPTED)
}

async fn update(
    State(state): State<AppState>,
    params: Params,
    JsonBody(secret): JsonBody<Secret>,
) -> Result<StatusCode, ProviderError> {
    let (name, ns) = target(&secret, &params)?;
    let value = secret.bytes();
    state
        .store
        .call(move |s| s.update_secret(&ns, &name, &value))
        .await?;
    Ok(StatusCode::ACCEPTED)
}

async fn delete(
    State(state): State<AppState>,
    params: Params,
    JsonBody(secret): JsonBody<Secret>,
) -> Result<StatusCode, ProviderError> {
    let (name, ns) = target(&secret, &params)?;
    state
        .store
        .call(move |s| s.delete_secret(&ns, &name))
        .await?;
    Ok(StatusCode::ACCEPTED)
}
