//! The store's read cache of decoded function records: every invocation looks its
//! function up, and a hit here saves a read transaction and a JSON decode.
//!
//! Any committed write empties the whole cache and bumps its generation. A reader
//! notes the generation before it reads the database and inserts what it read only if
//! no write committed meanwhile, so a record read before a write can never be cached
//! after it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::FunctionRecord;

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    /// namespace → name → record (two levels, so a lookup by `&str` allocates nothing).
    records: HashMap<String, HashMap<String, FunctionRecord>>,
}

/// Function records by (namespace, name), valid until the next write.
#[derive(Debug, Default)]
pub(super) struct ReadCache {
    inner: Mutex<Inner>,
}

impl ReadCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map holds plain data: a panic elsewhere cannot leave it half-updated.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached record of `ns/name`, if any.
    pub(super) fn get(&self, ns: &str, name: &str) -> Option<FunctionRecord> {
        let inner = self.lock();
        inner.records.get(ns)?.get(name).cloned()
    }

    /// The generation to pass to [`ReadCache::insert`] for a read starting now.
    pub(super) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Caches `record`, read from the database after [`ReadCache::generation`]
    /// returned `generation`, unless a write has committed since.
    pub(super) fn insert(&self, generation: u64, ns: &str, name: &str, record: &FunctionRecord) {
        let mut inner = self.lock();
        if inner.generation == generation {
            inner
                .records
                .entry(ns.to_owned())
                .or_default()
                .insert(name.to_owned(), record.clone());
        }
    }

    /// Forgets everything: a write committed.
    pub(super) fn invalidate(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.records.clear();
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn record(image: &str) -> FunctionRecord {
        FunctionRecord {
            deployment: crate::types::FunctionDeployment {
                service: "fn1".into(),
                image: image.into(),
                namespace: "openfaas-fn".into(),
                ..Default::default()
            },
            replicas: 1,
            created_at: datetime!(2026-01-02 03:04:05 UTC),
        }
    }

    #[test]
    fn a_record_read_before_a_write_is_never_cached_after_it() {
        let cache = ReadCache::default();
        let before = cache.generation();
        // A write commits while the reader still holds what it read before it.
        cache.invalidate();
        cache.insert(before, "openfaas-fn", "fn1", &record("old"));
        assert_eq!(cache.get("openfaas-fn", "fn1"), None);
        let now = cache.generation();
        cache.insert(now, "openfaas-fn", "fn1", &record("new"));
        assert_eq!(cache.get("openfaas-fn", "fn1"), Some(record("new")));
        cache.invalidate();
        assert_eq!(cache.get("openfaas-fn", "fn1"), None);
    }
}
