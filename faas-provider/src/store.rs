//! The function, secret and namespace store: one redb database in `state_dir`.
//!
//! Every operation that checks and then changes state (e.g. "the namespace exists, the
//! secrets exist, the function does not, insert it") runs in one write transaction, so it
//! is atomic and a refused request changes nothing. Records are JSON values in typed
//! tables. Opening verifies the schema version and decodes every record: a database that
//! cannot be opened or read is a startup error, never an empty start.
//!
//! The methods are synchronous (redb commits fsync); async callers use [`Store::call`],
//! which runs them on the blocking pool.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::types::{FunctionNamespace, StringMap};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

mod cache;
mod error;
mod functions;
mod records;
#[cfg(test)]
mod tests;

pub use error::StoreError;
pub use records::FunctionRecord;

/// The default namespace, created on first open and never deleted.
pub const DEFAULT_NAMESPACE: &str = crate::names::DEFAULT_NAMESPACE;

/// File name of the database inside `state_dir`.
pub const DB_FILE: &str = "locus.redb";

const SCHEMA_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// (namespace, name) → JSON [`FunctionRecord`].
const FUNCTIONS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("functions");
/// (namespace, name) → the secret's bytes.
const SECRETS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("secrets");
/// name → JSON [`FunctionNamespace`].
const NAMESPACES: TableDefinition<&str, &[u8]> = TableDefinition::new("namespaces");

/// The provider's persistent state.
pub struct Store {
    db: Database,
    path: PathBuf,
    /// Decoded function records, read through on every invocation; emptied by every
    /// committed write.
    cache: cache::ReadCache,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Shorthand for the store's results.
pub type Result<T> = std::result::Result<T, StoreError>;

impl Store {
    /// Opens (or creates) the store in `state_dir`, then verifies it end to end.
    pub fn open(state_dir: &Path) -> Result<Self> {
        let open_err = |reason: String| StoreError::Open {
            path: state_dir.to_path_buf(),
            reason,
        };
        std::fs::create_dir_all(state_dir).map_err(|e| open_err(e.to_string()))?;
        let path = state_dir.join(DB_FILE);
        let db = Database::create(&path).map_err(|e| StoreError::Open {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        restrict_permissions(&path);
        let store = Store {
            db,
            path,
            cache: cache::ReadCache::default(),
        };
        store.initialise()?;
        store.verify()?;
        Ok(store)
    }

    /// Where the database file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the blocking pool, so redb's fsyncs never stall the async runtime.
    pub async fn call<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }

    /// Creates the tables and the default namespace; checks the schema version.
    fn initialise(&self) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let version = meta.get("schema")?.map(|v| v.value());
            match version {
                None => {
                    meta.insert("schema", SCHEMA_VERSION)?;
                }
                Some(SCHEMA_VERSION) => {}
                Some(other) => {
                    return Err(StoreError::Corrupt(format!(
                        "schema version {other} is not supported (expected {SCHEMA_VERSION})"
                    )));
                }
            }
            txn.open_table(FUNCTIONS)?;
            txn.open_table(SECRETS)?;
            let mut namespaces = txn.open_table(NAMESPACES)?;
            if namespaces.get(DEFAULT_NAMESPACE)?.is_none() {
                let default = FunctionNamespace {
                    name: DEFAULT_NAMESPACE.to_string(),
                    labels: StringMap::from([("openfaas".to_string(), "1".to_string())]),
                    annotations: StringMap::new(),
                };
                namespaces.insert(DEFAULT_NAMESPACE, records::encode(&default)?.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Decodes every record once, so damage is found at startup and not mid-request.
    fn verify(&self) -> Result<()> {
        let txn = self.db.begin_read()?;
        for entry in txn.open_table(NAMESPACES)?.iter()? {
            let (key, value) = entry?;
            records::decode::<FunctionNamespace>(value.value())
                .map_err(|e| StoreError::Corrupt(format!("namespace {}: {e}", key.value())))?;
        }
        for entry in txn.open_table(FUNCTIONS)?.iter()? {
            let (key, value) = entry?;
            let (ns, name) = key.value();
            records::decode::<FunctionRecord>(value.value())
                .map_err(|e| StoreError::Corrupt(format!("function {name}.{ns}: {e}")))?;
        }
        txn.open_table(SECRETS)?.len()?;
        Ok(())
    }

    // ---- namespaces ----

    /// All namespaces, sorted by name; the default is always among them.
    pub fn namespaces(&self) -> Result<Vec<FunctionNamespace>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(NAMESPACES)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(records::decode(entry?.1.value())?);
        }
        Ok(out)
    }

    /// One namespace.
    pub fn namespace(&self, name: &str) -> Result<FunctionNamespace> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(NAMESPACES)?;
        match table.get(name)? {
            Some(v) => records::decode(v.value()),
            None => Err(StoreError::not_found(format!("namespace {name}"))),
        }
    }

    /// Creates a namespace; 409-style error when it exists.
    pub fn create_namespace(&self, ns: &FunctionNamespace) -> Result<()> {
        self.write(|txn| {
            let mut table = txn.open_table(NAMESPACES)?;
            if table.get(ns.name.as_str())?.is_some() {
                return Err(StoreError::exists(format!("namespace {}", ns.name)));
            }
            table.insert(ns.name.as_str(), records::encode(ns)?.as_slice())?;
            Ok(())
        })
    }

