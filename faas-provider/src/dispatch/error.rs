//! The data plane's errors and their one HTTP mapping, in the control plane's style:
//! one line of plain text, `X-Locus-Error: <error_type>` on every one, and
//! `X-OpenFaaS-Internal: proxy` as faas-provider's proxy marks the answers it made
//! itself rather than the function.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::{Origin, plain_text_error};

/// Why an invocation of a model function was not answered by a worker.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DispatchError {
    /// No worker GPU is up, or none can ever hold the model.
    #[error("No endpoints available for: {0}.")]
    NoEndpoints(String),
    /// The model is larger than every GPU.
    #[error(
        "No endpoints available for: {target}. (model needs {bytes} bytes, largest GPU has {usable})"
    )]
    TooLarge {
        /// The invoked name.
        target: String,
        /// The model's footprint.
        bytes: u64,
        /// The largest usable bytes of any GPU.
        usable: u64,
    },
    /// The central queue is full.
    #[error("too many requests waiting ({limit}); retry later")]
    Overloaded {
        /// The queue's capacity.
        limit: usize,
    },
    /// The request did not finish within the deadline.
    #[error("function {target} did not answer within {}", humantime::format_duration(*.deadline))]
    Timeout {
        /// The invoked name.
        target: String,
        /// The deadline.
        deadline: Duration,
    },
    /// Every attempt to reach a worker failed (worker lost, retries spent).
    #[error("Can't reach service for: {0}.")]
    Unreachable(String),
    /// The request has no body, and a model needs an input.
    #[error("{function} runs a model and needs an input: {input}")]
    NoInput {
        /// The invoked name, `name.namespace`.
        function: String,
        /// How to send one.
        input: &'static str,
    },
    /// The dispatcher stopped (the provider is shutting down).
    #[error("the dispatcher is shutting down")]
    ShuttingDown,
}

impl DispatchError {
    /// A stable snake_case name, used as a header and a metric label.
    pub fn error_type(&self) -> &'static str {
        match self {
            DispatchError::NoEndpoints(_) => "no_endpoints",
            DispatchError::TooLarge { .. } => "model_too_large",
            DispatchError::Overloaded { .. } => "overloaded",
            DispatchError::Timeout { .. } => "timeout",
            DispatchError::Unreachable(_) => "unreachable",
            DispatchError::NoInput { .. } => "no_input",
            DispatchError::ShuttingDown => "shutting_down",
        }
    }

    /// The HTTP status (contract §1.6 for the proxy's own answers; 429 and 504 as the
    /// house style's status table).
    pub fn status(&self) -> StatusCode {
        match self {
            DispatchError::NoEndpoints(_) | DispatchError::TooLarge { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            DispatchError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            DispatchError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            DispatchError::Unreachable(_) => StatusCode::INTERNAL_SERVER_ERROR,
            DispatchError::NoInput { .. } => StatusCode::BAD_REQUEST,
            DispatchError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Seconds a client told 429 should wait before trying again.
pub const RETRY_AFTER_SECS: u64 = 1;

impl IntoResponse for DispatchError {
    fn into_response(self) -> Response {
        let mut response = plain_text_error(
            self.status(),
            &self.to_string(),
            self.error_type(),
            Origin::Proxy,
        );
        if matches!(
            self,
            DispatchError::Overloaded { .. } | DispatchError::ShuttingDown
        ) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_is_429_with_retry_after_and_the_proxy_marker() {
        let response = DispatchError::Overloaded { limit: 3 }.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(response.headers()["x-openfaas-internal"], "proxy");
        assert_eq!(response.headers()["x-locus-error"], "overloaded");
    }

    #[tokio::test]
    async fn contract_bodies_are_kept_word_for_word() {
        let response = DispatchError::NoEndpoints("fn1".into()).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"No endpoints available for: fn1.\n");
        let timeout = DispatchError::Timeout {
            target: "fn1".into(),
            deadline: Duration::from_secs(2),
        };
        assert_eq!(timeout.status(), StatusCode::GATEWAY_TIMEOUT);
    }
}
