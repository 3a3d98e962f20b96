//! `mode=streaming`: fork `fprocess` per request, stream the request body to its stdin and
//! its stdout to the response as it is written.
//!
//! Response headers wait for the first byte of output, so a process that fails before
//! writing anything still gets a real status (500 for a non-zero exit, 504 past the
//! deadline, 413 for an over-long body) instead of of-watchdog's unconditional 200. Once
//! output has started the status is 200; a deadline or limit hit after that aborts the
//! body so the client sees a truncated response, never a silently short one. A client
//! that goes away kills the process.

use std::io;
use std::sync::Arc;

use ::http::{HeaderValue, StatusCode, header};
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::process::{Forking, RequestLine, request_env};
use super::{FunctionError, check_declared_length};
use crate::contract::Deadline;

/// What the handler learns before it answers.
enum Head {
    /// Output has started: this is its first chunk, the rest follows on the channel.
    Streaming(Bytes, mpsc::Receiver<io::Result<Bytes>>),
    /// The process finished (or failed) without writing anything.
    Finished(Result<(), FunctionError>),
}

pub(super) async fn handle(function: Arc<Forking>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let line = RequestLine::new(&parts, function.log_callid, started);
    if let Err(e) = check_declared_length(&parts.headers, function.max_request_bytes) {
        tracing::info!("{e}");
        line.log(e.status().as_u16(), 0);
        return e.into_response();
    }
    let deadline = parts.extensions.get::<Deadline>().copied();
    tracing::info!("Forking fprocess.");
    let mut child = match function.launcher.spawn(request_env(&parts)) {
        Ok(child) => child,
        Err(e) => {
            tracing::info!("{e}");
            line.log(e.status().as_u16(), 0);
            return e.into_response();
        }
    };
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return FunctionError::Failed("started without pipes".into()).into_response();
    };
    let feeder = tokio::spawn(feed(body, stdin, function.max_request_bytes));
    let (head_tx, head_rx) = oneshot::channel();
    tokio::spawn(supervise(Job {
        child,
        stdout,
        feeder,
        deadline,
        head: Some(head_tx),
        line,
    }));
    let content_type = HeaderValue::from_str(&function.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    match head_rx.await {
        Ok(Head::Streaming(first, rest)) => {
            let rest = futures::stream::unfold(rest, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            let body = Body::from_stream(futures::stream::once(async { Ok(first) }).chain(rest));
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        Ok(Head::Finished(Ok(()))) => {
            ([(header::CONTENT_TYPE, content_type)], Body::empty()).into_response()
        }
        Ok(Head::Finished(Err(e))) => e.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Copies the request body to the process's stdin, then closes it (EOF).
async fn feed(body: Body, mut stdin: ChildStdin, limit: Option<u64>) -> Result<u64, FunctionError> {
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| FunctionError::ClientBody(e.to_string()))?;
        total += chunk.len() as u64;
        if let Some(limit) = limit.filter(|limit| total > *limit) {
            return Err(FunctionError::TooLarge(limit));
        }
        if stdin.write_all(&chunk).await.is_err() {
            // The process stopped reading (or exited); the rest of the body is not needed.
            break;
        }
    }
    Ok(total)
}

struct Job {
    child: Child,
    stdout: ChildStdout,
    feeder: JoinHandle<Result<u64, FunctionError>>,
    deadline: Option<Deadline>,
    /// Taken when the first chunk (or the final result) is handed to the handler.
    head: Option<oneshot::Sender<Head>>,
    line: RequestLine,
}

/// Why reading stopped.
enum Stop {
    /// stdout reached EOF.
    Eof,
    /// The deadline passed.
    Timeout,
    /// The handler or the response body was dropped: nobody will read the output.
    ClientGone,
    /// The request body failed (too large, or the client broke off the upload).
    Input(FunctionError),
}

enum Event {
    Read(io::Result<usize>),
    Feeder(Result<u64, FunctionError>),
    Timeout,
    HandlerGone,
}

async fn sleep_until(deadline: Option<Deadline>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.at).await,
        None => std::future::pending().await,
    }
}

