//! The data plane's settings: which workers, which policy and its knobs, the queue
//! bound, the per-request deadline and the background intervals. Loaded like the
//! provider's [`Config`](crate::config::Config), from environment-style pairs with
//! lower-case names (envy matches case-insensitively); defaults live here and only here.

use std::str::FromStr;
use std::time::Duration;

use locus_scheduler::{
    EvictionKind, LbMode, PolicyConfig, PolicyKind, SchedulerConfig, WhenAllBusy,
};
use serde::{Deserialize, Deserializer};

use crate::config::parse_duration;

/// Everything the dispatcher can be told. See `docs/dataplane.md` for the table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DispatchConfig {
    /// Workers (`workers`): a comma-separated list of `http://host:port` URLs, or one
    /// `dns+http://name:port` resolved periodically (a headless Service). Empty = none.
    #[serde(default)]
    pub workers: String,
    /// Placement policy (`policy`): `lb`, `lalb`, `lalb-o3` or `locus`.
    #[serde(default = "defaults::policy", deserialize_with = "parsed")]
    pub policy: PolicyKind,
    /// Most requests waiting (`queue_capacity`), in the central queue or on a GPU behind
    /// the one running there; more get 429.
    #[serde(default = "defaults::queue_capacity")]
    pub queue_capacity: usize,
    /// Longest time from arrival to the worker's answer (`request_timeout`), queueing
    /// included; past it the caller gets 504. Unset = the provider's `read_timeout`.
    #[serde(default, deserialize_with = "some_duration")]
    pub request_timeout: Option<Duration>,
    /// How often every worker's own cache status is compared with the view
    /// (`reconcile_interval`); `0` = never.
    #[serde(
        default = "defaults::reconcile_interval",
        deserialize_with = "duration"
    )]
    pub reconcile_interval: Duration,
    /// How often workers are health-checked and DNS re-resolved (`health_interval`).
    #[serde(default = "defaults::health_interval", deserialize_with = "duration")]
    pub health_interval: Duration,
    /// Times one request may be re-dispatched after its worker was lost (`max_retries`).
    #[serde(default = "defaults::max_retries")]
    pub max_retries: u32,
    /// Request bytes kept so a request can be re-sent after a worker loss
    /// (`retry_buffer_bytes`); a longer body streams through but cannot be retried.
    #[serde(default = "defaults::retry_buffer_bytes")]
    pub retry_buffer_bytes: usize,
    /// `lb`: `least_loaded`, `round_robin` or `random` (`lb_mode`).
    #[serde(default = "defaults::lb_mode", deserialize_with = "parsed")]
    pub lb_mode: LbMode,
    /// `lalb`, `lalb-o3`: a GPU with fewer outstanding requests is idle (`busy_threshold`).
    #[serde(default = "defaults::busy_threshold")]
    pub busy_threshold: u32,
    /// `lalb`, `lalb-o3`: `wait`, `queue_on_cached`, `queue_on_least_loaded`
    /// (`when_all_busy`).
    #[serde(default = "defaults::when_all_busy", deserialize_with = "parsed")]
    pub when_all_busy: WhenAllBusy,
    /// `lalb-o3`: waiting requests a freed GPU scans (`o3_window`); unset = all.
    #[serde(default)]
    pub o3_window: Option<usize>,
    /// `lalb-o3`: times a request may be overtaken (`o3_max_bypass`).
    #[serde(default = "defaults::o3_max_bypass")]
    pub o3_max_bypass: u64,
    /// Victim order in each GPU's view: `lru` or `gds` (`eviction`); the workers must
    /// use the same order (their `eviction` setting) for the view to stay exact.
    #[serde(default = "defaults::eviction", deserialize_with = "parsed")]
    pub eviction: EvictionKind,
    /// `locus`: how many loads a non-holder is charged (`locus_load_weight`).
    #[serde(default = "defaults::locus_load_weight")]
    pub locus_load_weight: f64,
}

