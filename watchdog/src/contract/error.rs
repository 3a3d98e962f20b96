//! The errors the contract itself answers, and their one HTTP mapping.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use super::routes::X_OPENFAAS_INTERNAL;

/// A response synthesised by the contract rather than the function.
///
/// Its response carries the error itself as an extension, so a layer outside
/// [`Contract::wrap`](super::Contract::wrap) can tell a contract refusal from the
/// function's own answer and count it by [`ContractError::error_type`]:
/// `response.extensions().get::<ContractError>()`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ContractError {
    /// `max_inflight` requests are already being served.
    #[error("Concurrent request limit exceeded. Max concurrent requests: {max_inflight}")]
    Overloaded {
        /// The configured limit, quoted in the body as of-watchdog does.
        max_inflight: usize,
        /// Value of `X-OpenFaaS-Internal`.
        component: String,
    },
    /// The request ran past its exec timeout.
    #[error("Function exceeded its exec timeout of {timeout_seconds}s")]
    Timeout {
        /// The deadline that was exceeded, in seconds.
        timeout_seconds: f64,
        /// Value of `X-OpenFaaS-Internal`.
        component: String,
    },
}

impl ContractError {
    /// Stable snake_case name, for JSON bodies and failure-counter labels.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Overloaded { .. } => "overloaded",
            Self::Timeout { .. } => "timeout",
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn component(&self) -> &str {
        match self {
            Self::Overloaded { component, .. } | Self::Timeout { component, .. } => component,
        }
    }
}

impl IntoResponse for ContractError {
    fn into_response(self) -> Response {
        // of-watchdog writes these bodies with a trailing newline (Go's `Fprintf(..."\n")`).
        let body = format!("{self}\n");
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let Ok(value) = HeaderValue::from_str(self.component()) {
            headers.insert(X_OPENFAAS_INTERNAL, value);
        }
        response.extensions_mut().insert(self);
        response
    }
}
