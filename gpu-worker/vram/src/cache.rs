//! The VRAM cache rules: one device's memory as a byte-accounted set of whole models.
//!
//! [`Cache`] is a plain struct with no I/O and no clock. Recency is a logical tick that
//! advances on every use, so the same sequence of calls always gives the same state.
//! The gpu-worker drives one per device around real loads; the provider's scheduler
//! drives one per GPU as its global view of what every GPU holds. Both therefore apply
//! exactly the same admission, pinning and eviction rules.
//!
//! Rules:
//! - usable bytes = capacity − reserve; the bytes of resident *and* loading models
//!   never exceed it;
//! - a model is admitted whole; to make room, whole unpinned resident models are evicted
//!   in policy order (least-recently-used first, or lowest GreedyDual-Size priority);
//! - a pinned model (a request is using it) and a loading model are never victims;
//! - a model larger than the usable bytes is refused ([`AdmitError::TooLarge`]);
//! - a key is present at most once: the caller asks [`Cache::lookup`] first, and a
//!   [`Lookup::Loading`] answer means "wait for that load" (single-flight).

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;

/// Which resident model goes first when room is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Eviction {
    /// Least-recently-used first (the paper's policy).
    #[default]
    Lru,
    /// GreedyDual-Size: priority `H = L + cost / bytes` with `cost = bytes + setup_bytes`,
    /// refreshed on every use; the lowest `H` goes first and `L` rises to it. Large
    /// models, which free the most room per eviction, go before small ones of the same
    /// recency; `setup_bytes` expresses the fixed per-load cost in bytes of transfer.
    GreedyDualSize {
        /// Fixed cost of one load, as the number of bytes that take as long to move.
        setup_bytes: u64,
    },
}

/// How one device's cache is sized and which victims it picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Device memory in bytes.
    pub capacity_bytes: u64,
    /// Bytes kept free for activations, the context and allocator slack.
    pub reserve_bytes: u64,
    /// Victim order.
    pub eviction: Eviction,
}

/// Where a model stands in one cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Loaded and usable.
    Resident,
    /// Being loaded; wait for that load instead of starting another.
    Loading,
    /// Not here.
    Absent,
}

/// Why a model cannot be admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The model is larger than the whole usable memory of the device.
    #[error("model needs {bytes} bytes but the device has only {usable} usable bytes")]
    TooLarge {
        /// Bytes the model needs.
        bytes: u64,
        /// Usable bytes of the device.
        usable: u64,
    },
    /// Pinned and loading models leave too little room, even after every possible eviction.
    #[error("model needs {bytes} bytes but only {evictable} bytes can be freed while other models are in use")]
    NoRoom {
        /// Bytes the model needs.
        bytes: u64,
        /// Free bytes plus the bytes of every evictable model.
        evictable: u64,
    },
    /// The key is already present (resident or loading).
    #[error("model is already resident or loading")]
    Present,
}

impl AdmitError {
    /// Stable snake_case name, used in error bodies and metric labels.
    pub fn error_type(&self) -> &'static str {
        match self {
            AdmitError::TooLarge { .. } => "model_too_large",
            AdmitError::NoRoom { .. } => "no_room",
            AdmitError::Present => "already_present",
        }
    }
}

/// Why an explicit eviction was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EvictError {
    /// The model is not in this cache.
    #[error("model is not resident")]
    Absent,
    /// A request is using the model.
    #[error("model is in use by a request")]
    Pinned,
    /// The model is still loading.
    #[error("model is still loading")]
    Loading,
}

impl EvictError {
    /// Stable snake_case name, used in error bodies and metric labels.
    pub fn error_type(&self) -> &'static str {
        match self {
            EvictError::Absent => "not_resident",
            EvictError::Pinned => "pinned",
            EvictError::Loading => "loading",
        }
    }
}

/// A read-only view of one entry, as returned by [`Cache::entries`].
#[derive(Debug, Clone, PartialEq)]
pub struct EntryView<K> {
    /// The model key.
    pub key: K,
    /// Bytes accounted to it.
    pub bytes: u64,
    /// Requests currently using it.
    pub pins: u32,
    /// Whether it is still loading.
    pub loading: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    bytes: u64,
    pins: u32,
    loading: bool,
    /// Logical time of the last use (recency; also the tie-break for GreedyDual-Size).
    last_use: u64,
    /// GreedyDual-Size priority (unused under LRU).
    priority: f64,
}

