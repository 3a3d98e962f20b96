//! The `faas-provider` binary.

fn main() {}
