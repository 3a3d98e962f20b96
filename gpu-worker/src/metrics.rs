//! The worker's Prometheus metrics (prefix `locus_worker_`), registered into an injected
//! registry so several workers can live in one test process. Labels are bounded: the
//! device name, the model key (one per deployed model), the backend and error type.

use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Histogram buckets for loads, seconds (1 ms .. 1 min), about three per decade so a p95
/// read from them is within ~30 % of the truth.
const LOAD_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0];
/// Histogram buckets for inference, seconds (0.5 ms .. 10 s), as the load buckets.
const INFER_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0];

/// Every collector of the worker.
#[derive(Clone)]
pub struct Metrics {
    /// Device memory managed by the cache, bytes.
    pub capacity_bytes: IntGaugeVec,
    /// Bytes of resident and loading models.
    pub used_bytes: IntGaugeVec,
    /// Number of resident models per device.
    pub resident_models: IntGaugeVec,
    /// Bytes of each resident model (0 once evicted).
    pub model_bytes: IntGaugeVec,
    /// Completed loads.
    pub loads: IntCounterVec,
    /// Failed loads, by error type.
    pub load_failures: IntCounterVec,
    /// Evictions, by reason (`capacity` or `explicit`).
    pub evictions: IntCounterVec,
    /// Requests that found their model resident.
    pub hits: IntCounterVec,
    /// Requests that had to load their model (`joined` ones waited for another's load).
    pub misses: IntCounterVec,
    /// Load time, seconds.
    pub load_seconds: HistogramVec,
    /// Inference time on the device, seconds.
    pub infer_seconds: HistogramVec,
    /// Commands waiting for each device's thread.
    pub queue_depth: IntGaugeVec,
    /// Failed requests by error type.
    pub failures: IntCounterVec,
    /// Always 1, labelled with the backend (`candle` or `emulated`).
    pub backend_info: GaugeVec,
}

impl Metrics {
    /// Creates and registers every collector in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let gauge = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntGaugeVec> {
            let g = IntGaugeVec::new(Opts::new(format!("locus_worker_{name}"), help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let counter = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(format!("locus_worker_{name}"), help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let histogram = |name: &str, help: &str, buckets: &[f64]| -> prometheus::Result<HistogramVec> {
            let opts = HistogramOpts::new(format!("locus_worker_{name}"), help).buckets(buckets.to_vec());
            let h = HistogramVec::new(opts, &["device", "model"])?;
            registry.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let backend_info = GaugeVec::new(Opts::new("locus_worker_backend_info", "The model backend (1 for the one in use)."), &["backend"])?;
        registry.register(Box::new(backend_info.clone()))?;
        Ok(Metrics {
            capacity_bytes: gauge("device_memory_capacity_bytes", "Device memory managed by the cache.", &["device"])?,
            used_bytes: gauge("device_memory_used_bytes", "Bytes of resident and loading models.", &["device"])?,
            resident_models: gauge("resident_models", "Models resident on the device.", &["device"])?,
            model_bytes: gauge("model_resident_bytes", "Bytes of a resident model (0 when not resident).", &["device", "model"])?,
            loads: counter("loads_total", "Completed model loads.", &["device", "model"])?,
            load_failures: counter("load_failures_total", "Failed model loads.", &["device", "model", "error_type"])?,
            evictions: counter("evictions_total", "Models evicted.", &["device", "model", "reason"])?,
            hits: counter("cache_hits_total", "Requests whose model was resident.", &["device", "model"])?,
            misses: counter("cache_misses_total", "Requests whose model was not resident.", &["device", "model"])?,
            load_seconds: histogram("load_duration_seconds", "Time to load a model onto the device.", LOAD_BUCKETS)?,
            infer_seconds: histogram("inference_duration_seconds", "Time of one inference on the device.", INFER_BUCKETS)?,
            queue_depth: gauge("queue_depth", "Commands waiting for the device's thread.", &["device"])?,
            failures: counter("request_failures_total", "Failed requests by error type.", &["error_type"])?,
            backend_info,
        })
    }
}
