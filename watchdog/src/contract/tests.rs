//! In-process tests of the contract's handlers and layer, driven with `oneshot`.

use std::sync::Arc;
use std::time::Duration;

use ::http::StatusCode;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::future::BoxFuture;
use tokio::sync::oneshot;
use tower::ServiceExt;

use super::*;

fn get_req(path: &str) -> Request {
    Request::get(path).body(Body::empty()).unwrap()
}

async fn body_text(response: Response) -> String {
    String::from_utf8(
        to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap()
}

fn contract_with_lock(dir: &tempfile::TempDir) -> Contract {
    Contract::new(
        ContractConfig::new("test-component").with_lock_file(Some(dir.path().join(".lock"))),
    )
}

#[tokio::test]
async fn health_is_503_until_ready_then_200_ok_until_the_lock_file_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let contract = contract_with_lock(&dir);
    let app = contract.routes("/_/health", "/_/ready", None);

    let before = app.clone().oneshot(get_req("/_/health")).await.unwrap();
    assert_eq!(before.status(), StatusCode::SERVICE_UNAVAILABLE);

    contract.mark_ready().unwrap();
    assert!(dir.path().join(".lock").exists());
    let ok = app.clone().oneshot(get_req("/_/health")).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.headers().contains_key(X_DURATION_SECONDS));
    assert_eq!(body_text(ok).await, "OK");

    std::fs::remove_file(dir.path().join(".lock")).unwrap();
    let gone = app.clone().oneshot(get_req("/_/health")).await.unwrap();
    assert_eq!(gone.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn health_with_other_methods_is_405() {
    let contract = Contract::new(ContractConfig::new("c"));
    contract.mark_ready().unwrap();
    let app = contract.routes("/_/health", "/_/ready", None);
    let response = app
        .oneshot(Request::post("/_/health").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn mark_not_ready_deletes_the_lock_and_fails_health_and_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let contract = contract_with_lock(&dir);
    contract.mark_ready().unwrap();
    contract.mark_not_ready();
    assert!(!dir.path().join(".lock").exists());
    let app = contract.routes("/healthz", "/readyz", None);
    for path in ["/healthz", "/readyz"] {
        let response = app.clone().oneshot(get_req(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
    }
}

#[tokio::test]
async fn ready_is_429_while_the_in_flight_limit_is_reached() {
    let contract = Contract::new(ContractConfig::new("c").with_max_inflight(1));
    contract.mark_ready().unwrap();
    let app = contract.routes("/_/health", "/_/ready", None);
    assert_eq!(
        app.clone()
            .oneshot(get_req("/_/ready"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let slot = contract.try_acquire().unwrap();
    assert_eq!(
        app.clone()
            .oneshot(get_req("/_/ready"))
            .await
            .unwrap()
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    drop(slot);
    assert_eq!(
        app.oneshot(get_req("/_/ready")).await.unwrap().status(),
        StatusCode::OK
    );
}

struct Teapot;

impl ReadyProbe for Teapot {
    fn probe(&self, request: Request) -> BoxFuture<'static, Response> {
        let path = request.uri().path().to_string();
        Box::pin(async move { (StatusCode::IM_A_TEAPOT, path).into_response() })
    }
}

#[tokio::test]
async fn ready_delegates_to_the_probe_once_the_contract_itself_is_ready() {
    let contract = Contract::new(ContractConfig::new("c"));
    let app = contract.routes("/_/health", "/_/ready", Some(Arc::new(Teapot)));
    let not_yet = app.clone().oneshot(get_req("/_/ready")).await.unwrap();
    assert_eq!(not_yet.status(), StatusCode::SERVICE_UNAVAILABLE);
    contract.mark_ready().unwrap();
    let response = app.oneshot(get_req("/_/ready")).await.unwrap();
    assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
}

#[tokio::test]
async fn excess_concurrency_gets_429_with_the_of_watchdog_message_and_component() {
    let contract = Contract::new(ContractConfig::new("gpu-worker").with_max_inflight(2));
    let app = contract.wrap(Router::new().route("/", post(|| async { "done" })));
    let _a = contract.try_acquire().unwrap();
    let _b = contract.try_acquire().unwrap();
    let response = app
        .oneshot(Request::post("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[X_OPENFAAS_INTERNAL], "gpu-worker");
    assert!(response.headers().contains_key(X_DURATION_SECONDS));
    let refusal = response
        .extensions()
        .get::<ContractError>()
        .expect("the error as an extension");
    assert_eq!(refusal.error_type(), "overloaded");
    assert_eq!(
        body_text(response).await,
        "Concurrent request limit exceeded. Max concurrent requests: 2\n"
    );
}

#[tokio::test]
async fn every_wrapped_response_carries_x_duration_seconds() {
    let contract = Contract::new(ContractConfig::new("c"));
    let app = contract.wrap(Router::new().route("/", get(|| async { "hi" })));
    let response = app.oneshot(get_req("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seconds: f64 = response.headers()[X_DURATION_SECONDS]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(seconds >= 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_handler_past_the_exec_timeout_gets_504_marked_internal() {
    let contract = Contract::new(
        ContractConfig::new("of-watchdog").with_exec_timeout(Some(Duration::from_secs(2))),
    );
    let app = contract.wrap(Router::new().route(
        "/",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "late"
        }),
    ));
    let response = app.oneshot(get_req("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(response.headers()[X_OPENFAAS_INTERNAL], "of-watchdog");
    let refusal = response
        .extensions()
        .get::<ContractError>()
        .expect("the error as an extension");
    assert_eq!(refusal.error_type(), "timeout");
    drop(response);
    assert_eq!(contract.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn x_timeout_shortens_the_exec_timeout_but_never_lengthens_it() {
    let contract =
        Contract::new(ContractConfig::new("c").with_exec_timeout(Some(Duration::from_secs(10))));
    let headers = |v: &str| {
        let mut h = ::http::HeaderMap::new();
        h.insert(X_TIMEOUT, v.parse().unwrap());
        h
    };
    assert_eq!(
        contract.timeout_for(&headers("500ms")),
        Some(Duration::from_millis(500))
    );
    assert_eq!(
        contract.timeout_for(&headers("1m")),
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        contract.timeout_for(&headers("nonsense")),
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        contract.timeout_for(&::http::HeaderMap::new()),
        Some(Duration::from_secs(10))
    );

    let unlimited = Contract::new(ContractConfig::new("c").with_exec_timeout(None));
    assert_eq!(unlimited.timeout_for(&::http::HeaderMap::new()), None);
    assert_eq!(
        unlimited.timeout_for(&headers("2s")),
        Some(Duration::from_secs(2))
    );
}

#[tokio::test]
async fn the_in_flight_slot_is_held_until_a_streamed_body_is_dropped() {
    let contract = Contract::new(ContractConfig::new("c").with_max_inflight(1));
    let app = contract.wrap(Router::new().route(
        "/",
        get(|| async {
            let stream = futures::stream::pending::<Result<axum::body::Bytes, std::io::Error>>();
            Body::from_stream(stream)
        }),
    ));
    let response = app.clone().oneshot(get_req("/")).await.unwrap();
    assert_eq!(contract.in_flight(), 1);
    let refused = app.oneshot(get_req("/")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    drop(response);
    assert_eq!(contract.in_flight(), 0);
}

#[tokio::test]
async fn wait_ready_resolves_when_marked_ready() {
    let contract = Contract::new(ContractConfig::new("c"));
    let (tx, rx) = oneshot::channel();
    let waiter = {
        let contract = contract.clone();
        tokio::spawn(async move {
            contract.wait_ready().await;
            tx.send(()).unwrap();
        })
    };
    contract.mark_ready().unwrap();
    rx.await.unwrap();
    waiter.await.unwrap();
}

#[tokio::test]
async fn serve_keeps_serving_for_the_healthcheck_interval_and_drains_accepted_requests() {
    let dir = tempfile::tempdir().unwrap();
    let contract = Contract::new(
        ContractConfig::new("c")
            .with_lock_file(Some(dir.path().join(".lock")))
            .with_healthcheck_interval(Duration::from_millis(200))
            .with_write_timeout(Duration::from_secs(10)),
    );
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let (entered_tx, mut entered_rx) = tokio::sync::mpsc::channel::<()>(4);
    let slow = Router::new().route(
        "/slow",
        get(move || {
            let mut release = release_rx.clone();
            let entered = entered_tx.clone();
            async move {
                entered.send(()).await.unwrap();
                release.wait_for(|go| *go).await.unwrap();
                "finished"
            }
        }),
    );
    let app = contract
        .routes("/_/health", "/_/ready", None)
        .merge(contract.wrap(slow));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    contract.mark_ready().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app, contract.clone(), async {
        let _ = stop_rx.await;
    }));

    let client = reqwest::Client::new();
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .get(format!("http://{addr}/slow"))
                .send()
                .await?
                .text()
                .await
        }
    });
    entered_rx.recv().await.unwrap();
    stop_tx.send(()).unwrap();
    // Not-ready is visible at once, while the listener still accepts.
    let mut health = reqwest::StatusCode::OK;
    for _ in 0..50 {
        health = client
            .get(format!("http://{addr}/_/health"))
            .send()
            .await
            .unwrap()
            .status();
        if health == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(health, reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(!dir.path().join(".lock").exists());

    release_tx.send(true).unwrap();
    assert_eq!(in_flight.await.unwrap().unwrap(), "finished");
    server.await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn serve_gives_up_on_requests_still_running_at_the_write_timeout() {
    let contract = Contract::new(
        ContractConfig::new("c")
            .with_healthcheck_interval(Duration::ZERO)
            .with_write_timeout(Duration::from_millis(200)),
    );
    let (entered_tx, mut entered_rx) = tokio::sync::mpsc::channel::<()>(1);
    let stuck = Router::new().route(
        "/stuck",
        get(move || {
            let entered = entered_tx.clone();
            async move {
                entered.send(()).await.unwrap();
                std::future::pending::<()>().await;
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    contract.mark_ready().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        contract.wrap(stuck),
        contract.clone(),
        async {
            let _ = stop_rx.await;
        },
    ));
    let request = tokio::spawn(reqwest::get(format!("http://{addr}/stuck")));
    entered_rx.recv().await.unwrap();
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns after the drain deadline")
        .unwrap()
        .unwrap();
    assert_eq!(
        contract.in_flight(),
        1,
        "the stuck request was still running"
    );
    request.abort();
}

#[tokio::test(start_paused = true)]
async fn once_shutdown_has_begun_the_contract_never_turns_ready_again() {
    let contract =
        Contract::new(ContractConfig::new("c").with_healthcheck_interval(Duration::from_secs(1)));
    contract.mark_ready().unwrap();
    contract.begin_shutdown("test").await;
    assert!(contract.is_draining());
    contract.mark_ready().unwrap();
    assert!(!contract.is_healthy());
}
