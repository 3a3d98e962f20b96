//! Forwarding one HTTP request to an upstream and streaming its answer back, as
//! faas-provider's proxy does (contract §1.6): method, headers and body as received,
//! `X-Forwarded-Host`/`X-Forwarded-For` added when absent, hop-by-hop headers dropped,
//! redirects not followed, bodies streamed both ways.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, header};
use futures::TryStreamExt;

/// Headers that belong to one connection and are never forwarded.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

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
    let mut headers = strip(&parts.headers);
    headers.remove(header::HOST);
    if let Some(host) = parts.headers.get(header::HOST)
        && !headers.contains_key("x-forwarded-host")
    {
        headers.insert("x-forwarded-host", host.clone());
    }
    if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>()
        && !headers.contains_key("x-forwarded-for")
        && let Ok(value) = HeaderValue::from_str(&peer.to_string())
    {
        headers.insert("x-forwarded-for", value);
    }
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
    *out = strip(upstream.headers());
    if !out.contains_key(header::CONTENT_TYPE) {
        let fallback = request_type.unwrap_or(HeaderValue::from_static("text/plain"));
        out.insert(header::CONTENT_TYPE, fallback);
    }
    let body = Body::from_stream(upstream.bytes_stream().map_err(std::io::Error::other));
    Ok(response
        .body(body)
        .expect("status and headers came from a valid response"))
}

/// `headers` without the hop-by-hop ones (and those `Connection` names).
fn strip(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let lower = name.as_str();
        if HOP_BY_HOP.contains(&lower) || named.iter().any(|n| n == lower) {
            continue;
        }
        out.append(HeaderName::clone(name), value.clone());
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("close, x-private"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("x-call-id", HeaderValue::from_static("abc"));
        let out = strip(&headers);
        assert_eq!(out.len(), 1);
        assert_eq!(out["x-call-id"], "abc");
    }
}
