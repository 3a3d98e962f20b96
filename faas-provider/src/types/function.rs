//! The function wire types: deployment, resources, status, delete and scale requests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{StringMap, is_false, is_zero_f64, is_zero_u64, nullable};

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
    /// Locus extension (clients ignore it): `model` or `container`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Locus extension: what runs a container function, in words (e.g. that its image
    /// is recorded, not pulled); empty for model functions.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub runtime: String,
    /// Locus extension for model functions: `{resident: ["NODE/DEVICE"], hits, misses}`
    /// (OpenFaaS clients ignore unknown fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<serde_json::Value>,
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
