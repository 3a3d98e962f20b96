//! Pure VRAM accounting shared by the gpu-worker's cache and the provider's global
//! cache view: capacity in bytes, LRU order, pins, single-flight loads, and the cost
//! profiles of the model zoo. No I/O, no clock: recency is a logical tick.

pub mod cache;
pub mod profile;

pub use cache::{AdmitError, Cache, CacheConfig, EntryView, EvictError, Eviction, Lookup};
pub use profile::{LoadCost, ModelProfile, Task, ZOO};
