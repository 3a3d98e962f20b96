//! The worker API's error type: every failure a request can meet, one stable
//! snake_case `error_type()` each (used in the JSON body and as the failure metric's
//! label), and the one status table that maps them to HTTP. Client mistakes are 4xx
//! with a message naming the problem; internal details are logged, not returned.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};

use crate::device::{self, DeviceError};
use crate::wire::{ERROR_MARKER, ErrorBody};
use crate::zoo::ZooError;
use crate::zoo::weights::WeightsError;

/// Why a worker request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WorkerError {
    /// The request itself is malformed (missing or bad header, bad JSON).
    #[error("{0}")]
    BadRequest(String),
    /// No device has this name.
    #[error("unknown device `{name}` (devices: {known})")]
    UnknownDevice {
        /// The name asked for.
        name: String,
        /// The worker's devices.
        known: String,
    },
    /// The architecture or its parameters.
    #[error("{0}")]
    Zoo(#[from] ZooError),
    /// The weights URI or file.
    #[error("{0}")]
    Weights(#[from] WeightsError),
    /// The device refused or failed.
    #[error("{0}")]
    Device(#[from] DeviceError),
    /// The body is larger than `max_body_bytes`.
    #[error("request body is larger than the {0} byte limit")]
    PayloadTooLarge(u64),
    /// The body could not be read.
    #[error("cannot read request body: {0}")]
    Body(String),
}

impl WorkerError {
    /// Stable snake_case name of the error.
    pub fn error_type(&self) -> &'static str {
        match self {
            WorkerError::BadRequest(_) => "invalid_request",
            WorkerError::UnknownDevice { .. } => "unknown_device",
            WorkerError::Zoo(z) => zoo_type(z),
            WorkerError::Weights(w) => match w {
                WeightsError::BadUri { .. } => "invalid_weights_uri",
                WeightsError::Scheme { .. } => "weights_scheme_not_allowed",
                WeightsError::OutsideRoots { .. } => "weights_outside_allowed_roots",
                WeightsError::NotFound(_) => "weights_not_found",
                WeightsError::Corrupt(_) => "corrupt_weights",
                WeightsError::Zoo(z) => zoo_type(z),
                WeightsError::Download { .. } => "weights_download_failed",
                WeightsError::Checksum { .. } => "checksum_mismatch",
                WeightsError::Io(_) => "internal",
            },
            WorkerError::Device(d) => device::error_type(d),
            WorkerError::PayloadTooLarge(_) => "payload_too_large",
            WorkerError::Body(_) => "invalid_request",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self.error_type() {
            "invalid_request" | "unknown_architecture" | "invalid_weights_uri" | "weights_scheme_not_allowed"
            | "invalid_input" | "unsupported_input" => StatusCode::BAD_REQUEST,
            "weights_outside_allowed_roots" => StatusCode::FORBIDDEN,
            "unknown_device" | "weights_not_found" | "not_resident" => StatusCode::NOT_FOUND,
            "pinned" | "loading" | "already_present" => StatusCode::CONFLICT,
            "payload_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
            "weights_mismatch" | "corrupt_weights" | "checksum_mismatch" | "model_too_large" => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            "no_room" => StatusCode::TOO_MANY_REQUESTS,
            "weights_download_failed" => StatusCode::BAD_GATEWAY,
            "device_stopped" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

fn zoo_type(z: &ZooError) -> &'static str {
    match z {
        ZooError::UnknownArch(_) => "unknown_architecture",
        ZooError::BadParam(_) => "invalid_weights_uri",
        ZooError::Mismatch(_) => "weights_mismatch",
        ZooError::Build(_) => "internal",
    }
}

impl IntoResponse for WorkerError {
    fn into_response(self) -> Response {
        let status = self.status();
        let error = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE && status != StatusCode::BAD_GATEWAY {
            tracing::error!(error = %self, "request failed");
            "internal error (details in the worker log)".to_string()
        } else {
            self.to_string()
        };
        let body = ErrorBody { error, error_type: self.error_type().to_string() };
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut().insert(ERROR_MARKER, HeaderValue::from_static("worker"));
        if status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}
