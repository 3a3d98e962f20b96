//! The model zoo: which architectures exist (names and profiles come from
//! `locus_vram::profile`, so worker, provider and simulator agree), how each is
//! configured from `zoo://` parameters or from a weights file, how it is built with
//! Candle, and how deterministic weights are generated for it.

pub mod bert;
pub mod counting;
pub mod generator;
pub mod header;
pub mod mlp;
pub mod resnet;
pub mod weights;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use locus_vram::profile::{ModelProfile, Task};

use self::header::Header;
use self::mlp::{Mlp, MlpConfig};
use self::resnet::{Depth, ResNet};

/// Why a model cannot be configured or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZooError {
    /// The architecture is not in the zoo.
    #[error("unknown architecture `{0}` (the zoo has: {names})", names = locus_vram::profile::arch_names().join(", "))]
    UnknownArch(String),
    /// A `zoo://` parameter is wrong.
    #[error("{0}")]
    BadParam(String),
    /// The weights' tensors do not fit the architecture.
    #[error("weights do not match the architecture: {0}")]
    Mismatch(String),
    /// Candle failed for another reason.
    #[error("model build failed: {0}")]
    Build(String),
}

/// A zoo architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// [`mlp`]: any width and depth.
    Mlp,
    /// ResNet-18.
    ResNet18,
    /// ResNet-34.
    ResNet34,
    /// ResNet-50.
    ResNet50,
    /// all-MiniLM-L6-v2 sentence embeddings.
    MiniLm,
    /// bert-base sentence embeddings.
    Bert,
}

impl Arch {
    /// Every architecture.
    pub const ALL: [Arch; 6] = [Arch::Mlp, Arch::ResNet18, Arch::ResNet34, Arch::ResNet50, Arch::MiniLm, Arch::Bert];

    /// The architecture called `name` (as in `locus.io/model`).
    pub fn parse(name: &str) -> Result<Arch, ZooError> {
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == name && locus_vram::profile::profile(name).is_some())
            .ok_or_else(|| ZooError::UnknownArch(name.to_string()))
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Mlp => "mlp",
            Arch::ResNet18 => "resnet18",
            Arch::ResNet34 => "resnet34",
            Arch::ResNet50 => "resnet50",
            Arch::MiniLm => "minilm",
            Arch::Bert => "bert",
        }
    }

    /// Its shared cost profile.
    pub fn profile(self) -> &'static ModelProfile {
        locus_vram::profile::profile(self.name()).unwrap_or(&locus_vram::profile::ZOO[0])
    }

    /// What it does.
    pub fn task(self) -> Task {
        self.profile().task
    }
}

/// Everything needed to build one architecture with one set of shapes.
#[derive(Debug, Clone)]
pub enum ModelConfig {
    /// An MLP.
    Mlp(MlpConfig),
    /// A ResNet with a head of `classes`.
    ResNet {
        /// Which one.
        depth: Depth,
        /// Head size.
        classes: usize,
    },
    /// A BERT embedder.
    Bert(Box<candle_transformers::models::bert::Config>),
}

impl ModelConfig {
    /// The configuration `zoo://ARCH?...` parameters ask for.
    pub fn from_params(arch: Arch, params: &BTreeMap<String, String>) -> Result<Self, ZooError> {
        let only_seed = |allowed: &[&str]| {
            params.keys().find(|k| !allowed.contains(&k.as_str())).map_or(Ok(()), |k| {
                Err(ZooError::BadParam(format!("{} has no parameter `{k}` (allowed: {})", arch.name(), allowed.join(", "))))
            })
        };
        Ok(match arch {
            Arch::Mlp => ModelConfig::Mlp(MlpConfig::from_params(params)?),
            Arch::ResNet18 | Arch::ResNet34 | Arch::ResNet50 => {
                only_seed(&["seed", "classes"])?;
                let classes = match params.get("classes") {
                    None => resnet::IMAGENET_CLASSES,
                    Some(v) => v.parse().ok().filter(|n| (1..=100_000).contains(n)).ok_or_else(|| {
                        ZooError::BadParam(format!("classes={v} is not an integer in 1..=100000"))
                    })?,
                };
                ModelConfig::ResNet { depth: depth_of(arch), classes }
            }
            Arch::MiniLm | Arch::Bert => {
                only_seed(&["seed"])?;
                ModelConfig::Bert(Box::new(default_bert(arch)))
            }
        })
    }

