//! One device: an owner thread that does every load, forward and drop for it (Candle's
//! CUDA streams and context binding make that the safe design, see
//! `reference/candle.md` §5), the device's VRAM cache (`locus_vram::Cache`), and the
//! async handle requests use.
//!
//! The cache is a plain struct behind a std mutex that is never held across an await.
//! A request first asks the cache: a resident model is pinned at once (a hit); a model
//! that is loading is waited for (single-flight: one load however many ask); an absent
//! one is prepared (weights fetched), admitted (victims evicted from the accounting),
//! and loaded by the owner thread, which drops the victims first. Pins are RAII
//! [`PinGuard`]s, so a pinned model is never a victim and no one releases by hand. The
//! load runs in its own task, so a client that disconnects mid-load never leaves a
//! model stuck in "loading". The owner thread works in decision order: every load is
//! queued when it is decided, and an inference request reserves its place when it is
//! admitted ([`Admission::in_order`]), so a request that loads runs right after its
//! load, not behind loads decided while it loaded (the per-GPU FIFO the provider's
//! scheduler and simulator assume).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use locus_vram::{AdmitError, Cache, CacheConfig, EvictError, Lookup};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::backend::{BackendError, LoadRequest, Loaded, ModelBackend};
use crate::metrics::Metrics;
use crate::tasks::{InferInput, InferOutput};
use crate::wire::{CacheOutcome, CacheReport, DeviceStatus, ModelKey, ResidentModel};

pub mod order;
mod owner;

pub use order::{Ticket, Turn};

/// Why a device could not serve a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The model cannot be admitted.
    #[error("{0}")]
    Admit(#[from] AdmitError),
    /// An explicit eviction was refused.
    #[error("{0}")]
    Evict(#[from] EvictError),
    /// The backend failed.
    #[error("{0}")]
    Backend(#[from] BackendError),
    /// The device's thread has stopped.
    #[error("device {0} has stopped")]
    Gone(String),
}

/// Work for the owner thread. Every variant that has a reply is answered exactly once.
pub(crate) enum Job {
    /// Drop `drop_first`, then load.
    Load { req: LoadRequest, drop_first: Vec<ModelKey>, reply: oneshot::Sender<Result<(Loaded, f64), BackendError>> },
    /// Drop these models.
    Unload { keys: Vec<ModelKey>, reply: Option<oneshot::Sender<()>> },
    /// Run one request.
    Infer { key: ModelKey, input: InferInput, reply: oneshot::Sender<Result<(InferOutput, f64), BackendError>> },
    /// A request's reserved place: run the job it sends, or go on once it drops the
    /// sender without sending (see [`Admission::in_order`]).
    Place(oneshot::Receiver<Job>),
}

/// What `acquire` does next, decided under the cache lock and done outside it.
enum Step {
    /// Pinned a resident model of this many bytes.
    Pinned(u64),
    /// Another request is loading it: wait for that load.
    Wait(watch::Receiver<LoadDone>),
    /// Absent and not prepared yet: fetch the weights (outside the lock).
    Prepare,
    /// This request leads the load; the task finishes it even if the request goes away.
    Load(tokio::task::JoinHandle<Result<(PinGuard, CacheReport), DeviceError>>),
    /// A transient state; look again.
    Retry,
    /// Wait for this request's turn in the provider's order, then decide.
    AwaitTurn,
}

/// How a request is admitted: in the provider's order, after evicting what the
/// provider's cache view planned to evict for it. The default is neither (arrival
/// order, the cache's own LRU), for callers other than the provider.
#[derive(Debug, Default)]
pub struct Admission {
    /// Its turn in the device's admission order.
    pub turn: Option<Turn>,
    /// Models to evict first.
    pub victims: Vec<ModelKey>,
    /// Reserve the request's place on the device when it is admitted, so its inference
    /// runs in admission order: right after its own load, and before anything admitted
    /// later (another request's load queued while this one loaded, say), as the
    /// provider's scheduler and simulator assume. Only for a caller that infers as soon
    /// as it is admitted: the device waits at that place until the inference comes or
    /// the [`PinGuard`] is dropped.
    pub in_order: bool,
}

/// Outcome of a load, shared with the requests that wait for it.
type LoadDone = Option<Result<(), DeviceError>>;

/// The device's answer to one load: the model and its load time, ms.
type LoadReply = oneshot::Receiver<Result<(Loaded, f64), BackendError>>;

struct State {
    cache: Cache<ModelKey>,
    /// Loads in progress: waiters subscribe and see the result.
    loads: HashMap<ModelKey, watch::Receiver<LoadDone>>,
    /// Architecture and weights URI of every cached key, for status.
    meta: HashMap<ModelKey, (String, String)>,
}

struct Shared {
    name: String,
    state: Mutex<State>,
    /// Admission in the provider's dispatch order.
    order: Arc<order::Sequencer>,
    tx: std::sync::mpsc::Sender<Job>,
    queued: Arc<AtomicU64>,
    /// Last free-memory reading of the device itself (u64::MAX: none).
    device_free: Arc<AtomicU64>,
    metrics: Metrics,
}

/// Takes a load out of the cache if its task ends without finishing it (a panic, or
/// the runtime shutting down), so a key never stays "loading" forever; declared after
/// the load's `done` sender, it runs before waiters see the channel close.
struct Unfinished<'a> {
    shared: &'a Shared,
    key: &'a ModelKey,
    armed: bool,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut st = self.shared.lock();
            st.loads.remove(self.key);
            st.cache.abort_load(self.key);
            st.meta.remove(self.key);
            self.shared.refresh(&st);
        }
    }
}