    /// Replaces a namespace's labels and annotations.
    pub fn update_namespace(&self, ns: &FunctionNamespace) -> Result<()> {
        self.write(|txn| {
            let mut table = txn.open_table(NAMESPACES)?;
            if table.get(ns.name.as_str())?.is_none() {
                return Err(StoreError::not_found(format!("namespace {}", ns.name)));
            }
            table.insert(ns.name.as_str(), records::encode(ns)?.as_slice())?;
            Ok(())
        })
    }

    /// Deletes an empty, non-default namespace.
    pub fn delete_namespace(&self, name: &str) -> Result<()> {
        if name == DEFAULT_NAMESPACE {
            return Err(StoreError::DefaultNamespace(name.to_string()));
        }
        self.write(|txn| {
            let mut table = txn.open_table(NAMESPACES)?;
            if table.get(name)?.is_none() {
                return Err(StoreError::not_found(format!("namespace {name}")));
            }
            let functions = count_in(&txn.open_table(FUNCTIONS)?, name)?;
            let secrets = count_in(&txn.open_table(SECRETS)?, name)?;
            if functions + secrets > 0 {
                return Err(StoreError::NamespaceNotEmpty {
                    name: name.to_string(),
                    functions,
                    secrets,
                });
            }
            table.remove(name)?;
            Ok(())
        })
    }

    // ---- secrets ----

    /// Names of the secrets in `ns`, sorted.
    pub fn secrets(&self, ns: &str) -> Result<Vec<String>> {
        let txn = self.db.begin_read()?;
        require_namespace(&txn.open_table(NAMESPACES)?, ns)?;
        let table = txn.open_table(SECRETS)?;
        let mut names = Vec::new();
        for entry in table.range((ns, "")..)? {
            let (key, _) = entry?;
            let (key_ns, name) = key.value();
            if key_ns != ns {
                break;
            }
            names.push(name.to_string());
        }
        Ok(names)
    }

    /// The value of one secret (for the data plane that mounts it).
    pub fn secret_value(&self, ns: &str, name: &str) -> Result<Vec<u8>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SECRETS)?;
        match table.get((ns, name))? {
            Some(v) => Ok(v.value().to_vec()),
            None => Err(StoreError::not_found(format!(
                "secret {name} in namespace {ns}"
            ))),
        }
    }

    /// Creates a secret; an error when it exists.
    pub fn create_secret(&self, ns: &str, name: &str, value: &[u8]) -> Result<()> {
        self.put_secret(ns, name, value, false)
    }

    /// Replaces an existing secret's value.
    pub fn update_secret(&self, ns: &str, name: &str, value: &[u8]) -> Result<()> {
        self.put_secret(ns, name, value, true)
    }

    fn put_secret(&self, ns: &str, name: &str, value: &[u8], must_exist: bool) -> Result<()> {
        self.write(|txn| {
            require_namespace(&txn.open_table(NAMESPACES)?, ns)?;
            let mut table = txn.open_table(SECRETS)?;
            let exists = table.get((ns, name))?.is_some();
            match (must_exist, exists) {
                (true, false) => {
                    return Err(StoreError::not_found(format!(
                        "secret {name} in namespace {ns}"
                    )));
                }
                (false, true) => {
                    return Err(StoreError::exists(format!(
                        "secret {name} in namespace {ns}"
                    )));
                }
                _ => {}
            }
            table.insert((ns, name), value)?;
            Ok(())
        })
    }

    /// Deletes a secret.
    pub fn delete_secret(&self, ns: &str, name: &str) -> Result<()> {
        self.write(|txn| {
            require_namespace(&txn.open_table(NAMESPACES)?, ns)?;
            let mut table = txn.open_table(SECRETS)?;
            if table.remove((ns, name))?.is_none() {
                return Err(StoreError::not_found(format!(
                    "secret {name} in namespace {ns}"
                )));
            }
            Ok(())
        })
    }

    /// Runs `f` in one write transaction; commits only when it succeeds.
    fn write<T>(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<T>) -> Result<T> {
        let txn = self.db.begin_write()?;
        match f(&txn) {
            Ok(v) => {
                let committed = txn.commit();
                // Emptied even when the commit failed: what it left is not known.
                self.cache.invalidate();
                committed?;
                Ok(v)
            }
            Err(e) => {
                txn.abort()?;
                Err(e)
            }
        }
    }
}

/// Secrets are stored in the database: keep the file to its owner (best effort; a
/// file owned by someone else is left as it is, with a warning).
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(path = %path.display(), error = %e, "cannot restrict the store's permissions");
        }
    }
}

/// Fails with `UnknownNamespace` unless `ns` exists.
fn require_namespace(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    ns: &str,
) -> Result<()> {
    match table.get(ns)? {
        Some(_) => Ok(()),
        None => Err(StoreError::UnknownNamespace(ns.to_string())),
    }
}

/// How many keys of a (namespace, name) table lie in `ns`.
fn count_in(
    table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    ns: &str,
) -> Result<usize> {
    let mut n = 0;
    for entry in table.range((ns, "")..)? {
        if entry?.0.value().0 != ns {
            break;
        }
        n += 1;
    }
    Ok(n)
}
