//! `/function/{name}[.{ns}][/rest]`: the invocation routes, answered by the
//! [`Invoker`](crate::dataplane::Invoker) in the state (contract §1.6).

use tokio::time::Instant;

use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, on};
use serde::Deserialize;

use crate::dataplane::Invocation;
use crate::error::ProviderError;
use crate::names;
use crate::state::AppState;

fn methods() -> MethodFilter {
    [
        MethodFilter::POST,
        MethodFilter::PUT,
        MethodFilter::PATCH,
        MethodFilter::DELETE,
        MethodFilter::OPTIONS,
        MethodFilter::HEAD,
    ]
    .into_iter()
    .fold(MethodFilter::GET, MethodFilter::or)
}

pub(super) fn router() -> MethodRouter<AppState> {
    on(methods(), invoke)
}

pub(super) fn router_without_name() -> MethodRouter<AppState> {
    on(methods(), || async { ProviderError::NoFunctionName })
}

#[derive(Debug, Deserialize)]
struct Target {
    name: String,
    rest: Option<String>,
}

async fn invoke(
    State(state): State<AppState>,
    Path(target): Path<Target>,
    request: Request,
) -> Response {
    let (function, suffix) = names::split_name(&target.name);
    let namespace = suffix
        .filter(|s| !s.is_empty())
        .unwrap_or(names::DEFAULT_NAMESPACE);
    // Counted like the gateway counts, for every kind of function; names that are not
    // deployed are not counted, so a caller cannot mint series.
    let counted = state
        .store
        .function(namespace, function)
        .is_ok()
        .then(|| format!("{function}.{namespace}"));
    if let Some(name) = &counted {
        state.metrics.invocation_started(name);
    }
    let started = Instant::now();
    let invocation = Invocation {
        function: function.to_string(),
        namespace: namespace.to_string(),
        path: format!("/{}", target.rest.unwrap_or_default()),
        target: target.name,
        request,
    };
    let response = state.invoker.invoke(invocation).await;
    if let Some(name) = &counted {
        let seconds = started.elapsed().as_secs_f64();
        state
            .metrics
            .observe_invocation(name, response.status().as_u16(), seconds);
    }
    response
}