/// One device's byte-accounted model cache. See the module documentation for the rules.
#[derive(Debug, Clone)]
pub struct Cache<K> {
    config: CacheConfig,
    entries: HashMap<K, Entry>,
    used: u64,
    /// Logical clock: advances on every use.
    tick: u64,
    /// GreedyDual-Size inflation value `L`.
    inflation: f64,
}

impl<K: Clone + Eq + Hash + Debug> Cache<K> {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Self {
        Cache { config, entries: HashMap::new(), used: 0, tick: 0, inflation: 0.0 }
    }

    /// The configuration this cache was built with.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// Capacity minus reserve.
    pub fn usable_bytes(&self) -> u64 {
        self.config.capacity_bytes.saturating_sub(self.config.reserve_bytes)
    }

    /// Bytes of resident and loading models.
    pub fn used_bytes(&self) -> u64 {
        self.used
    }

    /// Usable bytes not accounted to any model.
    pub fn free_bytes(&self) -> u64 {
        self.usable_bytes().saturating_sub(self.used)
    }

    /// Number of models present (resident or loading).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no model is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where `key` stands.
    pub fn lookup(&self, key: &K) -> Lookup {
        match self.entries.get(key) {
            None => Lookup::Absent,
            Some(e) if e.loading => Lookup::Loading,
            Some(_) => Lookup::Resident,
        }
    }

    /// Bytes accounted to `key`, if present.
    pub fn bytes_of(&self, key: &K) -> Option<u64> {
        self.entries.get(key).map(|e| e.bytes)
    }

    /// Requests currently using `key` (0 if absent).
    pub fn pins(&self, key: &K) -> u32 {
        self.entries.get(key).map_or(0, |e| e.pins)
    }

    /// Records a use of `key`: it becomes the most recently used. No effect if absent.
    pub fn touch(&mut self, key: &K) {
        self.tick += 1;
        let (tick, inflation, eviction) = (self.tick, self.inflation, self.config.eviction);
        if let Some(e) = self.entries.get_mut(key) {
            e.last_use = tick;
            e.priority = priority(eviction, inflation, e.bytes);
        }
    }

    /// Adds one pin (and a use) to `key`. Returns false if it is absent.
    pub fn pin(&mut self, key: &K) -> bool {
        if !self.entries.contains_key(key) {
            return false;
        }
        self.touch(key);
        if let Some(e) = self.entries.get_mut(key) {
            e.pins += 1;
        }
        true
    }

    /// Removes one pin from `key`. Returns false if it is absent or not pinned.
    pub fn unpin(&mut self, key: &K) -> bool {
        match self.entries.get_mut(key) {
            Some(e) if e.pins > 0 => {
                e.pins -= 1;
                true
            }
            _ => false,
        }
    }

    /// The victims, in eviction order, that would make room for `bytes` more bytes.
    /// Changes nothing.
    pub fn plan_admit(&self, bytes: u64) -> Result<Vec<K>, AdmitError> {
        self.plan_room(bytes, None)
    }

    /// Makes room for `key` (evicting the planned victims) and inserts it as loading,
    /// with one pin held for the request that triggered the load. Returns the victims.
    pub fn begin_load(&mut self, key: K, bytes: u64) -> Result<Vec<K>, AdmitError> {
        if self.entries.contains_key(&key) {
            return Err(AdmitError::Present);
        }
        let victims = self.plan_room(bytes, None)?;
        self.remove_all(&victims);
        self.tick += 1;
        let priority = priority(self.config.eviction, self.inflation, bytes);
        self.entries.insert(key, Entry { bytes, pins: 1, loading: true, last_use: self.tick, priority });
        self.used += bytes;
        Ok(victims)
    }

    /// Marks a loading `key` resident with its measured size. If it turned out larger
    /// than reserved, more victims are evicted (and returned); if it cannot fit even so,
    /// the entry is removed and the error returned. Pins are kept.
    pub fn finish_load(&mut self, key: &K, actual_bytes: u64) -> Result<Vec<K>, AdmitError> {
        let Some(reserved) = self.entries.get(key).filter(|e| e.loading).map(|e| e.bytes) else {
            return Err(AdmitError::NoRoom { bytes: actual_bytes, evictable: 0 });
        };
        let mut victims = Vec::new();
        if actual_bytes > reserved {
            match self.plan_room(actual_bytes - reserved, Some(key)) {
                Ok(v) => victims = v,
                Err(err) => {
                    self.abort_load(key);
                    return Err(err);
                }
            }
            self.remove_all(&victims);
        }
        self.used = self.used - reserved + actual_bytes;
        let (eviction, inflation) = (self.config.eviction, self.inflation);
        if let Some(e) = self.entries.get_mut(key) {
            e.bytes = actual_bytes;
            e.loading = false;
            e.priority = priority(eviction, inflation, actual_bytes);
        }
        Ok(victims)
    }

