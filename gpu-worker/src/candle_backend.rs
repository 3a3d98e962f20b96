//! The Candle backend: real models on one device (a CPU "device", or a CUDA GPU with
//! the `cuda` feature). Weights are memory-mapped and copied onto the device; the
//! footprint is the bytes the model took from the file, plus, on CUDA, the extra
//! device memory the load consumed. Unloading on CUDA follows the eviction protocol
//! of `reference/candle.md` §5: drop, synchronise, trim the pool, read free memory.

use std::collections::HashMap;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use crate::backend::{BackendError, BackendKind, DeviceMemory, LoadRequest, Loaded, ModelBackend};
use crate::tasks::tensor::{self, InferResponse, OutputTensor};
use crate::tasks::text::{self, Embeddings, TextTokenizer};
use crate::tasks::{InferInput, InferMode, InferOutput, image};
use crate::wire::ModelKey;
use crate::zoo::{self, Model, counting::CountingMmap};

/// A model on the device with what its task needs around it.
struct Resident {
    model: Model,
    tokenizer: Option<TextTokenizer>,
    labels: Option<Vec<String>>,
}

/// Real models on one Candle device. Owned by that device's thread.
pub struct CandleBackend {
    device: Device,
    models: HashMap<ModelKey, Resident>,
}

impl CandleBackend {
    /// A backend for `device` (created once per device, then only cloned).
    pub fn new(device: Device) -> Self {
        CandleBackend { device, models: HashMap::new() }
    }
}

fn compute(e: candle_core::Error) -> BackendError {
    BackendError::Internal(e.to_string().lines().next().unwrap_or_default().to_string())
}

impl ModelBackend for CandleBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Candle
    }

    fn load(&mut self, req: LoadRequest) -> Result<Loaded, BackendError> {
        let weights = req.weights.ok_or_else(|| BackendError::Internal("Candle load without weights".into()))?;
        let before = self.memory();
        let (source, taken) = CountingMmap::open(&weights.path).map_err(|e| BackendError::Corrupt(e.to_string()))?;
        let vb = VarBuilder::from_backend(Box::new(source), DType::F32, self.device.clone());
        let model = zoo::build(&weights.config, vb)?;
        let tokenizer = match &model {
            Model::Bert(e) => Some(TextTokenizer::for_dir(weights.dir.as_deref(), e.config.vocab_size)?),
            _ => None,
        };
        let labels = weights
            .dir
            .as_deref()
            .map(|d| d.join("labels.txt"))
            .filter(|p| p.is_file())
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| t.lines().map(str::to_string).collect());
        self.device.synchronize().map_err(compute)?;
        let counted = zoo::counting::total(&taken);
        let (bytes, measured_by) = match (req.memory_override, before, self.memory()) {
            (Some(declared), ..) => (declared, "declared"),
            (None, Some(b), Some(a)) => (counted.max(b.free.saturating_sub(a.free)), "weights+device"),
            _ => (counted, "weights"),
        };
        self.models.insert(req.key, Resident { model, tokenizer, labels });
        Ok(Loaded { bytes, measured_by })
    }

    fn unload(&mut self, key: &ModelKey) -> bool {
        let was = self.models.remove(key).is_some();
        #[cfg(feature = "cuda")]
        crate::device_cuda::release(&self.device);
        was
    }

    fn infer(&mut self, key: &ModelKey, input: &InferInput) -> Result<InferOutput, BackendError> {
        let resident = self.models.get(key).ok_or_else(|| BackendError::Internal(format!("model {key} is not loaded")))?;
        match input.mode {
            InferMode::Task => run_task(resident, &self.device, input),
            InferMode::Tensor => run_tensor(resident, &self.device, key, input),
        }
    }

    fn memory(&mut self) -> Option<DeviceMemory> {
        #[cfg(feature = "cuda")]
        {
            crate::device_cuda::memory(&self.device)
        }
        #[cfg(not(feature = "cuda"))]
        {
            None
        }
    }
}

fn run_task(r: &Resident, device: &Device, input: &InferInput) -> Result<InferOutput, BackendError> {
    match &r.model {
        Model::ResNet(net) => {
            let x = image::preprocess(&input.body, device)?;
            let logits = net.forward(&x).and_then(|t| t.squeeze(0)).and_then(|t| t.to_vec1::<f32>()).map_err(compute)?;
            Ok(InferOutput::json(&image::top_k(&logits, input.top_k, r.labels.as_deref()))?)
        }
        Model::Bert(embedder) => {
            let texts = text::parse_texts(&input.body, input.json)?;
            let tokenizer = r.tokenizer.as_ref().ok_or_else(|| BackendError::Internal("BERT without tokenizer".into()))?;
            let max_len = text::MAX_TOKENS.min(embedder.config.max_position_embeddings);
            let batch = tokenizer.encode(&texts, max_len)?;
            let (n, len) = (batch.ids.len(), batch.ids[0].len());
            let ids = Tensor::from_vec(batch.ids.concat(), (n, len), device).map_err(compute)?;
            let mask = Tensor::from_vec(batch.mask.concat(), (n, len), device).map_err(compute)?;
            let out = embedder.embed(&ids, &mask, None).and_then(|t| t.to_vec2::<f32>()).map_err(compute)?;
            let dim = out.first().map_or(0, Vec::len);
            Ok(InferOutput::json(&Embeddings { embeddings: out, dim, tokenizer: tokenizer.kind().to_string() })?)
        }
        Model::Mlp(_) => Err(BackendError::Unsupported(
            "mlp takes KServe v2 tensors: POST {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]} as application/json"
                .to_string(),
        )),
    }
}

