//! `/system/info`, `/healthz`, `/metrics`, `/openapi.json`, invocation routes, unknown
//! paths and wrong methods.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use faas_provider::dataplane::{Invocation, Invoker};
use futures::future::BoxFuture;
use serde_json::json;

use crate::common::Harness;

#[tokio::test]
async fn info_names_the_provider_and_its_version() {
    let h = Harness::new().await;
    let reply = h.send("GET", "/system/info", "").await;
    assert_eq!(reply.status, StatusCode::OK);
    let info = reply.json();
    assert_eq!(info["provider"], "locus");
    assert_eq!(info["orchestration"], "locus");
    assert!(!info["version"]["sha"].as_str().unwrap().is_empty());
    assert_eq!(info["version"]["release"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn healthz_answers_get_and_head_with_200() {
    let h = Harness::new().await;
    assert_eq!(h.send("GET", "/healthz", "").await.status, StatusCode::OK);
    assert_eq!(h.send("HEAD", "/healthz", "").await.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_use_route_templates_and_the_gateway_service_gauge() {
    let h = Harness::new().await;
    h.deploy("fn1").await;
    h.send("GET", "/system/function/fn1", "").await;
    h.send("GET", "/system/function/ghost", "").await;
    h.send_json(
        "POST",
        "/system/scale-function/fn1",
        &json!({"replicas": 3}),
    )
    .await;
    let reply = h.send("GET", "/metrics", "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.header("content-type").starts_with("text/plain"));
    let text = reply.body;
    for line in [
        r#"provider_http_requests_total{code="202",method="POST",path="/system/functions"} 1"#,
        r#"provider_http_requests_total{code="200",method="GET",path="/system/function"} 1"#,
        r#"provider_http_requests_total{code="404",method="GET",path="/system/function"} 1"#,
        r#"provider_http_requests_total{code="202",method="POST",path="/system/scale-function"} 1"#,
        r#"gateway_service_count{function_name="fn1.openfaas-fn"} 3"#,
        r#"locus_provider_request_failures_total{error_type="not_found"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
    assert!(text.contains("provider_http_request_duration_seconds_bucket"));
    assert!(
        !text.contains("path=\"/system/function/fn1\""),
        "raw paths must not become labels"
    );
    h.send_json(
        "DELETE",
        "/system/functions",
        &json!({"functionName": "fn1"}),
    )
    .await;
    let text = h.send("GET", "/metrics", "").await.body;
    assert!(!text.contains("gateway_service_count{function_name=\"fn1.openfaas-fn\"}"));
}

#[tokio::test]
async fn the_openapi_document_is_served_as_json() {
    let h = Harness::new().await;
    let reply = h.send("GET", "/openapi.json", "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["openapi"], "3.0.3");
}

#[tokio::test]
async fn invocations_without_a_ready_replica_get_503_from_the_proxy() {
    let h = Harness::new().await;
    h.deploy("fn1").await;
    for uri in [
        "/function/fn1",
        "/function/fn1/",
        "/function/fn1.openfaas-fn/a/b?x=1",
        "/function/ghost",
    ] {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            let reply = h.send(method, uri, "").await;
            let name = uri
                .trim_start_matches("/function/")
                .split(['/', '?'])
                .next()
                .unwrap();
            reply.assert_error(503, &format!("No endpoints available for: {name}."));
            assert_eq!(reply.header("x-openfaas-internal"), "proxy");
        }
    }
    let reply = h.send("GET", "/function/", "").await;
    reply.assert_error(400, "Provide function name in the request path");
    assert_eq!(reply.header("x-openfaas-internal"), "proxy");
    assert_eq!(
        h.send("TRACE", "/function/fn1", "").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

/// An invoker that echoes what it was given.
struct Echo;

impl Invoker for Echo {
    fn invoke(&self, invocation: Invocation) -> BoxFuture<'static, Response> {
        let text = format!(
            "{} {} {} {} {}",
            invocation.request.method(),
            invocation.function,
            invocation.namespace,
            invocation.path,
            invocation.request.uri().query().unwrap_or("")
        );
        Box::pin(async move { text.into_response() })
    }
}

#[tokio::test]
async fn the_invoker_receives_function_namespace_path_and_query() {
    let h = Harness::new().await;
    let state = h.state.clone().with_invoker(Arc::new(Echo));
    let h = h.rebuild(state);
    let cases = [
        ("/function/fn1", "GET fn1 openfaas-fn / "),
        ("/function/fn1/", "GET fn1 openfaas-fn / "),
        ("/function/fn1.team/a/b?x=1", "GET fn1 team /a/b x=1"),
        ("/function/fn1/a/b/", "GET fn1 openfaas-fn /a/b/ "),
    ];
    for (uri, expected) in cases {
        assert_eq!(h.send("GET", uri, "").await.body, expected, "{uri}");
    }
    let request = Request::post("/function/fn1?q")
        .body(Body::from("payload"))
        .unwrap();
    assert_eq!(h.call(request).await.body, "POST fn1 openfaas-fn / q");
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let h = Harness::new().await;
    h.send("GET", "/nope", "")
        .await
        .assert_error(404, "404 page not found");
    h.send("GET", "/system/function/", "")
        .await
        .assert_error(404, "page not found");
    assert_eq!(
        h.send("PATCH", "/system/functions", "").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        h.send("POST", "/system/info", "").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        h.send("GET", "/system/scale-function/fn1", "").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        h.send("DELETE", "/system/namespaces", "").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

/// An invoker that answers with the caller's address.
struct Peer;

impl Invoker for Peer {
    fn invoke(&self, invocation: Invocation) -> BoxFuture<'static, Response> {
        let peer = invocation
            .request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.to_string())
            .unwrap_or_default();
        Box::pin(async move { peer.into_response() })
    }
}

#[tokio::test]
async fn served_requests_carry_the_callers_address_and_shutdown_stops_the_server() {
    let h = Harness::new().await;
    let state = h.state.clone().with_invoker(Arc::new(Peer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(faas_provider::server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let body = reqwest::get(format!("http://{addr}/function/fn1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.starts_with("127.0.0.1:"), "{body:?}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// A data plane with nothing ready.
struct NothingReady;

impl faas_provider::dataplane::Availability for NothingReady {
    fn available_replicas(&self, _: &faas_provider::store::FunctionRecord) -> u64 {
        0
    }
}

#[tokio::test]
async fn available_replicas_come_from_the_availability_seam() {
    let h = Harness::new().await;
    h.deploy("fn1").await;
    let state = h.state.clone().with_availability(Arc::new(NothingReady));
    let h = h.rebuild(state);
    let f = h.send("GET", "/system/function/fn1", "").await.json();
    assert_eq!(f["replicas"], 1);
    assert!(f.get("availableReplicas").is_none(), "{f}");
}
