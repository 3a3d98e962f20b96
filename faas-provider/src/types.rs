//! The OpenFaaS wire types, spelled exactly as `openfaas-contract.md` §1.4 spells them.
//!
//! Decoding follows Go's `encoding/json` as faas-provider uses it: unknown fields are
//! ignored, missing optional fields take their zero value, and `null` is accepted for every
//! optional field. Encoding follows Go's `omitempty`: zero strings, empty maps and lists,
//! `false` and `0` are left out, except that `labels` and `annotations` are pointers in Go,
//! so an empty object there is kept (`{}`) and only an absent one is omitted.
//! `createdAt` is always written, as RFC 3339.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

/// A string-to-string map as OpenFaaS sends it (sorted on output, like Go's encoder).
pub type StringMap = BTreeMap<String, String>;

/// Decodes an optional field where `null` means "the zero value", as Go does.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// Body of `POST`/`PUT /system/functions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionDeployment {
    /// The function's name; required.
    #[serde(default, deserialize_with = "nullable")]
    pub service: String,
    /// The container image; required, recorded verbatim.
    #[serde(default, deserialize_with = "nullable")]
    pub image: String,
    /// Target namespace; empty means "from the query, else `openfaas-fn`".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
    /// The process the watchdog forks (`fprocess`).
    #[serde(
        rename = "envProcess",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub env_process: String,
    /// Environment variables for the function.
    #[serde(
        rename = "envVars",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub env_vars: StringMap,
    /// Provider-specific placement constraints, e.g. `gpu=a100`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub constraints: Vec<String>,
    /// Names of secrets (in the function's namespace) to mount.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub secrets: Vec<String>,
    /// Labels; `None` when absent or `null`, `Some({})` when sent as `{}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<StringMap>,
    /// Annotations; `None` when absent or `null`, `Some({})` when sent as `{}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    /// Resource limits (Kubernetes quantities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<FunctionResources>,
    /// Resource requests (Kubernetes quantities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<FunctionResources>,
    /// Whether the root filesystem is read-only (a writable `/tmp` is still given).
    #[serde(
        rename = "readOnlyRootFilesystem",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub read_only_root_filesystem: bool,
}

/// Resource quantities of a function (`limits` / `requests`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionResources {
    /// Memory, e.g. `128Mi`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub memory: String,
    /// CPU, e.g. `500m`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub cpu: String,
    /// NVIDIA GPUs, e.g. `1`.
    #[serde(
        rename = "nvidia.com/gpu",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub nvidia_gpu: String,
    /// AMD GPUs.
    #[serde(
        rename = "amd.com/gpu",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub amd_gpu: String,
    /// Intel GPUs.
    #[serde(
        rename = "intel.com/gpu",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub intel_gpu: String,
}

impl FunctionResources {
    /// Whether no quantity is set (such a block is stored and echoed as absent).
    pub fn is_empty(&self) -> bool {
        self.fields().iter().all(|(_, v)| v.is_empty())
    }

    /// Every quantity with its wire name, for validation messages.
    pub fn fields(&self) -> [(&'static str, &str); 5] {
        [
            ("memory", &self.memory),
            ("cpu", &self.cpu),
            ("nvidia.com/gpu", &self.nvidia_gpu),
            ("amd.com/gpu", &self.amd_gpu),
            ("intel.com/gpu", &self.intel_gpu),
        ]
    }
}

/// One function as listed by `GET /system/functions` and `GET /system/function/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionStatus {
    /// The function's name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// The image as deployed.
    #[serde(default, deserialize_with = "nullable")]
    pub image: String,
    /// The function's namespace (always set by Locus).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
    /// As deployed.
    #[serde(
        rename = "envProcess",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub env_process: String,
    /// As deployed.
    #[serde(
        rename = "envVars",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub env_vars: StringMap,
    /// As deployed.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub constraints: Vec<String>,
    /// As deployed.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub secrets: Vec<String>,
    /// The deployed labels plus `faas_function: <name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<StringMap>,
    /// As deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    /// As deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<FunctionResources>,
    /// As deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<FunctionResources>,
    /// As deployed.
    #[serde(
        rename = "readOnlyRootFilesystem",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub read_only_root_filesystem: bool,
    /// Left 0; the gateway fills it from Prometheus.
    #[serde(
        rename = "invocationCount",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero_f64"
    )]
    pub invocation_count: f64,
    /// Desired replicas.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero_u64"
    )]
    pub replicas: u64,
    /// Replicas ready to serve.
    #[serde(
        rename = "availableReplicas",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero_u64"
    )]
    pub available_replicas: u64,
    /// When the function was first deployed; always present.
    #[serde(rename = "createdAt", with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Resource usage, when asked for and known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<FunctionUsage>,
}

