//! The `mlp` architecture: a plain multi-layer perceptron of any width and depth, so
//! the zoo has a model of every size. Layers are `layers.{i}` (PyTorch `nn.Linear`
//! names and shapes), ReLU between them, none after the last.

use std::collections::BTreeMap;

use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder, linear};

use super::ZooError;
use super::header::Header;

/// Shape of an MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MlpConfig {
    /// Input features.
    pub input: usize,
    /// Hidden width.
    pub width: usize,
    /// Number of hidden layers (at least 1); the model has `depth + 1` linear layers.
    pub depth: usize,
    /// Output features.
    pub output: usize,
}

impl Default for MlpConfig {
    /// 1024 → 3 × 1024 → 1024: four 1024×1024 layers, 16 793 600 bytes of f32.
    fn default() -> Self {
        MlpConfig { input: 1024, width: 1024, depth: 3, output: 1024 }
    }
}

impl MlpConfig {
    /// Reads `input`, `width`, `depth` and `output` from `zoo://mlp?...` parameters,
    /// defaulting the rest.
    pub fn from_params(params: &BTreeMap<String, String>) -> std::result::Result<Self, ZooError> {
        let mut c = MlpConfig::default();
        for (k, v) in params {
            let slot = match k.as_str() {
                "input" => &mut c.input,
                "width" => &mut c.width,
                "depth" => &mut c.depth,
                "output" => &mut c.output,
                "seed" => continue,
                other => return Err(ZooError::BadParam(format!("mlp has no parameter `{other}` (input, width, depth, output)"))),
            };
            *slot = v
                .parse()
                .ok()
                .filter(|n: &usize| *n > 0 && *n <= 1 << 16)
                .ok_or_else(|| ZooError::BadParam(format!("mlp parameter {k}={v} is not an integer in 1..=65536")))?;
        }
        Ok(c)
    }

    /// Works the shape out from a weights file: `layers.0 .. layers.N` must be present.
    pub fn from_header(header: &Header) -> std::result::Result<Self, ZooError> {
        let dims = |i: usize| header.tensor(&format!("layers.{i}.weight")).map(|t| t.shape.clone());
        let mut n = 0;
        while dims(n).is_some() {
            n += 1;
        }
        let shape_2d = |i: usize| match dims(i) {
            Some(s) if s.len() == 2 => Ok((s[0], s[1])),
            other => Err(ZooError::Mismatch(format!("mlp layer {i} weight must be 2-D, found {other:?}"))),
        };
        if n < 2 {
            return Err(ZooError::Mismatch(
                "mlp weights need at least layers.0.weight and layers.1.weight".to_string(),
            ));
        }
        let (width, input) = shape_2d(0)?;
        let (output, _) = shape_2d(n - 1)?;
        Ok(MlpConfig { input, width, depth: n - 1, output })
    }

    /// Number of f32 parameters.
    pub fn params(&self) -> u64 {
        let layer = |i: usize, o: usize| (i * o + o) as u64;
        layer(self.input, self.width) + (self.depth as u64 - 1) * layer(self.width, self.width) + layer(self.width, self.output)
    }
}

/// A built MLP.
#[derive(Debug, Clone)]
pub struct Mlp {
    layers: Vec<Linear>,
    /// Its shape.
    pub config: MlpConfig,
}

impl Mlp {
    /// Builds the layers from `vb`; shapes are checked against `config`.
    pub fn load(config: MlpConfig, vb: VarBuilder) -> Result<Self> {
        let mut layers = Vec::with_capacity(config.depth + 1);
        let mut fan_in = config.input;
        for i in 0..=config.depth {
            let out = if i == config.depth { config.output } else { config.width };
            layers.push(linear(fan_in, out, vb.pp(format!("layers.{i}")))?);
            fan_in = out;
        }
        Ok(Mlp { layers, config })
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut xs = xs.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            xs = layer.forward(&xs)?;
            if i + 1 < self.layers.len() {
                xs = xs.relu()?;
            }
        }
        Ok(xs)
    }
}
