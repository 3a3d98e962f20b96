//! gpu-worker: devices, the managed VRAM cache, the Candle model runtime and the
//! inference API of one GPU node (the paper's GPU Manager).
//!
//! Floors, from the ground up: `wire` (the API's types) and `zoo` (architectures,
//! weights) and `tasks` (pre/post-processing) → `backend` (the sync model runtime
//! trait) with `candle_backend` and `emulated` → `device` (owner thread + VRAM cache
//! per device) → `models` (spec checking, load preparation) → `api` (axum) → [`run`].
//! The HTTP contract (health, readiness, in-flight limit, drain) is the watchdog's,
//! shared: `watchdog::contract`, configured by [`contract_config`].

pub mod api;
pub mod backend;
pub mod candle_backend;
pub mod config;
pub mod device;
#[cfg(feature = "cuda")]
pub mod device_cuda;
pub mod emulated;
pub mod error;
pub mod metrics;
pub mod models;
pub mod tasks;
pub mod wire;
pub mod zoo;

use std::future::Future;
use std::sync::Arc;

use locus_vram::{CacheConfig, Eviction, LoadCost};
use prometheus::Registry;
use tokio::net::TcpListener;
use watchdog::contract::{Contract, ContractConfig};

use crate::api::AppState;
use crate::backend::{BackendKind, ModelBackend};
use crate::config::{Config, DeviceSpec};
use crate::device::DeviceHandle;
use crate::emulated::{EmulatedBackend, EmulatedTiming};
use crate::metrics::Metrics;
use crate::models::Resolver;
use crate::zoo::weights::{WeightsConfig, WeightsStore};

/// Why the worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A thread or socket failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// One device to start: its name, cache size and backend.
struct DevicePlan {
    name: String,
    capacity: u64,
    backend: Box<dyn ModelBackend>,
}

fn plan_devices(config: &Config) -> Result<Vec<DevicePlan>, StartError> {
    let spec = config.device_spec().map_err(StartError::Config)?;
    let timing = EmulatedTiming {
        load: LoadCost { bandwidth_bytes_per_s: config.emulated_bandwidth as f64, setup_ms: config.emulated_setup_ms },
        speed: config.emulated_speed,
        time_scale: config.emulated_time_scale,
    };
    let make = |name: String, capacity: u64, device: candle_core::Device| -> DevicePlan {
        let backend: Box<dyn ModelBackend> = match config.backend {
            BackendKind::Candle => Box::new(candle_backend::CandleBackend::new(device)),
            BackendKind::Emulated => Box::new(EmulatedBackend::new(timing)),
        };
        DevicePlan { name, capacity, backend }
    };
    match spec {
        DeviceSpec::Cpu(n) => Ok((0..n).map(|i| make(format!("cpu:{i}"), config.device_memory, candle_core::Device::Cpu)).collect()),
        DeviceSpec::Gpu(n) => Ok((0..n).map(|i| make(format!("gpu:{i}"), config.device_memory, candle_core::Device::Cpu)).collect()),
        #[cfg(feature = "cuda")]
        DeviceSpec::Cuda(ordinals) => Ok(device_cuda::discover(ordinals.as_deref())
            .map_err(StartError::Config)?
            .into_iter()
            .map(|(ordinal, device, total)| make(format!("cuda:{ordinal}"), total, device))
            .collect()),
        #[cfg(not(feature = "cuda"))]
        DeviceSpec::Cuda(_) => Err(StartError::Config("devices=cuda needs a build with the `cuda` feature".to_string())),
    }
}

/// Name in `X-OpenFaaS-Internal` on the answers the contract synthesises (429, 504).
pub const COMPONENT: &str = "gpu-worker";

/// The shared HTTP contract's settings for `config`: `max_inflight` on `/v1/infer`,
/// `probe_period` as the not-ready period before draining (`healthcheck_interval`),
/// `drain_timeout` as the drain deadline (`write_timeout`). No exec timeout (a cold load
/// may download gigabytes; `download_timeout` bounds that), so only a caller's
/// `X-Timeout` header sets a deadline; no header read timeout (the provider keeps pooled
/// keep-alive connections open); no lock file.
pub fn contract_config(config: &Config) -> ContractConfig {
    ContractConfig::new(COMPONENT)
        .with_max_inflight(config.max_inflight)
        .with_exec_timeout(None)
        .with_healthcheck_interval(config.probe_period)
        .with_write_timeout(config.drain_timeout)
        .with_read_timeout(None)
        .with_lock_file(None)
}

/// Builds the worker's state (devices, their threads, the weights store) from `config`,
/// registering metrics in `registry`.
pub fn build(config: &Config, registry: &Registry) -> Result<AppState, StartError> {
    let metrics = Metrics::new(registry)?;
    metrics.backend_info.with_label_values(&[config.backend.name()]).set(1.0);
    let eviction = match config.eviction.as_str() {
        "lru" => Eviction::Lru,
        "gds" => Eviction::GreedyDualSize { setup_bytes: (config.emulated_setup_ms / 1e3 * config.emulated_bandwidth as f64) as u64 },
        other => return Err(StartError::Config(format!("eviction=`{other}`: expected lru or gds"))),
    };
    let mut devices = Vec::new();
    for plan in plan_devices(config)? {
        if config.device_reserve >= plan.capacity {
            return Err(StartError::Config(format!("device_reserve leaves no memory on {}", plan.name)));
        }
        let cache = CacheConfig { capacity_bytes: plan.capacity, reserve_bytes: config.device_reserve, eviction };
        let device = DeviceHandle::spawn(&plan.name, cache, plan.backend, metrics.clone())?;
        devices.push(device.with_order_patience(config.order_patience));
    }
    let store = WeightsStore::new(WeightsConfig {
        allowed_roots: Config::list(&config.allowed_roots).into_iter().map(Into::into).collect(),
        allowed_schemes: Config::list(&config.allowed_schemes),
        cache_dir: config.model_cache_dir.clone(),
        download_timeout: config.download_timeout,
        max_download_bytes: config.max_download_bytes,
    });
    let contract = Contract::new(contract_config(config));
    contract.mark_ready()?;
    tracing::info!(
        backend = config.backend.name(),
        devices = ?devices.iter().map(|d| d.name().to_string()).collect::<Vec<_>>(),
        "gpu-worker ready"
    );
    Ok(AppState {
        devices: Arc::new(devices),
        resolver: Arc::new(Resolver::new(config.backend, Arc::new(store))),
        metrics,
        registry: registry.clone(),
        contract,
        backend: config.backend,
        max_body_bytes: config.max_body_bytes,
        top_k: config.top_k,
    })
}

/// Runs the worker on `listener` until `shutdown` fires, then drains: not ready for
/// one probe period (`probe_period`), then no new connections, then in-flight requests
/// finish (at most `drain_timeout`).
pub async fn run(
    listener: TcpListener,
    config: Config,
    registry: Registry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let state = build(&config, &registry)?;
    serve(listener, state, shutdown).await?;
    Ok(())
}

/// Serves an already-built state with the shared contract's shutdown sequence (the
/// periods are the ones `state.contract` was built with); see [`run`].
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let contract = state.contract.clone();
    watchdog::contract::serve(listener, api::app(state), contract, shutdown).await
}