    /// Removes a loading `key` (its load failed). Returns false if it was not loading.
    pub fn abort_load(&mut self, key: &K) -> bool {
        match self.entries.get(key) {
            Some(e) if e.loading => {
                self.used -= e.bytes;
                self.entries.remove(key);
                true
            }
            _ => false,
        }
    }

    /// Unloads an unpinned resident model on request. Returns its bytes.
    pub fn evict(&mut self, key: &K) -> Result<u64, EvictError> {
        let e = self.entries.get(key).ok_or(EvictError::Absent)?;
        if e.loading {
            return Err(EvictError::Loading);
        }
        if e.pins > 0 {
            return Err(EvictError::Pinned);
        }
        let bytes = e.bytes;
        self.remove_all(std::slice::from_ref(key));
        Ok(bytes)
    }

    /// Every entry, in eviction order: the first would be evicted first.
    pub fn entries(&self) -> Vec<EntryView<K>> {
        self.ordered()
            .into_iter()
            .map(|(k, e)| EntryView { key: k.clone(), bytes: e.bytes, pins: e.pins, loading: e.loading })
            .collect()
    }

    /// Checks the cache's invariants; tests call it after every operation.
    pub fn check_invariants(&self) -> Result<(), String> {
        let sum: u64 = self.entries.values().map(|e| e.bytes).sum();
        if sum != self.used {
            return Err(format!("used {} != sum of entries {}", self.used, sum));
        }
        if self.used > self.usable_bytes() {
            return Err(format!("used {} exceeds usable {}", self.used, self.usable_bytes()));
        }
        if let Some((k, _)) = self.entries.iter().find(|(_, e)| e.last_use > self.tick) {
            return Err(format!("{k:?} used in the future"));
        }
        Ok(())
    }

    /// Entries in eviction order (lowest priority / least recent first).
    fn ordered(&self) -> Vec<(&K, &Entry)> {
        let mut all: Vec<(&K, &Entry)> = self.entries.iter().collect();
        match self.config.eviction {
            Eviction::Lru => all.sort_by_key(|(_, e)| e.last_use),
            Eviction::GreedyDualSize { .. } => all.sort_by(|(_, a), (_, b)| {
                a.priority.total_cmp(&b.priority).then(a.last_use.cmp(&b.last_use))
            }),
        }
        all
    }

    /// Victims that free `bytes` more bytes, never `keep`, pinned or loading entries.
    fn plan_room(&self, bytes: u64, keep: Option<&K>) -> Result<Vec<K>, AdmitError> {
        let usable = self.usable_bytes();
        if bytes > usable {
            return Err(AdmitError::TooLarge { bytes, usable });
        }
        let mut free = self.free_bytes();
        let mut victims = Vec::new();
        if free >= bytes {
            return Ok(victims);
        }
        for (k, e) in self.ordered() {
            if e.pins > 0 || e.loading || Some(k) == keep {
                continue;
            }
            victims.push(k.clone());
            free += e.bytes;
            if free >= bytes {
                return Ok(victims);
            }
        }
        Err(AdmitError::NoRoom { bytes, evictable: free })
    }

    fn remove_all(&mut self, victims: &[K]) {
        for k in victims {
            if let Some(e) = self.entries.remove(k) {
                self.used -= e.bytes;
                if matches!(self.config.eviction, Eviction::GreedyDualSize { .. }) {
                    self.inflation = self.inflation.max(e.priority);
                }
            }
        }
    }
}

/// GreedyDual-Size priority of a model of `bytes` used now; 0 under LRU.
fn priority(eviction: Eviction, inflation: f64, bytes: u64) -> f64 {
    match eviction {
        Eviction::Lru => 0.0,
        Eviction::GreedyDualSize { setup_bytes } => {
            let bytes = bytes.max(1) as f64;
            inflation + (bytes + setup_bytes as f64) / bytes
        }
    }
}

#[cfg(test)]
mod tests;
