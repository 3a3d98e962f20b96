//! Function operations of the [`Store`]: each check-then-write is one transaction.

use redb::{ReadableTable, WriteTransaction};

use super::records::{decode, encode};
use super::require_namespace;
use super::{FUNCTIONS, FunctionRecord, NAMESPACES, Result, SECRETS, Store, StoreError};
use crate::types::FunctionDeployment;

impl Store {
    /// The functions of namespace `ns`, sorted by name.
    pub fn functions(&self, ns: &str) -> Result<Vec<FunctionRecord>> {
        let txn = self.db.begin_read()?;
        require_namespace(&txn.open_table(NAMESPACES)?, ns)?;
        let table = txn.open_table(FUNCTIONS)?;
        let mut out = Vec::new();
        for entry in table.range((ns, "")..)? {
            let (key, value) = entry?;
            if key.value().0 != ns {
                break;
            }
            out.push(decode(value.value())?);
        }
        Ok(out)
    }

    /// Every function in every namespace.
    pub fn all_functions(&self) -> Result<Vec<FunctionRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(FUNCTIONS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(decode(entry?.1.value())?);
        }
        Ok(out)
    }

    /// One function: from the read cache when a previous read filled it since the last
    /// write, else from the database.
    pub fn function(&self, ns: &str, name: &str) -> Result<FunctionRecord> {
        if let Some(record) = self.cache.get(ns, name) {
            return Ok(record);
        }
        let generation = self.cache.generation();
        let record = self.read_function(ns, name)?;
        self.cache.insert(generation, ns, name, &record);
        Ok(record)
    }

    fn read_function(&self, ns: &str, name: &str) -> Result<FunctionRecord> {
        let txn = self.db.begin_read()?;
        require_namespace(&txn.open_table(NAMESPACES)?, ns)?;
        match txn.open_table(FUNCTIONS)?.get((ns, name))? {
            Some(v) => decode(v.value()),
            None => Err(not_found(ns, name)),
        }
    }

    /// Stores a new function; refuses an existing one, an unknown namespace or secret.
    pub fn create_function(&self, record: &FunctionRecord) -> Result<()> {
        self.write(|txn| {
            check_references(txn, &record.deployment)?;
            let mut table = txn.open_table(FUNCTIONS)?;
            let key = (record.namespace(), record.name());
            if table.get(key)?.is_some() {
                return Err(StoreError::exists(format!(
                    "function {} in namespace {}",
                    record.name(),
                    record.namespace()
                )));
            }
            table.insert(key, encode(record)?.as_slice())?;
            Ok(())
        })
    }

    /// Replaces an existing function's deployment, keeping `createdAt`; `replicas`
    /// becomes `scale_min` when given and is kept otherwise.
    pub fn update_function(
        &self,
        deployment: FunctionDeployment,
        scale_min: Option<u64>,
    ) -> Result<FunctionRecord> {
        self.write(|txn| {
            check_references(txn, &deployment)?;
            let mut table = txn.open_table(FUNCTIONS)?;
            let key = (deployment.namespace.as_str(), deployment.service.as_str());
            let old: FunctionRecord = match table.get(key)? {
                Some(v) => decode(v.value())?,
                None => return Err(not_found(key.0, key.1)),
            };
            let record = FunctionRecord {
                replicas: scale_min.unwrap_or(old.replicas),
                created_at: old.created_at,
                deployment: deployment.clone(),
            };
            table.insert(key, encode(&record)?.as_slice())?;
            Ok(record)
        })
    }

    /// Sets a function's desired replicas.
    pub fn scale_function(&self, ns: &str, name: &str, replicas: u64) -> Result<FunctionRecord> {
        self.write(|txn| {
            require_namespace(&txn.open_table(NAMESPACES)?, ns)?;
            let mut table = txn.open_table(FUNCTIONS)?;
            let mut record: FunctionRecord = match table.get((ns, name))? {
                Some(v) => decode(v.value())?,
                None => return Err(not_found(ns, name)),
            };
            record.replicas = replicas;
            table.insert((ns, name), encode(&record)?.as_slice())?;
            Ok(record)
        })
    }

    /// Deletes a function and returns what it was.
    pub fn delete_function(&self, ns: &str, name: &str) -> Result<FunctionRecord> {
        self.write(|txn| {
            require_namespace(&txn.open_table(NAMESPACES)?, ns)?;
            let mut table = txn.open_table(FUNCTIONS)?;
            let removed = table.remove((ns, name))?.map(|v| decode(v.value()));
            match removed {
                Some(record) => record,
                None => Err(not_found(ns, name)),
            }
        })
    }
}

fn not_found(ns: &str, name: &str) -> StoreError {
    StoreError::not_found(format!("function {name} in namespace {ns}"))
}

/// The deployment's namespace and every secret it names must exist.
fn check_references(txn: &WriteTransaction, deployment: &FunctionDeployment) -> Result<()> {
    let ns = deployment.namespace.as_str();
    require_namespace(&txn.open_table(NAMESPACES)?, ns)?;
    let secrets = txn.open_table(SECRETS)?;
    for secret in &deployment.secrets {
        if secrets.get((ns, secret.as_str()))?.is_none() {
            return Err(StoreError::UnknownSecret {
                name: secret.clone(),
                namespace: ns.to_string(),
            });
        }
    }
    Ok(())
}
