//! of-watchdog's HTTP metrics, registered in an injected registry and served on the
//! metrics port: `http_requests_total{code,method}`,
//! `http_request_duration_seconds{code,method}` and `http_requests_in_flight`.
//!
//! The names are of-watchdog's (dashboards and the gateway's scaling rules use them), not
//! the `locus_` prefix of Locus's own binaries. Labels follow Go's promhttp: `code` is the
//! numeric status, `method` the lower-cased method. When the Knative `K_SERVICE`,
//! `K_CONFIGURATION` or `K_REVISION` variables are set they become constant labels.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use tokio::time::Instant;

use crate::body::Holding;
use crate::config::Knative;

/// The watchdog's collectors. Cheap to clone (collectors are reference-counted).
#[derive(Clone, Debug)]
pub struct Metrics {
    requests_total: IntCounterVec,
    request_duration_seconds: HistogramVec,
    requests_in_flight: IntGauge,
}

impl Metrics {
    /// Creates the collectors and registers them in `registry`.
    pub fn new(registry: &Registry, knative: &Knative) -> Result<Self, prometheus::Error> {
        let mut constant = HashMap::new();
        for (label, value) in [
            ("service", &knative.service),
            ("configuration", &knative.configuration),
            ("revision", &knative.revision),
        ] {
            if let Some(value) = value {
                constant.insert(label.to_string(), value.clone());
            }
        }
        let requests_total = IntCounterVec::new(
            Opts::new("http_requests_total", "total HTTP requests processed")
                .const_labels(constant.clone()),
            &["code", "method"],
        )?;
        let request_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Seconds spent serving HTTP requests.",
            )
            .const_labels(constant.clone())
            .buckets(prometheus::DEFAULT_BUCKETS.to_vec()),
            &["code", "method"],
        )?;
        let requests_in_flight = IntGauge::with_opts(
            Opts::new("http_requests_in_flight", "total HTTP requests in-flight")
                .const_labels(constant),
        )?;
        registry.register(Box::new(requests_total.clone()))?;
        registry.register(Box::new(request_duration_seconds.clone()))?;
        registry.register(Box::new(requests_in_flight.clone()))?;
        Ok(Self {
            requests_total,
            request_duration_seconds,
            requests_in_flight,
        })
    }

    /// Instruments every route of `router`; a request counts as in flight, and its
    /// duration runs, until its response body is finished.
    pub fn wrap(&self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(self.clone(), instrument))
    }
}

/// Records one request when dropped (at the end of its response body).
struct Observation {
    metrics: Metrics,
    code: String,
    method: String,
    started: Instant,
}

impl Drop for Observation {
    fn drop(&mut self) {
        let labels = [self.code.as_str(), self.method.as_str()];
        self.metrics.requests_total.with_label_values(&labels).inc();
        self.metrics
            .request_duration_seconds
            .with_label_values(&labels)
            .observe(self.started.elapsed().as_secs_f64());
        self.metrics.requests_in_flight.dec();
    }
}

async fn instrument(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_ascii_lowercase();
    metrics.requests_in_flight.inc();
    let response = next.run(request).await;
    let observation = Observation {
        metrics,
        code: response.status().as_u16().to_string(),
        method,
        started,
    };
    response.map(|body| Holding::wrap(body, observation))
}

/// The metrics port's router: `GET /metrics` in the Prometheus text format.
pub fn metrics_app(registry: Registry) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                let mut buffer = Vec::new();
                match TextEncoder::new().encode(&registry.gather(), &mut buffer) {
                    Ok(()) => {
                        ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], buffer).into_response()
                    }
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn requests_are_counted_by_code_and_lower_cased_method() {
        let registry = Registry::new();
        let knative = Knative {
            service: Some("fn".into()),
            ..Knative::default()
        };
        let metrics = Metrics::new(&registry, &knative).unwrap();
        let app = metrics
            .wrap(Router::new().route("/", axum::routing::post(|| async { StatusCode::CREATED })));
        let response = app
            .oneshot(Request::post("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            metrics.requests_in_flight.get(),
            1,
            "in flight until the body is done"
        );
        to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert_eq!(metrics.requests_in_flight.get(), 0);

        let text = metrics_app(registry)
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let text = String::from_utf8(
            to_bytes(text.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec(),
        )
        .unwrap();
        assert!(
            text.contains(r#"http_requests_total{code="201",method="post",service="fn"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("http_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(
            text.contains("http_requests_in_flight{service=\"fn\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn two_instances_can_share_a_process_with_their_own_registries() {
        let knative = Knative::default();
        Metrics::new(&Registry::new(), &knative).unwrap();
        Metrics::new(&Registry::new(), &knative).unwrap();
    }
}