/// The async handle to one device. Cheap to clone.
#[derive(Clone)]
pub struct DeviceHandle {
    shared: Arc<Shared>,
}

/// A pin on a resident model: while it lives the model is never evicted.
pub struct PinGuard {
    shared: Arc<Shared>,
    key: ModelKey,
    /// The request's reserved place on the device, if it has one.
    place: Mutex<Option<oneshot::Sender<Job>>>,
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        self.shared.lock().cache.unpin(&self.key);
    }
}

impl std::fmt::Debug for PinGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinGuard").field("device", &self.shared.name).field("key", &self.key).finish()
    }
}

impl PinGuard {
    fn new(shared: Arc<Shared>, key: ModelKey, place: Option<oneshot::Sender<Job>>) -> Self {
        PinGuard { shared, key, place: Mutex::new(place) }
    }

    /// The pinned model.
    pub fn key(&self) -> &ModelKey {
        &self.key
    }

    fn place(&self) -> MutexGuard<'_, Option<oneshot::Sender<Job>>> {
        self.place.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A model ready to load: what the backend needs, and what preparing it cost.
pub struct Prepared {
    /// The load.
    pub req: LoadRequest,
    /// Milliseconds spent fetching weights.
    pub fetch_ms: f64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a panic while holding it; the cache itself is always
        // left consistent between calls, so carry on with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, job: Job) -> Result<(), DeviceError> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        self.metrics.queue_depth.with_label_values(&[&self.name]).set(self.queued.load(Ordering::SeqCst) as i64);
        self.tx.send(job).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            DeviceError::Gone(self.name.clone())
        })
    }

    /// A place in the device's queue, filled later by its holder (or skipped once the
    /// holder drops it). None if the device has stopped.
    fn reserve(&self) -> Option<oneshot::Sender<Job>> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Place(rx)).ok().map(|()| tx)
    }

    fn refresh(&self, st: &State) {
        let m = &self.metrics;
        m.used_bytes.with_label_values(&[&self.name]).set(st.cache.used_bytes() as i64);
        let resident = st.cache.entries().iter().filter(|e| !e.loading).count();
        m.resident_models.with_label_values(&[&self.name]).set(resident as i64);
    }

    fn evicted(&self, st: &mut State, victims: &[ModelKey], reason: &str) {
        for v in victims {
            st.meta.remove(v);
            self.metrics.evictions.with_label_values(&[&self.name, v, reason]).inc();
            self.metrics.model_bytes.with_label_values(&[&self.name, v]).set(0);
        }
        self.refresh(st);
    }
}

