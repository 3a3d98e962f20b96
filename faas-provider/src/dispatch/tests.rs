//! The model plane in process: a real emulated gpu-worker on a loopback port, the
//! provider's router driven with `oneshot`.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::config::Config;
use crate::server;

use super::*;

struct Rig {
    app: Router,
    plane: ModelPlane,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn worker(pairs: &[(&str, &str)]) -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut env: Vec<(String, String)> = vec![
        ("backend".into(), "emulated".into()),
        ("devices".into(), "cpu:2".into()),
        ("device_memory".into(), "256MiB".into()),
        ("emulated_time_scale".into(), "0.01".into()),
        ("probe_period".into(), "0s".into()),
    ];
    for (k, v) in pairs {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    let config = gpu_worker::config::Config::from_iter(env).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gpu_worker::run(
        listener,
        config,
        prometheus::Registry::new(),
        async move {
            let _ = stopped.await;
        },
    ));
    (url, stop)
}

async fn rig(dispatch: &[(&str, &str)], worker_env: &[(&str, &str)]) -> Rig {
    let (url, stop) = worker(worker_env).await;
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        state_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let state = server::prepare(config, prometheus::Registry::new())
        .await
        .unwrap();
    let mut pairs: Vec<(String, String)> = vec![
        ("workers".into(), url),
        ("health_interval".into(), "100ms".into()),
    ];
    pairs.extend(dispatch.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let dispatch = DispatchConfig::from_iter(pairs).unwrap();
    let (state, plane) = server::attach_dataplane(state, &dispatch, true).unwrap();
    assert!(
        plane.wait_for_gpus(2, Duration::from_secs(10)).await,
        "the worker joined"
    );
    Rig {
        app: crate::api::app(state),
        plane,
        _dir: dir,
        _stop: stop,
    }
}

impl Rig {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        body: Value,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let body = body.to_string();
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .body(Body::from(body))
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    async fn deploy(&self, name: &str, seed: u32, labels: Value) {
        let body = json!({
            "service": name, "image": "locus/mlp", "labels": labels,
            "annotations": {"locus.io/model": "resnet18", "locus.io/weights": format!("zoo://resnet18?seed={seed}")}
        });
        let (status, _, text) = self.call("POST", "/system/functions", body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    }

    async fn status(&self, name: &str) -> Value {
        let (_, _, text) = self
            .call("GET", &format!("/system/function/{name}"), Value::Null)
            .await;
        serde_json::from_str(&text).unwrap()
    }
}

#[tokio::test]
async fn a_request_reaches_the_worker_and_the_second_is_a_hit_on_the_same_gpu() {
    let rig = rig(&[], &[]).await;
    rig.deploy("img", 1, json!({})).await;
    let (s1, h1, b1) = rig.call("POST", "/function/img?top_k=2", json!("x")).await;
    assert_eq!(s1, StatusCode::OK, "{b1}");
    let (s2, h2, _) = rig
        .call("POST", "/function/img.openfaas-fn/sub/path", json!("x"))
        .await;
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(
        (&h1["x-locus-cache"], &h2["x-locus-cache"]),
        (&"miss".parse().unwrap(), &"hit".parse().unwrap())
    );
    assert_eq!(h1["x-locus-gpu"], h2["x-locus-gpu"]);
    assert!(h1.contains_key("x-call-id") && h1.contains_key("x-start-time"));
    rig.plane.settled().await;
    let status = rig.status("img").await;
    assert_eq!(status["availableReplicas"], 1, "{status}");
    assert_eq!(
        (
            status["gpu"]["hits"].as_u64(),
            status["gpu"]["misses"].as_u64()
        ),
        (Some(1), Some(1)),
        "{status}"
    );
    assert_eq!(
        status["gpu"]["resident"][0],
        h1["x-locus-gpu"].to_str().unwrap()
    );
    let record = rig
        .plane
        .inner
        .store
        .function("openfaas-fn", "img")
        .unwrap();
    let gpu = rig.plane.model_view(&record).unwrap();
    assert_eq!((gpu.hits, gpu.misses, gpu.resident.len()), (1, 1, 1));
    // `usage`: the device memory the model holds, the worker's own measure of one copy.
    let bytes: f64 = h1["x-locus-model-bytes"].to_str().unwrap().parse().unwrap();
    assert!(bytes > 0.0);
    assert_eq!(status["usage"]["totalMemoryBytes"], bytes, "{status}");
}

#[tokio::test]
async fn a_caller_s_call_id_is_kept_and_worker_errors_are_not_marked_as_provider_errors() {
    let rig = rig(&[], &[]).await;
    let body = json!({
        "service": "bad", "image": "x",
        "annotations": {"locus.io/model": "mlp", "locus.io/weights": "file:///nowhere/m.safetensors"}
    });
    assert_eq!(
        rig.call("POST", "/system/functions", body).await.0,
        StatusCode::ACCEPTED
    );
    let request = Request::post("/function/bad")
        .header("x-call-id", "abc")
        .header("content-length", 2)
        .body(Body::from("{}"))
        .unwrap();
    let response = rig.app.clone().oneshot(request).await.unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    assert_eq!(response.headers()["x-call-id"], "abc");
    assert!(response.headers().contains_key(invoke::WORKER_ERROR_HEADER));
    assert!(!response.headers().contains_key("x-locus-error"));
}

#[tokio::test]
async fn a_function_scaled_to_zero_is_scaled_up_by_its_first_request() {
    let rig = rig(&[], &[]).await;
    rig.deploy("cold", 2, json!({"com.openfaas.scale.min": "2"}))
        .await;
    let (s, _, _) = rig
        .call(
            "POST",
            "/system/scale-function/cold",
            json!({"serviceName": "cold", "replicas": 0}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(
        rig.status("cold").await["availableReplicas"]
            .as_u64()
            .unwrap_or(0),
        0,
        "absent when zero"
    );
    let (s, _, body) = rig.call("POST", "/function/cold", json!("x")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let status = rig.status("cold").await;
    assert_eq!(
        (
            status["replicas"].as_u64(),
            status["availableReplicas"].as_u64()
        ),
        (Some(2), Some(2))
    );
}

#[tokio::test]
async fn an_idle_function_is_scaled_to_zero_and_its_model_unloaded() {
    let rig = rig(&[], &[]).await;
    let labels =
        json!({"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "300ms"});
    rig.deploy("sleepy", 3, labels).await;
    assert_eq!(
        rig.call("POST", "/function/sleepy", json!("x")).await.0,
        StatusCode::OK
    );
    let record = rig
        .plane
        .inner
        .store
        .function("openfaas-fn", "sleepy")
        .unwrap();
    rig.plane.settled().await;
    assert_eq!(rig.plane.model_view(&record).unwrap().resident.len(), 1);
    let mut scaled = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if rig.status("sleepy").await["replicas"].as_u64().unwrap_or(0) == 0 {
            scaled = true;
            break;
        }
    }
    assert!(scaled, "scaled to zero after its idle time");
    for _ in 0..20 {
        if rig.plane.model_view(&record).unwrap().resident.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        rig.plane.model_view(&record).unwrap().resident.is_empty(),
        "unloaded everywhere"
    );
    assert_eq!(
        rig.call("POST", "/function/sleepy", json!("x")).await.0,
        StatusCode::OK,
        "the endpoint stays up"
    );
}

#[tokio::test]
async fn a_full_queue_answers_429_and_a_missed_deadline_504() {
    // Loads take 50 ms × 20 = 1 s here; the deadline is 200 ms. lalb-o3 keeps requests
    // in the central queue while every GPU is busy (locus places them at once).
    let rig = rig(
        &[
            ("policy", "lalb-o3"),
            ("queue_capacity", "1"),
            ("request_timeout", "200ms"),
        ],
        &[("emulated_time_scale", "20")],
    )
    .await;
    rig.deploy("slow", 4, json!({})).await;
    let app = rig.app.clone();
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                let request = Request::post("/function/slow")
                    .header("content-length", 1)
                    .body(Body::from("x"))
                    .unwrap();
                let response = app.oneshot(request).await.unwrap();
                (
                    response.status(),
                    response.headers().get("retry-after").cloned(),
                )
            })
        })
        .collect();
    let mut codes = Vec::new();
    for call in calls {
        codes.push(call.await.unwrap());
    }
    assert!(
        codes
            .iter()
            .any(|(s, r)| *s == StatusCode::TOO_MANY_REQUESTS && r.is_some()),
        "{codes:?}"
    );
    assert!(
        codes.iter().any(|(s, _)| *s == StatusCode::GATEWAY_TIMEOUT),
        "{codes:?}"
    );
    assert!(
        codes
            .iter()
            .all(|(s, _)| [StatusCode::TOO_MANY_REQUESTS, StatusCode::GATEWAY_TIMEOUT].contains(s)),
        "{codes:?}"
    );
}

#[tokio::test]
async fn a_call_without_input_is_described_or_refused_and_never_reaches_a_gpu() {
    let rig = rig(&[], &[]).await;
    rig.deploy("classify", 1, json!({})).await;
    let empty = |method: &str| {
        Request::builder()
            .method(method)
            .uri("/function/classify/any/path")
            .body(Body::empty())
            .unwrap()
    };
    let response = rig.app.clone().oneshot(empty("GET")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let described: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(described["function"], "classify.openfaas-fn");
    assert_eq!(described["model"], "resnet18");
    assert_eq!(described["weights"], "zoo://resnet18?seed=1");
    assert_eq!(described["task"], "image-classification");
    assert!(
        described["input"].as_str().unwrap().contains("JPEG"),
        "{described}"
    );

    let response = rig.app.clone().oneshot(empty("POST")).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["x-locus-error"], "no_input");
    assert_eq!(response.headers()["x-openfaas-internal"], "proxy");
    let head = rig.app.clone().oneshot(empty("HEAD")).await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);

    // Nothing was loaded, hit or missed for any of them.
    let status = rig.status("classify").await;
    assert_eq!(
        status["gpu"],
        json!({"resident": [], "hits": 0, "misses": 0}),
        "{status}"
    );
    assert!(status.get("usage").is_none(), "nothing resident: {status}");
}
