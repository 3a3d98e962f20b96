//! The four ways of reaching a function (`mode`): a long-running HTTP upstream, a process
//! forked per request (streamed or buffered), or static files; and the errors they answer.

mod http;
mod process;
mod serializing;
mod static_files;
mod streaming;

use std::sync::Arc;
use std::time::Duration;

use ::http::{HeaderValue, StatusCode, header};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Limited};
use tower::ServiceExt;

use crate::config::{Config, Mode};
use crate::contract::{Contract, Deadline, ReadyProbe, X_OPENFAAS_INTERNAL};

pub use self::http::HttpFunction;

/// The component name the watchdog puts in `X-OpenFaaS-Internal`.
pub const COMPONENT: &str = "of-watchdog";

/// Why the watchdog, not the function, failed a request.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// `fprocess` could not be started (missing, not executable).
    #[error("Unable to start function process {process:?}: {source}")]
    Spawn {
        /// The program that failed to start.
        process: String,
        /// Why.
        source: std::io::Error,
    },
    /// The forked process exited unsuccessfully before writing a response.
    #[error("Function process {0}")]
    Failed(String),
    /// The request body is larger than `max_request_bytes`.
    #[error("Request body exceeds the limit of {0} bytes")]
    TooLarge(u64),
    /// The request body could not be read from the client.
    #[error("Error reading request body: {0}")]
    ClientBody(String),
    /// The http-mode upstream could not be reached or failed mid-request.
    #[error("Upstream HTTP request error: {0}")]
    Upstream(String),
    /// The forked process or upstream ran past the request's deadline.
    #[error("Function exceeded its exec timeout of {}", crate::duration::display(*.0))]
    Timeout(Duration),
}

impl FunctionError {
    /// Stable snake_case name (for log lines and counters).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Spawn { .. } => "spawn_failed",
            Self::Failed(_) => "function_failed",
            Self::TooLarge(_) => "request_too_large",
            Self::ClientBody(_) => "client_body",
            Self::Upstream(_) => "upstream_failed",
            Self::Timeout(_) => "timeout",
        }
    }

    /// The status answered for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Spawn { .. } | Self::Failed(_) | Self::Upstream(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ClientBody(_) => StatusCode::BAD_REQUEST,
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}

impl IntoResponse for FunctionError {
    fn into_response(self) -> Response {
        // Upstream errors carry connection details for the log, not for the caller.
        let body = match &self {
            Self::Upstream(_) => "Upstream HTTP request error\n".to_string(),
            other => format!("{other}\n"),
        };
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(X_OPENFAAS_INTERNAL, HeaderValue::from_static(COMPONENT));
        response
    }
}

/// The function behind the watchdog, in its configured mode.
#[derive(Clone)]
pub enum Function {
    /// `streaming` or `serializing`: fork `fprocess` per request.
    Forking(Arc<process::Forking>),
    /// `http`: `fprocess` started once, requests proxied to `upstream_url`.
    Http(Arc<HttpFunction>),
    /// `static`: files under `static_path`.
    Static(Arc<static_files::StaticFiles>),
}

impl Function {
    /// Prepares the function for `config`; in http mode starts `fprocess` and marks
    /// `contract` ready once the upstream accepts connections. A process that cannot start
    /// is logged and leaves the watchdog unhealthy but serving (each request gets 500).
    pub fn start(config: &Config, contract: &Contract) -> Self {
        match config.mode {
            Mode::Streaming | Mode::Serializing => {
                Self::Forking(Arc::new(process::Forking::new(config)))
            }
            Mode::Http => Self::Http(HttpFunction::start(config, contract.clone())),
            Mode::Static => {
                tracing::info!("Serving files at: {}", config.static_path.display());
                Self::Static(Arc::new(static_files::StaticFiles::new(
                    config.static_path.clone(),
                )))
            }
        }
    }

    /// Whether the watchdog may mark itself ready as soon as it listens (http mode waits
    /// for its upstream instead).
    pub fn ready_at_start(&self) -> bool {
        !matches!(self, Self::Http(_))
    }

    /// The router answering every function path (used as the app's fallback).
    pub fn router(&self) -> Router {
        match self.clone() {
            Self::Forking(f) if f.streaming => {
                Router::new().fallback(move |r: Request| streaming::handle(f.clone(), r))
            }
            Self::Forking(f) => {
                Router::new().fallback(move |r: Request| serializing::handle(f.clone(), r))
            }
            Self::Http(f) => Router::new().fallback(move |r: Request| http::handle(f.clone(), r)),
            Self::Static(f) => {
                Router::new().fallback(move |r: Request| static_files::handle(f.clone(), r))
            }
        }
    }

    /// Stops the function after the drain: in http mode relays SIGTERM to the child and
    /// waits up to `grace` for it to exit before killing it.
    pub async fn stop(&self, grace: Duration) {
        if let Self::Http(f) = self {
            f.stop(grace).await;
        }
    }
}

/// `/_/ready` delegated to the function at `ready_path`, bypassing the in-flight limit as
/// of-watchdog does (forking modes can run a script that checks the path).
pub struct ReadyPath {
    /// The function's router, unwrapped by the contract layer.
    pub function: Router,
    /// The path the probe is sent to.
    pub path: String,
    /// Deadline for the probe (the exec timeout).
    pub timeout: Option<Duration>,
}

impl ReadyProbe for ReadyPath {
    fn probe(&self, request: Request) -> BoxFuture<'static, Response> {
        let (mut parts, _) = request.into_parts();
        let function = self.function.clone();
        let timeout = self.timeout;
        let path = self.path.clone();
        Box::pin(async move {
            parts.uri = match path.parse() {
                Ok(uri) => uri,
                Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            };
            if let Some(timeout) = timeout {
                let at = tokio::time::Instant::now() + timeout;
                parts.extensions.insert(Deadline { at, timeout });
            }
            let request = Request::from_parts(parts, Body::empty());
            match function.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        })
    }
}

/// Refuses a request whose declared `Content-Length` is over `limit` before any work.
pub(crate) fn check_declared_length(
    headers: &::http::HeaderMap,
    limit: Option<u64>,
) -> Result<(), FunctionError> {
    let Some(limit) = limit else { return Ok(()) };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit => Err(FunctionError::TooLarge(limit)),
        _ => Ok(()),
    }
}

/// Reads a whole request body, refusing more than `limit` bytes.
pub(crate) async fn read_body(body: Body, limit: Option<u64>) -> Result<Bytes, FunctionError> {
    let result = match limit {
        Some(limit) => Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    FunctionError::TooLarge(limit)
                } else {
                    FunctionError::ClientBody(e.to_string())
                }
            }),
        None => body
            .collect()
            .await
            .map_err(|e| FunctionError::ClientBody(e.to_string())),
    };
    result.map(|collected| collected.to_bytes())
}
