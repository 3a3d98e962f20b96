//! The seams the data plane plugs into, and the defaults the control plane runs with
//! until it does: who answers `/function/*` ([`Invoker`]), where log lines come from
//! ([`LogSource`]), and how many replicas are ready to serve ([`Availability`]).

use axum::body::Body;
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use time::OffsetDateTime;

use crate::error::ProviderError;
use crate::store::FunctionRecord;
use crate::types::LogMessage;

/// One call of `/function/{name}[.{ns}][/rest]`.
#[derive(Debug)]
pub struct Invocation {
    /// The name as it appeared in the path (`fn1` or `fn1.openfaas-fn`), for messages.
    pub target: String,
    /// The function's name (before the last dot).
    pub function: String,
    /// Its namespace (after the last dot, else the default).
    pub namespace: String,
    /// The upstream path: `/` for `/function/fn` and `/function/fn/`, `/a/b` for
    /// `/function/fn/a/b` (the raw query stays on `request`'s URI).
    pub path: String,
    /// The request as received: method, headers, streaming body; when served by
    /// [`crate::server::serve`] its extensions hold `ConnectInfo<SocketAddr>`.
    pub request: Request<Body>,
}

/// Answers invocations: resolves a ready replica and proxies the request to it.
pub trait Invoker: Send + Sync + 'static {
    /// Answers one invocation; errors are answered as responses (e.g. 503, 500).
    fn invoke(&self, invocation: Invocation) -> BoxFuture<'static, Response>;
}

/// The control plane's invoker: no replica can ever be resolved, so every call is
/// answered 503 `No endpoints available for: <name>.` as faas-provider's proxy does.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEndpoints;

impl Invoker for NoEndpoints {
    fn invoke(&self, invocation: Invocation) -> BoxFuture<'static, Response> {
        let response = ProviderError::NoEndpoints(invocation.target).into_response();
        Box::pin(async move { response })
    }
}

/// What `/system/logs` asks for (after validation).
#[derive(Debug, Clone, PartialEq)]
pub struct LogRequest {
    /// The function.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Only this replica's lines, when given.
    pub instance: Option<String>,
    /// Only lines written at or after this time.
    pub since: Option<OffsetDateTime>,
    /// At most this many past lines; `None` = all.
    pub tail: Option<u64>,
    /// Keep streaming new lines after the history.
    pub follow: bool,
}

/// Where function log lines come from.
pub trait LogSource: Send + Sync + 'static {
    /// The lines matching `request`. The stream ends when the history is exhausted and
    /// `follow` is false; with `follow` it may stay open (the route bounds it by
    /// `write_timeout` and ends it when the client goes away).
    fn logs(&self, request: LogRequest) -> BoxStream<'static, LogMessage>;
}

/// A log source with no lines: ends at once, or stays open and silent when following.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLogs;

impl LogSource for NoLogs {
    fn logs(&self, request: LogRequest) -> BoxStream<'static, LogMessage> {
        if request.follow {
            Box::pin(futures::stream::pending())
        } else {
            Box::pin(futures::stream::empty())
        }
    }
}

/// How many replicas of a function are ready to serve (`availableReplicas`).
pub trait Availability: Send + Sync + 'static {
    /// Ready replicas of `function`; never more than the data plane can really serve.
    fn available_replicas(&self, function: &FunctionRecord) -> u64;

    /// The status's extra `gpu` object (Locus extension, ignored by clients): for a
    /// model function, the GPUs holding its model and its hit and miss counts.
    fn gpu_status(&self, _function: &FunctionRecord) -> Option<serde_json::Value> {
        None
    }

    /// The status's `usage`, when the data plane knows it: for a model function, the
    /// device memory its model holds, every copy together.
    fn usage(&self, _function: &FunctionRecord) -> Option<crate::types::FunctionUsage> {
        None
    }
}

/// The control plane's view: every desired replica counts as available.
#[derive(Debug, Default, Clone, Copy)]
pub struct DesiredIsAvailable;

impl Availability for DesiredIsAvailable {
    fn available_replicas(&self, function: &FunctionRecord) -> u64 {
        function.replicas
    }
}
