//! The emulated backend (`backend=emulated`): the same cache, API and accounting as
//! the Candle backend, but loads and inferences only take the time a model profile
//! says (bytes over a configured host-to-device bandwidth plus a setup cost; the
//! profile's inference time), and compute nothing. It lets a 2-core machine stand for
//! many GPUs in load tests. Its answers say `"emulated": true`, and its metrics carry
//! `backend="emulated"`.

use std::collections::HashMap;
use std::time::Duration;

use locus_vram::profile::LoadCost;
use serde::Serialize;

use crate::backend::{BackendError, BackendKind, DeviceMemory, LoadRequest, Loaded, ModelBackend};
use crate::tasks::{InferInput, InferOutput};
use crate::wire::ModelKey;
use crate::zoo::Arch;

/// Which profile time an emulated inference takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmulatedSpeed {
    /// `gpu_infer_ms` (estimates for a data-centre GPU).
    Gpu,
    /// `cpu_infer_ms` (measured on the 2-core CPU).
    Cpu,
}

/// Timing model of the emulated backend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmulatedTiming {
    /// Load time: setup plus bytes over bandwidth.
    pub load: LoadCost,
    /// Inference time source.
    pub speed: EmulatedSpeed,
    /// Multiplies every delay (1.0 = as profiled; tests use small values).
    pub time_scale: f64,
}

/// Models that exist only as bytes and delays.
pub struct EmulatedBackend {
    timing: EmulatedTiming,
    /// Each loaded model's architecture and weight bytes.
    models: HashMap<ModelKey, (Arch, u64)>,
}

#[derive(Serialize)]
struct EmulatedAnswer<'a> {
    emulated: bool,
    model: &'a str,
    arch: &'a str,
    input_bytes: usize,
    infer_ms: f64,
}

impl EmulatedBackend {
    /// A backend with `timing`.
    pub fn new(timing: EmulatedTiming) -> Self {
        EmulatedBackend { timing, models: HashMap::new() }
    }

    fn wait(&self, ms: f64) {
        let ms = ms * self.timing.time_scale;
        if ms.is_finite() && ms > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(ms / 1e3));
        }
    }

    /// Inference time of `arch` with `bytes` of weights, milliseconds: the profile's,
    /// scaled by size for MLPs (whose size is configurable).
    pub fn infer_ms(&self, arch: Arch, bytes: u64) -> f64 {
        let p = arch.profile();
        let base = match self.timing.speed {
            EmulatedSpeed::Gpu => p.gpu_infer_ms,
            EmulatedSpeed::Cpu => p.cpu_infer_ms,
        };
        if arch == Arch::Mlp && p.weight_bytes > 0 { base * bytes as f64 / p.weight_bytes as f64 } else { base }
    }
}

impl ModelBackend for EmulatedBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Emulated
    }

    fn load(&mut self, req: LoadRequest) -> Result<Loaded, BackendError> {
        // A declared footprint (`locus.io/memory`) is what the model occupies, not what
        // moves: the transfer and the inference stay those of the weights, which the
        // emulated backend knows only from the profile when a footprint is declared.
        let weight_bytes = if req.memory_override.is_some() { req.arch.profile().weight_bytes } else { req.declared_bytes };
        let bytes = req.memory_override.unwrap_or(req.declared_bytes);
        self.wait(self.timing.load.load_ms(weight_bytes));
        self.models.insert(req.key, (req.arch, weight_bytes));
        Ok(Loaded { bytes, measured_by: if req.memory_override.is_some() { "declared" } else { "profile" } })
    }

    fn unload(&mut self, key: &ModelKey) -> bool {
        self.models.remove(key).is_some()
    }

    fn infer(&mut self, key: &ModelKey, input: &InferInput) -> Result<InferOutput, BackendError> {
        let (arch, bytes) = *self.models.get(key).ok_or_else(|| BackendError::Internal(format!("model {key} is not loaded")))?;
        let infer_ms = self.infer_ms(arch, bytes);
        self.wait(infer_ms);
        Ok(InferOutput::json(&EmulatedAnswer { emulated: true, model: key, arch: arch.name(), input_bytes: input.body.len(), infer_ms })?)
    }

    fn memory(&mut self) -> Option<DeviceMemory> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_footprint_is_accounted_but_the_weights_set_load_and_inference_time() {
        let timing = EmulatedTiming { load: LoadCost::DEFAULT, speed: EmulatedSpeed::Gpu, time_scale: 0.0 };
        let mut backend = EmulatedBackend::new(timing);
        let footprint = 1u64 << 30;
        let key: ModelKey = "mlp@zoo://mlp?seed=1".into();
        let loaded = backend
            .load(LoadRequest {
                key: key.clone(),
                arch: Arch::Mlp,
                weights: None,
                declared_bytes: footprint,
                memory_override: Some(footprint),
            })
            .expect("load");
        assert_eq!(loaded.bytes, footprint, "the cache accounts the declared footprint");
        let (arch, weight_bytes) = backend.models[&key];
        assert_eq!(weight_bytes, Arch::Mlp.profile().weight_bytes);
        assert_eq!(backend.infer_ms(arch, weight_bytes), Arch::Mlp.profile().gpu_infer_ms);
    }
}