mod defaults {
    use super::*;
    pub fn policy() -> PolicyKind {
        PolicyKind::Locus
    }
    pub fn queue_capacity() -> usize {
        1024
    }
    pub fn reconcile_interval() -> Duration {
        Duration::from_secs(30)
    }
    pub fn health_interval() -> Duration {
        Duration::from_secs(2)
    }
    pub fn max_retries() -> u32 {
        2
    }
    pub fn retry_buffer_bytes() -> usize {
        16 << 20
    }
    pub fn lb_mode() -> LbMode {
        PolicyConfig::default().lb_mode
    }
    pub fn busy_threshold() -> u32 {
        PolicyConfig::default().busy_threshold
    }
    pub fn when_all_busy() -> WhenAllBusy {
        PolicyConfig::default().when_all_busy
    }
    pub fn o3_max_bypass() -> u64 {
        PolicyConfig::default().o3_max_bypass
    }
    pub fn eviction() -> EvictionKind {
        PolicyConfig::default().eviction
    }
    pub fn locus_load_weight() -> f64 {
        PolicyConfig::default().locus_load_weight
    }
}

/// Settings that cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[error("invalid data-plane configuration: {0}")]
pub struct DispatchConfigError(#[from] envy::Error);

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig::from_iter(std::iter::empty()).expect("the defaults are valid")
    }
}

impl DispatchConfig {
    /// Loads from the process environment (non-UTF-8 variables skipped).
    pub fn from_env() -> Result<Self, DispatchConfigError> {
        Self::from_iter(watchdog::config::env_pairs())
    }

    /// Loads from key/value pairs; unknown keys are ignored.
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter(
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, DispatchConfigError> {
        Ok(envy::from_iter(pairs)?)
    }

    /// The scheduler's configuration: policy, knobs, the eviction order and the queue
    /// bound. Both caches (view and workers) evict by the same rule.
    pub fn scheduler(&self) -> SchedulerConfig {
        let mut config = SchedulerConfig::new(self.policy);
        config.knobs = PolicyConfig {
            lb_mode: self.lb_mode,
            busy_threshold: self.busy_threshold,
            when_all_busy: self.when_all_busy,
            o3_window: self.o3_window,
            o3_max_bypass: self.o3_max_bypass,
            eviction: self.eviction,
            locus_eviction: self.eviction,
            locus_load_weight: self.locus_load_weight,
            ..PolicyConfig::default()
        };
        config.max_queue = Some(self.queue_capacity);
        config
    }

    /// The deadline of one request, given the provider's `read_timeout`; `None` = none.
    pub fn deadline(&self, read_timeout: Duration) -> Option<Duration> {
        Some(self.request_timeout.unwrap_or(read_timeout)).filter(|d| !d.is_zero())
    }
}

fn parsed<'de, D: Deserializer<'de>, T: FromStr>(d: D) -> Result<T, D::Error>
where
    T::Err: std::fmt::Display,
{
    let text = String::deserialize(d)?;
    text.trim().parse().map_err(serde::de::Error::custom)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn some_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<DispatchConfig, DispatchConfigError> {
        DispatchConfig::from_iter(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_pick_the_locus_policy_and_a_bounded_queue() {
        let c = load(&[]).unwrap();
        assert_eq!(c.policy, PolicyKind::Locus);
        assert_eq!(c.queue_capacity, 1024);
        assert_eq!(c.scheduler().max_queue, Some(1024));
        assert_eq!(
            c.deadline(Duration::from_secs(60)),
            Some(Duration::from_secs(60))
        );
        assert_eq!(c, DispatchConfig::default());
    }

    #[test]
    fn knobs_load_from_lower_and_upper_case_names() {
        let c = load(&[
            ("POLICY", "lalb-o3"),
            ("o3_window", "8"),
            ("when_all_busy", "queue_on_cached"),
            ("request_timeout", "5s"),
            ("workers", "http://a:8090,http://b:8090"),
        ])
        .unwrap();
        assert_eq!(c.policy, PolicyKind::LalbO3);
        assert_eq!(c.scheduler().knobs.o3_window, Some(8));
        assert_eq!(c.when_all_busy, WhenAllBusy::QueueOnCached);
        assert_eq!(
            c.deadline(Duration::from_secs(60)),
            Some(Duration::from_secs(5))
        );
        assert_eq!(c.workers, "http://a:8090,http://b:8090");
    }

    #[test]
    fn a_zero_deadline_means_none_and_bad_values_name_the_problem() {
        let c = load(&[("request_timeout", "0")]).unwrap();
        assert_eq!(c.deadline(Duration::from_secs(60)), None);
        let err = load(&[("policy", "fastest")]).unwrap_err().to_string();
        assert!(err.contains("fastest"), "{err}");
    }
}
