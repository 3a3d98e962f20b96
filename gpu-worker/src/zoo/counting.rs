//! Memory-mapped safetensors as a Candle `VarBuilder` source that counts the bytes of
//! every tensor the model takes: the model's exact weight footprint, measured while it
//! loads (unused tensors in the file, such as BERT's `position_ids`, cost nothing and
//! are not counted).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::Init;
use candle_nn::var_builder::SimpleBackend;

/// Bytes taken per tensor name, shared with whoever reads the total after the build.
pub type Taken = Arc<Mutex<HashMap<String, u64>>>;

/// A memory-mapped weights file that records what is taken from it.
pub struct CountingMmap {
    inner: MmapedSafetensors,
    taken: Taken,
}

impl CountingMmap {
    /// Maps `path`. The caller has already checked the header (`header::read_header`).
    pub fn open(path: &Path) -> Result<(Self, Taken)> {
        // SAFETY: memory-mapping is unsafe because another process could change the file
        // while it is mapped. Weights live in the node's model cache (written once, then
        // renamed into place, never rewritten) or under operator-configured allowed
        // roots; Candle copies every tensor out of the mapping while the model is built,
        // and the mapping is dropped right after.
        #[allow(unsafe_code)]
        let inner = unsafe { MmapedSafetensors::new(path)? };
        let taken = Taken::default();
        Ok((CountingMmap { inner, taken: taken.clone() }, taken))
    }

    fn record(&self, name: &str, t: &Tensor) {
        if let Ok(mut m) = self.taken.lock() {
            m.insert(name.to_string(), (t.elem_count() * t.dtype().size_in_bytes()) as u64);
        }
    }
}

/// The total bytes recorded in `taken`.
pub fn total(taken: &Taken) -> u64 {
    taken.lock().map(|m| m.values().sum()).unwrap_or(0)
}

impl SimpleBackend for CountingMmap {
    fn get(&self, s: Shape, name: &str, _: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let view = self.inner.get(name).map_err(|_| candle_core::Error::Msg(format!("cannot find tensor {name}")))?;
        if view.shape() != s.dims() {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: s,
                got: view.shape().into(),
            });
        }
        let t = self.inner.load(name, dev)?.to_dtype(dtype)?;
        self.record(name, &t);
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        self.inner.get(name).map_err(|_| candle_core::Error::Msg(format!("cannot find tensor {name}")))?;
        let t = self.inner.load(name, dev)?.to_dtype(dtype)?;
        self.record(name, &t);
        Ok(t)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.inner.get(name).is_ok()
    }
}
