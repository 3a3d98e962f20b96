//! The records kept in the store's tables and their JSON encoding.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use time::OffsetDateTime;

use super::{Result, StoreError};
use crate::types::FunctionDeployment;

/// A deployed function: exactly what was deployed, plus what the provider adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionRecord {
    /// The deployment as received (normalised: `namespace` set, empty resource blocks
    /// dropped), so status echoes it back unchanged.
    pub deployment: FunctionDeployment,
    /// Desired replicas (`com.openfaas.scale.min` on deploy/update, or the scale route).
    pub replicas: u64,
    /// When the function was first deployed; kept across updates.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl FunctionRecord {
    /// The function's name.
    pub fn name(&self) -> &str {
        &self.deployment.service
    }

    /// The function's namespace.
    pub fn namespace(&self) -> &str {
        &self.deployment.namespace
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Backend(format!("encoding a record: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("undecodable record: {e}")))
}
