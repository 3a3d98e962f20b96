//! The façade the live dispatcher and the simulator both drive.
//!
//! Every event goes in as a method call with the time as an argument: a request arrives
//! ([`Scheduler::submit`]), a request ends ([`Scheduler::complete`]), a GPU comes or goes,
//! a worker reports a cache change. Each call returns the dispatches it made possible.
//! Requests wait in the one central queue until the policy places them; a request is
//! dispatched exactly once, unless its GPU goes down first, in which case it is put
//! back in the queue in its arrival order.

use std::collections::HashMap;

use locus_vram::{Eviction, LoadCost};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::cluster::{Cluster, Gpu, GpuSpec, LoadOutcome};
use crate::policy::{EvictionKind, PolicyConfig, PolicyKind};
use crate::queue::{DispatchQueue, Queued};
use crate::types::{Dispatch, Drift, GpuId, Micros, ModelId, Outcome, Request, RequestId};

/// How the scheduler is set up.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerConfig {
    /// The policy.
    pub policy: PolicyKind,
    /// Every policy knob.
    pub knobs: PolicyConfig,
    /// Load-time model; GreedyDual-Size expresses its setup cost in bytes.
    pub load_cost: LoadCost,
    /// Most requests that may wait, in the central queue or dispatched to a GPU behind
    /// the one it runs (see [`Scheduler::waiting`]); more are refused (`None` =
    /// unbounded). Policies that dispatch at once (`lb`, `locus`) queue on the GPUs, so
    /// both count.
    pub max_queue: Option<usize>,
}

impl SchedulerConfig {
    /// A config with the given policy and every knob at its default.
    pub fn new(policy: PolicyKind) -> Self {
        Self {
            policy,
            knobs: PolicyConfig::default(),
            load_cost: LoadCost::DEFAULT,
            max_queue: None,
        }
    }

    /// The eviction order the GPU caches use under this config.
    pub fn eviction(&self) -> Eviction {
        let kind = if self.policy == PolicyKind::Locus {
            self.knobs.locus_eviction
        } else {
            self.knobs.eviction
        };
        match kind {
            EvictionKind::Lru => Eviction::Lru,
            EvictionKind::Gds => Eviction::GreedyDualSize {
                setup_bytes: (self.load_cost.setup_ms / 1e3 * self.load_cost.bandwidth_bytes_per_s)
                    as u64,
            },
        }
    }
}

/// Why a request was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// A request with this id is already queued or running.
    #[error("request {0:?} is already queued or running")]
    Duplicate(RequestId),
    /// The model does not fit in any GPU of the cluster.
    #[error("model needs {bytes} bytes but the largest GPU has {usable} usable bytes")]
    TooLarge {
        /// The model's bytes.
        bytes: u64,
        /// The largest usable bytes of any GPU.
        usable: u64,
    },
    /// The central queue is full.
    #[error("the dispatch queue is full ({limit} requests)")]
    QueueFull {
        /// The queue's limit.
        limit: usize,
    },
}

impl SubmitError {
    /// Stable snake_case name, used in error bodies and metric labels.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Duplicate(_) => "duplicate_request",
            Self::TooLarge { .. } => "model_too_large",
            Self::QueueFull { .. } => "overloaded",
        }
    }
}

/// A request dispatched and not yet completed.
#[derive(Clone, Debug)]
pub(crate) struct InFlight {
    pub(crate) gpu: GpuId,
    pub(crate) entry: Queued,
    /// Estimated service time counted on the GPU.
    pub(crate) est_us: Micros,
    /// This request loads its model.
    pub(crate) loader: bool,
}

/// The scheduler: cluster view, central queue and policy.
#[derive(Debug)]
pub struct Scheduler {
    pub(crate) config: SchedulerConfig,
    pub(crate) cluster: Cluster,
    pub(crate) queue: DispatchQueue,
    pub(crate) inflight: HashMap<RequestId, InFlight>,
    /// `lb_mode = random`'s generator (seeded; owned so runs are reproducible).
    pub(crate) rng: ChaCha8Rng,
    /// `lb_mode = round_robin`'s next GPU.
    pub(crate) cursor: usize,
}

