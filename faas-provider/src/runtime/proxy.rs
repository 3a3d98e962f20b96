//! Forwarding one HTTP request to an upstream and streaming its answer back, as
//! faas-provider's proxy does (contract §1.6): method, headers and body as received,
//! `X-Forwarded-Host`/`X-Forwarded-For` added when absent, hop-by-hop headers dropped,
//! redirects not followed, bodies streamed both ways.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, header};
use futures::TryStreamExt;

use crate::forwarding::{add_forwarded, end_to_end};

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No response head within the deadline.
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// The upstream could not be reached or broke the exchange.
    #[error("{0}")]
    Unreachable(String),
}

/// The client every forward uses: no redirects followed, no proxy from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

/// Sends `request` to `url` (already holding the upstream path and query); `timeout`
/// bounds the wait for the response head (zero = none).
pub async fn forward(
    client: &reqwest::Client,
    url: String,
    request: Request<Body>,
    timeout: Duration,
) -> Result<Response<Body>, ProxyError> {
    let (parts, body) = request.into_parts();
    let mut headers = end_to_end(&parts.headers);
    headers.remove(header::HOST);
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    add_forwarded(&mut headers, &parts.headers, peer);
    let request_type = parts.headers.get(header::CONTENT_TYPE).cloned();
    let send = client
        .request(parts.method, url)
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send();
    let upstream = if timeout.is_zero() {
        send.await
    } else {
        tokio::time::timeout(timeout, send)
            .await
            .map_err(|_| ProxyError::Timeout(timeout))?
    }
    .map_err(|e| ProxyError::Unreachable(describe(&e)))?;

    let mut response = Response::builder().status(upstream.status());
    let out = response.headers_mut().expect("a fresh builder has headers");
    *out = end_to_end(upstream.headers());
    if !out.contains_key(header::CONTENT_TYPE) {
        let fallback = request_type.unwrap_or(HeaderValue::from_static("text/plain"));
        out.insert(header::CONTENT_TYPE, fallback);
    }
    let body = Body::from_stream(upstream.bytes_stream().map_err(std::io::Error::other));
    Ok(response
        .body(body)
        .expect("status and headers came from a valid response"))
}

/// The error and its causes on one line, for logs.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