impl DeviceHandle {
    /// Starts the owner thread for `backend` and returns the handle.
    pub fn spawn(name: &str, cache: CacheConfig, backend: Box<dyn ModelBackend>, metrics: Metrics) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        let queued = Arc::new(AtomicU64::new(0));
        let device_free = Arc::new(AtomicU64::new(u64::MAX));
        let thread = owner::Owner {
            name: name.to_string(),
            backend,
            queued: queued.clone(),
            device_free: device_free.clone(),
            metrics: metrics.clone(),
        };
        std::thread::Builder::new().name(format!("device-{name}")).spawn(move || thread.run(rx))?;
        metrics.capacity_bytes.with_label_values(&[name]).set(cache.capacity_bytes as i64);
        let state = State { cache: Cache::new(cache), loads: HashMap::new(), meta: HashMap::new() };
        let order = Arc::new(order::Sequencer::default());
        let shared = Shared { name: name.to_string(), state: Mutex::new(state), order, tx, queued, device_free, metrics };
        shared.refresh(&shared.lock());
        Ok(DeviceHandle { shared: Arc::new(shared) })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The same device, its admission turns waiting at most `patience`.
    pub fn with_order_patience(mut self, patience: std::time::Duration) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.order = Arc::new(order::Sequencer::new(patience));
        }
        self
    }

    /// A turn in this device's admission order for `ticket`.
    pub fn turn(&self, ticket: Ticket) -> Turn {
        Turn::new(self.shared.order.clone(), ticket)
    }

    /// Pins `key`, loading it first if needed. `prepare` fetches the weights; it runs
    /// only on a miss, outside the cache lock.
    pub async fn acquire<E, F, Fut>(&self, key: &ModelKey, meta: (String, String), prepare: F) -> Result<(PinGuard, CacheReport), E>
    where
        E: From<DeviceError>,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Prepared, E>>,
    {
        self.admit(key, meta, Admission::default(), prepare).await
    }

    /// [`DeviceHandle::acquire`] as the provider planned it: the decision (pin, join or
    /// begin a load) waits for `admission.turn`, and first evicts `admission.victims`
    /// that are resident and unpinned. The turn is released once decided; a load's own
    /// time is never waited for in order.
    pub async fn admit<E, F, Fut>(&self, key: &ModelKey, meta: (String, String), admission: Admission, prepare: F) -> Result<(PinGuard, CacheReport), E>
    where
        E: From<DeviceError>,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Prepared, E>>,
    {
        let Admission { mut turn, mut victims, in_order } = admission;
        let shared = &self.shared;
        let started = Instant::now();
        let mut prepare = Some(prepare);
        let mut prepared: Option<Prepared> = None;
        let mut waited = false;
        let mut my_turn = turn.is_none();
        // The reserved place (`in_order`). Held only while the device is sure to reach
        // it with nothing left for this request to wait for: taken (again) right after
        // the load it waits for is queued, and given up before any other wait.
        let mut place = None;
        loop {
            let step = {
                let mut st = shared.lock();
                let lookup = st.cache.lookup(key);
                let step = if lookup == Lookup::Absent && prepared.is_none() {
                    // Fetching the weights needs no turn: it decides nothing.
                    Step::Prepare
                } else if !my_turn {
                    Step::AwaitTurn
                } else {
                    self.evict_planned(&mut st, key, &mut victims);
                    self.decide(&mut st, key, lookup, &mut prepared, &meta)?
                };
                match &step {
                    Step::Pinned(_) if place.is_some() => {}
                    Step::Pinned(_) | Step::Load(_) | Step::Wait(_) if in_order => place = shared.reserve(),
                    _ => place = None,
                }
                step
            };
            if !matches!(step, Step::Prepare | Step::AwaitTurn | Step::Retry) {
                // Decided: the next request in the provider's order may decide too.
                if let Some(t) = turn.as_mut() {
                    t.release();
                }
            }
            match step {
                Step::Pinned(bytes) => {
                    let outcome = if waited { CacheOutcome::Joined } else { CacheOutcome::Hit };
                    let labels = [shared.name.as_str(), key.as_str()];
                    if waited {
                        shared.metrics.misses.with_label_values(&labels).inc()
                    } else {
                        shared.metrics.hits.with_label_values(&labels).inc()
                    }
                    let wait_ms = if waited { started.elapsed().as_secs_f64() * 1e3 } else { 0.0 };
                    let fetch_ms = prepared.as_ref().map_or(0.0, |p| p.fetch_ms);
                    let report = self.report(key, outcome, bytes, Vec::new(), fetch_ms, 0.0, wait_ms);
                    return Ok((PinGuard::new(shared.clone(), key.clone(), place), report));
                }
                Step::Load(task) => {
                    shared.metrics.misses.with_label_values(&[&shared.name, key]).inc();
                    return match task.await {
                        Ok(result) => result.map_err(E::from).map(|(guard, report)| {
                            *guard.place() = place;
                            (guard, report)
                        }),
                        Err(e) => Err(E::from(DeviceError::Backend(BackendError::Internal(e.to_string())))),
                    };
                }
                Step::Wait(mut rx) => {
                    waited = true;
                    let done = rx.wait_for(Option::is_some).await.map(|d| d.clone()).ok().flatten();
                    if let Some(Err(e)) = done {
                        return Err(E::from(e));
                    }
                }
                Step::Prepare => match prepare.take() {
                    Some(prepare) => prepared = Some(prepare().await?),
                    None => return Err(E::from(DeviceError::Backend(BackendError::Internal("model prepared twice".into())))),
                },
                Step::AwaitTurn => {
                    if let Some(t) = &turn
                        && !t.wait().await
                    {
                        tracing::debug!(device = %shared.name, model = %key, "admitted out of order: an earlier request did not come in time");
                    }
                    my_turn = true;
                }
                Step::Retry => tokio::task::yield_now().await,
            }
        }
    }

    /// Evicts the provider's planned victims that are resident and unpinned (the rest
    /// are gone already, or in use; the cache report tells the provider what happened).
    fn evict_planned(&self, st: &mut State, key: &ModelKey, victims: &mut Vec<ModelKey>) {
        let planned: Vec<ModelKey> = std::mem::take(victims)
            .into_iter()
            .filter(|v| v != key && st.cache.evict(v).is_ok())
            .collect();
        if !planned.is_empty() {
            self.shared.evicted(st, &planned, "planned");
            // Queued before any load this request starts, so the device drops them first;
            // a stopped device fails that load too.
            let _ = self.shared.send(Job::Unload { keys: planned, reply: None });
        }
    }

    /// The admission decision for `key`, under the cache lock.
    fn decide(&self, st: &mut State, key: &ModelKey, lookup: Lookup, prepared: &mut Option<Prepared>, meta: &(String, String)) -> Result<Step, DeviceError> {
        let shared = &self.shared;
        Ok(match lookup {
            Lookup::Resident => {
                st.cache.pin(key);
                Step::Pinned(st.cache.bytes_of(key).unwrap_or(0))
            }
            Lookup::Loading => st.loads.get(key).cloned().map_or(Step::Retry, Step::Wait),
            Lookup::Absent => match prepared.take() {
                None => Step::Prepare,
                Some(p) => {
                    let victims = st.cache.begin_load(key.clone(), p.req.declared_bytes).map_err(DeviceError::from)?;
                    let (done_tx, done_rx) = watch::channel(None);
                    st.loads.insert(key.clone(), done_rx);
                    st.meta.insert(key.clone(), meta.clone());
                    shared.evicted(st, &victims, "capacity");
                    // Queued under the lock, so the device loads in decision order and
                    // a place reserved after this decision comes after this load.
                    let (reply, loaded) = oneshot::channel();
                    let sent = shared.send(Job::Load { req: p.req, drop_first: victims.clone(), reply }).map(|()| loaded);
                    let guard = PinGuard::new(shared.clone(), key.clone(), None);
                    let handle = self.clone();
                    let fetch_ms = p.fetch_ms;
                    Step::Load(tokio::spawn(async move { handle.load(guard, sent, fetch_ms, victims, done_tx).await }))
                }
            },
        })
    }

    /// The leader's side of a load, run in its own task.
    async fn load(self, guard: PinGuard, loaded: Result<LoadReply, DeviceError>, fetch_ms: f64, victims: Vec<ModelKey>, done: watch::Sender<LoadDone>) -> Result<(PinGuard, CacheReport), DeviceError> {
        let shared = &self.shared;
        let key = guard.key.clone();
        let mut unfinished = Unfinished { shared, key: &key, armed: true };
        let result = match loaded {
            Ok(rx) => rx.await.unwrap_or_else(|_| Err(BackendError::Internal(format!("device {} dropped a load", shared.name)))),
            Err(e) => Err(BackendError::Internal(e.to_string())),
        };
        let mut st = shared.lock();
        st.loads.remove(&key);
        let outcome = match result {
            Ok((loaded, load_ms)) => match st.cache.finish_load(&key, loaded.bytes) {
                Ok(more) => {
                    shared.evicted(&mut st, &more, "capacity");
                    drop(st);
                    if !more.is_empty() {
                        let _ = shared.send(Job::Unload { keys: more.clone(), reply: None });
                    }
                    let labels = [shared.name.as_str(), key.as_str()];
                    shared.metrics.loads.with_label_values(&labels).inc();
                    shared.metrics.load_seconds.with_label_values(&labels).observe(load_ms / 1e3);
                    shared.metrics.model_bytes.with_label_values(&labels).set(loaded.bytes as i64);
                    let all: Vec<ModelKey> = victims.into_iter().chain(more).collect();
                    Ok(self.report(&key, CacheOutcome::Miss, loaded.bytes, all, fetch_ms, load_ms, 0.0))
                }
                Err(admit) => {
                    // Measured larger than the device can hold: the cache already
                    // dropped the entry; drop the model too.
                    st.meta.remove(&key);
                    shared.refresh(&st);
                    drop(st);
                    let _ = shared.send(Job::Unload { keys: vec![key.clone()], reply: None });
                    Err(DeviceError::Admit(admit))
                }
            },
            Err(e) => {
                st.cache.abort_load(&key);
                st.meta.remove(&key);
                shared.refresh(&st);
                drop(st);
                Err(DeviceError::Backend(e))
            }
        };
        if let Err(e) = &outcome {
            let labels = [shared.name.as_str(), key.as_str(), error_type(e)];
            shared.metrics.load_failures.with_label_values(&labels).inc();
        }
        unfinished.armed = false;
        let _ = done.send(Some(outcome.as_ref().map(|_| ()).map_err(Clone::clone)));
        outcome.map(|report| (guard, report))
    }

    #[allow(clippy::too_many_arguments)]
    fn report(&self, key: &ModelKey, outcome: CacheOutcome, bytes: u64, evicted: Vec<ModelKey>, fetch_ms: f64, load_ms: f64, wait_ms: f64) -> CacheReport {
        CacheReport { device: self.shared.name.clone(), model_key: key.clone(), outcome, model_bytes: bytes, evicted, fetch_ms, load_ms, wait_ms }
    }

    /// Runs `input` through the pinned model. Returns the output and the device time.
    /// It runs at the request's reserved place if it has one, else behind what is queued.
    pub async fn infer(&self, guard: &PinGuard, input: InferInput) -> Result<(InferOutput, f64), DeviceError> {
        let (reply, rx) = oneshot::channel();
        let job = Job::Infer { key: guard.key.clone(), input, reply };
        let place = guard.place().take();
        match place {
            Some(place) => place.send(job).map_err(|_| DeviceError::Gone(self.shared.name.clone()))?,
            None => self.shared.send(job)?,
        }
        let (out, ms) = rx.await.map_err(|_| DeviceError::Gone(self.shared.name.clone()))??;
        self.shared.metrics.infer_seconds.with_label_values(&[&self.shared.name, &guard.key]).observe(ms / 1e3);
        Ok((out, ms))
    }

    /// Unloads an unpinned resident model. Returns the bytes freed.
    pub async fn evict(&self, key: &ModelKey) -> Result<u64, DeviceError> {
        let bytes = {
            let mut st = self.shared.lock();
            let bytes = st.cache.evict(key)?;
            self.shared.evicted(&mut st, std::slice::from_ref(key), "explicit");
            bytes
        };
        let (reply, rx) = oneshot::channel();
        self.shared.send(Job::Unload { keys: vec![key.clone()], reply: Some(reply) })?;
        rx.await.map_err(|_| DeviceError::Gone(self.shared.name.clone()))?;
        Ok(bytes)
    }

    /// The device's state, models least-recently-used first.
    pub fn status(&self) -> DeviceStatus {
        let st = self.shared.lock();
        let config = st.cache.config();
        let models = st
            .cache
            .entries()
            .into_iter()
            .map(|e| {
                let (arch, weights) = st.meta.get(&e.key).cloned().unwrap_or_default();
                ResidentModel { model_key: e.key, arch, weights, bytes: e.bytes, pins: e.pins, loading: e.loading }
            })
            .collect();
        let free = self.shared.device_free.load(Ordering::SeqCst);
        DeviceStatus {
            name: self.shared.name.clone(),
            capacity_bytes: config.capacity_bytes,
            reserve_bytes: config.reserve_bytes,
            usable_bytes: st.cache.usable_bytes(),
            used_bytes: st.cache.used_bytes(),
            device_free_bytes: (free != u64::MAX).then_some(free),
            queue_depth: self.shared.queued.load(Ordering::SeqCst),
            models,
        }
    }

    /// Checks the cache's invariants (tests).
    pub fn check_invariants(&self) -> Result<(), String> {
        self.shared.lock().cache.check_invariants()
    }
}

/// The stable snake_case name of a device error.
pub fn error_type(e: &DeviceError) -> &'static str {
    match e {
        DeviceError::Admit(a) => a.error_type(),
        DeviceError::Evict(e) => e.error_type(),
        DeviceError::Backend(b) => match b {
            BackendError::Mismatch(_) => "weights_mismatch",
            BackendError::Corrupt(_) => "corrupt_weights",
            BackendError::Input(_) => "invalid_input",
            BackendError::Unsupported(_) => "unsupported_input",
            BackendError::Internal(_) => "internal",
        },
        DeviceError::Gone(_) => "device_stopped",
    }
}

#[cfg(test)]
mod tests;
