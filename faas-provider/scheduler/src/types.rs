//! The vocabulary shared by the scheduler, its callers and the simulator: identifiers,
//! requests, dispatch decisions and completion outcomes.

use serde::{Deserialize, Serialize};

/// A point in time or a duration, in microseconds. The scheduler never reads a clock:
/// every method that needs the time takes it as an argument (the live dispatcher passes
/// microseconds since it started, the simulator its virtual time).
pub type Micros = u64;

/// A model the scheduler places. The live provider interns model names into dense ids
/// (`0, 1, 2, …`); per-model tables are indexed by this number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ModelId(pub u32);

/// A GPU, numbered in the order it was added to the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GpuId(pub u32);

/// A GPU node (one gpu-worker).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub u32);

/// A request, unique among the requests the scheduler currently holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId(pub u64);

/// One inference request as the scheduler sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Its identity; completions name it.
    pub id: RequestId,
    /// The model it runs.
    pub model: ModelId,
    /// The model's VRAM footprint in bytes (what a load reserves in a GPU's cache).
    pub bytes: u64,
    /// Expected GPU time of one inference of this model, in microseconds (from the
    /// model's profile). Only cost-aware policies use it.
    pub infer_us: Micros,
    /// Expected time to load the model onto a GPU, microseconds: setup plus weight bytes
    /// over host-to-GPU bandwidth (`locus_vram::LoadCost`). The footprint in `bytes` may
    /// be larger than the weights moved (context, workspace).
    pub load_us: Micros,
}

/// The scheduler's decision for one request: run it on this GPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dispatch {
    /// The request dispatched.
    pub request: RequestId,
    /// Its model.
    pub model: ModelId,
    /// The GPU chosen.
    pub gpu: GpuId,
    /// The node that GPU sits in.
    pub node: NodeId,
    /// The GPU's device index on its node.
    pub device: u32,
    /// True when the model is resident (or already loading) on that GPU; false when this
    /// request loads it.
    pub hit: bool,
    /// Models the GPU must evict, in this order, before loading (empty on a hit).
    pub victims: Vec<ModelId>,
    /// How long the request waited in the central queue, in microseconds.
    pub queued_us: Micros,
}

/// How a dispatched request ended, as its worker reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It ran; if it loaded its model, the model is now resident.
    Done,
    /// It failed; if it was loading its model, the load did not happen.
    Failed,
}

/// What [`crate::Scheduler::reconcile`] changed to make the cache view match a worker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// Models the view thought resident but the worker does not hold (dropped from view).
    pub dropped: Vec<ModelId>,
    /// Models the worker holds that the view did not know (added to the view).
    pub adopted: Vec<ModelId>,
    /// Models the worker holds that the view could not make room for (left out).
    pub unadoptable: Vec<ModelId>,
}

impl Drift {
    /// True when the view already matched the worker.
    pub fn is_empty(&self) -> bool {
        self.dropped.is_empty() && self.adopted.is_empty() && self.unadoptable.is_empty()
    }
}
