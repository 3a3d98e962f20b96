//! The data plane's `locus_provider_*` metrics, registered into the provider's injected
//! registry beside the control plane's. Labels are bounded: function names (as the
//! gateway's series use them, `name.namespace`) and fixed kinds.

use prometheus::{
    CounterVec, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts,
    Registry,
};

/// Queue-wait buckets, seconds: 100 µs … 30 s.
const WAIT_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
];

/// The dispatcher's collectors.
#[derive(Debug, Clone)]
pub struct DispatchMetrics {
    /// Requests of each function waiting in the central queue (not yet dispatched).
    pub queue_depth: GaugeVec,
    /// Requests waiting, every function: in the central queue, or dispatched to a GPU
    /// behind its running request (what `queue_capacity` bounds).
    pub waiting: Gauge,
    /// Requests dispatched and not answered.
    pub in_flight: Gauge,
    /// Requests that found their model resident (`hit` or `joined` at the worker).
    pub cache_hits: CounterVec,
    /// Requests that loaded their model.
    pub cache_misses: CounterVec,
    /// Models evicted from workers to make room (planned by the view, or by a worker).
    pub evictions: IntCounter,
    /// Differences between the view and a worker's own status, by kind
    /// (`dropped`, `adopted`, `unadoptable`, `unexpected_miss`).
    pub drift: IntCounterVec,
    /// Re-dispatches after a worker was lost.
    pub retries: IntCounter,
    /// Worker GPUs up.
    pub gpus_up: Gauge,
    /// Workers up.
    pub workers_up: Gauge,
    /// Time from arrival to dispatch.
    pub queue_wait: Histogram,
    /// Models unloaded because their function was idle (scale to zero).
    pub idle_unloads: IntCounter,
}

impl DispatchMetrics {
    /// Creates the collectors and registers them into `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = DispatchMetrics {
            queue_depth: GaugeVec::new(
                Opts::new(
                    "locus_provider_queue_depth",
                    "Requests waiting in the central queue, not yet dispatched to a GPU.",
                ),
                &["function_name"],
            )?,
            waiting: Gauge::new(
                "locus_provider_waiting",
                "Requests waiting: in the central queue, or on a GPU behind its running request.",
            )?,
            in_flight: Gauge::new(
                "locus_provider_in_flight",
                "Requests dispatched to a worker and not answered yet.",
            )?,
            cache_hits: CounterVec::new(
                Opts::new(
                    "locus_provider_cache_hits_total",
                    "Invocations whose model was resident on the chosen GPU.",
                ),
                &["function_name"],
            )?,
            cache_misses: CounterVec::new(
                Opts::new(
                    "locus_provider_cache_misses_total",
                    "Invocations that loaded their model.",
                ),
                &["function_name"],
            )?,
            evictions: IntCounter::new(
                "locus_provider_evictions_total",
                "Models evicted by workers to make room.",
            )?,
            drift: IntCounterVec::new(
                Opts::new(
                    "locus_provider_cache_drift_total",
                    "Differences found between the cache view and the workers.",
                ),
                &["kind"],
            )?,
            retries: IntCounter::new(
                "locus_provider_retries_total",
                "Requests re-dispatched after their worker was lost.",
            )?,
            gpus_up: Gauge::new("locus_provider_gpus_up", "Worker GPUs taking requests.")?,
            workers_up: Gauge::new(
                "locus_provider_workers_up",
                "Workers answering their status.",
            )?,
            queue_wait: Histogram::with_opts(
                HistogramOpts::new(
                    "locus_provider_queue_wait_seconds",
                    "Time from arrival to dispatch.",
                )
                .buckets(WAIT_BUCKETS.to_vec()),
            )?,
            idle_unloads: IntCounter::new(
                "locus_provider_idle_unloads_total",
                "Models unloaded everywhere because their function was idle.",
            )?,
        };
        registry.register(Box::new(m.queue_depth.clone()))?;
        registry.register(Box::new(m.waiting.clone()))?;
        registry.register(Box::new(m.in_flight.clone()))?;
        registry.register(Box::new(m.cache_hits.clone()))?;
        registry.register(Box::new(m.cache_misses.clone()))?;
        registry.register(Box::new(m.evictions.clone()))?;
        registry.register(Box::new(m.drift.clone()))?;
        registry.register(Box::new(m.retries.clone()))?;
        registry.register(Box::new(m.gpus_up.clone()))?;
        registry.register(Box::new(m.workers_up.clone()))?;
        registry.register(Box::new(m.queue_wait.clone()))?;
        registry.register(Box::new(m.idle_unloads.clone()))?;
        Ok(m)
    }
}
