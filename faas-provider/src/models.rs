//! What kind of function a deployment is, and whether Locus can accept it: the one
//! place that reads the `locus.io/model`, `locus.io/weights` and `locus.io/memory`
//! annotations.
//!
//! [`classify`] is the extension point: today every function must name a model; a later
//! kind (ordinary container functions without `locus.io/model`) becomes one more
//! [`FunctionKind`] variant decided here. Architectures are the worker's zoo
//! ([`locus_vram::profile::ZOO`]), so the provider and the worker never disagree.

use std::path::PathBuf;

use crate::quantity;
use crate::types::FunctionDeployment;

/// Annotation naming the model architecture (`resnet18`, `minilm`, ...).
pub const MODEL: &str = "locus.io/model";
/// Annotation naming the weights URI.
pub const WEIGHTS: &str = "locus.io/weights";
/// Annotation overriding the VRAM footprint (a Kubernetes quantity).
pub const MEMORY: &str = "locus.io/memory";

/// The architectures a `locus.io/model` annotation may name.
pub fn known_architectures() -> Vec<&'static str> {
    locus_vram::profile::arch_names()
}

/// Whether `arch` is an architecture the worker's zoo can build.
pub fn is_known_architecture(arch: &str) -> bool {
    locus_vram::profile::profile(arch).is_some()
}

/// The kinds of function Locus serves.
#[derive(Debug, Clone, PartialEq)]
pub enum FunctionKind {
    /// An inference function served by GPU workers from a named model.
    Model(ModelSpec),
}

/// A validated model reference.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// The architecture, one of [`known_architectures`].
    pub arch: String,
    /// Where the weights come from.
    pub weights: WeightsUri,
    /// VRAM footprint override in bytes, when `locus.io/memory` is given.
    pub memory_bytes: Option<u64>,
}

/// Where a model's weights come from.
#[derive(Debug, Clone, PartialEq)]
pub enum WeightsUri {
    /// Deterministic generated weights: `zoo://ARCH?seed=N`.
    Zoo {
        /// The architecture (equal to the model's).
        arch: String,
        /// The generator seed.
        seed: u64,
    },
    /// A safetensors file on the worker: `file:///abs/path`.
    File(PathBuf),
    /// A URL the worker downloads: `http(s)://...`.
    Http(String),
}

/// Why a deployment's model annotations are refused (answered with 400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A required annotation is absent or empty.
    #[error("annotation {annotation} is required: {why}")]
    Missing {
        /// The annotation's name.
        annotation: &'static str,
        /// What it should hold.
        why: String,
    },
    /// An annotation is present but malformed.
    #[error("annotation {annotation}={value:?} is invalid: {why}")]
    Invalid {
        /// The annotation's name.
        annotation: &'static str,
        /// What was sent.
        value: String,
        /// Why it is refused.
        why: String,
    },
}

/// Decides what kind of function `deployment` is and whether Locus accepts it.
pub fn classify(deployment: &FunctionDeployment) -> Result<FunctionKind, ModelError> {
    let empty = Default::default();
    let annotations = deployment.annotations.as_ref().unwrap_or(&empty);
    let get = |key: &str| {
        annotations
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };

    let arch = get(MODEL).ok_or_else(|| ModelError::Missing {
        annotation: MODEL,
        why: format!(
            "Locus serves model functions; name one of {}",
            known_architectures().join(", ")
        ),
    })?;
    if !is_known_architecture(arch) {
        return Err(ModelError::Invalid {
            annotation: MODEL,
            value: arch.to_string(),
            why: format!(
                "unknown architecture; known: {}",
                known_architectures().join(", ")
            ),
        });
    }
    let weights_text = get(WEIGHTS).ok_or_else(|| ModelError::Missing {
        annotation: WEIGHTS,
        why: format!("give zoo://{arch}?seed=N, file:///abs/path or an http(s) URL"),
    })?;
    let weights = parse_weights(weights_text, arch).map_err(|why| ModelError::Invalid {
        annotation: WEIGHTS,
        value: weights_text.to_string(),
        why,
    })?;
    let memory_bytes = get(MEMORY)
        .map(|text| {
            quantity::parse_bytes(text).map_err(|why| ModelError::Invalid {
                annotation: MEMORY,
                value: text.to_string(),
                why,
            })
        })
        .transpose()?;
    Ok(FunctionKind::Model(ModelSpec {
        arch: arch.to_string(),
        weights,
        memory_bytes,
    }))
}

/// Parses a weights URI for a model of architecture `arch`.
fn parse_weights(text: &str, arch: &str) -> Result<WeightsUri, String> {
    if let Some(rest) = text.strip_prefix("zoo://") {
        let (zoo_arch, query) = rest
            .split_once('?')
            .ok_or_else(|| format!("expected zoo://{arch}?seed=N"))?;
        if zoo_arch != arch {
            return Err(format!(
                "zoo weights are for {zoo_arch:?} but the model is {arch:?}"
            ));
        }
        let seed = query
            .strip_prefix("seed=")
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| format!("expected seed=N (an unsigned integer), got {query:?}"))?;
        return Ok(WeightsUri::Zoo {
            arch: zoo_arch.to_string(),
            seed,
        });
    }
    if let Some(path) = text.strip_prefix("file://") {
        if !path.starts_with('/') || path.len() < 2 {
            return Err("a file URI needs an absolute path: file:///abs/path".to_string());
        }
        if path.split('/').any(|part| part == "..") {
            return Err("a file path must not contain '..'".to_string());
        }
        return Ok(WeightsUri::File(PathBuf::from(path)));
    }
    for scheme in ["http://", "https://"] {
        if let Some(rest) = text.strip_prefix(scheme) {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            if host.is_empty() || text.chars().any(char::is_whitespace) {
                return Err("an http(s) URL needs a host and no spaces".to_string());
            }
            return Ok(WeightsUri::Http(text.to_string()));
        }
    }
    Err("must be zoo://ARCH?seed=N, file:///abs/path or an http(s):// URL".to_string())
}

#[cfg(test)]
mod tests;
