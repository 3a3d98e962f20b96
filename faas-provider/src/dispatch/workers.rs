//! The provider's client of the gpu-worker API (`gpu_worker::wire`): status for
//! membership and reconciliation, inference with streaming bodies both ways, and
//! eviction for idle unload. One pooled HTTP client; no redirects are followed.

use std::time::Duration;

use axum::http::{HeaderMap, Method};
use gpu_worker::wire::{self, EvictRequest, EvictResponse, WorkerStatus};

/// Why a worker call failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerCallError {
    /// The worker could not be reached or the connection broke.
    #[error("worker {url}: {source}")]
    Transport {
        /// The worker.
        url: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// The worker answered with an error status.
    #[error("worker {url} answered {status}: {body}")]
    Status {
        /// The worker.
        url: String,
        /// Its status code.
        status: u16,
        /// Its (truncated) answer.
        body: String,
    },
}

/// A client of every worker.
#[derive(Debug, Clone)]
pub struct WorkerClient {
    http: reqwest::Client,
}

impl Default for WorkerClient {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerClient {
    /// A client with a connection pool per worker and no redirects.
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1024)
            .pool_idle_timeout(Duration::from_secs(90))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .expect("a plain HTTP client builds");
        WorkerClient { http }
    }

    /// `GET /v1/status`, within `timeout`.
    pub async fn status(
        &self,
        url: &str,
        timeout: Duration,
    ) -> Result<WorkerStatus, WorkerCallError> {
        let transport = |source| WorkerCallError::Transport {
            url: url.to_string(),
            source,
        };
        let response = self
            .http
            .get(format!("{url}/v1/status"))
            .timeout(timeout)
            .send()
            .await
            .map_err(transport)?;
        let response = checked(url, response).await?;
        response.json().await.map_err(transport)
    }

    /// `POST /v1/infer` on `device` with `headers` (which name the model) and a
    /// streaming `body`; resolves when the worker's answer head arrives, its body then
    /// streams from the returned response.
    pub async fn infer(
        &self,
        url: &str,
        device: &str,
        query: Option<&str>,
        mut headers: HeaderMap,
        body: reqwest::Body,
    ) -> Result<reqwest::Response, WorkerCallError> {
        let target = match query {
            Some(q) if !q.is_empty() => format!("{url}/v1/infer?{q}"),
            _ => format!("{url}/v1/infer"),
        };
        if let Ok(value) = device.parse() {
            headers.insert(wire::DEVICE, value);
        }
        self.http
            .request(Method::POST, target)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|source| WorkerCallError::Transport {
                url: url.to_string(),
                source,
            })
    }

    /// `POST /v1/models/evict`.
    pub async fn evict(
        &self,
        url: &str,
        device: &str,
        model_key: &str,
    ) -> Result<EvictResponse, WorkerCallError> {
        let transport = |source| WorkerCallError::Transport {
            url: url.to_string(),
            source,
        };
        let request = EvictRequest {
            device: device.to_string(),
            model_key: model_key.to_string(),
        };
        let response = self
            .http
            .post(format!("{url}/v1/models/evict"))
            .json(&request)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(transport)?;
        let response = checked(url, response).await?;
        response.json().await.map_err(transport)
    }
}

async fn checked(
    url: &str,
    response: reqwest::Response,
) -> Result<reqwest::Response, WorkerCallError> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let mut body = response.text().await.unwrap_or_default();
    body.truncate(200);
    Err(WorkerCallError::Status {
        url: url.to_string(),
        status,
        body,
    })
}
