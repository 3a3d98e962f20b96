//! What the status routes read without asking the actor: the GPUs that are up, and
//! for every model where it is resident and how often it hit and missed. The actor
//! writes it after each change; readers take a short read lock (never across await).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use gpu_worker::wire::ModelKey;
use serde::Serialize;

/// One up GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuSeat {
    /// `node/device`, e.g. `0/cpu:1`.
    pub name: String,
    /// Bytes a model may use there.
    pub usable_bytes: u64,
}

/// Per model: where it is resident, and its cache outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModelView {
    /// GPUs holding it (resident or loading), as `node/device`.
    pub resident: Vec<String>,
    /// Requests that found it resident.
    pub hits: u64,
    /// Requests that loaded it.
    pub misses: u64,
    /// Bytes one copy takes on a device (the worker's measure once it loaded it); the
    /// status reports it as `usage`, not in the `gpu` object.
    #[serde(skip)]
    pub bytes: u64,
}

/// The snapshot.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every GPU that is up.
    pub gpus: Vec<GpuSeat>,
    /// Every model the dispatcher has seen.
    pub models: HashMap<ModelKey, ModelView>,
}

/// The shared, cheaply cloned handle to the snapshot.
#[derive(Debug, Clone, Default)]
pub struct SharedView(Arc<RwLock<Snapshot>>);

impl SharedView {
    /// Reads the snapshot.
    pub fn read<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        f(&self.0.read().expect("view lock"))
    }

    /// Changes the snapshot.
    pub fn write(&self, f: impl FnOnce(&mut Snapshot)) {
        f(&mut self.0.write().expect("view lock"))
    }

    /// How many up GPUs could hold `bytes`.
    pub fn gpus_that_fit(&self, bytes: u64) -> u64 {
        self.read(|s| s.gpus.iter().filter(|g| g.usable_bytes >= bytes).count() as u64)
    }

    /// The view of one model (default when never seen).
    pub fn model(&self, key: &str) -> ModelView {
        self.read(|s| s.models.get(key).cloned().unwrap_or_default())
    }
}