fn shaped(name: &str, values: Vec<f32>, shape: &[usize], device: &Device) -> Result<Tensor, BackendError> {
    Tensor::from_vec(values, shape, device).map_err(|e| BackendError::Input(format!("input {name}: {e}")))
}

fn check_dims(name: &str, shape: &[usize], want: &[Option<usize>]) -> Result<(), BackendError> {
    let ok = shape.len() == want.len() && shape.iter().zip(want).all(|(d, w)| *d > 0 && w.is_none_or(|w| w == *d));
    if ok {
        return Ok(());
    }
    let want: Vec<String> = want.iter().map(|w| w.map_or("N".to_string(), |d| d.to_string())).collect();
    Err(BackendError::Input(format!("input {name} must have shape [{}], got {shape:?}", want.join(", "))))
}

fn run_tensor(r: &Resident, device: &Device, key: &ModelKey, input: &InferInput) -> Result<InferOutput, BackendError> {
    let req = tensor::parse(&input.body)?;
    let one = |name: &str| -> Result<&tensor::InputTensor, BackendError> {
        req.input(None).or_else(|| req.input(Some(name))).ok_or_else(|| {
            BackendError::Input(format!("expected one input tensor (or one named `{name}`), got {}", req.inputs.len()))
        })
    };
    let output = match &r.model {
        Model::Mlp(mlp) => {
            let x = one("input")?;
            check_dims(&x.name, &x.shape, &[None, Some(mlp.config.input)])?;
            let t = shaped(&x.name, x.to_f32()?, &x.shape, device)?;
            let y = mlp.forward(&t).map_err(compute)?;
            OutputTensor::fp32("output", y.dims().to_vec(), y.flatten_all().and_then(|t| t.to_vec1()).map_err(compute)?)
        }
        Model::ResNet(net) => {
            let x = one("input")?;
            check_dims(&x.name, &x.shape, &[None, Some(3), None, None])?;
            if x.shape[2] < 32 || x.shape[3] < 32 {
                return Err(BackendError::Input(format!("input {} images must be at least 32×32, got {:?}", x.name, x.shape)));
            }
            let t = shaped(&x.name, x.to_f32()?, &x.shape, device)?;
            let y = net.forward(&t).map_err(compute)?;
            OutputTensor::fp32("logits", y.dims().to_vec(), y.flatten_all().and_then(|t| t.to_vec1()).map_err(compute)?)
        }
        Model::Bert(embedder) => {
            let ids = req.input(Some("input_ids")).ok_or_else(|| BackendError::Input("BERT needs an input named input_ids".into()))?;
            let max_len = embedder.config.max_position_embeddings;
            check_dims(&ids.name, &ids.shape, &[None, None])?;
            if ids.shape[1] > max_len {
                return Err(BackendError::Input(format!("input_ids longer than the model's {max_len} positions")));
            }
            let vocab = embedder.config.vocab_size as u32;
            let id_values = ids.to_u32()?;
            if let Some(bad) = id_values.iter().find(|v| **v >= vocab) {
                return Err(BackendError::Input(format!("token id {bad} is outside the vocabulary of {vocab}")));
            }
            let u32s = |name: &str| -> Result<Option<Tensor>, BackendError> {
                let Some(t) = req.input(Some(name)) else { return Ok(None) };
                if t.shape != ids.shape {
                    return Err(BackendError::Input(format!("{name} must have the shape of input_ids {:?}", ids.shape)));
                }
                let values = t.to_u32()?;
                if name == "token_type_ids" && values.iter().any(|v| *v as usize >= embedder.config.type_vocab_size) {
                    return Err(BackendError::Input("token_type_ids out of range".into()));
                }
                Tensor::from_vec(values, ids.shape.as_slice(), device).map(Some).map_err(compute)
            };
            let id_t = Tensor::from_vec(id_values, ids.shape.as_slice(), device).map_err(compute)?;
            let mask = match u32s("attention_mask")? {
                Some(m) => m,
                None => id_t.ones_like().map_err(compute)?,
            };
            let types = u32s("token_type_ids")?;
            let y = embedder.embed(&id_t, &mask, types.as_ref()).map_err(compute)?;
            OutputTensor::fp32("embeddings", y.dims().to_vec(), y.flatten_all().and_then(|t| t.to_vec1()).map_err(compute)?)
        }
    };
    Ok(InferOutput::json(&InferResponse { model_name: key.clone(), id: req.id.clone(), outputs: vec![output] })?)
}

