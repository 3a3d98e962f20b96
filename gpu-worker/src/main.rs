//! The `gpu-worker` binary.

fn main() {}
