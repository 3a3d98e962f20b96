//! The provider API: the route table of contract §1.3, one file per route group.
//!
//! [`routes`] is the single list of (path, methods, auth, handler); [`app`] builds the
//! router from it, guarding the contract's authenticated routes with basic auth, and the
//! OpenAPI test checks the same list against `/openapi.json`.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::error::ProviderError;
use crate::state::AppState;

mod extract;
mod functions;
mod health;
mod info;
mod invoke;
mod logs;
mod namespaces;
mod openapi;
mod secrets;

pub use extract::{JsonBody, Params};
pub use functions::status_of;
pub use info::provider_info;
pub use openapi::OPENAPI_JSON;

/// One route of the table.
pub struct Route {
    /// The axum path template.
    pub path: &'static str,
    /// The methods it answers (GET routes also answer HEAD).
    pub methods: &'static [Method],
    /// Whether basic auth guards it (when enabled).
    pub auth: bool,
    /// Its handlers.
    pub handler: MethodRouter<AppState>,
}

const CRUD: &[Method] = &[Method::GET, Method::POST, Method::PUT, Method::DELETE];
const GET: &[Method] = &[Method::GET];
const POST: &[Method] = &[Method::POST];
/// The methods faas-provider's proxy forwards; others get 405.
pub const INVOKE_METHODS: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::HEAD,
];

fn route(
    path: &'static str,
    methods: &'static [Method],
    auth: bool,
    handler: MethodRouter<AppState>,
) -> Route {
    Route {
        path,
        methods,
        auth,
        handler,
    }
}

/// The complete route table.
pub fn routes() -> Vec<Route> {
    use axum::routing::{get, post};
    vec![
        route("/system/functions", CRUD, true, functions::router()),
        route("/system/function/{name}", GET, true, get(functions::status)),
        route(
            "/system/scale-function/{name}",
            POST,
            true,
            post(functions::scale),
        ),
        route("/system/info", GET, true, get(info::info)),
        route("/system/secrets", CRUD, true, secrets::router()),
        route("/system/logs", GET, true, get(logs::logs)),
        route("/system/namespaces", GET, false, get(namespaces::list)),
        route("/system/namespace/", CRUD, false, namespaces::router()),
        route(
            "/system/namespace/{name}",
            CRUD,
            false,
            namespaces::router(),
        ),
        route(
            "/function",
            INVOKE_METHODS,
            false,
            invoke::router_without_name(),
        ),
        route(
            "/function/",
            INVOKE_METHODS,
            false,
            invoke::router_without_name(),
        ),
        route("/function/{name}", INVOKE_METHODS, false, invoke::router()),
        route("/function/{name}/", INVOKE_METHODS, false, invoke::router()),
        route(
            "/function/{name}/{*rest}",
            INVOKE_METHODS,
            false,
            invoke::router(),
        ),
        route("/healthz", GET, false, get(health::healthz)),
        route("/metrics", GET, false, get(health::metrics)),
        route("/openapi.json", GET, false, get(openapi::document)),
    ]
}

/// The provider's router over `state`.
pub fn app(state: AppState) -> Router {
    let config = state.config.clone();
    let (mut guarded, mut open) = (Router::new(), Router::new());
    let mut invoke = Router::new();
    for r in routes() {
        if r.auth {
            guarded = guarded.route(r.path, r.handler);
        } else if r.path.starts_with("/function") {
            invoke = invoke.route(r.path, r.handler);
        } else {
            open = open.route(r.path, r.handler);
        }
    }
    let guarded = guarded.route_layer(from_fn_with_state(state.clone(), crate::auth::require));
    let mut system = guarded
        .merge(open)
        .layer(DefaultBodyLimit::max(config.max_body_bytes));
    if !config.write_timeout.is_zero() {
        system = system.layer(from_fn_with_state(state.clone(), write_deadline));
    }
    let mut router = system
        .merge(invoke)
        .fallback(|| async { ProviderError::RouteNotFound });
    if config.function_runtime == crate::models::FunctionRuntime::Fallback {
        // Container functions live in the fallback provider: see runtime::fallback.
        let fallback = crate::runtime::fallback::Fallback::new(&state);
        router = router.layer(from_fn_with_state(
            fallback,
            crate::runtime::fallback::intercept,
        ));
    }
    router = router.layer(from_fn_with_state(state.clone(), crate::metrics::track));
    if !config.read_timeout.is_zero() {
        router = router.layer(RequestBodyTimeoutLayer::new(config.read_timeout));
    }
    router.with_state(state)
}

/// Answers 503 when a `/system/*` handler has not produced a response head within
/// `write_timeout` (a stuck store, say); streamed bodies are not cut by it.
async fn write_deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.config.write_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ProviderError::Timeout(limit).into_response(),
    }
}

#[cfg(test)]
mod tests;
