//! gpu-worker: devices, the managed VRAM cache, the Candle model runtime and the
//! inference API of one GPU node.

pub mod backend;
pub mod candle_backend;
pub mod device;
pub mod emulated;
pub mod metrics;
pub mod tasks;
pub mod wire;
pub mod zoo;
