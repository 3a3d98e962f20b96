//! Deterministic generated weights: our own seeded generator behind a Candle
//! [`SimpleBackend`], because Candle's CPU `set_seed` fails and its random ops use a
//! thread-local generator.
//!
//! A model is built once against [`SeededWeights`]; every tensor it asks for is drawn
//! from a splitmix64 stream seeded by `(seed, tensor name)` and following the layer's
//! own init hint (Kaiming, normal, uniform, constant), and recorded. The recorded map
//! is what `zoo://ARCH?seed=N` and `gpu-worker make-model` write as safetensors. The
//! tensors are plain tensors, not `Var`s, so no autograd graph keeps them alive.

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, init::NormalOrUniform};

/// splitmix64: tiny, fast, and the same numbers on every platform.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller; one value per call keeps the stream simple).
    pub fn next_normal(&mut self) -> f64 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// FNV-1a, 64 bit: a hash that is stable across Rust versions and platforms (unlike
/// `DefaultHasher`), used to derive per-tensor seeds and fallback token ids.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// Draws `n` values following a Candle init hint for a tensor of `shape`.
fn draw(init: Init, shape: &Shape, n: usize, rng: &mut SplitMix64) -> Vec<f32> {
    match init {
        Init::Const(v) => vec![v as f32; n],
        Init::Randn { mean, stdev } => (0..n).map(|_| (mean + stdev * rng.next_normal()) as f32).collect(),
        Init::Uniform { lo, up } => (0..n).map(|_| (lo + (up - lo) * rng.next_f64()) as f32).collect(),
        Init::Kaiming { dist, fan, non_linearity } => {
            let fan = fan.for_shape(shape).max(1);
            let std = non_linearity.gain() / (fan as f64).sqrt();
            match dist {
                NormalOrUniform::Normal => (0..n).map(|_| (std * rng.next_normal()) as f32).collect(),
                NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * std;
                    (0..n).map(|_| (bound * (2.0 * rng.next_f64() - 1.0)) as f32).collect()
                }
            }
        }
    }
}

/// A [`SimpleBackend`] that makes up every tensor asked of it from a seed, and keeps
/// what it made so the weights can be saved.
#[derive(Debug)]
pub struct SeededWeights {
    seed: u64,
    /// Every tensor handed out so far, by full name. A mutex because `SimpleBackend`
    /// is `Sync` and takes `&self`; builds are single-threaded, so it never contends.
    made: Mutex<HashMap<String, Tensor>>,
}

impl SeededWeights {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        SeededWeights { seed, made: Mutex::new(HashMap::new()) }
    }

    /// The tensors made so far.
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.made.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl SimpleBackend for SeededWeights {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let mut made = self.made.lock().map_err(|_| candle_core::Error::Msg("generator lock poisoned".into()))?;
        if let Some(t) = made.get(name) {
            if t.shape() != &s {
                candle_core::bail!("tensor {name} requested with two shapes: {:?} and {s:?}", t.shape());
            }
            return t.to_dtype(dtype)?.to_device(dev);
        }
        let mut rng = SplitMix64::new(self.seed ^ fnv1a(name.as_bytes()));
        let values = draw(h, &s, s.elem_count(), &mut rng);
        let t = Tensor::from_vec(values, s, &Device::Cpu)?;
        made.insert(name.to_string(), t.clone());
        t.to_dtype(dtype)?.to_device(dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        let made = self.made.lock().map_err(|_| candle_core::Error::Msg("generator lock poisoned".into()))?;
        match made.get(name) {
            Some(t) => t.to_dtype(dtype)?.to_device(dev),
            None => candle_core::bail!("generated weights have no tensor {name} yet"),
        }
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        // A generator can make any tensor; models that probe for optional prefixes
        // (BERT's `bert.`) must not be misled, so report "absent" and let them use
        // their default names.
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarBuilder;

    #[test]
    fn the_same_seed_and_name_give_the_same_tensor_and_other_seeds_differ() {
        let a = VarBuilder::from_backend(Box::new(SeededWeights::new(7)), DType::F32, Device::Cpu);
        let b = VarBuilder::from_backend(Box::new(SeededWeights::new(7)), DType::F32, Device::Cpu);
        let c = VarBuilder::from_backend(Box::new(SeededWeights::new(8)), DType::F32, Device::Cpu);
        let get = |vb: &VarBuilder| -> Vec<f32> {
            vb.get_with_hints((4, 5), "w", candle_nn::init::DEFAULT_KAIMING_NORMAL)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1())
                .unwrap_or_default()
        };
        assert_eq!(get(&a).len(), 20);
        assert_eq!(get(&a), get(&b));
        assert_ne!(get(&a), get(&c));
    }

    #[test]
    fn normal_draws_have_roughly_unit_variance() {
        let mut rng = SplitMix64::new(1);
        let xs: Vec<f64> = (0..20_000).map(|_| rng.next_normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }
}
