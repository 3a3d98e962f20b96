//! The fallback provider: a small real HTTP server on port 0 stands in for faas-netes;
//! the provider (in process, `oneshot`) forwards everything about container functions to
//! it unchanged and merges lists and namespaces, keeps model functions to itself, and
//! answers 502/504 when the fallback is down or slow without storing anything.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use faas_provider::config::Config;
use faas_provider::{AppState, app, server};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

type Seen = Arc<Mutex<Vec<(Method, String, String)>>>;

/// The fake fallback provider; returns its URL and what it was sent.
async fn fake_fallback() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let fake = Router::new().fallback(move |request: Request| {
        let record = record.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body: Bytes = body.collect().await.unwrap().to_bytes();
            let path = parts.uri.path_and_query().unwrap().to_string();
            record.lock().unwrap().push((
                parts.method.clone(),
                path.clone(),
                String::from_utf8_lossy(&body).to_string(),
            ));
            match (parts.method, parts.uri.path()) {
                (Method::GET, "/system/functions") => axum::Json(json!([{
                    "name": "netes-fn", "image": "functions/alpine:latest",
                    "namespace": "openfaas-fn", "replicas": 1,
                    "createdAt": "2024-01-01T00:00:00Z"}]))
                .into_response(),
                (Method::GET, "/system/namespaces") => {
                    axum::Json(json!(["openfaas-fn", "netes-ns"])).into_response()
                }
                (_, "/function/slow") => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late".into_response()
                }
                (_, p) if p.starts_with("/function/") => {
                    (StatusCode::OK, format!("fallback answered {path}")).into_response()
                }
                _ => StatusCode::ACCEPTED.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, fake).await });
    (url, seen)
}

async fn provider(pairs: &[(&str, &str)], dir: &tempfile::TempDir) -> AppState {
    let mut all = vec![("state_dir".to_string(), dir.path().display().to_string())];
    all.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_iter(all).unwrap();
    server::prepare(config, prometheus::Registry::new())
        .await
        .unwrap()
}

async fn call(state: &AppState, method: Method, uri: &str, body: Value) -> (u16, String, String) {
    let body = if body.is_null() {
        Body::empty()
    } else {
        Body::from(body.to_string())
    };
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(body)
        .unwrap();
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let internal = response
        .headers()
        .get("x-openfaas-internal")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        String::from_utf8_lossy(&bytes).to_string(),
        internal,
    )
}

fn container_fn(name: &str) -> Value {
    json!({"service": name, "image": "functions/alpine:latest", "envProcess": "env",
           "labels": {}, "annotations": {}})
}

fn model_fn(name: &str) -> Value {
    json!({"service": name, "image": "locus/mlp",
           "annotations": {"locus.io/model": "mlp", "locus.io/weights": "zoo://mlp?seed=1"}})
}

