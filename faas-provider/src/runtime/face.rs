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
pub async fn gateway_face(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::store::FunctionRecord;
    use crate::types::FunctionDeployment;

    async fn state() -> (AppState, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config::from_iter([(
            "state_dir".to_string(),
            dir.path().display().to_string(),
        )])
        .unwrap();
        let state = crate::server::prepare(config, prometheus::Registry::new())
            .await
            .unwrap();
        (state, dir)
    }

    #[tokio::test]
    async fn invocations_get_call_id_and_start_time_and_unknown_functions_404() {
        let (state, _dir) = state().await;
        let record = FunctionRecord {
            deployment: FunctionDeployment {
                service: "known".into(),
                image: "x".into(),
                namespace: "openfaas-fn".into(),
                ..Default::default()
            },
            replicas: 1,
            created_at: OffsetDateTime::now_utc(),
        };
        state.store.create_function(&record).unwrap();
        let app = crate::api::app(state.clone())
            .layer(axum::middleware::from_fn_with_state(state, gateway_face));
        let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();

        let r = app.clone().oneshot(get("/function/nosuch")).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = app
            .clone()
            .oneshot(get("/function/.openfaas-fn"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);

        // Known, but the default seams have no replica: the 503 still gets the headers.
        let r = app
            .clone()
            .oneshot(get("/function/known/a?b=1"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()["x-call-id"].len(), 36);
        assert!(
            r.headers()["x-start-time"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .is_ok()
        );
        let mut request = get("/function/known.openfaas-fn");
        request
            .headers_mut()
            .insert("x-call-id", HeaderValue::from_static("abc"));
        let r = app.clone().oneshot(request).await.unwrap();
        assert_eq!(r.headers()["x-call-id"], "abc");
        let r = app.oneshot(get("/system/functions")).await.unwrap();
        assert!(!r.headers().contains_key("x-call-id"));
    }
}
