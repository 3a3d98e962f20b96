//! What each model of the zoo costs: weight bytes, inference time, and the load-time
//! model (bytes over host-to-device bandwidth plus a fixed setup cost).
//!
//! The worker's emulated backend and the provider's simulator take their timings from
//! here, and the provider validates `locus.io/model` against [`ZOO`], so the three
//! never disagree about which architectures exist.
//!
//! Sources of the numbers:
//! - `weight_bytes`: the f32 weight bytes of each architecture exactly as the worker's
//!   zoo builds it (summed from the safetensors header of its `zoo://` weights; mlp at
//!   its default shape; resnet34 as 21,797,672 parameters plus 17,024 batch-norm running
//!   statistics, the same accounting that matches resnet18 and resnet50 exactly).
//! - `cpu_infer_ms`: batch 1, release build, 2-core machine (same source); resnet34 and
//!   mlp are estimated from their FLOPs relative to resnet18.
//! - `gpu_infer_ms`: batch-1 fp32 latencies typical of a data-centre GPU (V100/A100
//!   class) for these architectures. They are estimates, not measurements: no GPU was
//!   available where they were written. Every result that uses them says so.

/// What a model's input and output are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    /// Image bytes in, top-k classes out.
    ImageClassification,
    /// Text in, embedding vector out.
    TextEmbedding,
    /// Raw tensors in and out (KServe v2 / Open Inference Protocol).
    Tensor,
}

/// Size and time of one zoo architecture at its default configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelProfile {
    /// Architecture name, as used in `locus.io/model` and `zoo://ARCH`.
    pub arch: &'static str,
    /// What the model does.
    pub task: Task,
    /// Bytes of the f32 weights.
    pub weight_bytes: u64,
    /// Batch-1 inference time on a data-centre GPU, milliseconds (estimate).
    pub gpu_infer_ms: f64,
    /// Batch-1 inference time on the 2-core CPU, milliseconds.
    pub cpu_infer_ms: f64,
}

/// The zoo's architectures, smallest first.
pub const ZOO: &[ModelProfile] = &[
    ModelProfile {
        arch: "mlp",
        task: Task::Tensor,
        weight_bytes: 16_793_600,
        gpu_infer_ms: 0.2,
        cpu_infer_ms: 2.0,
    },
    ModelProfile {
        arch: "resnet18",
        task: Task::ImageClassification,
        weight_bytes: 46_796_448,
        gpu_infer_ms: 1.5,
        cpu_infer_ms: 117.0,
    },
    ModelProfile {
        arch: "minilm",
        task: Task::TextEmbedding,
        weight_bytes: 90_261_504,
        gpu_infer_ms: 1.5,
        cpu_infer_ms: 47.0,
    },
    ModelProfile {
        arch: "resnet34",
        task: Task::ImageClassification,
        weight_bytes: 87_258_784,
        gpu_infer_ms: 2.5,
        cpu_infer_ms: 230.0,
    },
    ModelProfile {
        arch: "resnet50",
        task: Task::ImageClassification,
        weight_bytes: 102_440_608,
        gpu_infer_ms: 4.0,
        cpu_infer_ms: 195.0,
    },
    ModelProfile {
        arch: "bert",
        task: Task::TextEmbedding,
        weight_bytes: 435_566_592,
        gpu_infer_ms: 5.0,
        cpu_infer_ms: 310.0,
    },
];

/// The profile of `arch`, if the zoo has it.
pub fn profile(arch: &str) -> Option<&'static ModelProfile> {
    ZOO.iter().find(|p| p.arch == arch)
}

/// The names of every zoo architecture, for error messages.
pub fn arch_names() -> Vec<&'static str> {
    ZOO.iter().map(|p| p.arch).collect()
}

/// How long moving a model onto a device takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadCost {
    /// Host-to-device bandwidth, bytes per second.
    pub bandwidth_bytes_per_s: f64,
    /// Fixed cost of every load (process or context start, allocation, kernel set-up),
    /// milliseconds.
    pub setup_ms: f64,
}

impl LoadCost {
    /// Locus's own in-process load: 12 GB/s (the paper's host-to-GPU bandwidth) and a
    /// 50 ms setup (allocation and kernel set-up; no process start). The simulator's
    /// default experiment models the paper's one-process-per-model design instead and
    /// charges 1000 ms of setup (see docs/scheduling.md).
    pub const DEFAULT: LoadCost = LoadCost { bandwidth_bytes_per_s: 12e9, setup_ms: 50.0 };

    /// Milliseconds to load `bytes`.
    pub fn load_ms(&self, bytes: u64) -> f64 {
        self.setup_ms + bytes as f64 / self.bandwidth_bytes_per_s * 1e3
    }
}

impl Default for LoadCost {
    fn default() -> Self {
        LoadCost::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_architecture_is_found_by_name_and_names_are_unique() {
        for p in ZOO {
            assert_eq!(profile(p.arch).map(|q| q.arch), Some(p.arch));
        }
        let mut names = arch_names();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ZOO.len());
        assert!(profile("gpt-17").is_none());
    }

    #[test]
    fn load_time_is_setup_plus_bytes_over_bandwidth() {
        let cost = LoadCost { bandwidth_bytes_per_s: 1e9, setup_ms: 10.0 };
        assert!((cost.load_ms(500_000_000) - 510.0).abs() < 1e-9);
        assert!((cost.load_ms(0) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn zoo_sizes_span_the_papers_range_of_15_to_440_megabytes() {
        let min = ZOO.iter().map(|p| p.weight_bytes).min().unwrap_or(0);
        let max = ZOO.iter().map(|p| p.weight_bytes).max().unwrap_or(0);
        assert!((15_000_000..20_000_000).contains(&min));
        assert!((430_000_000..441_000_000).contains(&max));
    }
}
