//! From a function's model spec to something a device can load: the architecture is
//! checked against the zoo, the weights URI against the allowed schemes and roots, the
//! cache key derived; on a miss the weights are brought to local disk (Candle) or only
//! sized (emulated).

use std::sync::Arc;

use tokio::time::Instant;

use crate::backend::{BackendKind, LoadRequest};
use crate::device::Prepared;
use crate::error::WorkerError;
use crate::wire::{ModelKey, ModelSpec};
use crate::zoo::header::read_header;
use crate::zoo::mlp::MlpConfig;
use crate::zoo::weights::{WeightsStore, WeightsUri};
use crate::zoo::{Arch, ModelConfig};

/// A checked model spec.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The spec as asked.
    pub spec: ModelSpec,
    /// Its architecture.
    pub arch: Arch,
    /// Its parsed weights URI.
    pub uri: WeightsUri,
    /// Its cache key.
    pub key: ModelKey,
}

/// Checks specs and prepares loads for one worker.
pub struct Resolver {
    backend: BackendKind,
    store: Arc<WeightsStore>,
}

impl Resolver {
    /// A resolver for `backend` fetching through `store`.
    pub fn new(backend: BackendKind, store: Arc<WeightsStore>) -> Self {
        Resolver { backend, store }
    }

    /// Checks `spec` without fetching anything.
    pub fn resolve(&self, spec: &ModelSpec) -> Result<Resolved, WorkerError> {
        let arch = Arch::parse(spec.arch.trim())?;
        let uri = self.store.check(arch, spec.weights.trim())?;
        if spec.memory_bytes == Some(0) {
            return Err(WorkerError::BadRequest("memory override must be more than 0 bytes".to_string()));
        }
        Ok(Resolved { spec: spec.clone(), arch, uri, key: spec.key() })
    }

    /// Makes the model loadable: for Candle, fetches and checks the weights; for the
    /// emulated backend, only works out the bytes.
    pub async fn prepare(&self, r: &Resolved) -> Result<Prepared, WorkerError> {
        let started = Instant::now();
        let (weights, bytes) = match self.backend {
            BackendKind::Candle => {
                let w = self.store.materialise(r.arch, &r.uri).await?;
                let bytes = w.header.tensor_bytes;
                (Some(w), bytes)
            }
            BackendKind::Emulated => (None, self.emulated_bytes(r).await?),
        };
        let req = LoadRequest {
            key: r.key.clone(),
            arch: r.arch,
            weights,
            declared_bytes: r.spec.memory_bytes.unwrap_or(bytes),
            memory_override: r.spec.memory_bytes,
        };
        Ok(Prepared { req, fetch_ms: started.elapsed().as_secs_f64() * 1e3 })
    }

    /// The emulated footprint: a local file's header, an MLP's configured size, or the
    /// architecture's profile.
    async fn emulated_bytes(&self, r: &Resolved) -> Result<u64, WorkerError> {
        Ok(match &r.uri {
            WeightsUri::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || read_header(&path))
                    .await
                    .map_err(|e| WorkerError::BadRequest(e.to_string()))?
                    .map_err(crate::zoo::weights::WeightsError::from)?
                    .tensor_bytes
            }
            WeightsUri::Zoo { params, .. } if r.arch == Arch::Mlp => match ModelConfig::from_params(r.arch, params)? {
                ModelConfig::Mlp(c) => c.params() * 4,
                _ => MlpConfig::default().params() * 4,
            },
            _ => r.arch.profile().weight_bytes,
        })
    }
}
