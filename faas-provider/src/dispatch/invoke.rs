//! One invocation of a model function, contract §1.6 on the way in and out: the
//! caller's headers (hop-by-hop ones dropped, `X-Forwarded-*` added when absent,
//! `X-Call-Id` ensured), the body streamed to the worker the actor chose, the worker's
//! status, headers and body streamed back. A request whose worker is lost is sent
//! again where the actor re-dispatches it, at most `max_retries` times; the deadline
//! covers queueing and the worker's answer.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, header};
use gpu_worker::wire::{self, InferReport};
use locus_scheduler::RequestId;
use tokio::sync::mpsc;

use super::Inner;
use super::actor::{Command, Event, ModelRef, Target};
use super::body::ReplayBody;
use super::error::DispatchError;
use super::workers::WorkerCallError;
use crate::dataplane::Invocation;
use crate::forwarding::{add_forwarded, end_to_end};

/// Response header naming the GPU that answered (`node/device`).
pub const GPU_HEADER: &str = "x-locus-gpu";
/// The worker's own error marker is renamed to this on the way out, so the provider's
/// `X-Locus-Error` only ever marks errors the provider made.
pub const WORKER_ERROR_HEADER: &str = "x-locus-worker-error";

/// Gives the request back to the actor if the caller leaves before it is answered.
struct Lease<'a> {
    inner: &'a Inner,
    id: RequestId,
    settled: bool,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if !self.settled {
            let _ = self.inner.commands.send(Command::Abandon { id: self.id });
        }
    }
}

/// The caller's headers as the worker gets them, plus the model headers.
pub fn upstream_headers(
    inv: &Invocation,
    model: &ModelRef,
    weights: &str,
    call_id: &HeaderValue,
) -> HeaderMap {
    let incoming = inv.request.headers();
    let mut headers = end_to_end(incoming);
    headers.remove(header::HOST);
    // The model headers below are the provider's to set, never the caller's.
    let callers: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with("x-locus-"))
        .cloned()
        .collect();
    for name in callers {
        headers.remove(name);
    }
    let peer = inv
        .request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    add_forwarded(&mut headers, incoming, peer);
    headers.insert("x-call-id", call_id.clone());
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    set(
        wire::FUNCTION,
        &format!("{}.{}", inv.function, inv.namespace),
    );
    set(wire::MODEL, &model.arch);
    set(wire::WEIGHTS, weights);
    if let Some(bytes) = model.memory_bytes {
        set(wire::MEMORY, &bytes.to_string());
    }
    headers
}

/// Sends the invocation through the actor to a worker and returns the worker's answer
/// (or the data plane's error). `headers` already name the model.
pub async fn dispatch(
    inner: &Inner,
    inv: Invocation,
    model: ModelRef,
    headers: HeaderMap,
) -> Result<Response<Body>, DispatchError> {
    let id = RequestId(
        inner
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    );
    let query = inv.request.uri().query().map(str::to_string);
    let target_name = inv.target.clone();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let submit = Command::Submit {
        id,
        target: inv.target.clone(),
        function: format!("{}.{}", inv.function, inv.namespace),
        model,
        events: events_tx,
    };
    inner
        .commands
        .send(submit)
        .map_err(|_| DispatchError::ShuttingDown)?;
    let mut lease = Lease {
        inner,
        id,
        settled: false,
    };
    let body = ReplayBody::new(inv.request.into_body(), inner.retry_buffer);
    let attempts = async {
        let mut next = events.recv().await;
        let mut tries = 0u32;
        loop {
            let target = match next {
                Some(Event::Dispatched(t)) => t,
                Some(Event::Rejected(e)) => {
                    lease.settled = true;
                    return Err(e);
                }
                None => return Err(DispatchError::ShuttingDown),
            };
            tries += 1;
            if tries > 1 + inner.max_retries {
                tracing::warn!(target = %target_name, tries, "retries spent");
                return Err(DispatchError::Unreachable(target_name.clone()));
            }
            // The view's plan travels with the request: its place in the GPU's order and
            // the victims to evict when admitted, so the worker's cache follows the view.
            let mut headers = headers.clone();
            if let Ok(order) = HeaderValue::from_str(&target.order) {
                headers.insert(wire::ORDER, order);
            }
            for victim in &target.victims {
                if let Ok(v) = HeaderValue::from_str(victim) {
                    headers.append(wire::EVICT, v);
                    inner.metrics.evictions.inc();
                }
            }
            let Some(stream) = body.attempt() else {
                tracing::warn!(target = %target_name, "worker lost and the body is too long to send again");
                return Err(DispatchError::Unreachable(target_name.clone()));
            };
            let send = inner.client.infer(
                &target.url,
                &target.device,
                query.as_deref(),
                headers,
                reqwest::Body::wrap_stream(stream),
            );
            tokio::select! {
                answer = send => match answer {
                    Ok(response) => {
                        let report = InferReport::from_headers(response.headers()).ok();
                        let _ = inner.commands.send(Command::Done { id, gpu: target.gpu, report });
                        lease.settled = true;
                        return Ok(respond(response, &target));
                    }
                    Err(WorkerCallError::Transport { url, source }) => {
                        tracing::warn!(worker = %url, error = %source, "worker unreachable; re-dispatching");
                        let _ = inner.commands.send(Command::WorkerFailed { node: target.node });
                        next = events.recv().await;
                    }
                    Err(other) => {
                        tracing::warn!(error = %other, "worker call failed");
                        return Err(DispatchError::Unreachable(target_name.clone()));
                    }
                },
                // The actor moved the request: its GPU went down under it.
                moved = events.recv() => next = moved,
            }
        }
    };
    match inner.deadline {
        Some(limit) => tokio::time::timeout(limit, attempts)
            .await
            .unwrap_or_else(|_| {
                Err(DispatchError::Timeout {
                    target: inv.target,
                    deadline: limit,
                })
            }),
        None => attempts.await,
    }
}

/// The worker's answer as the caller gets it: status, end-to-end headers, the body
/// streamed as it arrives.
fn respond(upstream: reqwest::Response, target: &Target) -> Response<Body> {
    let status =
        StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = end_to_end(upstream.headers());
    headers.remove(header::CONTENT_LENGTH);
    if let Some(marker) = headers.remove(wire::ERROR_MARKER) {
        headers.insert(WORKER_ERROR_HEADER, marker);
    }
    if let Ok(v) = HeaderValue::from_str(&target.label) {
        headers.insert(GPU_HEADER, v);
    }
    let length = upstream.content_length();
    let mut response = Response::new(Body::from_stream(upstream.bytes_stream()));
    *response.status_mut() = status;
    if let Some(len) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    *response.headers_mut() = headers;
    response
}

/// Fills in `Content-Type` (upstream's, else the request's, else `text/plain`) and, on
/// `up`, the gateway's `X-Call-Id` and `X-Start-Time`.
pub fn finish(
    mut response: axum::response::Response,
    request_type: Option<HeaderValue>,
    gateway: Option<(&HeaderValue, u128)>,
) -> axum::response::Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_TYPE) {
        let fallback = request_type.unwrap_or(HeaderValue::from_static("text/plain"));
        headers.insert(header::CONTENT_TYPE, fallback);
    }
    if let Some((call_id, start_ns)) = gateway {
        headers.insert("x-call-id", call_id.clone());
        headers.insert("x-start-time", HeaderValue::from(start_ns as u64));
    }
    response
}
