//! A pipeline function for the watchdog: takes an image, asks the resnet model function
//! for its classes through the gateway, and answers with the labels in a friendlier shape.
//!
//! Run it behind the watchdog in serializing mode (one process per request, whole image on
//! stdin, JSON on stdout):
//!
//! ```text
//! mode=serializing content_type=application/json \
//!   fprocess=target/release/examples/resnet_pipeline \
//!   gateway_url=http://127.0.0.1:8080 model_function=resnet18 top_k=3 \
//!   target/release/watchdog
//! curl --data-binary @cat.jpg -H 'Content-Type: image/jpeg' http://127.0.0.1:8080/
//! {"best":"tabby cat","labels":[{"label":"tabby cat","confidence_percent":87.1},...]}
//! ```
//!
//! Environment: `gateway_url` (default `http://127.0.0.1:8080`), `model_function` (default
//! `resnet18`), `top_k` (default 3), and the watchdog's `Http_Content_Type` for the image's
//! type. The model function answers `{"classes":[{"index":N,"score":S,"label":"..."}]}`,
//! best first. Failures go to stderr with a non-zero exit, which the watchdog turns into
//! a 500 and a log line. `tests/pipeline.rs` runs it behind a watchdog against a fake
//! gateway (`cargo test` builds examples before running tests).

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

/// One class as the model function returns it.
#[derive(Debug, Deserialize)]
struct Class {
    index: usize,
    score: f32,
    #[serde(default)]
    label: Option<String>,
}

/// The model function's response.
#[derive(Debug, Deserialize)]
struct Classification {
    classes: Vec<Class>,
}

/// One label in the friendlier answer.
#[derive(Debug, Serialize, PartialEq)]
struct Label {
    label: String,
    confidence_percent: f32,
}

/// The friendlier answer.
#[derive(Debug, Serialize, PartialEq)]
struct Answer {
    best: Option<String>,
    labels: Vec<Label>,
}

/// The `top_k` best classes, named (`class N` when the model has no label file), with
/// scores as percentages rounded to one decimal.
fn friendlier(classification: Classification, top_k: usize) -> Answer {
    let labels: Vec<Label> = classification
        .classes
        .into_iter()
        .take(top_k)
        .map(|class| Label {
            label: class
                .label
                .unwrap_or_else(|| format!("class {}", class.index)),
            confidence_percent: (class.score * 1000.0).round() / 10.0,
        })
        .collect();
    Answer {
        best: labels.first().map(|l| l.label.clone()),
        labels,
    }
}

fn env(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(message) = pipeline().await {
        eprintln!("resnet-pipeline: {message}");
        std::process::exit(1);
    }
}

async fn pipeline() -> Result<(), String> {
    let gateway = env("gateway_url", "http://127.0.0.1:8080");
    let model = env("model_function", "resnet18");
    let top_k: usize = env("top_k", "3")
        .parse()
        .map_err(|_| "top_k must be a positive integer".to_string())?;
    let content_type = env("Http_Content_Type", "application/octet-stream");

    let mut image = Vec::new();
    std::io::stdin()
        .read_to_end(&mut image)
        .map_err(|e| format!("reading the image: {e}"))?;
    if image.is_empty() {
        return Err("send an image as the request body".into());
    }
    let url = format!("{}/function/{model}", gateway.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .header("Content-Type", content_type)
        .body(image)
        .send()
        .await
        .map_err(|e| format!("calling {url}: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let classification: Classification = serde_json::from_slice(&body)
        .map_err(|e| format!("{url} answered unexpected JSON: {e}"))?;
    let answer =
        serde_json::to_vec(&friendlier(classification, top_k)).map_err(|e| e.to_string())?;
    std::io::stdout()
        .write_all(&answer)
        .map_err(|e| format!("writing the answer: {e}"))
}
