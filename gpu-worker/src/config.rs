//! The worker's configuration: one typed struct, loaded from environment-style
//! key/value pairs (`Config::from_env` in `main`, `Config::from_iter` in tests). Keys are
//! matched case-insensitively (`DEVICE_MEMORY` or `device_memory`). Defaults live here
//! and only here.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::backend::BackendKind;
use crate::emulated::EmulatedSpeed;
use crate::wire::parse_bytes;

/// Every setting of the worker. See `docs/worker.md` for the reference table.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// TCP port of the worker API (used by `main`; `run` takes a bound listener).
    #[serde(default = "defaults::port")]
    pub port: u16,
    /// `candle` (real models, the default) or `emulated` (timings from profiles).
    #[serde(default = "defaults::backend")]
    pub backend: BackendKind,
    /// Devices: `cpu:N` (N CPU devices), `gpu:N` (N emulated GPUs, emulated backend
    /// only), or with the `cuda` feature `cuda` (every GPU) / `cuda:0,1`.
    #[serde(default = "defaults::devices")]
    pub devices: String,
    /// Memory of each CPU or emulated device, bytes or with a unit (`4GiB`, `512Mi`).
    #[serde(default = "defaults::device_memory", deserialize_with = "bytes")]
    pub device_memory: u64,
    /// Bytes of each device kept out of the cache (context, activations, slack).
    #[serde(default, deserialize_with = "bytes")]
    pub device_reserve: u64,
    /// Victim order: `lru` (the paper's) or `gds` (GreedyDual-Size).
    #[serde(default = "defaults::eviction")]
    pub eviction: String,
    /// Node-local model cache: downloads and generated `zoo://` weights.
    #[serde(default = "defaults::model_cache_dir")]
    pub model_cache_dir: PathBuf,
    /// Comma-separated directories `file://` weights may come from.
    #[serde(default)]
    pub allowed_roots: String,
    /// Comma-separated enabled weight URI schemes.
    #[serde(default = "defaults::allowed_schemes")]
    pub allowed_schemes: String,
    /// Largest request body, bytes or with a unit.
    #[serde(default = "defaults::max_body_bytes", deserialize_with = "bytes")]
    pub max_body_bytes: u64,
    /// How long SIGTERM waits, not ready, before it stops accepting (one probe period;
    /// the shared contract's `healthcheck_interval`).
    #[serde(default = "defaults::probe_period", deserialize_with = "duration")]
    pub probe_period: Duration,
    /// Longest wait for in-flight requests once draining (the shared contract's
    /// `write_timeout`).
    #[serde(default = "defaults::drain_timeout", deserialize_with = "duration")]
    pub drain_timeout: Duration,
    /// Most `/v1/infer` requests served at once; more get an immediate 429 with
    /// of-watchdog's body. 0 means unlimited.
    #[serde(default)]
    pub max_inflight: usize,
    /// Longest a request waits for the ones the provider dispatched before it to the
    /// same device (admission in dispatch order, `device::order`).
    #[serde(default = "defaults::order_patience", deserialize_with = "duration")]
    pub order_patience: Duration,
    /// Whole-download time limit for `http(s)://` weights.
    #[serde(default = "defaults::download_timeout", deserialize_with = "duration")]
    pub download_timeout: Duration,
    /// Largest weights download, bytes or with a unit.
    #[serde(default = "defaults::max_download_bytes", deserialize_with = "bytes")]
    pub max_download_bytes: u64,
    /// Emulated host-to-device bandwidth, bytes per second (or with a unit: `12GB`).
    #[serde(default = "defaults::emulated_bandwidth", deserialize_with = "bytes")]
    pub emulated_bandwidth: u64,
    /// Emulated fixed cost of every load, milliseconds.
    #[serde(default = "defaults::emulated_setup_ms")]
    pub emulated_setup_ms: f64,
    /// Emulated inference times: `gpu` or `cpu` profile column.
    #[serde(default = "defaults::emulated_speed")]
    pub emulated_speed: EmulatedSpeed,
    /// Multiplies every emulated delay (1 = as profiled).
    #[serde(default = "defaults::emulated_time_scale")]
    pub emulated_time_scale: f64,
    /// Classes returned by an image classification unless `?top_k=` says otherwise.
    #[serde(default = "defaults::top_k")]
    pub top_k: usize,
}

mod defaults {
    use super::*;
    pub fn port() -> u16 {
        8090
    }
    pub fn backend() -> BackendKind {
        BackendKind::Candle
    }
    pub fn devices() -> String {
        "cpu:1".to_string()
    }
    pub fn device_memory() -> u64 {
        4 << 30
    }
    pub fn eviction() -> String {
        "lru".to_string()
    }
    pub fn model_cache_dir() -> PathBuf {
        std::env::temp_dir().join("locus-worker-models")
    }
    pub fn allowed_schemes() -> String {
        "file,zoo,http,https".to_string()
    }
    pub fn max_body_bytes() -> u64 {
        16 << 20
    }
    pub fn probe_period() -> Duration {
        Duration::from_secs(5)
    }
    pub fn drain_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn order_patience() -> Duration {
        crate::device::order::PATIENCE
    }
    pub fn download_timeout() -> Duration {
        Duration::from_secs(600)
    }
    pub fn max_download_bytes() -> u64 {
        16 << 30
    }
    pub fn emulated_bandwidth() -> u64 {
        12_000_000_000
    }
    pub fn emulated_setup_ms() -> f64 {
        50.0
    }
    pub fn emulated_speed() -> EmulatedSpeed {
        EmulatedSpeed::Gpu
    }
    pub fn emulated_time_scale() -> f64 {
        1.0
    }
    pub fn top_k() -> usize {
        5
    }
}

fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let s = String::deserialize(d)?;
    parse_bytes(&s).map_err(serde::de::Error::custom)
}

/// Parses a duration: integer seconds (`30`) or humantime (`10s`, `500ms`, `1m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration: {e}"))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

/// What kind of devices, and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    /// N CPU devices `cpu:0..N`.
    Cpu(usize),
    /// N emulated GPUs `gpu:0..N`.
    Gpu(usize),
    /// CUDA GPUs: `None` for all, or these ordinals.
    Cuda(Option<Vec<usize>>),
}

impl Config {
    /// Loads from the process environment (non-UTF-8 variables skipped).
    pub fn from_env() -> Result<Self, envy::Error> {
        Self::from_iter(watchdog::config::env_pairs())
    }

    /// Loads from key/value pairs (tests, embedding). Named like envy's function on
    /// purpose (STYLE.md rule 10); it is not `FromIterator`.
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Result<Self, envy::Error> {
        envy::from_iter(pairs)
    }

    /// Parses `devices`.
    pub fn device_spec(&self) -> Result<DeviceSpec, String> {
        let s = self.devices.trim();
        let (kind, rest) = s.split_once(':').unwrap_or((s, ""));
        let count = || {
            rest.parse::<usize>().ok().filter(|n| (1..=1024).contains(n)).ok_or_else(|| format!("devices=`{s}`: expected {kind}:N with N in 1..=1024"))
        };
        match kind {
            "cpu" => Ok(DeviceSpec::Cpu(count()?)),
            "gpu" if self.backend == BackendKind::Emulated => Ok(DeviceSpec::Gpu(count()?)),
            "gpu" => Err("devices=gpu:N needs backend=emulated (real GPUs are `cuda`)".to_string()),
            "cuda" if rest.is_empty() => Ok(DeviceSpec::Cuda(None)),
            "cuda" => rest
                .split(',')
                .map(|o| o.trim().parse::<usize>().map_err(|_| format!("devices=`{s}`: bad CUDA ordinal `{o}`")))
                .collect::<Result<Vec<_>, _>>()
                .map(|v| DeviceSpec::Cuda(Some(v))),
            _ => Err(format!("devices=`{s}`: expected cpu:N, gpu:N (emulated) or cuda[:0,1,...]")),
        }
    }

    /// The comma-separated list `s` as items.
    pub fn list(s: &str) -> Vec<String> {
        s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = Config::from_iter(pairs(&[])).unwrap();
        assert_eq!(c.port, 8090);
        assert_eq!(c.backend, BackendKind::Candle);
        assert_eq!(c.device_spec(), Ok(DeviceSpec::Cpu(1)));
        assert_eq!(c.device_memory, 4 << 30);
        assert_eq!(c.probe_period, Duration::from_secs(5));
        assert_eq!(c.drain_timeout, Duration::from_secs(30));
        assert_eq!(c.max_inflight, 0);
    }

    #[test]
    fn upper_and_lower_case_keys_and_openfaas_style_values_are_read() {
        let c = Config::from_iter(pairs(&[
            ("DEVICES", "cpu:2"),
            ("device_memory", "512MiB"),
            ("PROBE_PERIOD", "2"),
            ("drain_timeout", "1500ms"),
            ("BACKEND", "emulated"),
            ("allowed_roots", "/a, /b"),
            ("MAX_INFLIGHT", "8"),
        ]))
        .unwrap();
        assert_eq!(c.device_spec(), Ok(DeviceSpec::Cpu(2)));
        assert_eq!(c.device_memory, 512 << 20);
        assert_eq!(c.probe_period, Duration::from_secs(2));
        assert_eq!(c.drain_timeout, Duration::from_millis(1500));
        assert_eq!(c.backend, BackendKind::Emulated);
        assert_eq!(Config::list(&c.allowed_roots), vec!["/a", "/b"]);
        assert_eq!(c.max_inflight, 8);
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        let err = Config::from_iter(pairs(&[("device_memory", "lots")])).unwrap_err().to_string();
        assert!(err.contains("lots"), "{err}");
        let c = Config::from_iter(pairs(&[("devices", "gpu:4")])).unwrap();
        assert!(c.device_spec().unwrap_err().contains("emulated"));
        let c = Config::from_iter(pairs(&[("devices", "tpu:1")])).unwrap();
        assert!(c.device_spec().is_err());
    }
}
