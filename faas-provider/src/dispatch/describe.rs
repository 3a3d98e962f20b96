//! A model function called without input. Every model needs one, so such a call never
//! reaches the scheduler (where it could plan a load and evict for nothing): `GET` or
//! `HEAD` is answered with what the function runs and what it takes, any other method
//! with 400 saying the same.

use axum::Json;
use axum::extract::Request;
use axum::http::{Method, Version, header};
use axum::response::{IntoResponse, Response};
use locus_vram::profile::{self, Task};
use serde::Serialize;

use super::actor::ModelRef;
use super::error::DispatchError;
use super::view::ModelView;

/// What `GET /function/NAME` shows for a model function.
#[derive(Debug, Serialize)]
pub struct Description {
    /// The invoked name, `name.namespace`.
    pub function: String,
    /// The architecture (`locus.io/model`).
    pub model: String,
    /// The weights URI (`locus.io/weights`).
    pub weights: String,
    /// The declared footprint in bytes (`locus.io/memory`), when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// The task's name.
    pub task: &'static str,
    /// How to call it.
    pub input: &'static str,
    /// Where it is resident and how often it was found there.
    pub gpu: ModelView,
}

/// The task of `arch` and how a caller sends it input.
pub fn task_of(arch: &str) -> (&'static str, &'static str) {
    match profile::profile(arch).map(|p| p.task) {
        Some(Task::ImageClassification) => (
            "image-classification",
            "POST a JPEG or PNG image (?top_k=N, default 5), or KServe v2 tensors as JSON",
        ),
        Some(Task::TextEmbedding) => (
            "text-embedding",
            "POST text, or JSON {\"inputs\": \"…\"} or {\"inputs\": [\"…\", …]}",
        ),
        Some(Task::Tensor) | None => (
            "tensor",
            "POST KServe v2 tensors as JSON: {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}",
        ),
    }
}

/// True when `request` carries no body: `Content-Length: 0`; an HTTP/1 request with
/// neither `Content-Length` nor `Transfer-Encoding` (RFC 9112 §6.3: its body is empty);
/// or a body that says it is empty (layers that wrap it may hide that, hence the
/// headers first).
pub fn has_no_body(request: &Request) -> bool {
    let headers = request.headers();
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let http1 = matches!(request.version(), Version::HTTP_10 | Version::HTTP_11);
    let body = request.body();
    length == Some("0")
        || (http1 && length.is_none() && !headers.contains_key(header::TRANSFER_ENCODING))
        || axum::body::HttpBody::is_end_stream(body)
        || axum::body::HttpBody::size_hint(body).exact() == Some(0)
}

/// The answer to a call of `function` that carries no body.
pub fn without_input(
    method: &Method,
    function: String,
    model: &ModelRef,
    weights: String,
    gpu: ModelView,
) -> Response {
    let (task, input) = task_of(&model.arch);
    if method == Method::GET || method == Method::HEAD {
        let description = Description {
            function,
            model: model.arch.clone(),
            weights,
            memory_bytes: model.memory_bytes,
            task,
            input,
            gpu,
        };
        return Json(description).into_response();
    }
    DispatchError::NoInput { function, input }.into_response()
}
