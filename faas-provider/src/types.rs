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

mod function;

pub use function::{
    DeleteFunctionRequest, FunctionDeployment, FunctionResources, FunctionStatus, FunctionUsage,
    ScaleServiceRequest,
};

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
