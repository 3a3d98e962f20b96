//! Prometheus metrics, registered into an injected [`Registry`] (never the default one).
//!
//! Three families: faas-provider's own `provider_http_*` (labels `code`, `method`,
//! `path`, with parameterised routes reported by their template stem, e.g.
//! `/system/function`); `locus_provider_request_failures_total{error_type}`, counting every
//! provider-made error by the `error_type` of [`crate::error::ProviderError`]; and the
//! gateway's `gateway_*` names with the gateway's label names, so dashboards built for an
//! OpenFaaS gateway work when the provider is scraped directly. The invocation series are
//! fed by the invocation route, for every kind of function, through
//! [`Metrics::invocation_started`] and [`Metrics::observe_invocation`], and read back into
//! each status's `invocationCount` ([`Metrics::invocation_count`]) as the gateway does
//! from Prometheus; `gateway_service_count` follows every deploy, update, scale and
//! delete.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{CounterVec, GaugeVec, HistogramOpts, HistogramVec, Opts, Registry};

use crate::error::ERROR_TYPE_HEADER;
use crate::state::AppState;

/// Histogram buckets (seconds) for every duration here: the gateway's, 5 ms … 10 s.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The provider's collectors.
#[derive(Debug, Clone)]
pub struct Metrics {
    http_requests: CounterVec,
    http_duration: HistogramVec,
    failures: CounterVec,
    invocations: CounterVec,
    invocation_seconds: HistogramVec,
    invocations_started: CounterVec,
    service_count: GaugeVec,
}

impl Metrics {
    /// Creates the collectors and registers them into `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let http = ["code", "method", "path"];
        let function = ["function_name", "code"];
        let metrics = Metrics {
            http_requests: CounterVec::new(
                Opts::new(
                    "provider_http_requests_total",
                    "Requests to the provider API.",
                ),
                &http,
            )?,
            http_duration: HistogramVec::new(
                HistogramOpts::new(
                    "provider_http_request_duration_seconds",
                    "Time to answer a provider API request.",
                )
                .buckets(BUCKETS.to_vec()),
                &http,
            )?,
            failures: CounterVec::new(
                Opts::new(
                    "locus_provider_request_failures_total",
                    "Provider API requests answered with a provider-made error, by error type.",
                ),
                &["error_type"],
            )?,
            invocations: CounterVec::new(
                Opts::new(
                    "gateway_function_invocation_total",
                    "Completed function invocations.",
                ),
                &function,
            )?,
            invocation_seconds: HistogramVec::new(
                HistogramOpts::new("gateway_functions_seconds", "Function invocation time.")
                    .buckets(BUCKETS.to_vec()),
                &function,
            )?,
            invocations_started: CounterVec::new(
                Opts::new(
                    "gateway_function_invocation_started",
                    "Function invocations started.",
                ),
                &["function_name"],
            )?,
            service_count: GaugeVec::new(
                Opts::new("gateway_service_count", "Desired replicas per function."),
                &["function_name"],
            )?,
        };
        registry.register(Box::new(metrics.http_requests.clone()))?;
        registry.register(Box::new(metrics.http_duration.clone()))?;
        registry.register(Box::new(metrics.failures.clone()))?;
        registry.register(Box::new(metrics.invocations.clone()))?;
        registry.register(Box::new(metrics.invocation_seconds.clone()))?;
        registry.register(Box::new(metrics.invocations_started.clone()))?;
        registry.register(Box::new(metrics.service_count.clone()))?;
        Ok(metrics)
    }

    /// Records one answered provider API request.
    pub fn observe_http(&self, method: &str, path: &str, code: u16, seconds: f64) {
        let code = code.to_string();
        let labels = [code.as_str(), method, path];
        self.http_requests.with_label_values(&labels).inc();
        self.http_duration
            .with_label_values(&labels)
            .observe(seconds);
    }

    /// Counts a provider-made error by its `error_type`.
    pub fn observe_failure(&self, error_type: &str) {
        self.failures.with_label_values(&[error_type]).inc();
    }

    /// Records an invocation of `function_name` (`name.namespace`) starting.
    pub fn invocation_started(&self, function_name: &str) {
        self.invocations_started
            .with_label_values(&[function_name])
            .inc();
    }

    /// Records a finished invocation with the status it returned.
    pub fn observe_invocation(&self, function_name: &str, code: u16, seconds: f64) {
        let code = code.to_string();
        let labels = [function_name, code.as_str()];
        self.invocations.with_label_values(&labels).inc();
        self.invocation_seconds
            .with_label_values(&labels)
            .observe(seconds);
    }

    /// Invocations of `function_name` (`name.namespace`) completed so far, every status
    /// code together: what the gateway reports as `invocationCount`.
    pub fn invocation_count(&self, function_name: &str) -> f64 {
        use prometheus::core::Collector;
        self.invocations
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .filter(|m| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == "function_name" && l.value() == function_name)
            })
            .map(|m| m.get_counter().get_value())
            .sum()
    }

    /// Sets the desired replicas of `function_name` (`name.namespace`).
    pub fn set_service_count(&self, function_name: &str, replicas: u64) {
        self.service_count
            .with_label_values(&[function_name])
            .set(replicas as f64);
    }

    /// Forgets a deleted function's replica gauge.
    pub fn remove_service(&self, function_name: &str) {
        // An absent series is not an error worth reporting.
        let _ = self.service_count.remove_label_values(&[function_name]);
    }
}

