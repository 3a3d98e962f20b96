//! The example pipeline (`examples/resnet_pipeline.rs`) behind a real watchdog, calling a
//! fake gateway that stands in for the resnet model function.

mod common;

use std::path::PathBuf;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{Embedded, client};
use tokio::net::TcpListener;

/// `cargo test` builds the examples next to the test binaries' `deps/` directory.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir.join("examples").join("resnet_pipeline");
    assert!(path.exists(), "build the example first: {}", path.display());
    path
}

async fn fake_gateway() -> String {
    let app = Router::new()
        .route(
            "/function/resnet18",
            post(|headers: HeaderMap, body: Bytes| async move {
                if headers.get("content-type").is_none_or(|t| t != "image/png") || body.is_empty() {
                    return (StatusCode::BAD_REQUEST, "want a png".to_string());
                }
                (
                    StatusCode::OK,
                    r#"{"classes":[{"index":281,"score":0.8712,"label":"tabby cat"},{"index":285,"score":0.05,"label":"Egyptian cat"},{"index":9,"score":0.01}]}"#.to_string(),
                )
            }),
        )
        .route("/function/broken", post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "model not loaded") }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn the_pipeline_turns_model_classes_into_friendly_labels() {
    let gateway = fake_gateway().await;
    let binary = example_binary();
    let wd = Embedded::start(&[
        ("fprocess", binary.to_str().unwrap()),
        ("mode", "serializing"),
        ("content_type", "application/json"),
        ("gateway_url", &gateway),
        ("top_k", "2"),
    ])
    .await;
    let response = client()
        .post(wd.url("/"))
        .header("Content-Type", "image/png")
        .body(vec![0x89, b'P', b'N', b'G'])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        answer,
        serde_json::json!({
            "best": "tabby cat",
            "labels": [
                {"label": "tabby cat", "confidence_percent": 87.1},
                {"label": "Egyptian cat", "confidence_percent": 5.0}
            ]
        })
    );
}

#[tokio::test]
async fn a_failing_model_function_becomes_a_500_from_the_pipeline() {
    let gateway = fake_gateway().await;
    let binary = example_binary();
    let wd = Embedded::start(&[
        ("fprocess", binary.to_str().unwrap()),
        ("mode", "serializing"),
        ("gateway_url", &gateway),
        ("model_function", "broken"),
    ])
    .await;
    let response = client()
        .post(wd.url("/"))
        .body("not really an image")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("exited with status 1")
    );
}
