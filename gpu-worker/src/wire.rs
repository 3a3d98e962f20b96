//! The worker API's wire types and header names. The provider's worker client imports
//! this module, so everything here is plain serde data with no behaviour beyond
//! encoding and decoding.
//!
//! Inference: `POST /v1/infer`, the body is the raw input (image bytes, text, or KServe
//! v2 JSON) and the request headers name the model:
//!
//! | header | meaning |
//! |---|---|
//! | `x-locus-function` | the calling function (metrics and logs) |
//! | `x-locus-model` | architecture (`resnet18`, `minilm`, ...) |
//! | `x-locus-weights` | weights URI (`zoo://resnet18?seed=1`, `file:///...`, `https://...`) |
//! | `x-locus-memory` | optional footprint override (bytes or a Kubernetes quantity: `512Mi`) |
//! | `x-locus-device` | device name (`cpu:0`, `cuda:1`) or index; default the first |
//! | `x-locus-mode` | optional `task` or `tensor`; default from the body |
//!
//! The answer's body is the function output; its headers carry the cache report
//! ([`InferReport::to_headers`]), so the provider can stream the body through and still
//! keep its cache view exact.

use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

/// A model's identity in a device cache: `ARCH@WEIGHTS_URI` with the URI normalised
/// (see [`model_key`]).
pub type ModelKey = String;

/// Request header: calling function.
pub const FUNCTION: &str = "x-locus-function";
/// Request header: architecture.
pub const MODEL: &str = "x-locus-model";
/// Request header: weights URI.
pub const WEIGHTS: &str = "x-locus-weights";
/// Request header: footprint override.
pub const MEMORY: &str = "x-locus-memory";
/// Request and response header: device.
pub const DEVICE: &str = "x-locus-device";
/// Request header: `task` or `tensor`.
pub const MODE: &str = "x-locus-mode";
/// Request header, one value per key: models the provider's cache view evicts from the
/// device when this request is admitted (its planned victims).
pub const EVICT: &str = "x-locus-evict";
/// Request header: `EPOCH.SEQ`, the request's place in the provider's dispatch order
/// for the device; the worker admits requests in that order (see `device::order`).
pub const ORDER: &str = "x-locus-order";
/// Response header: `hit`, `miss` or `joined`.
pub const CACHE: &str = "x-locus-cache";
/// Response header: the model key.
pub const MODEL_KEY: &str = "x-locus-model-key";
/// Response header: the model's accounted bytes.
pub const MODEL_BYTES: &str = "x-locus-model-bytes";
/// Response header: JSON list of the keys evicted to make room.
pub const EVICTED: &str = "x-locus-evicted";
/// Response header: milliseconds spent fetching weights (download or generation).
pub const FETCH_MS: &str = "x-locus-fetch-ms";
/// Response header: milliseconds the device spent loading.
pub const LOAD_MS: &str = "x-locus-load-ms";
/// Response header: milliseconds waited for another request's load.
pub const WAIT_MS: &str = "x-locus-wait-ms";
/// Response header: milliseconds of inference on the device.
pub const COMPUTE_MS: &str = "x-locus-compute-ms";
/// Response header on every error the worker itself produced (not a model output).
pub const ERROR_MARKER: &str = "x-locus-error";

/// The cache key of `arch` with `weights`: `ARCH@URI`, where a `zoo://` URI's
/// parameters are sorted and everything else is kept as written (trimmed). Pure, so
/// the provider computes the same key without asking; every answer also returns it.
pub fn model_key(arch: &str, weights: &str) -> ModelKey {
    let weights = weights.trim();
    let uri = match weights.strip_prefix("zoo://").map(|r| r.split_once('?').unwrap_or((r, ""))) {
        Some((name, query)) => {
            let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
            params.sort_unstable();
            if params.is_empty() { format!("zoo://{name}") } else { format!("zoo://{name}?{}", params.join("&")) }
        }
        None => weights.to_string(),
    };
    format!("{}@{uri}", arch.trim())
}

/// A model as functions name it (their `locus.io/*` annotations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Architecture (`locus.io/model`).
    pub arch: String,
    /// Weights URI (`locus.io/weights`).
    pub weights: String,
    /// Footprint override in bytes (`locus.io/memory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
}

impl ModelSpec {
    /// Its cache key.
    pub fn key(&self) -> ModelKey {
        model_key(&self.arch, &self.weights)
    }
}

/// How a request found its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheOutcome {
    /// Resident already.
    Hit,
    /// Loaded for this request (possibly evicting others).
    Miss,
    /// Another request was loading it; this one waited for that load.
    Joined,
}

impl CacheOutcome {
    /// `hit`, `miss` or `joined`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Joined => "joined",
        }
    }
}

/// What getting a model onto a device did: the answer to `POST /v1/models/load`, and
/// the cache part of every inference answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheReport {
    /// Device name.
    pub device: String,
    /// Model key.
    pub model_key: ModelKey,
    /// Hit, miss or joined.
    pub outcome: CacheOutcome,
    /// Bytes accounted to the model now.
    pub model_bytes: u64,
    /// Keys evicted to make room, in eviction order (only on a miss).
    pub evicted: Vec<ModelKey>,
    /// Milliseconds fetching weights to local disk.
    pub fetch_ms: f64,
    /// Milliseconds loading onto the device.
    pub load_ms: f64,
    /// Milliseconds waiting for another request's load.
    pub wait_ms: f64,
}

