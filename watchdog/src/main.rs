//! The `watchdog` binary.

fn main() {}
