//! An of-watchdog-compatible function runtime that also honours the Knative runtime
//! contract.
//!
//! [`contract`] is the function-side HTTP contract (health, readiness, in-flight limit,
//! timeouts, drain) that gpu-worker shares for its own HTTP front.

mod body;
pub mod contract;
pub mod duration;