    /// The configuration of existing weights: shapes from the header, and for BERT the
    /// `config.json` beside the weights when there is one.
    pub fn from_weights(arch: Arch, header: &Header, dir: Option<&Path>) -> Result<Self, ZooError> {
        Ok(match arch {
            Arch::Mlp => ModelConfig::Mlp(MlpConfig::from_header(header)?),
            Arch::ResNet18 | Arch::ResNet34 | Arch::ResNet50 => {
                ModelConfig::ResNet { depth: depth_of(arch), classes: resnet::classes_in(header) }
            }
            Arch::MiniLm | Arch::Bert => {
                ModelConfig::Bert(Box::new(bert::config_for(default_bert(arch), Some(header), dir)?))
            }
        })
    }
}

fn depth_of(arch: Arch) -> Depth {
    match arch {
        Arch::ResNet34 => Depth::R34,
        Arch::ResNet50 => Depth::R50,
        _ => Depth::R18,
    }
}

fn default_bert(arch: Arch) -> candle_transformers::models::bert::Config {
    if arch == Arch::Bert { bert::bert_base_config() } else { bert::minilm_config() }
}

/// A built model, ready for forward passes.
pub enum Model {
    /// An MLP: tensors in, tensors out.
    Mlp(Mlp),
    /// A ResNet classifier.
    ResNet(ResNet),
    /// A BERT sentence embedder.
    Bert(Box<bert::Embedder>),
}

/// Builds `config` from `vb`. Missing tensors and wrong shapes come back as
/// [`ZooError::Mismatch`].
pub fn build(config: &ModelConfig, vb: VarBuilder<'static>) -> Result<Model, ZooError> {
    let built = match config {
        ModelConfig::Mlp(c) => Mlp::load(*c, vb).map(Model::Mlp),
        ModelConfig::ResNet { depth, classes } => ResNet::load(*depth, *classes, vb).map(Model::ResNet),
        ModelConfig::Bert(c) => bert::Embedder::load((**c).clone(), vb).map(|e| Model::Bert(Box::new(e))),
    };
    built.map_err(classify)
}

/// Sorts a Candle build error into "the weights are wrong" or "something else".
pub fn classify(err: candle_core::Error) -> ZooError {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or_default().to_string();
    let mismatch = ["shape mismatch", "cannot find tensor", "unexpected", "dtype"]
        .iter()
        .any(|m| text.to_lowercase().contains(m));
    if mismatch { ZooError::Mismatch(first) } else { ZooError::Build(first) }
}

/// Generates the deterministic weights of `config` for `seed`: builds the model once
/// against [`generator::SeededWeights`] and returns every tensor it asked for.
pub fn generate(config: &ModelConfig, seed: u64) -> Result<HashMap<String, Tensor>, ZooError> {
    let source = std::sync::Arc::new(generator::SeededWeights::new(seed));
    let vb = VarBuilder::from_backend(Box::new(SharedGen(source.clone())), DType::F32, Device::Cpu);
    build(config, vb)?;
    Ok(source.tensors())
}

/// Lets the generator be both handed to a `VarBuilder` and read afterwards.
struct SharedGen(std::sync::Arc<generator::SeededWeights>);

impl candle_nn::var_builder::SimpleBackend for SharedGen {
    fn get(&self, s: candle_core::Shape, name: &str, h: candle_nn::Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.0.get(s, name, h, dtype, dev)
    }
    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.0.get_unchecked(name, dtype, dev)
    }
    fn contains_tensor(&self, name: &str) -> bool {
        self.0.contains_tensor(name)
    }
}

/// Writes the generated weights of `config` for `seed` to `out` as safetensors
/// (the `make-model` subcommand and the `zoo://` cache use this). Returns the bytes
/// of tensor data written.
pub fn write_generated(config: &ModelConfig, seed: u64, out: &Path) -> Result<u64, ZooError> {
    let tensors = generate(config, seed)?;
    let bytes = tensors.values().map(|t| (t.elem_count() * t.dtype().size_in_bytes()) as u64).sum();
    candle_core::safetensors::save(&tensors, out).map_err(|e| ZooError::Build(format!("cannot write {}: {e}", out.display())))?;
    Ok(bytes)
}
