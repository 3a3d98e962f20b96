//! gpu-worker: devices, the managed VRAM cache, the Candle model runtime and the
//! inference API of one GPU node.