/// The cache report plus compute time of one inference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferReport {
    /// How the model was found.
    pub cache: CacheReport,
    /// Milliseconds of inference on the device (including pre- and post-processing).
    pub compute_ms: f64,
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

impl InferReport {
    /// Writes the report into response headers.
    pub fn to_headers(&self, h: &mut HeaderMap) {
        let c = &self.cache;
        h.insert(DEVICE, header_value(&c.device));
        h.insert(MODEL_KEY, header_value(&c.model_key));
        h.insert(CACHE, HeaderValue::from_static(c.outcome.as_str()));
        h.insert(MODEL_BYTES, HeaderValue::from(c.model_bytes));
        h.insert(EVICTED, header_value(&serde_json::to_string(&c.evicted).unwrap_or_default()));
        h.insert(FETCH_MS, header_value(&format!("{:.3}", c.fetch_ms)));
        h.insert(LOAD_MS, header_value(&format!("{:.3}", c.load_ms)));
        h.insert(WAIT_MS, header_value(&format!("{:.3}", c.wait_ms)));
        h.insert(COMPUTE_MS, header_value(&format!("{:.3}", self.compute_ms)));
    }

    /// Reads a report back from response headers (the provider's side).
    pub fn from_headers(h: &HeaderMap) -> Result<Self, String> {
        let get = |name: &str| -> Result<&str, String> {
            h.get(name).and_then(|v| v.to_str().ok()).ok_or_else(|| format!("missing header {name}"))
        };
        let num = |name: &str| -> Result<f64, String> { get(name)?.parse().map_err(|_| format!("bad header {name}")) };
        let outcome = match get(CACHE)? {
            "hit" => CacheOutcome::Hit,
            "miss" => CacheOutcome::Miss,
            "joined" => CacheOutcome::Joined,
            other => return Err(format!("bad {CACHE}: {other}")),
        };
        Ok(InferReport {
            cache: CacheReport {
                device: get(DEVICE)?.to_string(),
                model_key: get(MODEL_KEY)?.to_string(),
                outcome,
                model_bytes: get(MODEL_BYTES)?.parse().map_err(|_| format!("bad header {MODEL_BYTES}"))?,
                evicted: serde_json::from_str(get(EVICTED)?).map_err(|e| format!("bad {EVICTED}: {e}"))?,
                fetch_ms: num(FETCH_MS)?,
                load_ms: num(LOAD_MS)?,
                wait_ms: num(WAIT_MS)?,
            },
            compute_ms: num(COMPUTE_MS)?,
        })
    }
}

/// `POST /v1/models/load`: put a model on a device without running it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadRequest {
    /// The model.
    pub model: ModelSpec,
    /// Device name or index; default the first.
    #[serde(default)]
    pub device: Option<String>,
}

/// `POST /v1/models/evict`: unload a model from a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvictRequest {
    /// Device name or index.
    pub device: String,
    /// The model key (as returned in `model_key`).
    pub model_key: ModelKey,
}

/// The answer to an eviction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvictResponse {
    /// Device name.
    pub device: String,
    /// The evicted key.
    pub model_key: ModelKey,
    /// Bytes given back to the cache.
    pub freed_bytes: u64,
}

/// One model in a device's cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResidentModel {
    /// Its key.
    pub model_key: ModelKey,
    /// Architecture.
    pub arch: String,
    /// Weights URI.
    pub weights: String,
    /// Accounted bytes.
    pub bytes: u64,
    /// Requests using it now.
    pub pins: u32,
    /// Still loading.
    pub loading: bool,
}

/// One device's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// Name (`cpu:0`, `cuda:0`).
    pub name: String,
    /// Device memory, bytes.
    pub capacity_bytes: u64,
    /// Bytes kept free.
    pub reserve_bytes: u64,
    /// Capacity minus reserve.
    pub usable_bytes: u64,
    /// Bytes of resident and loading models.
    pub used_bytes: u64,
    /// Free memory the device itself reports (CUDA only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_free_bytes: Option<u64>,
    /// Requests waiting for the device's thread.
    pub queue_depth: u64,
    /// Models, least-recently-used first (the next victim first).
    pub models: Vec<ResidentModel>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// `candle` or `emulated`.
    pub backend: String,
    /// Whether the worker is draining (about to exit).
    pub draining: bool,
    /// Every device.
    pub devices: Vec<DeviceStatus>,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
    /// Stable snake_case kind, for programs (also the failure metric's label).
    pub error_type: String,
}

/// Parses a byte size: plain bytes (`1048576`), binary (`512MiB`, `512Mi`, `4GiB`,
/// `4Gi`, `64KiB`) or decimal (`100MB`, `1G`, `64k`) units.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("`{s}` is not a byte size"))?;
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "k" | "K" | "KB" | "kB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "T" | "TB" => 1e12,
        "Ki" | "KiB" => 1024.0,
        "Mi" | "MiB" => 1024.0 * 1024.0,
        "Gi" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        "Ti" | "TiB" => 1024f64.powi(4),
        other => return Err(format!("`{s}`: unknown unit `{other}` (use B, KiB, MiB, GiB, Ki, Mi, Gi, KB, MB, GB)")),
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests;
