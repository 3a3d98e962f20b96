//! The synchronous model backend a device's owner thread drives: load, unload, infer,
//! health. [`crate::candle_backend::CandleBackend`] runs real Candle models;
//! [`crate::emulated::EmulatedBackend`] takes its times from model profiles. Both see
//! exactly the same calls, so the cache, API and accounting are the same for both.

use crate::tasks::{InferInput, InferOutput, TaskError};
use crate::wire::ModelKey;
use crate::zoo::weights::LocalWeights;
use crate::zoo::{Arch, ZooError};

/// Which backend a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Real models with Candle (the default).
    Candle,
    /// Load and inference times from model profiles; nothing is computed.
    Emulated,
}

impl BackendKind {
    /// Its name, as in config, logs and the `backend` metric label.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Candle => "candle",
            BackendKind::Emulated => "emulated",
        }
    }
}

/// Everything a backend needs to load one model.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    /// The cache key.
    pub key: ModelKey,
    /// The architecture.
    pub arch: Arch,
    /// Checked local weights (always present for Candle; the emulated backend needs none).
    pub weights: Option<LocalWeights>,
    /// Bytes reserved in the cache for the load.
    pub declared_bytes: u64,
    /// The footprint the function declared (`locus.io/memory`), which then wins over
    /// measurement.
    pub memory_override: Option<u64>,
}

/// What a load produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The model's measured footprint in device memory, bytes.
    pub bytes: u64,
    /// How the footprint was found (`weights`, `weights+device`, `declared`, `profile`).
    pub measured_by: &'static str,
}

/// Device memory as the device itself reports it (CUDA only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceMemory {
    /// Total bytes.
    pub total: u64,
    /// Free bytes.
    pub free: u64,
}

/// Why a backend call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The weights' tensors do not fit the architecture.
    #[error("weights do not match the architecture: {0}")]
    Mismatch(String),
    /// The weights file is unreadable or corrupt.
    #[error("{0}")]
    Corrupt(String),
    /// The request input is wrong for this model.
    #[error("{0}")]
    Input(String),
    /// This model cannot take this kind of input.
    #[error("{0}")]
    Unsupported(String),
    /// Anything else (a bug, or the device failing).
    #[error("{0}")]
    Internal(String),
}

impl From<TaskError> for BackendError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::InvalidInput(m) => BackendError::Input(m),
            TaskError::Model(m) => BackendError::Corrupt(m),
            TaskError::Compute(m) => BackendError::Internal(m),
        }
    }
}

impl From<ZooError> for BackendError {
    fn from(e: ZooError) -> Self {
        match e {
            ZooError::Mismatch(m) => BackendError::Mismatch(m),
            other => BackendError::Internal(other.to_string()),
        }
    }
}

/// One device's model runtime. Called only from that device's owner thread.
pub trait ModelBackend: Send + 'static {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;
    /// Builds the model on the device.
    fn load(&mut self, req: LoadRequest) -> Result<Loaded, BackendError>;
    /// Drops the model and gives its memory back to the device. Returns whether it
    /// was loaded.
    fn unload(&mut self, key: &ModelKey) -> bool;
    /// Runs one request through a loaded model.
    fn infer(&mut self, key: &ModelKey, input: &InferInput) -> Result<InferOutput, BackendError>;
    /// The device's own memory report, where it has one.
    fn memory(&mut self) -> Option<DeviceMemory>;
}