#[tokio::test]
async fn container_functions_go_to_the_fallback_and_lists_merge_both_providers() {
    let (url, seen) = fake_fallback().await;
    let dir = tempfile::tempdir().unwrap();
    let p = provider(
        &[
            ("function_runtime", "fallback"),
            ("fallback_provider_url", &url),
        ],
        &dir,
    )
    .await;

    let (status, _, _) = call(
        &p,
        Method::POST,
        "/system/functions",
        container_fn("netes-fn"),
    )
    .await;
    assert_eq!(status, 202);
    let sent = seen.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].0.clone(), sent[0].1.as_str()),
        (Method::POST, "/system/functions")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&sent[0].2).unwrap(),
        container_fn("netes-fn")
    );
    assert!(
        p.store.function("openfaas-fn", "netes-fn").is_err(),
        "stored locally"
    );

    let (status, body, _) =
        call(&p, Method::POST, "/system/functions", model_fn("local-mlp")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "a model function was forwarded"
    );

    let (status, body, _) = call(&p, Method::GET, "/system/functions", Value::Null).await;
    assert_eq!(status, 200);
    let names: Vec<String> = serde_json::from_str::<Vec<Value>>(&body)
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["local-mlp", "netes-fn"]);
    let (_, body, _) = call(&p, Method::GET, "/system/namespaces", Value::Null).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!(["netes-ns", "openfaas-fn"])
    );

    let forwarded = [
        (Method::PUT, "/system/functions", container_fn("netes-fn")),
        (
            Method::GET,
            "/system/function/netes-fn?namespace=openfaas-fn",
            Value::Null,
        ),
        (
            Method::POST,
            "/system/scale-function/netes-fn",
            json!({"serviceName": "netes-fn", "replicas": 0}),
        ),
        (
            Method::GET,
            "/system/logs?name=netes-fn&follow=false",
            Value::Null,
        ),
        (
            Method::DELETE,
            "/system/functions",
            json!({"functionName": "netes-fn"}),
        ),
    ];
    for (method, uri, body) in forwarded {
        let before = seen.lock().unwrap().len();
        let (status, text, _) = call(&p, method.clone(), uri, body).await;
        assert!(status < 300, "{method} {uri}: {status} {text}");
        let last = seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(
            seen.lock().unwrap().len(),
            before + 1,
            "{method} {uri} not forwarded"
        );
        assert_eq!((last.0, last.1.as_str()), (method, uri));
    }
    let (status, body, _) = call(&p, Method::POST, "/function/netes-fn/sub?x=1", json!("hi")).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "fallback answered /function/netes-fn/sub?x=1")
    );

    // The model function's own routes stay local.
    let before = seen.lock().unwrap().len();
    let (status, _, _) = call(&p, Method::GET, "/system/function/local-mlp", Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(seen.lock().unwrap().len(), before);
}

#[tokio::test]
async fn a_fallback_that_is_down_or_slow_is_a_clear_gateway_error_and_nothing_is_stored() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let p = provider(
        &[
            ("function_runtime", "fallback"),
            ("fallback_provider_url", &closed),
        ],
        &dir,
    )
    .await;
    let (status, body, internal) =
        call(&p, Method::POST, "/system/functions", container_fn("lost")).await;
    assert_eq!((status, internal.as_str()), (502, "proxy"), "{body}");
    assert!(body.contains("fallback provider"), "{body}");
    assert!(p.store.function("openfaas-fn", "lost").is_err());
    // Model functions keep working, and the list still answers with them.
    assert_eq!(
        call(&p, Method::POST, "/system/functions", model_fn("m"))
            .await
            .0,
        202
    );
    let (status, body, _) = call(&p, Method::GET, "/system/functions", Value::Null).await;
    assert_eq!(status, 200);
    assert!(body.contains("\"m\""), "{body}");

    let (url, _) = fake_fallback().await;
    let dir = tempfile::tempdir().unwrap();
    let p = provider(
        &[
            ("function_runtime", "fallback"),
            ("fallback_provider_url", &url),
            ("fallback_timeout", "200ms"),
        ],
        &dir,
    )
    .await;
    let (status, body, internal) = call(&p, Method::GET, "/function/slow", Value::Null).await;
    assert_eq!((status, internal.as_str()), (504, "proxy"), "{body}");
}

#[tokio::test]
async fn without_a_container_runtime_a_container_function_is_refused_naming_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let p = provider(&[], &dir).await;
    let (status, body, _) = call(&p, Method::POST, "/system/functions", container_fn("c")).await;
    assert_eq!(status, 400);
    for needle in [
        "locus.io/model",
        "function_runtime=process",
        "fallback_provider_url",
    ] {
        assert!(body.contains(needle), "{needle}: {body}");
    }
    let mut typo = model_fn("t");
    typo["annotations"]["locus.io/weight"] = json!("x");
    let (status, body, _) = call(&p, Method::POST, "/system/functions", typo).await;
    assert_eq!(status, 400);
    assert!(body.contains("locus.io/weight"), "{body}");
}
