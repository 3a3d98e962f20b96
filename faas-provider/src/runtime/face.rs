//! The gateway's face on invocations, for `up` (where no gateway stands in front), for
//! every kind of function alike: `X-Call-Id` (the caller's, else a new UUID, passed to the
//! function too) and `X-Start-Time` (Unix nanoseconds) on the answer, and an unknown
//! function answered 404 `error finding function NAME.NS: ...` as the gateway's
//! scale-from-zero lookup answers it (faas-provider's own 503 is for a known function
//! with no replica).
//!
//! Headers a data plane already set are kept.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use crate::names;
use crate::state::AppState;
use crate::store::StoreError;

/// Middleware over the provider's router (`from_fn_with_state(state, gateway_face)`).
pub async fn gateway_face(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(target) = request.uri().path().strip_prefix("/function/") else {
        return next.run(request).await;
    };
    let target = target.split('/').next().unwrap_or("").to_string();
    let start = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let (name, ns) = names::split_name(&target);
    let ns = ns
        .filter(|s| !s.is_empty())
        .unwrap_or(names::DEFAULT_NAMESPACE);
    let (n, f) = (ns.to_string(), name.to_string());
    if let Err(StoreError::NotFound(why) | StoreError::UnknownNamespace(why)) =
        state.store.call(move |s| s.function(&n, &f)).await
    {
        let body = format!("error finding function {name}.{ns}: {why}\n");
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response();
    }
    let call_id = match request.headers().get("x-call-id") {
        Some(id) => id.clone(),
        None => {
            let id = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .expect("a UUID is a valid header value");
            request.headers_mut().insert("x-call-id", id.clone());
            id
        }
    };
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key("x-call-id") {
        headers.insert("x-call-id", call_id);
    }
    if !headers.contains_key("x-start-time") {
        headers.insert("x-start-time", HeaderValue::from(start as u64));
    }
    response
}
