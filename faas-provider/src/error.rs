//! The provider API's one error type and its one HTTP mapping.
//!
//! Bodies are one line of plain text (Go `http.Error` style: message plus newline,
//! `text/plain; charset=utf-8`), because OpenFaaS clients print the body as it is. Every
//! error response also carries `X-Locus-Error: <error_type>` so a provider-made error is
//! told apart from a function's own answer; proxy errors carry `X-OpenFaaS-Internal: proxy`
//! as faas-provider's proxy does. Internal details are logged, never returned.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::models::ModelError;
use crate::store::StoreError;

/// Header naming the `error_type` of every provider-made error response.
pub const ERROR_TYPE_HEADER: &str = "x-locus-error";

/// Who made an error response, for `X-OpenFaaS-Internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The API itself (no `X-OpenFaaS-Internal`).
    Api,
    /// The invocation proxy (`X-OpenFaaS-Internal: proxy`, as faas-provider's proxy).
    Proxy,
}

/// The one shape of every provider-made error: `message` on one line of plain text,
/// `X-Locus-Error: error_type`, and `X-OpenFaaS-Internal: proxy` when the proxy made it.
/// Every error enum of the provider answers through this.
pub fn plain_text_error(
    status: StatusCode,
    message: &str,
    error_type: &'static str,
    origin: Origin,
) -> Response {
    // One line: a newline inside a message would split what clients print.
    let body = format!("{}\n", message.replace(['\r', '\n'], " "));
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(ERROR_TYPE_HEADER, HeaderValue::from_static(error_type));
    if origin == Origin::Proxy {
        headers.insert("x-openfaas-internal", HeaderValue::from_static("proxy"));
    }
    response
}

/// Everything a provider route can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Invalid input: a missing or malformed field, name, label or quantity.
    #[error("{0}")]
    BadRequest(String),
    /// A body that is not the JSON the route expects.
    #[error("invalid request body: {0}")]
    InvalidJson(String),
    /// A model annotation that is missing or malformed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A body larger than `max_body_bytes`.
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// Query parameters that cannot be parsed (the logs route answers 422 for them).
    #[error("{0}")]
    Unprocessable(String),
    /// Missing or wrong basic-auth credentials.
    #[error("invalid credentials")]
    Unauthorized,
    /// A store outcome: not found, already exists, unknown namespace, or a backend failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `/function/` without a name.
    #[error("Provide function name in the request path")]
    NoFunctionName,
    /// No ready replica of the function could be resolved.
    #[error("No endpoints available for: {0}.")]
    NoEndpoints(String),
    /// A replica was resolved but could not be reached in time.
    #[error("Can't reach service for: {0}.")]
    Unreachable(String),
    /// A `/system/*` handler did not answer within `write_timeout`.
    #[error("the provider did not answer within {}", humantime::format_duration(*.0))]
    Timeout(std::time::Duration),
    /// An unknown path.
    #[error("404 page not found")]
    RouteNotFound,
}

impl ProviderError {
    /// A stable snake_case name for the error, used as a header and a metric label.
    pub fn error_type(&self) -> &'static str {
        match self {
            ProviderError::BadRequest(_) => "bad_request",
            ProviderError::InvalidJson(_) => "invalid_json",
            ProviderError::Model(_) => "invalid_model",
            ProviderError::PayloadTooLarge { .. } => "payload_too_large",
            ProviderError::Unprocessable(_) => "unprocessable",
            ProviderError::Unauthorized => "unauthorized",
            ProviderError::Store(e) => e.error_type(),
            ProviderError::NoFunctionName => "no_function_name",
            ProviderError::NoEndpoints(_) => "no_endpoints",
            ProviderError::Unreachable(_) => "unreachable",
            ProviderError::Timeout(_) => "timeout",
            ProviderError::RouteNotFound => "route_not_found",
        }
    }

    /// The HTTP status of this error (the contract's status table).
    pub fn status(&self) -> StatusCode {
        match self {
            ProviderError::BadRequest(_)
            | ProviderError::InvalidJson(_)
            | ProviderError::Model(_)
            | ProviderError::NoFunctionName => StatusCode::BAD_REQUEST,
            ProviderError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProviderError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ProviderError::Unauthorized => StatusCode::UNAUTHORIZED,
            ProviderError::Store(e) => match e {
                StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
                StoreError::AlreadyExists { .. } | StoreError::NamespaceNotEmpty { .. } => {
                    StatusCode::CONFLICT
                }
                StoreError::UnknownNamespace(_)
                | StoreError::UnknownSecret { .. }
                | StoreError::DefaultNamespace(_) => StatusCode::BAD_REQUEST,
                StoreError::Open { .. } | StoreError::Corrupt(_) | StoreError::Backend(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
            ProviderError::NoEndpoints(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProviderError::Unreachable(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ProviderError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProviderError::RouteNotFound => StatusCode::NOT_FOUND,
        }
    }

    /// The one-line message clients see; internal failures are not described.
    fn public_message(&self) -> String {
        match self {
            ProviderError::Store(e) if e.is_internal() => {
                tracing::error!(error = %e, "store failure");
                "internal store error".to_string()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ProviderError {
    fn into_response(self) -> Response {
        let origin = match self {
            ProviderError::NoFunctionName
            | ProviderError::NoEndpoints(_)
            | ProviderError::Unreachable(_) => Origin::Proxy,
            _ => Origin::Api,
        };
        let mut response =
            plain_text_error(self.status(), &self.public_message(), self.error_type(), origin);
        if let ProviderError::Unauthorized = self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Restricted\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn store_failures_are_500_without_internal_details() {
        let response = ProviderError::Store(StoreError::Backend("disk /dev/sda1 on fire".into()))
            .into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["x-locus-error"], "store_backend");
        assert_eq!(body_of(response).await, "internal store error\n");
    }

    #[tokio::test]
    async fn proxy_errors_carry_the_openfaas_internal_header() {
        for (error, status) in [
            (ProviderError::NoFunctionName, StatusCode::BAD_REQUEST),
            (
                ProviderError::NoEndpoints("fn1".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                ProviderError::Unreachable("fn1".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ] {
            let response = error.into_response();
            assert_eq!(response.status(), status);
            assert_eq!(response.headers()["x-openfaas-internal"], "proxy");
        }
        let body = body_of(ProviderError::Unreachable("fn1".into()).into_response()).await;
        assert_eq!(body, "Can't reach service for: fn1.\n");
    }

    #[tokio::test]
    async fn messages_stay_on_one_line() {
        let response = ProviderError::BadRequest("a\nb\r\nc".into()).into_response();
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; charset=utf-8"
        );
        assert_eq!(body_of(response).await, "a b  c\n");
    }

    #[test]
    fn every_store_outcome_has_its_contract_status() {
        let cases = [
            (StoreError::NotFound("x".into()), 404),
            (StoreError::AlreadyExists("x".into()), 409),
            (
                StoreError::NamespaceNotEmpty {
                    name: "a".into(),
                    functions: 1,
                    secrets: 0,
                },
                409,
            ),
            (StoreError::UnknownNamespace("a".into()), 400),
            (
                StoreError::UnknownSecret {
                    name: "s".into(),
                    namespace: "a".into(),
                },
                400,
            ),
            (StoreError::DefaultNamespace("openfaas-fn".into()), 400),
            (StoreError::Corrupt("x".into()), 500),
        ];
        for (error, status) in cases {
            assert_eq!(ProviderError::Store(error).status().as_u16(), status);
        }
    }
}
