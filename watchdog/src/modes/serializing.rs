//! `mode=serializing`: fork `fprocess` per request with the whole request body on stdin,
//! buffer all of stdout, and answer with it once the process exits successfully (500 with
//! the exit status otherwise, 504 past the deadline, 413 for an over-long body).

use std::sync::Arc;

use ::http::{HeaderValue, header};
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::process::{Forking, RequestLine, request_env};
use super::streaming::describe;
use super::{FunctionError, check_declared_length, read_body};
use crate::contract::Deadline;

pub(super) async fn handle(function: Arc<Forking>, request: Request) -> Response {
    let started = Instant::now();
    let check = check_declared_length(request.headers(), function.max_request_bytes);
    let (parts, body) = request.into_parts();
    let line = RequestLine::new(&parts, function.log_callid, started);
    let deadline = parts.extensions.get::<Deadline>().copied();
    let run = async {
        check?;
        let input = read_body(body, function.max_request_bytes).await?;
        tracing::info!("Forking fprocess.");
        let mut child = function.launcher.spawn(request_env(&parts))?;
        let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(FunctionError::Failed("started without pipes".into()));
        };
        let write = async move {
            // A process that exits without reading its input is not an error here;
            // its exit status tells.
            let _ = stdin.write_all(&input).await;
        };
        let mut output = Vec::new();
        let read = stdout.read_to_end(&mut output);
        let ((), read) = tokio::join!(write, read);
        read.map_err(|e| FunctionError::Failed(format!("output could not be read: {e}")))?;
        let status = child
            .wait()
            .await
            .map_err(|e| FunctionError::Failed(format!("could not be waited for: {e}")))?;
        if status.success() {
            Ok(output)
        } else {
            Err(FunctionError::Failed(describe(status)))
        }
    };
    // The child is killed on drop, so abandoning `run` at the deadline stops it.
    let result = match deadline {
        Some(d) => tokio::time::timeout_at(d.at, run)
            .await
            .unwrap_or(Err(FunctionError::Timeout(d.timeout))),
        None => run.await,
    };
    match result {
        Ok(output) => {
            let written = output.len() as u64;
            line.log_wrote(written);
            line.log(200, written);
            let content_type = HeaderValue::from_str(&function.content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            ([(header::CONTENT_TYPE, content_type)], Body::from(output)).into_response()
        }
        Err(e) => {
            tracing::info!("{e}");
            line.log(e.status().as_u16(), 0);
            e.into_response()
        }
    }
}
