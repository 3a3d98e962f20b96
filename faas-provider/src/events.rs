//! Changes to the function set, broadcast after each committed write so the data plane
//! (dispatcher, process runtime, reconciliation) can follow without polling the store.
//!
//! Delivery is best effort: a receiver that falls more than [`CAPACITY`] events behind
//! gets `RecvError::Lagged` and should re-read the store, which is always the truth.

use tokio::sync::broadcast;

use crate::store::FunctionRecord;

/// How many events a slow receiver may fall behind before it lags.
pub const CAPACITY: usize = 1024;

/// One committed change.
#[derive(Debug, Clone, PartialEq)]
pub enum FunctionEvent {
    /// A new function was stored.
    Deployed(FunctionRecord),
    /// An existing function's deployment was replaced.
    Updated(FunctionRecord),
    /// A function's desired replicas changed through the scale route.
    Scaled(FunctionRecord),
    /// A function was deleted; this is what it was.
    Deleted(FunctionRecord),
}

impl FunctionEvent {
    /// A short name of the change, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            FunctionEvent::Deployed(_) => "deployed",
            FunctionEvent::Updated(_) => "updated",
            FunctionEvent::Scaled(_) => "scaled",
            FunctionEvent::Deleted(_) => "deleted",
        }
    }

    /// The function the event is about.
    pub fn record(&self) -> &FunctionRecord {
        match self {
            FunctionEvent::Deployed(r)
            | FunctionEvent::Updated(r)
            | FunctionEvent::Scaled(r)
            | FunctionEvent::Deleted(r) => r,
        }
    }
}

/// A new channel's sender; receivers come from `subscribe()`.
pub fn channel() -> broadcast::Sender<FunctionEvent> {
    broadcast::channel(CAPACITY).0
}
