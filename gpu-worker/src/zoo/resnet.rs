//! The `resnet18`, `resnet34` and `resnet50` architectures: candle-transformers'
//! ResNets, with torchvision parameter names (`conv1`, `layer1.0.conv1`, `fc`), so
//! torchvision state dicts converted to safetensors load unchanged.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Func, VarBuilder};
use candle_transformers::models::resnet;

use super::header::Header;

/// The ImageNet class count, the default head size.
pub const IMAGENET_CLASSES: usize = 1000;

/// Which ResNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// ResNet-18 (basic blocks 2-2-2-2).
    R18,
    /// ResNet-34 (basic blocks 3-4-6-3).
    R34,
    /// ResNet-50 (bottleneck blocks 3-4-6-3).
    R50,
}

/// The head size of weights: rows of `fc.weight`, or ImageNet's 1000.
pub fn classes_in(header: &Header) -> usize {
    header.tensor("fc.weight").and_then(|t| t.shape.first().copied()).unwrap_or(IMAGENET_CLASSES)
}

/// A built ResNet classifier.
pub struct ResNet {
    net: Func<'static>,
    /// Output classes.
    pub classes: usize,
}

impl ResNet {
    /// Builds the network from `vb` with a `classes`-way head.
    pub fn load(depth: Depth, classes: usize, vb: VarBuilder<'static>) -> Result<Self> {
        let net = match depth {
            Depth::R18 => resnet::resnet18(classes, vb)?,
            Depth::R34 => resnet::resnet34(classes, vb)?,
            Depth::R50 => resnet::resnet50(classes, vb)?,
        };
        Ok(ResNet { net, classes })
    }
}

impl Module for ResNet {
    /// Logits `[batch, classes]` of images `[batch, 3, H, W]`.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.net.forward(xs)
    }
}
