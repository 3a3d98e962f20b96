//! The fallback provider (`function_runtime=fallback`): every request about a container
//! function goes, unchanged, to the provider the cluster already runs
//! (`fallback_provider_url`, e.g. faas-netes), and its answer comes back unchanged.
//!
//! [`intercept`] is a layer over the whole router. A deploy or update whose body has no
//! `locus.io/model` is forwarded; status, scale, delete, logs and invocations are
//! forwarded when the function is not in Locus's own store; lists and namespaces merge
//! both providers (a fallback that cannot be listed leaves Locus's own list, marked with
//! `X-Locus-Fallback-Error`). Basic auth, when on, is checked before anything is
//! forwarded. A fallback that is down answers 502, one that is slow 504, both with
//! `X-OpenFaaS-Internal: proxy`, and nothing stored changes.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::RuntimeError;
use super::proxy::{self, ProxyError};
use crate::error::ProviderError;
use crate::models::{self, FunctionKind};
use crate::names;
use crate::state::AppState;
use crate::types::{DeleteFunctionRequest, FunctionDeployment, FunctionStatus};

/// The layer's state: the provider's, and where to forward.
#[derive(Debug, Clone)]
pub struct Fallback {
    state: AppState,
    base: Option<String>,
    client: reqwest::Client,
    timeout: Duration,
}

impl Fallback {
    /// The fallback for `state`'s configuration.
    pub fn new(state: &AppState) -> Self {
        Fallback {
            base: state
                .config
                .fallback_provider_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').to_string())
                .filter(|u| !u.is_empty()),
            state: state.clone(),
            client: proxy::client(),
            timeout: state.config.fallback_timeout,
        }
    }

    /// Checks `fallback_provider_url` at start-up.
    pub fn check_url(url: Option<&str>) -> Result<(), String> {
        let url = url.unwrap_or("").trim();
        match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
            _ => Err(format!(
                "function_runtime=fallback needs fallback_provider_url, an http(s) URL such as \
                 http://faas-netes.openfaas:8081/ (got {url:?})"
            )),
        }
    }

    async fn forward(&self, request: Request) -> Response {
        let Some(base) = &self.base else {
            return RuntimeError::FallbackUnreachable {
                url: String::new(),
                why: "fallback_provider_url is not set".into(),
            }
            .into_response();
        };
        let url = format!(
            "{base}{}",
            request.uri().path_and_query().map_or("/", |p| p.as_str())
        );
        match proxy::forward(&self.client, url, request, self.timeout).await {
            Ok(response) => response,
            Err(ProxyError::Timeout(within)) => RuntimeError::FallbackTimeout {
                url: base.clone(),
                within,
            }
            .into_response(),
            Err(ProxyError::Unreachable(why)) => RuntimeError::FallbackUnreachable {
                url: base.clone(),
                why,
            }
            .into_response(),
        }
    }

    /// Whether Locus's own store holds `name` in `ns`.
    fn is_local(&self, ns: &str, name: &str) -> bool {
        self.state.store.function(ns, name).is_ok()
    }
}

/// What a request is about, as far as forwarding goes.
enum About {
    /// A deploy or update: decided by its body.
    Deployment,
    /// A delete: decided by the name in its body.
    Delete,
    /// A named function (status, scale, logs, invoke).
    Function { name: String, ns: Option<String> },
    /// The function list or the namespace list: merged.
    List,
    /// The namespace list.
    Namespaces,
    /// Anything else: Locus's alone.
    Local,
}

fn about(request: &Request) -> About {
    let path = request.uri().path();
    let method = request.method();
    let query_ns = query_value(request, "namespace");
    match (method, path) {
        (&Method::POST | &Method::PUT, "/system/functions") => About::Deployment,
        (&Method::DELETE, "/system/functions") => About::Delete,
        (&Method::GET, "/system/functions") => About::List,
        (&Method::GET, "/system/namespaces") => About::Namespaces,
        (&Method::GET, "/system/logs") => {
            named(&query_value(request, "name").unwrap_or_default(), query_ns)
        }
        _ => {
            let rest = path
                .strip_prefix("/system/function/")
                .or_else(|| path.strip_prefix("/system/scale-function/"))
                .or_else(|| path.strip_prefix("/function/"));
            match rest {
                Some(rest) => named(rest.split('/').next().unwrap_or(""), query_ns),
                None => About::Local,
            }
        }
    }
}

fn named(target: &str, query_ns: Option<String>) -> About {
    let (name, suffix) = names::split_name(target);
    if name.is_empty() {
        return About::Local;
    }
    About::Function {
        name: name.to_string(),
        ns: suffix
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .or(query_ns),
    }
}

fn query_value(request: &Request, key: &str) -> Option<String> {
    let query = request.uri().query()?;
    url_pairs(query)
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .last()
}

fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .map(|u| u.query_pairs().into_owned().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
}

/// The layer (`from_fn_with_state(Fallback::new(&state), intercept)`).
pub async fn intercept(State(fallback): State<Fallback>, request: Request, next: Next) -> Response {
    let about = about(&request);
    if matches!(about, About::Local) {
        return next.run(request).await;
    }
    if !matches!(about, About::Namespaces)
        && !request.uri().path().starts_with("/function/")
        && let Some(credentials) = &fallback.state.credentials
    {
        let header = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !credentials.accepts(header) {
            return ProviderError::Unauthorized.into_response();
        }
    }
    match about {
        About::Deployment | About::Delete => by_body(fallback, about, request, next).await,
        About::Function { name, ns } => {
            let ns = ns.unwrap_or_else(|| names::DEFAULT_NAMESPACE.to_string());
            if fallback.is_local(&ns, &name) {
                next.run(request).await
            } else {
                fallback.forward(request).await
            }
        }
        About::List => merge_lists(fallback, request, next).await,
        About::Namespaces => merge_namespaces(fallback, request, next).await,
        About::Local => next.run(request).await,
    }
}

/// Reads the body (within `max_body_bytes`) to decide, then hands it on unchanged.
async fn by_body(fallback: Fallback, about: About, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let limit = fallback.state.config.max_body_bytes;
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => return ProviderError::PayloadTooLarge { limit }.into_response(),
    };
    let query_ns = parts.uri.query().and_then(|q| {
        url_pairs(q)
            .filter(|(k, _)| k == "namespace")
            .map(|(_, v)| v)
            .last()
    });
    let forward = match about {
        About::Deployment => serde_json::from_slice::<FunctionDeployment>(&bytes)
            .is_ok_and(|d| matches!(models::classify(&d), Ok(FunctionKind::Container))),
        _ => serde_json::from_slice::<DeleteFunctionRequest>(&bytes).is_ok_and(|d| {
            let ns = names::resolve_namespace(&d.namespace, query_ns.as_deref());
            !d.function_name.is_empty() && !fallback.is_local(&ns, &d.function_name)
        }),
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    if forward {
        fallback.forward(request).await
    } else {
        next.run(request).await
    }
}

async fn merge_lists(fallback: Fallback, request: Request, next: Next) -> Response {
    let copy = copy_head(&request);
    let local = next.run(request).await;
    if local.status() != StatusCode::OK {
        return local;
    }
    let Ok(mut mine) = json_of::<Vec<FunctionStatus>>(local).await else {
        return ProviderError::BadRequest("cannot merge the function list".into()).into_response();
    };
    let theirs = fallback.forward(copy).await;
    let mut merged_from_fallback = None;
    if theirs.status() == StatusCode::OK {
        match json_of::<Vec<FunctionStatus>>(theirs).await {
            Ok(list) => merged_from_fallback = Some(list),
            Err(e) => tracing::warn!(error = %e, "fallback provider's list is not JSON"),
        }
    }
    let mut response = match merged_from_fallback {
        Some(list) => {
            let names: BTreeSet<String> = mine.iter().map(|f| f.name.clone()).collect();
            mine.extend(
                list.into_iter()
                    .filter(|f| !names.contains(&f.name))
                    .map(|mut f| {
                        f.kind = "container".into();
                        f.runtime = "fallback provider".into();
                        f
                    }),
            );
            axum::Json(mine).into_response()
        }
        None => {
            let mut response = axum::Json(mine).into_response();
            response.headers_mut().insert(
                "x-locus-fallback-error",
                HeaderValue::from_static("the fallback provider's list is unavailable"),
            );
            response
        }
    };
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn merge_namespaces(fallback: Fallback, request: Request, next: Next) -> Response {
    let copy = copy_head(&request);
    let local = next.run(request).await;
    if local.status() != StatusCode::OK {
        return local;
    }
    let Ok(mine) = json_of::<Vec<String>>(local).await else {
        return ProviderError::BadRequest("cannot merge the namespaces".into()).into_response();
    };
    let mut all: BTreeSet<String> = mine.into_iter().collect();
    let theirs = fallback.forward(copy).await;
    if theirs.status() == StatusCode::OK
        && let Ok(list) = json_of::<Vec<String>>(theirs).await
    {
        all.extend(list);
    }
    axum::Json(all.into_iter().collect::<Vec<_>>()).into_response()
}

/// A bodiless copy of a GET request, to ask the fallback the same question.
fn copy_head(request: &Request) -> Request {
    let mut copy = Request::new(Body::empty());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}

async fn json_of<T: serde::de::DeserializeOwned>(response: Response) -> Result<T, String> {
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}
