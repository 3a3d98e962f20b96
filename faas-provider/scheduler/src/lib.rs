//! The pure scheduler of Locus and the discrete-event simulator that drives it.
//!
//! Nothing in this crate performs I/O, reads a clock or depends on an async runtime:
//! time is always an argument. The live provider's dispatcher and the simulator in
//! [`sim`] drive the very same types, so every simulated result is a result of the
//! code that serves traffic.

pub mod sim;
