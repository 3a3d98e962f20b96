//! In-process tests of the worker API (`tower::ServiceExt::oneshot`, no socket): real
//! Candle models for the tasks and the bad-input table, the emulated backend for cache
//! behaviour that would be slow with real models.

use std::io::Cursor;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::config::Config;
use crate::tasks::image::Classification;
use crate::tasks::tensor::InferResponse;
use crate::tasks::text::Embeddings;
use crate::wire::{CacheOutcome, ErrorBody};

struct Harness {
    state: AppState,
    dir: tempfile::TempDir,
}

fn harness(extra: &[(&str, &str)]) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("models");
    std::fs::create_dir_all(&root).unwrap();
    let mut pairs = vec![
        ("model_cache_dir".to_string(), dir.path().join("cache").display().to_string()),
        ("allowed_roots".to_string(), root.display().to_string()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_iter(pairs).unwrap();
    Harness { state: crate::build(&config, &Registry::new()).unwrap(), dir }
}

impl Harness {
    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("models")
    }

    async fn call(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        (parts.status, parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
    }

    async fn infer(&self, arch: &str, weights: &str, device: &str, body: impl Into<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        self.infer_with(arch, weights, device, "application/octet-stream", body).await
    }

    async fn infer_with(&self, arch: &str, weights: &str, device: &str, ct: &str, body: impl Into<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let req = Request::post("/v1/infer")
            .header(wire::MODEL, arch)
            .header(wire::WEIGHTS, weights)
            .header(wire::DEVICE, device)
            .header(wire::FUNCTION, "test-fn")
            .header(header::CONTENT_TYPE, ct)
            .body(body.into())
            .unwrap();
        self.call(req).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let (s, _, b) = self.call(Request::get(path).body(Body::empty()).unwrap()).await;
        (s, b)
    }

    async fn status(&self) -> WorkerStatus {
        serde_json::from_slice(&self.get("/v1/status").await.1).unwrap()
    }

    async fn post_json(&self, path: &str, json: serde_json::Value) -> (StatusCode, Vec<u8>) {
        let req = Request::post(path).header(header::CONTENT_TYPE, "application/json").body(Body::from(json.to_string())).unwrap();
        let (s, _, b) = self.call(req).await;
        (s, b)
    }
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7 % 256) as u8, (y * 3 % 256) as u8, 90]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

fn error_type(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body).map(|e| e.error_type).unwrap_or_else(|_| String::from_utf8_lossy(body).into())
}

const KSERVE_4: &str = r#"{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#;
const TINY_MLP: &str = "zoo://mlp?seed=3&input=4&width=8&depth=1&output=3";

#[tokio::test]
async fn an_image_is_classified_and_a_sentence_embedded_with_misses_then_hits_reported() {
    let h = harness(&[("devices", "cpu:2"), ("device_memory", "512MiB")]);
    let img = png(320, 200);
    let (s, headers, body) = h.infer("resnet18", "zoo://resnet18?seed=1", "cpu:0", img.clone()).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let report = InferReport::from_headers(&headers).unwrap();
    assert_eq!(report.cache.outcome, CacheOutcome::Miss);
    assert_eq!(report.cache.model_key, "resnet18@zoo://resnet18?seed=1");
    assert!(report.cache.model_bytes > 40_000_000);
    let first: Classification = serde_json::from_slice(&body).unwrap();
    assert_eq!(first.classes.len(), 5);
    assert!(first.classes.windows(2).all(|w| w[0].score >= w[1].score));

    let (s, headers, body) = h.infer("resnet18", "zoo://resnet18?seed=1", "cpu:0", img).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(InferReport::from_headers(&headers).unwrap().cache.outcome, CacheOutcome::Hit);
    assert_eq!(serde_json::from_slice::<Classification>(&body).unwrap(), first, "same image, same answer");

    let (s, headers, body) = h.infer_with("minilm", "zoo://minilm?seed=1", "cpu:1", "text/plain", "a sentence").await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers.get(wire::DEVICE).unwrap(), "cpu:1");
    let e: Embeddings = serde_json::from_slice(&body).unwrap();
    assert_eq!((e.embeddings.len(), e.dim, e.tokenizer.as_str()), (1, 384, "fallback"));
    let norm: f32 = e.embeddings[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3);

    // Bad input is refused before any model is loaded for it: nothing is evicted.
    let (s, headers, body) = h.infer("resnet50", "zoo://resnet50?seed=1", "cpu:1", "not an image").await;
    assert_eq!((s, error_type(&body).as_str()), (StatusCode::BAD_REQUEST, "invalid_input"));
    assert!(headers.get(wire::CACHE).is_none());
    // Bad input for a resident model: a clear 400, and the model stays resident and usable.
    let (s, _, body) = h.infer("resnet18", "zoo://resnet18?seed=1", "cpu:0", "not an image").await;
    assert_eq!((s, error_type(&body).as_str()), (StatusCode::BAD_REQUEST, "invalid_input"));
    let (s, _, _) = h.infer("resnet18", "zoo://resnet18?seed=1", "0", png(64, 64)).await;
    assert_eq!(s, StatusCode::OK);

    let st = h.status().await;
    assert_eq!(st.backend, "candle");
    assert_eq!(st.devices[0].models.len(), 1);
    assert_eq!(st.devices[1].models[0].arch, "minilm");
    let metrics = String::from_utf8(h.get("/metrics").await.1).unwrap();
    for needle in [
        "locus_worker_cache_hits_total{device=\"cpu:0\",model=\"resnet18@zoo://resnet18?seed=1\"} 2",
        "locus_worker_cache_misses_total{device=\"cpu:1\",model=\"minilm@zoo://minilm?seed=1\"} 1",
        "locus_worker_device_memory_capacity_bytes{device=\"cpu:1\"} 536870912",
        "locus_worker_request_failures_total{error_type=\"invalid_input\"} 2",
        "locus_worker_backend_info{backend=\"candle\"} 1",
        "locus_worker_inference_duration_seconds_count",
        "locus_worker_load_duration_seconds_count",
    ] {
        assert!(metrics.contains(needle), "missing {needle}");
    }
}

