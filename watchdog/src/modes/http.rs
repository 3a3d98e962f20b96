//! `mode=http`: start `fprocess` once and reverse-proxy every request to `upstream_url`.
//!
//! The watchdog reports ready only once the upstream accepts TCP connections, and requests
//! that arrive before that wait for it (within their deadline) instead of failing, as
//! Knative holds cold requests. If the process exits the watchdog turns unhealthy and
//! answers 500 (`X-OpenFaaS-Internal: of-watchdog`) but keeps serving its health routes.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ::http::{HeaderMap, HeaderName, header};
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::process::Child;
use tokio::sync::{Mutex, oneshot, watch};
use tokio::time::Instant;

use super::process::{Launcher, RequestLine, terminate};
use super::streaming::describe;
use super::{FunctionError, check_declared_length, read_body};
use crate::config::Config;
use crate::contract::{Contract, Deadline};

/// Where the upstream process stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upstream {
    Starting,
    Up,
    Exited,
}

/// The http-mode function: its process and the proxy to it.
#[derive(Debug)]
pub struct HttpFunction {
    /// `upstream_url` without a trailing slash; the request URI is appended.
    base: String,
    client: reqwest::Client,
    state: watch::Receiver<Upstream>,
    buffer_body: bool,
    max_request_bytes: Option<u64>,
    log_callid: bool,
    /// Longest wait for the upstream's port on a request without a deadline (`write_timeout`).
    start_wait: Duration,
    pid: Option<u32>,
    /// Tells the supervisor to kill the process (after a SIGTERM grace period).
    kill: Mutex<Option<oneshot::Sender<()>>>,
}

impl HttpFunction {
    /// Starts `fprocess` and the tasks that supervise it and wait for its port.
    pub(super) fn start(config: &Config, contract: Contract) -> Arc<Self> {
        let launcher = Launcher::new(config);
        let base = config
            .upstream_url
            .clone()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        tracing::info!(
            "Forking: {}, arguments: {:?}",
            launcher.program(),
            launcher.args()
        );
        let (state_tx, state) = watch::channel(Upstream::Starting);
        let (kill_tx, kill_rx) = oneshot::channel();
        let pid = match launcher.spawn_server() {
            Ok(child) => {
                let pid = child.id();
                tokio::spawn(supervise(
                    child,
                    kill_rx,
                    state_tx.clone(),
                    contract.clone(),
                ));
                tokio::spawn(await_port(base.clone(), state_tx, contract));
                pid
            }
            Err(e) => {
                tracing::info!("{e}");
                state_tx.send_replace(Upstream::Exited);
                None
            }
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .pool_idle_timeout(Duration::from_millis(500))
            .build()
            .unwrap_or_default();
        Arc::new(Self {
            base,
            client,
            state,
            buffer_body: config.buffer_http_body,
            max_request_bytes: config.max_request_bytes,
            log_callid: config.log_callid,
            start_wait: config.write_timeout,
            pid,
            kill: Mutex::new(Some(kill_tx)),
        })
    }

    /// Relays SIGTERM to the process and waits up to `grace` for it to exit, then kills it.
    pub(super) async fn stop(&self, grace: Duration) {
        let mut state = self.state.clone();
        if *state.borrow() == Upstream::Exited {
            return;
        }
        if let Some(pid) = self.pid {
            tracing::info!("Forwarding SIGTERM to function process {pid}");
            if let Err(e) = terminate(pid) {
                tracing::info!("Unable to signal function process: {e}");
            }
        }
        let exited = tokio::time::timeout(grace, state.wait_for(|s| *s == Upstream::Exited))
            .await
            .is_ok();
        if !exited {
            tracing::info!(
                "Function process still running after {}; killing it",
                crate::duration::display(grace)
            );
            if let Some(kill) = self.kill.lock().await.take() {
                let _ = kill.send(());
            }
            let _ = state.wait_for(|s| *s == Upstream::Exited).await;
        }
    }
}

/// Reaps the process; on exit marks the watchdog unhealthy so an orchestrator replaces it.
async fn supervise(
    mut child: Child,
    kill: oneshot::Receiver<()>,
    state: watch::Sender<Upstream>,
    contract: Contract,
) {
    let status = tokio::select! {
        status = child.wait() => status,
        Ok(()) = kill => {
            let _ = child.start_kill();
            child.wait().await
        }
    };
    match status {
        Ok(status) => tracing::info!("Forked function has terminated: {}", describe(status)),
        Err(e) => tracing::info!("Forked function could not be waited for: {e}"),
    }
    state.send_replace(Upstream::Exited);
    contract.mark_not_ready();
}

/// Polls the upstream's port until it accepts a connection, then marks the watchdog ready.
async fn await_port(base: String, state: watch::Sender<Upstream>, contract: Contract) {
    let authority = reqwest::Url::parse(&base).ok().and_then(|url| {
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Some((host, url.port_or_known_default()?))
    });
    let address = match authority {
        Some(authority) => tokio::net::lookup_host(authority)
            .await
            .ok()
            .and_then(|mut a| a.next()),
        None => None,
    };
    let Some(address) = address else {
        tracing::info!("Invalid upstream_url {base:?}; the function cannot be reached");
        return;
    };
    let mut subscriber = state.subscribe();
    loop {
        if *subscriber.borrow_and_update() == Upstream::Exited {
            return;
        }
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = subscriber.changed() => {}
        }
    }
    let came_up = state.send_if_modified(|s| {
        let starting = *s == Upstream::Starting;
        if starting {
            *s = Upstream::Up;
        }
        starting
    });
    if !came_up {
        return; // exited meanwhile: stay unhealthy
    }
    match contract.mark_ready() {
        Ok(()) => tracing::info!("Upstream {base} is accepting connections"),
        Err(e) => tracing::info!(
            "Cannot write lock file. To disable lock-file set env suppress_lock=true: {e}"
        ),
    }
    // The process may have exited between the flip to Up and the lock file being written.
    if *state.borrow() == Upstream::Exited {
        contract.mark_not_ready();
    }
}

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .map(HeaderName::from_static)
        .chain(named)
    {
        headers.remove(name);
    }
    headers.remove(header::TRANSFER_ENCODING);
}

