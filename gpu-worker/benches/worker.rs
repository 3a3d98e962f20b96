//! gpu-worker benchmark (Candle backend, CPU device): load throughput from the page
//! cache and from cold files, batch-1 inference latency per architecture (including
//! pre- and post-processing), and eviction cost (dropping a resident model).
//!
//! Run: `cargo bench -p gpu-worker --bench worker` (optionally `-- resnet18 minilm` to
//! pick architectures). Prints a Markdown table for docs/benchmarks.md. "Cold" means
//! the file's pages were dropped with `posix_fadvise(DONTNEED)` first; the VM host may
//! still cache them, so cold figures are optimistic for a truly cold disk.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use bytes::Bytes;
use gpu_worker::backend::{LoadRequest, ModelBackend};
use gpu_worker::candle_backend::CandleBackend;
use gpu_worker::tasks::{InferInput, InferMode};
use gpu_worker::zoo::header::read_header;
use gpu_worker::zoo::weights::LocalWeights;
use gpu_worker::zoo::{Arch, ModelConfig, write_generated};
use tokio::time::Instant;

const LOADS: usize = 3;
const INFERS: usize = 5;

/// Drops the file's pages from the page cache.
fn make_cold(path: &Path) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).expect("open weights");
    // SAFETY: a plain advisory syscall on a file descriptor we own for its duration.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise failed");
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn input_for(arch: Arch, mlp_input: usize) -> InferInput {
    let (body, json, mode) = match arch {
        Arch::ResNet18 | Arch::ResNet34 | Arch::ResNet50 => {
            let img = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x + y) % 199) as u8]));
            let mut out = Vec::new();
            image::DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg).expect("jpeg");
            (out, false, InferMode::Task)
        }
        Arch::MiniLm | Arch::Bert => (b"The quick brown fox jumps over the lazy dog near the river bank.".to_vec(), false, InferMode::Task),
        Arch::Mlp => {
            let data: Vec<f32> = (0..mlp_input).map(|i| (i as f32 * 0.1).sin()).collect();
            let req = serde_json::json!({"inputs": [{"name": "input", "shape": [1, mlp_input], "datatype": "FP32", "data": data}]});
            (req.to_string().into_bytes(), true, InferMode::Tensor)
        }
    };
    InferInput { body: Bytes::from(body), json, mode, top_k: 5 }
}

struct Row {
    arch: &'static str,
    mb: f64,
    warm_ms: f64,
    cold_ms: f64,
    infer_ms: f64,
    evict_ms: f64,
}

fn bench(arch: Arch, dir: &Path) -> Row {
    let config = ModelConfig::from_params(arch, &BTreeMap::new()).expect("config");
    let path = dir.join(format!("{}.safetensors", arch.name()));
    write_generated(&config, 1, &path).expect("generate");
    let header = read_header(&path).expect("header");
    let mb = header.tensor_bytes as f64 / 1e6;
    let weights = LocalWeights { path: path.clone(), header: header.clone(), dir: None, config: config.clone(), fetch: gpu_worker::zoo::weights::Fetch::Local };
    let mut backend = CandleBackend::new(candle_core::Device::Cpu);
    let key = arch.name().to_string();
    let req = || LoadRequest { key: key.clone(), arch, weights: Some(weights.clone()), declared_bytes: header.tensor_bytes, memory_override: None };
    let (mut warm, mut cold, mut evict) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..2 * LOADS {
        let is_cold = round % 2 == 1;
        if is_cold {
            make_cold(&path);
        }
        let t = Instant::now();
        backend.load(req()).expect("load");
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if is_cold { cold.push(ms) } else { warm.push(ms) }
        let t = Instant::now();
        assert!(backend.unload(&key));
        evict.push(t.elapsed().as_secs_f64() * 1e3);
    }
    backend.load(req()).expect("load");
    let mlp_input = match config {
        ModelConfig::Mlp(c) => c.input,
        _ => 0,
    };
    let input = input_for(arch, mlp_input);
    backend.infer(&key, &input).expect("warm-up inference");
    let infer: Vec<f64> = (0..INFERS)
        .map(|_| {
            let t = Instant::now();
            backend.infer(&key, &input).expect("inference");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    Row { arch: arch.name(), mb, warm_ms: median(warm), cold_ms: median(cold), infer_ms: median(infer), evict_ms: median(evict) }
}

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let dir = tempfile::tempdir_in(std::env::var_os("LOCUS_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into)).expect("tempdir");
    println!("| arch | weights MB | load warm ms | load warm MB/s | load cold ms | load cold MB/s | inference ms (batch 1) | evict ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for arch in Arch::ALL.into_iter().filter(|a| wanted.is_empty() || wanted.iter().any(|w| w == a.name())) {
        let r = bench(arch, dir.path());
        println!(
            "| {} | {:.1} | {:.1} | {:.0} | {:.1} | {:.0} | {:.1} | {:.2} |",
            r.arch,
            r.mb,
            r.warm_ms,
            r.mb / r.warm_ms * 1e3,
            r.cold_ms,
            r.mb / r.cold_ms * 1e3,
            r.infer_ms,
            r.evict_ms
        );
    }
}
