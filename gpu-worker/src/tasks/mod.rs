//! Pre- and post-processing around the models: what an inference request carries in,
//! and what comes back out, for each task (image classification, text embedding, raw
//! KServe v2 tensors).

pub mod image;
pub mod tensor;
pub mod text;

use bytes::Bytes;
use locus_vram::profile::Task;

/// Why a request's input could not be turned into an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// The input is malformed or does not fit the model (client error).
    #[error("{0}")]
    InvalidInput(String),
    /// The model's own files (tokenizer, labels) are unusable.
    #[error("{0}")]
    Model(String),
    /// The forward pass failed.
    #[error("inference failed: {0}")]
    Compute(String),
}

/// How the body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InferMode {
    /// The model's task: image bytes, or text.
    Task,
    /// KServe v2 JSON tensors.
    Tensor,
}

/// One inference request as the device sees it.
#[derive(Debug, Clone)]
pub struct InferInput {
    /// The body.
    pub body: Bytes,
    /// Whether the body is JSON (from its content type).
    pub json: bool,
    /// How to read it.
    pub mode: InferMode,
    /// How many classes an image classification returns.
    pub top_k: usize,
}

/// One inference answer.
#[derive(Debug, Clone, PartialEq)]
pub struct InferOutput {
    /// The response body.
    pub body: Vec<u8>,
    /// Its content type.
    pub content_type: &'static str,
}

impl InferOutput {
    /// A JSON answer.
    pub fn json<T: serde::Serialize>(value: &T) -> Result<Self, TaskError> {
        serde_json::to_vec(value)
            .map(|body| InferOutput { body, content_type: "application/json" })
            .map_err(|e| TaskError::Compute(e.to_string()))
    }
}

/// Cheap checks of a request body before any model is loaded for it, so a request
/// that can never succeed does not evict anything: an image task needs a JPEG or PNG
/// header, a text task its texts, a tensor request a well-formed KServe v2 body.
/// (A corrupt image whose header is fine is still caught later, at decode.)
pub fn precheck(task: Task, input: &InferInput) -> Result<(), TaskError> {
    match (input.mode, task) {
        (InferMode::Tensor, _) => tensor::parse(&input.body).map(|_| ()),
        (InferMode::Task, Task::ImageClassification) => image::precheck(&input.body),
        (InferMode::Task, Task::TextEmbedding) => text::parse_texts(&input.body, input.json).map(|_| ()),
        (InferMode::Task, Task::Tensor) => Ok(()),
    }
}