/// The `path` label of a route template: trailing parameters and slashes dropped, so
/// `/system/function/{name}` is reported as `/system/function` (faas-provider's names).
pub fn route_label(template: &str) -> &str {
    let mut path = template;
    loop {
        let trimmed = path.trim_end_matches('/');
        match trimmed.rsplit_once('/') {
            Some((head, last)) if last.starts_with('{') => path = head,
            _ => return trimmed,
        }
    }
}

/// Middleware recording `provider_http_*` for matched `/system/*` routes.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let method = request.method().to_string();
    let start = tokio::time::Instant::now();
    let response = next.run(request).await;
    if let Some(error_type) = response
        .headers()
        .get(ERROR_TYPE_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        state.metrics.observe_failure(error_type);
    }
    if let Some(template) = template.filter(|t| t.starts_with("/system/")) {
        let seconds = start.elapsed().as_secs_f64();
        let code = response.status().as_u16();
        state
            .metrics
            .observe_http(&method, route_label(&template), code, seconds);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameterised_routes_are_labelled_by_their_stem() {
        assert_eq!(route_label("/system/function/{name}"), "/system/function");
        assert_eq!(
            route_label("/system/scale-function/{name}"),
            "/system/scale-function"
        );
        assert_eq!(route_label("/system/namespace/"), "/system/namespace");
        assert_eq!(route_label("/system/functions"), "/system/functions");
    }

    #[test]
    fn two_metric_sets_coexist_in_separate_registries() {
        let (a, b) = (Registry::new(), Registry::new());
        Metrics::new(&a).unwrap();
        Metrics::new(&b).unwrap();
        assert!(
            Metrics::new(&a).is_err(),
            "a second registration in one registry must fail"
        );
    }

    #[test]
    fn invocation_series_use_the_gateway_names_and_labels() {
        let registry = Registry::new();
        let m = Metrics::new(&registry).unwrap();
        m.invocation_started("fn1.openfaas-fn");
        m.observe_invocation("fn1.openfaas-fn", 200, 0.02);
        m.observe_invocation("fn1.openfaas-fn", 500, 0.02);
        m.observe_invocation("fn2.openfaas-fn", 200, 0.02);
        assert_eq!(m.invocation_count("fn1.openfaas-fn"), 2.0);
        assert_eq!(m.invocation_count("fn3.openfaas-fn"), 0.0);
        m.set_service_count("fn1.openfaas-fn", 2);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        assert!(text.contains(
            "gateway_function_invocation_total{code=\"200\",function_name=\"fn1.openfaas-fn\"} 1"
        ));
        assert!(text.contains(
            "gateway_functions_seconds_count{code=\"200\",function_name=\"fn1.openfaas-fn\"} 1"
        ));
        assert!(text.contains("gateway_service_count{function_name=\"fn1.openfaas-fn\"} 2"));
        m.remove_service("fn1.openfaas-fn");
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap();
        assert!(!text.contains("gateway_service_count{"));
    }
}
