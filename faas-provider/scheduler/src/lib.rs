//! The pure scheduler of Locus and the discrete-event simulator that drives it.
//!
//! Nothing in this crate performs I/O, reads a clock or depends on an async runtime:
//! time is always an argument. The live provider's dispatcher and the simulator in
//! [`sim`] drive the very same types, so every simulated result is a result of the
//! code that serves traffic.
//!
//! - [`cluster`]: GPUs, their cache views (the paper's Cache Manager) and the indexes;
//! - [`queue`]: the central queue with the O3 index and the starvation bound;
//! - [`policy`]: the policies' names and knobs;
//! - [`scheduler`]: the façade (`submit`, `complete`, `gpu_up`/`gpu_down`, cache events,
//!   `reconcile`), with the per-policy placement in `placement.rs`;
//! - [`sim`]: `faas-provider simulate`.

pub mod cluster;
mod placement;
pub mod policy;
pub mod queue;
pub mod scheduler;
pub mod sim;
pub mod types;

pub use cluster::{Cluster, Gpu, GpuSpec};
pub use policy::{EvictionKind, LbMode, PolicyConfig, PolicyKind, WhenAllBusy};
pub use scheduler::{Scheduler, SchedulerConfig, SubmitError};
pub use types::{Dispatch, Drift, GpuId, Micros, ModelId, NodeId, Outcome, Request, RequestId};
