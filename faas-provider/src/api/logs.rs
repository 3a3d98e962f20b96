//! `/system/logs`: an NDJSON stream of log lines (contract §1.7).
//!
//! Parameters that cannot be parsed answer 422; an unknown function 404. The stream
//! ends when the source's history ends (`follow=false`), when the client disconnects
//! (hyper drops the body), or after `write_timeout` when following.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Params;
use crate::dataplane::LogRequest;
use crate::error::ProviderError;
use crate::names::{self, NameKind};
use crate::state::AppState;

/// Parses the query into a [`LogRequest`]; every failure is a 422.
pub fn parse_request(params: &Params) -> Result<LogRequest, ProviderError> {
    let bad = |what: String| {
        ProviderError::Unprocessable(format!("could not parse the log request: {what}"))
    };
    let name = params.get("name").unwrap_or("");
    if name.is_empty() {
        return Err(bad("name is required".into()));
    }
    names::validate(NameKind::Function, name).map_err(|e| bad(e.to_string()))?;
    let namespace = names::resolve_namespace("", params.get("namespace"));
    names::validate(NameKind::Namespace, &namespace).map_err(|e| bad(e.to_string()))?;
    let tail = match params.get("tail").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => {
            let n: i64 = t
                .parse()
                .map_err(|_| bad(format!("tail={t:?} is not an integer")))?;
            u64::try_from(n).ok().filter(|&n| n > 0)
        }
    };
    let follow = match params.get("follow").unwrap_or("") {
        "" => false,
        "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
        "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
        other => return Err(bad(format!("follow={other:?} is not a boolean"))),
    };
    let since = match params.get("since").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            OffsetDateTime::parse(s, &Rfc3339)
                .map_err(|_| bad(format!("since={s:?} is not an RFC 3339 time")))?,
        ),
    };
    let instance = params
        .get("instance")
        .filter(|i| !i.is_empty())
        .map(str::to_string);
    Ok(LogRequest {
        name: name.to_string(),
        namespace,
        instance,
        since,
        tail,
        follow,
    })
}

pub(super) async fn logs(
    State(state): State<AppState>,
    params: Result<Params, ProviderError>,
) -> Result<Response, ProviderError> {
    let params = params.map_err(|e| ProviderError::Unprocessable(e.to_string()))?;
    let request = parse_request(&params)?;
    let (ns, name) = (request.namespace.clone(), request.name.clone());
    state.store.call(move |s| s.function(&ns, &name)).await?;

    let follow = request.follow;
    let lines = state.logs.logs(request).map(|message| {
        let mut line = serde_json::to_vec(&message).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(line))
    });
    let timeout = state.config.write_timeout;
    let body = if follow && !timeout.is_zero() {
        Body::from_stream(lines.take_until(tokio::time::sleep(timeout)))
    } else {
        Body::from_stream(lines)
    };
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}