pub(super) async fn handle(function: Arc<HttpFunction>, request: Request) -> Response {
    let started = Instant::now();
    let check = check_declared_length(request.headers(), function.max_request_bytes);
    let (parts, body) = request.into_parts();
    let line = RequestLine::new(&parts, function.log_callid, started);
    let deadline = parts.extensions.get::<Deadline>().copied();
    let result = async {
        check?;
        // A cold request waits for the upstream's port, within its deadline (enforced
        // around this handler) or, without one, `start_wait`.
        let mut state = function.state.clone();
        let waited = tokio::time::timeout(
            function.start_wait,
            state.wait_for(|s| *s != Upstream::Starting),
        )
        .await;
        match waited.map(|r| r.map(|s| *s)) {
            Ok(Ok(Upstream::Up)) => {}
            Ok(_) => {
                return Err(FunctionError::Upstream(
                    "the function process is not running".into(),
                ));
            }
            Err(_) => {
                return Err(FunctionError::Upstream(
                    "the function process is not accepting connections".into(),
                ));
            }
        }
        let target = format!(
            "{}{}",
            function.base,
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        );
        let mut headers = parts.headers.clone();
        strip_hop_by_hop(&mut headers);
        let too_large = Arc::new(AtomicBool::new(false));
        let body = if function.buffer_body {
            headers.remove(header::CONTENT_LENGTH);
            reqwest::Body::from(read_body(body, function.max_request_bytes).await?)
        } else {
            limited_stream(body, function.max_request_bytes, too_large.clone())
        };
        let mut upstream = function
            .client
            .request(parts.method.clone(), target)
            .headers(headers)
            .body(body);
        if let Some(deadline) = deadline {
            upstream = upstream.timeout(deadline.at.saturating_duration_since(Instant::now()));
        }
        upstream.send().await.map_err(|e| {
            if too_large.load(Ordering::Acquire) {
                FunctionError::TooLarge(function.max_request_bytes.unwrap_or_default())
            } else if e.is_timeout() {
                FunctionError::Timeout(deadline.map_or_else(Duration::default, |d| d.timeout))
            } else {
                FunctionError::Upstream(error_chain(&e))
            }
        })
    }
    .await;
    match result {
        Ok(upstream) => {
            let status = upstream.status();
            line.log(status.as_u16(), upstream.content_length().unwrap_or(0));
            let mut headers = upstream.headers().clone();
            strip_hop_by_hop(&mut headers);
            let body = Body::from_stream(
                upstream
                    .bytes_stream()
                    .map(|chunk| chunk.map_err(io::Error::other)),
            );
            let mut response = Response::new(body);
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(e) => {
            tracing::info!("{e}");
            line.log(e.status().as_u16(), 0);
            e.into_response()
        }
    }
}

/// The request body as a stream for reqwest, failing once it passes `limit` bytes.
fn limited_stream(body: Body, limit: Option<u64>, too_large: Arc<AtomicBool>) -> reqwest::Body {
    let mut total = 0u64;
    let stream = body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(io::Error::other)?;
        total += chunk.len() as u64;
        if limit.is_some_and(|limit| total > limit) {
            too_large.store(true, Ordering::Release);
            return Err(io::Error::other("request body too large"));
        }
        Ok(chunk)
    });
    reqwest::Body::wrap_stream(stream)
}

/// An error and its sources on one line (reqwest's top-level message alone is vague).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
