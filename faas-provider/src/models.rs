//! What kind of function a deployment is, and whether Locus can accept it: the one
//! place that reads the `locus.io/model`, `locus.io/weights` and `locus.io/memory`
//! annotations.
//!
//! [`classify`] decides the kind from the annotations alone: a deployment naming
//! `locus.io/model` is a [`FunctionKind::Model`] (the GPU path); any other is an
//! ordinary OpenFaaS [`FunctionKind::Container`] function. A malformed or unknown
//! `locus.io/*` annotation is always refused. [`admit`] then decides whether this provider
//! can run a container function at all, from its [`FunctionRuntime`]. Architectures are the
//! worker's zoo ([`locus_vram::profile::ZOO`]), so the provider and the worker never
//! disagree.

use std::path::PathBuf;

use crate::quantity;
use crate::types::FunctionDeployment;

/// Annotation naming the model architecture (`resnet18`, `minilm`, ...).
pub const MODEL: &str = "locus.io/model";
/// Annotation naming the weights URI.
pub const WEIGHTS: &str = "locus.io/weights";
/// Annotation overriding the VRAM footprint (a Kubernetes quantity).
pub const MEMORY: &str = "locus.io/memory";
/// The prefix every Locus annotation shares; an unknown key under it is refused.
pub const PREFIX: &str = "locus.io/";
/// Every annotation Locus reads.
pub const ANNOTATIONS: [&str; 3] = [MODEL, WEIGHTS, MEMORY];

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
    /// An ordinary OpenFaaS function (an image with an `fprocess`): run by the process
    /// runtime, forwarded to a fallback provider, or refused, as [`FunctionRuntime`] says.
    Container,
}

impl FunctionKind {
    /// The kind's name as the status shows it: `model` or `container`.
    pub fn name(&self) -> &'static str {
        match self {
            FunctionKind::Model(_) => "model",
            FunctionKind::Container => "container",
        }
    }
}

/// What runs container functions (config `function_runtime`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FunctionRuntime {
    /// Nothing: a deployment without `locus.io/model` is refused with 400 (`serve`'s
    /// default).
    #[default]
    None,
    /// Local processes of Locus's watchdog running the function's `fprocess`
    /// (`up`'s default).
    Process,
    /// Another provider (`fallback_provider_url`) that every request about a container
    /// function is forwarded to.
    Fallback,
}

impl FunctionRuntime {
    /// The value as configured: `none`, `process` or `fallback`.
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionRuntime::None => "none",
            FunctionRuntime::Process => "process",
            FunctionRuntime::Fallback => "fallback",
        }
    }
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
    /// An annotation under `locus.io/` that Locus does not know (a typo would otherwise
    /// turn a model function into a container function silently).
    #[error("annotation {annotation:?} is not a Locus annotation; known: {}", ANNOTATIONS.join(", "))]
    Unknown {
        /// The annotation's name as sent.
        annotation: String,
    },
    /// A container function on a provider that runs none (`function_runtime=none`).
    #[error(
        "annotation {MODEL} is missing, so this is a container function, and this provider \
         runs none (function_runtime=none). To serve a model, add {MODEL} (one of {}) and \
         {WEIGHTS}. To run container functions, either set function_runtime=process (local \
         watchdog processes; `faas-provider up` does) or set function_runtime=fallback with \
         fallback_provider_url pointing at the provider your cluster already runs \
         (faas-netes, faasd)",
        known_architectures().join(", ")
    )]
    NoContainerRuntime,
}

/// Decides what kind of function `deployment` is: a model function when it names
/// `locus.io/model` (whose annotations must then be valid), else a container function.
/// Any unknown `locus.io/*` annotation, or `locus.io/weights`/`locus.io/memory` without
/// a model, is refused whatever the kind.
pub fn classify(deployment: &FunctionDeployment) -> Result<FunctionKind, ModelError> {
    let empty = Default::default();
    let annotations = deployment.annotations.as_ref().unwrap_or(&empty);
    if let Some(unknown) = annotations
        .keys()
        .find(|k| k.starts_with(PREFIX) && !ANNOTATIONS.contains(&k.as_str()))
    {
        return Err(ModelError::Unknown {
            annotation: unknown.clone(),
        });
    }
    let get = |key: &str| {
        annotations
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };

    let Some(arch) = get(MODEL) else {
        if let Some(orphan) = [WEIGHTS, MEMORY]
            .into_iter()
            .find(|key| annotations.contains_key(*key))
        {
            return Err(ModelError::Missing {
                annotation: MODEL,
                why: format!(
                    "{orphan} is given, so name the model too (one of {})",
                    known_architectures().join(", ")
                ),
            });
        }
        return Ok(FunctionKind::Container);
    };
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

/// Whether this provider accepts a function of `kind` when it runs container functions
/// with `runtime`: model functions always; container functions unless `runtime` is
/// [`FunctionRuntime::None`], which is refused with a message naming both ways to run them.
pub fn admit(kind: &FunctionKind, runtime: FunctionRuntime) -> Result<(), ModelError> {
    match (kind, runtime) {
        (FunctionKind::Container, FunctionRuntime::None) => Err(ModelError::NoContainerRuntime),
        _ => Ok(()),
    }
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