async fn supervise(mut job: Job) {
    let mut body: Option<mpsc::Sender<io::Result<Bytes>>> = None;
    let mut buffer = BytesMut::new();
    let mut written = 0u64;
    let mut feeder_done = false;
    let stop = loop {
        buffer.reserve(16 * 1024);
        let event = tokio::select! {
            read = job.stdout.read_buf(&mut buffer) => Event::Read(read),
            fed = &mut job.feeder, if !feeder_done => {
                Event::Feeder(fed.unwrap_or_else(|e| Err(FunctionError::ClientBody(e.to_string()))))
            }
            () = sleep_until(job.deadline) => Event::Timeout,
            () = async { match job.head.as_mut() { Some(tx) => tx.closed().await, None => std::future::pending().await } } => Event::HandlerGone,
        };
        match event {
            Event::Read(Ok(0)) => break Stop::Eof,
            Event::Read(Err(e)) => {
                tracing::info!("Error reading function stdout: {e}");
                break Stop::Eof;
            }
            Event::Read(Ok(n)) => {
                written += n as u64;
                let chunk = buffer.split().freeze();
                let sent = match (job.head.take(), &body) {
                    (Some(head), _) => {
                        let (tx, rx) = mpsc::channel(8);
                        body = Some(tx);
                        head.send(Head::Streaming(chunk, rx)).is_ok()
                    }
                    (None, Some(tx)) => tokio::select! {
                        sent = tx.send(Ok(chunk)) => sent.is_ok(),
                        () = sleep_until(job.deadline) => break Stop::Timeout,
                    },
                    (None, None) => false,
                };
                if !sent {
                    break Stop::ClientGone;
                }
            }
            Event::Feeder(Ok(_)) => feeder_done = true,
            Event::Feeder(Err(e)) => break Stop::Input(e),
            Event::Timeout => break Stop::Timeout,
            Event::HandlerGone => break Stop::ClientGone,
        }
    };

    let result = match stop {
        Stop::Eof => finish(&mut job, feeder_done).await,
        Stop::Timeout => Err(FunctionError::Timeout(
            job.deadline.map_or_else(Default::default, |d| d.timeout),
        )),
        Stop::Input(e) => Err(e),
        Stop::ClientGone => {
            kill(&mut job.child).await;
            tracing::info!("Client went away; killed function process after {written} bytes");
            job.line.log(499, written);
            return;
        }
    };
    if !matches!(result, Ok(()) | Err(FunctionError::Failed(_))) {
        kill(&mut job.child).await;
    }
    job.feeder.abort();
    if let Err(e) = &result {
        tracing::info!("{e}");
    }
    let succeeded = result.is_ok();
    let status = match job.head.take() {
        Some(head) => {
            let status = result
                .as_ref()
                .map_or_else(|e| e.status().as_u16(), |()| 200);
            let _ = head.send(Head::Finished(result));
            status
        }
        None => {
            // Output already started with a 200; an exit status is only logged (as
            // of-watchdog does), anything else aborts the body so the client can tell.
            let abort = match &result {
                Err(e) if !matches!(e, FunctionError::Failed(_)) => Some(e.to_string()),
                _ => None,
            };
            if let (Some(message), Some(tx)) = (abort, &body) {
                let _ = tx.send(Err(io::Error::other(message))).await;
            }
            200
        }
    };
    if succeeded {
        job.line.log_wrote(written);
    }
    job.line.log(status, written);
}

/// After stdout closed: wait for the exit status (within the deadline) and check input.
async fn finish(job: &mut Job, feeder_done: bool) -> Result<(), FunctionError> {
    let status = tokio::select! {
        status = job.child.wait() => status,
        () = sleep_until(job.deadline) => {
            return Err(FunctionError::Timeout(job.deadline.map_or_else(Default::default, |d| d.timeout)));
        }
    };
    if !feeder_done
        && job.feeder.is_finished()
        && let Ok(Err(e @ FunctionError::TooLarge(_))) = (&mut job.feeder).await
    {
        return Err(e);
    }
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(FunctionError::Failed(describe(status))),
        Err(e) => Err(FunctionError::Failed(format!(
            "could not be waited for: {e}"
        ))),
    }
}

pub(super) fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended abnormally".to_string(),
    }
}

async fn kill(child: &mut Child) {
    if let Err(e) = child.kill().await {
        tracing::info!("Unable to kill function process: {e}");
    }
}
