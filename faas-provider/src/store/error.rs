//! What the store can answer besides success.

use std::path::PathBuf;

/// A store outcome other than success: a refusal (not found, exists, ...) or a failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened (missing permissions, locked, unreadable file).
    #[error("cannot open the store at {}: {reason}", path.display())]
    Open {
        /// The file or directory that failed.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A record or the schema could not be decoded.
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    /// redb failed during a request.
    #[error("store backend failure: {0}")]
    Backend(String),
    /// The named thing does not exist (e.g. "function fn1 in namespace openfaas-fn").
    #[error("{0} not found")]
    NotFound(String),
    /// The named thing exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The namespace does not exist (or is not OpenFaaS-enabled).
    #[error("namespace not valid: {0} does not exist")]
    UnknownNamespace(String),
    /// A deployment names a secret missing from its namespace.
    #[error("secret {name} not found in namespace {namespace}")]
    UnknownSecret {
        /// The secret.
        name: String,
        /// The function's namespace.
        namespace: String,
    },
    /// The default namespace cannot be deleted.
    #[error("namespace {0} is the default namespace and cannot be deleted")]
    DefaultNamespace(String),
    /// A namespace still holding functions or secrets cannot be deleted.
    #[error("namespace {name} still holds {functions} function(s) and {secrets} secret(s)")]
    NamespaceNotEmpty {
        /// The namespace.
        name: String,
        /// Functions in it.
        functions: usize,
        /// Secrets in it.
        secrets: usize,
    },
}

impl StoreError {
    pub(crate) fn not_found(what: String) -> Self {
        StoreError::NotFound(what)
    }

    pub(crate) fn exists(what: String) -> Self {
        StoreError::AlreadyExists(what)
    }

    /// A stable snake_case name for the error.
    pub fn error_type(&self) -> &'static str {
        match self {
            StoreError::Open { .. } => "store_open",
            StoreError::Corrupt(_) => "store_corrupt",
            StoreError::Backend(_) => "store_backend",
            StoreError::NotFound(_) => "not_found",
            StoreError::AlreadyExists(_) => "already_exists",
            StoreError::UnknownNamespace(_) => "unknown_namespace",
            StoreError::UnknownSecret { .. } => "unknown_secret",
            StoreError::DefaultNamespace(_) => "default_namespace",
            StoreError::NamespaceNotEmpty { .. } => "namespace_not_empty",
        }
    }

    /// Whether this is a failure of the store itself (logged, not shown to clients).
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            StoreError::Open { .. } | StoreError::Corrupt(_) | StoreError::Backend(_)
        )
    }
}

macro_rules! backend_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Backend(e.to_string())
            }
        }
    )*};
}

backend_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