impl Scheduler {
    /// A scheduler with no GPUs yet.
    pub fn new(config: SchedulerConfig) -> Self {
        let cluster = Cluster::new(config.eviction(), config.policy == PolicyKind::Locus);
        let rng = ChaCha8Rng::seed_from_u64(config.knobs.lb_seed);
        Self {
            config,
            cluster,
            queue: DispatchQueue::new(),
            inflight: HashMap::new(),
            rng,
            cursor: 0,
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// The cluster view.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// One GPU's state.
    pub fn gpu(&self, gpu: GpuId) -> Option<&Gpu> {
        self.cluster.gpu(gpu)
    }

    /// Requests waiting in the central queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Requests dispatched and not completed.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// Adds a GPU (up, empty) and dispatches what it can take.
    pub fn add_gpu(&mut self, spec: GpuSpec, now: Micros) -> (GpuId, Vec<Dispatch>) {
        let id = self.cluster.add(spec);
        (id, self.pump(now))
    }

    /// A known GPU is (again) up with an empty memory; dispatches what it can take.
    pub fn gpu_up(&mut self, gpu: GpuId, now: Micros) -> Vec<Dispatch> {
        if self.cluster.gpu(gpu).is_some_and(|g| !g.is_up()) {
            self.cluster.set_up(gpu, true);
        }
        self.pump(now)
    }

    /// A GPU went down: its in-flight requests go back to the queue in arrival order
    /// (a later completion for them from that GPU is ignored) and are placed again.
    pub fn gpu_down(&mut self, gpu: GpuId, now: Micros) -> Vec<Dispatch> {
        if !self.cluster.gpu(gpu).is_some_and(Gpu::is_up) {
            return Vec::new();
        }
        let mut back: Vec<RequestId> = self
            .inflight
            .iter()
            .filter(|(_, f)| f.gpu == gpu)
            .map(|(id, _)| *id)
            .collect();
        back.sort_by_key(|id| self.inflight[id].entry.seq);
        for id in back {
            if let Some(f) = self.inflight.remove(&id) {
                self.queue.requeue(f.entry);
            }
        }
        self.cluster.set_up(gpu, false);
        self.pump(now)
    }

    /// A request arrives. Refused if its id is in use, its model fits no GPU, or the
    /// queue is full; otherwise queued and placed when the policy says so.
    pub fn submit(&mut self, request: Request, now: Micros) -> Result<Vec<Dispatch>, SubmitError> {
        if self.inflight.contains_key(&request.id) || self.queue.contains(request.id) {
            return Err(SubmitError::Duplicate(request.id));
        }
        let usable = self.cluster.max_usable();
        if !self.cluster.is_empty() && request.bytes > usable {
            return Err(SubmitError::TooLarge {
                bytes: request.bytes,
                usable,
            });
        }
        if let Some(limit) = self.config.max_queue.filter(|l| self.waiting() >= *l) {
            return Err(SubmitError::QueueFull { limit });
        }
        let seq = self.queue.ticket();
        self.queue.push(seq, request, now);
        Ok(self.pump(now))
    }

    /// Requests accepted and not running: those in the central queue, plus those
    /// dispatched beyond one running per up GPU (counted over all GPUs at once, so a
    /// request behind another on a busy GPU while some GPU idles counts as running).
    pub fn waiting(&self) -> usize {
        let running = self.inflight.len().min(self.cluster.up_count());
        self.queue.len() + self.inflight.len() - running
    }

    /// A waiting request's client went away: it leaves the queue. False if it was not
    /// waiting (already dispatched or unknown).
    pub fn cancel(&mut self, request: RequestId) -> bool {
        self.queue.cancel(request).is_some()
    }

    /// A dispatched request ended on `gpu`. Unknown pairs (e.g. a request moved off a GPU
    /// that went down) are ignored. Returns the dispatches the freed capacity allows.
    pub fn complete(
        &mut self,
        gpu: GpuId,
        request: RequestId,
        outcome: Outcome,
        now: Micros,
    ) -> Vec<Dispatch> {
        match self.inflight.get(&request) {
            Some(f) if f.gpu == gpu => {}
            _ => return Vec::new(),
        }
        let Some(f) = self.inflight.remove(&request) else {
            return Vec::new();
        };
        let r = &f.entry.request;
        let mut loader = f.loader;
        if loader && outcome == Outcome::Failed {
            // Requests queued behind a failed load still need the model: the oldest of
            // them becomes the loader, and the view keeps the entry loading.
            let next = self
                .inflight
                .iter_mut()
                .filter(|(_, o)| o.gpu == gpu && o.entry.request.model == r.model)
                .min_by_key(|(_, o)| o.entry.seq);
            if let Some((_, o)) = next {
                o.loader = true;
                loader = false;
            }
        }
        let load = match (loader, outcome) {
            (false, _) => LoadOutcome::NotLoader,
            (true, Outcome::Done) => LoadOutcome::Loaded,
            (true, Outcome::Failed) => LoadOutcome::Failed,
        };
        self.cluster.release(gpu, r, load, f.est_us, now);
        self.pump(now)
    }

    /// A worker reports `model` now resident on `gpu` with `bytes` (its measured size).
    pub fn model_loaded(&mut self, gpu: GpuId, model: ModelId, bytes: u64) -> bool {
        self.cluster.gpu(gpu).is_some_and(Gpu::is_up) && self.cluster.loaded(gpu, model, bytes)
    }

    /// A worker reports it evicted `model` from `gpu`. False if requests still pin it in
    /// the view (it stays) or the view did not hold it.
    pub fn model_evicted(&mut self, gpu: GpuId, model: ModelId) -> bool {
        self.cluster.gpu(gpu).is_some_and(Gpu::is_up) && self.cluster.evicted(gpu, model)
    }

    /// Makes the view of `gpu` match what its worker says it holds (`(model, bytes)`
    /// pairs) and reports the difference. Models in use or loading in the view are kept.
    pub fn reconcile(&mut self, gpu: GpuId, resident: &[(ModelId, u64)]) -> Drift {
        let mut drift = Drift::default();
        let Some(g) = self.cluster.gpu(gpu).filter(|g| g.is_up()) else {
            return drift;
        };
        let mut view: Vec<ModelId> = g.held().to_vec();
        view.sort();
        for m in view {
            if !resident.iter().any(|(r, _)| *r == m) && self.cluster.evicted(gpu, m) {
                drift.dropped.push(m);
            }
        }
        for &(m, bytes) in resident {
            if !self.cluster.holds(gpu, m) {
                if self.cluster.loaded(gpu, m, bytes) {
                    drift.adopted.push(m);
                } else {
                    drift.unadoptable.push(m);
                }
            }
        }
        drift
    }

    /// Checks every invariant of the queue, the in-flight table and the cluster view;
    /// the randomised tests call it after every step.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.cluster.check_invariants()?;
        for (i, g) in self.cluster.gpus().iter().enumerate() {
            let gpu = GpuId(i as u32);
            let mine: Vec<&InFlight> = self.inflight.values().filter(|f| f.gpu == gpu).collect();
            if mine.len() != g.outstanding() as usize {
                return Err(format!(
                    "gpu {i}: {} in flight but {} outstanding",
                    mine.len(),
                    g.outstanding()
                ));
            }
            for m in g.held() {
                let users = mine.iter().filter(|f| f.entry.request.model == *m).count() as u32;
                if g.cache().pins(m) != users {
                    return Err(format!(
                        "gpu {i}: {m:?} has {} pins for {users} requests",
                        g.cache().pins(m)
                    ));
                }
            }
            if mine
                .iter()
                .any(|f| !g.held().contains(&f.entry.request.model))
            {
                return Err(format!(
                    "gpu {i}: a request runs a model the view does not hold"
                ));
            }
        }
        if self
            .queue
            .iter()
            .any(|q| self.inflight.contains_key(&q.request.id))
        {
            return Err("a request is both queued and in flight".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