#[tokio::test]
async fn raw_kserve_tensors_go_in_and_come_out_for_an_mlp() {
    let h = harness(&[]);
    let req = serde_json::json!({"id": "r1", "inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [[1, 2, 3, 4], [0, 0, 0, 0]]}]});
    let (s, _, body) = h.infer_with("mlp", TINY_MLP, "cpu:0", "application/json", req.to_string()).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let resp: InferResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(resp.id.as_deref(), Some("r1"));
    assert_eq!(resp.outputs[0].shape, vec![2, 3]);
    assert_eq!(resp.outputs[0].data.len(), 6);

    let wrong = serde_json::json!({"inputs": [{"name": "input", "shape": [1, 5], "datatype": "FP32", "data": [1, 2, 3, 4, 5]}]});
    let (s, _, body) = h.infer_with("mlp", TINY_MLP, "cpu:0", "application/json", wrong.to_string()).await;
    assert_eq!((s, error_type(&body).as_str()), (StatusCode::BAD_REQUEST, "invalid_input"));
    assert!(String::from_utf8_lossy(&body).contains("[N, 4]"));
}

#[tokio::test]
async fn bad_requests_get_clear_client_errors_and_the_worker_stays_healthy() {
    let h = harness(&[("max_body_bytes", "1KiB"), ("allowed_schemes", "file,zoo")]);
    let (s, _, _) = h.infer_with("mlp", TINY_MLP, "cpu:0", "application/json", KSERVE_4).await;
    assert_eq!(s, StatusCode::OK);

    // Weights: a truncated file, and a file that holds another architecture.
    let good = h.root().join("mlp.safetensors");
    let config = crate::zoo::ModelConfig::from_params(crate::zoo::Arch::Mlp, &Default::default()).unwrap();
    crate::zoo::write_generated(&config, 1, &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(h.root().join("cut.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let file = |name: &str| format!("file://{}", h.root().join(name).display());
    let outside = tempfile::NamedTempFile::new().unwrap();

    let cases: Vec<(&str, String, &str, StatusCode, &str)> = vec![
        ("gpt9", "zoo://gpt9".into(), "cpu:0", StatusCode::BAD_REQUEST, "unknown_architecture"),
        ("resnet18", "zoo://resnet50?seed=1".into(), "cpu:0", StatusCode::BAD_REQUEST, "invalid_weights_uri"),
        ("mlp", "zoo://mlp?depth=zero".into(), "cpu:0", StatusCode::BAD_REQUEST, "invalid_weights_uri"),
        ("mlp", "https://example.invalid/m.safetensors".into(), "cpu:0", StatusCode::BAD_REQUEST, "weights_scheme_not_allowed"),
        ("mlp", "ftp://host/m.safetensors".into(), "cpu:0", StatusCode::BAD_REQUEST, "weights_scheme_not_allowed"),
        ("mlp", format!("file://{}", outside.path().display()), "cpu:0", StatusCode::FORBIDDEN, "weights_outside_allowed_roots"),
        ("mlp", format!("file://{}/../../etc/passwd", h.root().display()), "cpu:0", StatusCode::FORBIDDEN, "weights_outside_allowed_roots"),
        ("mlp", file("missing.safetensors"), "cpu:0", StatusCode::NOT_FOUND, "weights_not_found"),
        ("mlp", file("cut.safetensors"), "cpu:0", StatusCode::UNPROCESSABLE_ENTITY, "corrupt_weights"),
        ("resnet18", file("mlp.safetensors"), "cpu:0", StatusCode::UNPROCESSABLE_ENTITY, "weights_mismatch"),
        ("mlp", TINY_MLP.into(), "cpu:7", StatusCode::NOT_FOUND, "unknown_device"),
    ];
    for (arch, weights, device, status, kind) in cases {
        // A well-formed body for the model, so the weights are what is wrong.
        let input = match arch {
            "mlp" => KSERVE_4.as_bytes().to_vec(),
            "resnet18" => png(16, 16),
            _ => b"x".to_vec(),
        };
        let (s, headers, body) = h.infer(arch, &weights, device, input).await;
        assert_eq!((s, error_type(&body).as_str()), (status, kind), "{arch} {weights}: {}", String::from_utf8_lossy(&body));
        assert_eq!(headers.get(wire::ERROR_MARKER).unwrap(), "worker");
    }
    let (s, _, body) = h.infer("mlp", TINY_MLP, "cpu:0", vec![b'{'; 4096]).await;
    assert_eq!((s, error_type(&body).as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    let missing = Request::post("/v1/infer").header(wire::MODEL, "mlp").body(Body::empty()).unwrap();
    let (s, _, body) = h.call(missing).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains(wire::WEIGHTS));

    // The good file loads from its allowed root; the earlier model is still resident.
    let (s, body) = h.post_json("/v1/models/load", serde_json::json!({"model": {"arch": "mlp", "weights": file("mlp.safetensors")}})).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let keys: Vec<String> = h.status().await.devices[0].models.iter().map(|m| m.model_key.clone()).collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(h.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(h.get("/readyz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_third_model_that_does_not_fit_evicts_the_least_recently_used_one() {
    let h = harness(&[("backend", "emulated"), ("devices", "gpu:2"), ("device_memory", "200MB"), ("emulated_time_scale", "0")]);
    for (arch, seed) in [("resnet18", 1), ("minilm", 1), ("resnet18", 1)] {
        let (s, _, _) = h.infer(arch, &format!("zoo://{arch}?seed={seed}"), "gpu:1", "x").await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, headers, body) = h.infer("resnet50", "zoo://resnet50", "gpu:1", "x").await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("\"emulated\":true"));
    let report = InferReport::from_headers(&headers).unwrap();
    assert_eq!(report.cache.outcome, CacheOutcome::Miss);
    assert_eq!(report.cache.evicted, vec!["minilm@zoo://minilm?seed=1"]);
    let st = h.status().await;
    let order: Vec<&str> = st.devices[1].models.iter().map(|m| m.arch.as_str()).collect();
    assert_eq!(order, vec!["resnet18", "resnet50"], "least-recently-used first");
    assert_eq!(st.devices[1].used_bytes, st.devices[1].models.iter().map(|m| m.bytes).sum::<u64>());
    assert!(st.devices[0].models.is_empty());

    let (s, body) = h.post_json("/v1/models/evict", serde_json::json!({"device": "gpu:1", "model_key": "resnet18@zoo://resnet18?seed=1"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<EvictResponse>(&body).unwrap().freed_bytes, 46_796_448);
    let (s, body) = h.post_json("/v1/models/evict", serde_json::json!({"device": "gpu:1", "model_key": "resnet18@zoo://resnet18?seed=1"})).await;
    assert_eq!((s, error_type(&body).as_str()), (StatusCode::NOT_FOUND, "not_resident"));
    let too_big = serde_json::json!({"model": {"arch": "bert", "weights": "zoo://bert", "memory_bytes": 300_000_000u64}, "device": "gpu:0"});
    let (s, body) = h.post_json("/v1/models/load", too_big).await;
    assert_eq!((s, error_type(&body).as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "model_too_large"));
    let metrics = String::from_utf8(h.get("/metrics").await.1).unwrap();
    assert!(metrics.contains("locus_worker_evictions_total{device=\"gpu:1\",model=\"minilm@zoo://minilm?seed=1\",reason=\"capacity\"} 1"));
    assert!(metrics.contains("locus_worker_backend_info{backend=\"emulated\"} 1"));
}

#[tokio::test]
async fn concurrent_requests_share_one_load_and_a_declared_footprint_is_what_is_accounted() {
    let h = harness(&[("backend", "emulated"), ("emulated_setup_ms", "150"), ("emulated_speed", "gpu")]);
    let requests = (0..4).map(|_| h.infer("minilm", "zoo://minilm?seed=2", "cpu:0", "text"));
    let outcomes: Vec<CacheOutcome> = futures::future::join_all(requests)
        .await
        .into_iter()
        .map(|(s, headers, _)| {
            assert_eq!(s, StatusCode::OK);
            InferReport::from_headers(&headers).unwrap().cache.outcome
        })
        .collect();
    assert_eq!(outcomes.iter().filter(|o| **o == CacheOutcome::Miss).count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == CacheOutcome::Joined).count(), 3, "{outcomes:?}");
    let metrics = String::from_utf8(h.get("/metrics").await.1).unwrap();
    assert!(metrics.contains("locus_worker_loads_total{device=\"cpu:0\",model=\"minilm@zoo://minilm?seed=2\"} 1"));

    let req = Request::post("/v1/infer")
        .header(wire::MODEL, "resnet18")
        .header(wire::WEIGHTS, "zoo://resnet18?seed=9")
        .header(wire::MEMORY, "300Mi")
        .body(Body::from("x"))
        .unwrap();
    let (s, headers, _) = h.call(req).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(InferReport::from_headers(&headers).unwrap().cache.model_bytes, 300 << 20);
    let bad = Request::post("/v1/infer").header(wire::MODEL, "mlp").header(wire::WEIGHTS, TINY_MLP).header(wire::MEMORY, "lots").body(Body::empty()).unwrap();
    assert_eq!(h.call(bad).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sigterm_flips_readiness_then_drains_in_flight_requests_before_exiting() {
    let h = harness(&[
        ("backend", "emulated"),
        ("emulated_setup_ms", "0"),
        ("emulated_speed", "cpu"),
        ("emulated_time_scale", "3"),
        ("probe_period", "300ms"),
        ("drain_timeout", "10s"),
    ]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let server = tokio::spawn(crate::serve(listener, h.state.clone(), shutdown));
    let client = reqwest::Client::new();
    let url = format!("http://{addr}");
    // resnet18 on the CPU profile, times 3: about 350 ms of emulated inference.
    let slow = client.post(format!("{url}/v1/infer")).header(wire::MODEL, "resnet18").header(wire::WEIGHTS, "zoo://resnet18").body("x").send();
    let in_flight = tokio::spawn(slow);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    stop.send(()).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let ready = client.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready = client.get(format!("{url}/_/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Kubernetes liveness stays up while the drain finishes; OpenFaaS health does not.
    let live = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let health = client.get(format!("{url}/_/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(h.state.contract.is_draining());
    assert!(h.status().await.draining);
    let done = in_flight.await.unwrap().unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.headers().contains_key(X_DURATION_SECONDS));
    server.await.unwrap().unwrap();
    assert!(client.get(format!("{url}/healthz")).send().await.is_err(), "no longer listening");
}

use tokio::net::TcpListener;
use watchdog::contract::{X_DURATION_SECONDS, X_OPENFAAS_INTERNAL};

#[tokio::test]
async fn an_inference_beyond_max_inflight_is_429_with_the_of_watchdog_message_while_health_and_status_answer() {
    let h = harness(&[("backend", "emulated"), ("emulated_time_scale", "0"), ("max_inflight", "1")]);
    assert_eq!(h.get("/_/health").await, (StatusCode::OK, b"OK".to_vec()));
    assert_eq!(h.get("/_/ready").await.0, StatusCode::OK);

    // The one slot is taken (as an in-flight inference would hold it).
    let slot = h.state.contract.try_acquire().unwrap();
    let (s, headers, body) = h.infer("resnet18", "zoo://resnet18", "cpu:0", "x").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(String::from_utf8(body).unwrap(), "Concurrent request limit exceeded. Max concurrent requests: 1\n");
    assert_eq!(headers[X_OPENFAAS_INTERNAL], "gpu-worker");
    assert_eq!(headers[wire::ERROR_MARKER], "worker");
    assert!(headers.contains_key(X_DURATION_SECONDS));
    // Only inference is limited: status, metrics and health still answer; readiness
    // says 429 while the limit is reached, as the watchdog's does.
    assert_eq!(h.get("/v1/status").await.0, StatusCode::OK);
    assert_eq!(h.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(h.get("/_/health").await.0, StatusCode::OK);
    assert_eq!(h.get("/_/ready").await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h.get("/readyz").await.0, StatusCode::TOO_MANY_REQUESTS);
    let metrics = String::from_utf8(h.get("/metrics").await.1).unwrap();
    assert!(metrics.contains("locus_worker_request_failures_total{error_type=\"overloaded\"} 1"), "{metrics}");

    drop(slot);
    let (s, headers, _) = h.infer("resnet18", "zoo://resnet18", "cpu:0", "x").await;
    assert_eq!(s, StatusCode::OK);
    assert!(headers.contains_key(X_DURATION_SECONDS));
    assert!(!headers.contains_key(X_OPENFAAS_INTERNAL));
    assert_eq!(h.get("/readyz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_x_timeout_shorter_than_the_inference_is_a_504_from_the_worker() {
    // resnet18 on the CPU profile: about 120 ms of emulated inference.
    let h = harness(&[("backend", "emulated"), ("emulated_setup_ms", "0"), ("emulated_speed", "cpu")]);
    let req = Request::post("/v1/infer")
        .header(wire::MODEL, "resnet18")
        .header(wire::WEIGHTS, "zoo://resnet18")
        .header("x-timeout", "20ms")
        .body(Body::from("x"))
        .unwrap();
    let (s, headers, _) = h.call(req).await;
    assert_eq!(s, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(headers[X_OPENFAAS_INTERNAL], "gpu-worker");
    assert_eq!(headers[wire::ERROR_MARKER], "worker");
    let metrics = String::from_utf8(h.get("/metrics").await.1).unwrap();
    assert!(metrics.contains("locus_worker_request_failures_total{error_type=\"timeout\"} 1"), "{metrics}");
    assert_eq!(h.state.contract.in_flight(), 0);
}

/// An inference on `gpu:0` carrying the provider's plan: its place and its victims.
fn planned(arch: &str, order: &str, victims: &[&str]) -> Request<Body> {
    let mut req = Request::post("/v1/infer")
        .header(wire::MODEL, arch)
        .header(wire::WEIGHTS, format!("zoo://{arch}?seed=1"))
        .header(wire::DEVICE, "gpu:0")
        .header(wire::ORDER, order);
    for v in victims {
        req = req.header(wire::EVICT, *v);
    }
    req.body(Body::from("x")).unwrap()
}

#[tokio::test]
async fn requests_are_admitted_in_the_provider_s_order_with_its_planned_victims() {
    let h = harness(&[("backend", "emulated"), ("devices", "gpu:1"), ("device_memory", "200MB"), ("emulated_time_scale", "0"), ("order_patience", "30s")]);
    let key = |arch: &str| format!("{arch}@zoo://{arch}?seed=1");
    let outcome = |headers: &HeaderMap| InferReport::from_headers(headers).unwrap().cache.outcome;
    // resnet18 (47 MB) and minilm (90 MB) resident; 9.0 starts the provider's count.
    let (s, _, _) = h.call(planned("resnet18", "9.0", &[])).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = h.infer("minilm", "zoo://minilm?seed=1", "gpu:0", "x").await;
    assert_eq!(s, StatusCode::OK);

    // The provider decided: 9.1 loads resnet34 (87 MB) in place of resnet18, then 9.2
    // loads resnet18 again in place of minilm. 9.2 arrives first. Admitted on arrival it
    // would find resnet18 still there (a hit), and 9.1 would then evict it: the device
    // would end up without the resnet18 the provider counts on.
    let second = tokio::spawn({
        let state = h.state.clone();
        let victim = key("minilm");
        async move { app(state).oneshot(planned("resnet18", "9.2", &[&victim])).await.unwrap() }
    });
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    let (s, headers, body) = h.call(planned("resnet34", "9.1", &[&key("resnet18")])).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(outcome(&headers), CacheOutcome::Miss);
    let second = second.await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(outcome(second.headers()), CacheOutcome::Miss, "admitted after 9.1, not on arrival");
    assert!(InferReport::from_headers(second.headers()).unwrap().cache.evicted.is_empty());
    let st = h.status().await;
    let mut held: Vec<&str> = st.devices[0].models.iter().map(|m| m.arch.as_str()).collect();
    held.sort_unstable();
    assert_eq!(held, vec!["resnet18", "resnet34"]);
    let metrics = String::from_utf8(h.get("/metrics").await.1).unwrap();
    for victim in ["resnet18", "minilm"] {
        let line = format!("locus_worker_evictions_total{{device=\"gpu:0\",model=\"{}\",reason=\"planned\"}} 1", key(victim));
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }
    assert!(!metrics.contains("reason=\"capacity\""), "{metrics}");

    let (s, _, body) = h.call(planned("resnet18", "not-a-place", &[])).await;
    assert_eq!((s, error_type(&body).as_str()), (StatusCode::BAD_REQUEST, "invalid_request"));
}