/// Resource usage of a function.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionUsage {
    /// CPU usage in cores.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero_f64"
    )]
    pub cpu: f64,
    /// Memory in use, in bytes.
    #[serde(
        rename = "totalMemoryBytes",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero_f64"
    )]
    pub total_memory_bytes: f64,
}

/// Body of `DELETE /system/functions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeleteFunctionRequest {
    /// The function to delete; required.
    #[serde(rename = "functionName", default, deserialize_with = "nullable")]
    pub function_name: String,
    /// Its namespace; empty means "from the query, else the default".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
}

/// Body of `POST /system/scale-function/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScaleServiceRequest {
    /// The function; the path parameter wins when both are given.
    #[serde(rename = "serviceName", default, deserialize_with = "nullable")]
    pub service_name: String,
    /// Desired replicas.
    #[serde(default, deserialize_with = "nullable")]
    pub replicas: u64,
    /// Its namespace; empty means "from the query, else the default".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
}

/// A secret as sent to and listed by `/system/secrets` (values never leave on a list).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    /// The secret's name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// Its namespace; empty means "from the query, else the default".
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
    /// A text value; used when `rawValue` is empty.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub value: String,
    /// A binary value, base64 on the wire (Go `[]byte`); wins over `value` when non-empty.
    #[serde(
        rename = "rawValue",
        default,
        with = "base64_bytes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub raw_value: Vec<u8>,
}

impl Secret {
    /// The bytes to store: `rawValue` when non-empty, else `value`.
    pub fn bytes(&self) -> Vec<u8> {
        if self.raw_value.is_empty() {
            self.value.as_bytes().to_vec()
        } else {
            self.raw_value.clone()
        }
    }
}

/// Go encodes `[]byte` as standard base64 with padding and decodes `null` as empty.
mod base64_bytes {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("rawValue is not base64: {e}")))
    }
}

/// Body of `GET /system/info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// The provider's name.
    pub provider: String,
    /// The orchestration it drives.
    pub orchestration: String,
    /// Its version.
    pub version: VersionInfo,
}

/// Version of a component, as OpenFaaS reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Commit message, when known.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub commit_message: String,
    /// Commit hash.
    #[serde(default, deserialize_with = "nullable")]
    pub sha: String,
    /// Release version.
    #[serde(default, deserialize_with = "nullable")]
    pub release: String,
}

/// A namespace as `/system/namespace/{name}` sends and returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionNamespace {
    /// The namespace's name (may be empty in a body when the path names it).
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    /// Labels; `openfaas=1` (or `true`) marks it OpenFaaS-enabled.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: StringMap,
    /// Annotations.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: StringMap,
}

impl FunctionNamespace {
    /// Whether the namespace carries the `openfaas=1` (or `true`) label.
    pub fn is_openfaas_enabled(&self) -> bool {
        matches!(
            self.labels.get("openfaas").map(String::as_str),
            Some("1" | "true")
        )
    }
}

/// One line of the `/system/logs` NDJSON stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogMessage {
    /// The function's name.
    pub name: String,
    /// The function's namespace.
    pub namespace: String,
    /// The replica that wrote the line.
    pub instance: String,
    /// When it was written (RFC 3339, nanoseconds allowed).
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// The text of the line.
    pub text: String,
}

#[cfg(test)]
mod tests;
