//! The actor that owns the pure [`Scheduler`]: every event (a request arrives, a worker
//! answers, a caller gives up, a worker joins, fails or is reconciled) is a [`Command`]
//! on one unbounded channel, handled in order by [`Actor::handle`] with the time as an
//! argument. Decisions go back to each request's own channel as [`Event`]s; a request
//! may be dispatched more than once only when its GPU went down under it.
//!
//! The actor is synchronous: no await inside a command, so the state is never seen half
//! changed, and tests drive [`Actor::handle`] directly.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use gpu_worker::wire::{CacheOutcome, InferReport, ModelKey, WorkerStatus};
use locus_scheduler::{
    Dispatch, GpuId, Micros, ModelId, NodeId, Outcome, Request, RequestId, Scheduler,
    SchedulerConfig, SubmitError,
};
use locus_vram::LoadCost;
use tokio::sync::{mpsc, oneshot};

use super::error::DispatchError;
use super::metrics::DispatchMetrics;
use super::view::SharedView;

/// A model as a request names it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRef {
    /// The cache key (`gpu_worker::wire::model_key`).
    pub key: ModelKey,
    /// The architecture, for the profile's first estimates.
    pub arch: String,
    /// The `locus.io/memory` override, bytes.
    pub memory_bytes: Option<u64>,
}

/// Where a request goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The GPU.
    pub gpu: GpuId,
    /// Its worker.
    pub node: NodeId,
    /// The worker's base URL.
    pub url: Arc<str>,
    /// The device's name on the worker (`cpu:0`).
    pub device: Arc<str>,
    /// `node/device`, for response headers and status.
    pub label: Arc<str>,
    /// The view expects the model resident there.
    pub hit: bool,
    /// Models the view evicted there to make room, in order: the worker is told to
    /// evict exactly these first, so its cache follows the view's choice.
    pub victims: Vec<ModelKey>,
    /// `EPOCH.SEQ`: the dispatch's place in this GPU's dispatch order, so the worker
    /// admits requests in the order the view decided them (`gpu_worker::device::order`).
    pub order: String,
}

/// What the actor tells a request.
#[derive(Debug)]
pub enum Event {
    /// Send it here (again, if its previous GPU went down).
    Dispatched(Target),
    /// It was refused.
    Rejected(DispatchError),
}

/// What the actor is told.
#[derive(Debug)]
pub enum Command {
    /// A request arrives.
    Submit {
        /// Its id (unique, from the handle's counter).
        id: RequestId,
        /// The invoked name, for messages.
        target: String,
        /// `name.namespace`, for metrics.
        function: String,
        /// Its model.
        model: ModelRef,
        /// Where its decisions go.
        events: mpsc::UnboundedSender<Event>,
    },
    /// The worker answered a request dispatched to `gpu`.
    Done {
        /// The request.
        id: RequestId,
        /// Where it ran.
        gpu: GpuId,
        /// The cache report of the answer, when the worker got as far as the model.
        report: Option<InferReport>,
    },
    /// The caller gave up (deadline, disconnect, retries spent).
    Abandon {
        /// The request.
        id: RequestId,
    },
    /// Reaching a worker failed at the transport level: take its GPUs out now (the
    /// health round brings them back when it answers again).
    WorkerFailed {
        /// The worker.
        node: NodeId,
    },
    /// A health round: the status of every worker the source lists now.
    Health {
        /// Each worker's status, or why it could not be read.
        results: Vec<(String, Result<WorkerStatus, String>)>,
        /// Also compare idle GPUs' views with the workers' own status.
        reconcile: bool,
    },
    /// Unload a model from every GPU (idle scale to zero): removes it from the view
    /// and answers where the workers must evict it.
    Unload {
        /// The model.
        key: ModelKey,
        /// `(worker URL, device)` pairs to evict from.
        reply: oneshot::Sender<Vec<(String, String)>>,
    },
    /// Answered once every command sent before it has been handled.
    Barrier(oneshot::Sender<()>),
}

/// A worker.
#[derive(Debug)]
struct Node {
    url: Arc<str>,
    up: bool,
    /// Its GPUs by device index, with their names.
    gpus: Vec<(GpuId, Arc<str>, Arc<str>)>,
}

/// A model's best known size and times.
#[derive(Debug)]
struct ModelInfo {
    key: ModelKey,
    bytes: u64,
    infer_us: f64,
    load_us: f64,
}

/// A request the actor holds (queued or in flight).
#[derive(Debug)]
struct Waiter {
    events: mpsc::UnboundedSender<Event>,
    function: String,
    model: ModelId,
    /// The GPU of its current dispatch, and whether the view expected a hit there.
    at: Option<(GpuId, bool)>,
}

/// The state the actor owns.
pub struct Actor {
    scheduler: Scheduler,
    nodes: Vec<Node>,
    by_url: HashMap<Arc<str>, NodeId>,
    gpu_node: Vec<NodeId>,
    models: Vec<ModelInfo>,
    by_key: HashMap<ModelKey, ModelId>,
    waiting: HashMap<RequestId, Waiter>,
    metrics: DispatchMetrics,
    view: SharedView,
    /// This actor's epoch: a restarted provider numbers from 0 again under a new one.
    epoch: u64,
    /// Next dispatch number of each GPU.
    next_order: Vec<u64>,
}

/// Weight of the newest observation in the moving averages of model timings.
const EWMA: f64 = 0.2;

impl Actor {
    /// An actor with no workers yet.
    pub fn new(config: SchedulerConfig, metrics: DispatchMetrics, view: SharedView) -> Self {
        Actor {
            scheduler: Scheduler::new(config),
            nodes: Vec::new(),
            by_url: HashMap::new(),
            gpu_node: Vec::new(),
            models: Vec::new(),
            by_key: HashMap::new(),
            waiting: HashMap::new(),
            metrics,
            view,
            epoch: uuid::Uuid::new_v4().as_u64_pair().0 >> 1,
            next_order: Vec::new(),
        }
    }

    /// The scheduler, for tests and invariant checks.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Handles one command at time `now` (microseconds since the dispatcher started).
    pub fn handle(&mut self, command: Command, now: Micros) {
        match command {
            Command::Submit {
                id,
                target,
                function,
                model,
                events,
            } => self.submit(id, target, function, model, events, now),
            Command::Done { id, gpu, report } => self.done(id, gpu, report, now),
            Command::Abandon { id } => self.abandon(id, now),
            Command::WorkerFailed { node } => self.lose(node, now),
            Command::Health { results, reconcile } => self.health(results, reconcile, now),
            Command::Unload { key, reply } => {
                let _ = reply.send(self.unload(&key));
            }
            Command::Barrier(reply) => {
                let _ = reply.send(());
            }
        }
        self.metrics.waiting.set(self.scheduler.waiting() as f64);
        self.metrics
            .in_flight
            .set(self.scheduler.in_flight() as f64);
    }

    /// Moves `function`'s central-queue gauge by `delta`.
    fn queued(&self, function: &str, delta: f64) {
        self.metrics
            .queue_depth
            .with_label_values(&[function])
            .add(delta);
    }

    fn intern(&mut self, model: &ModelRef) -> ModelId {
        if let Some(id) = self.by_key.get(&model.key) {
            if let Some(bytes) = model.memory_bytes {
                self.models[id.0 as usize].bytes = bytes;
            }
            return *id;
        }
        let profile = locus_vram::profile::profile(&model.arch);
        let weights = profile.map_or(64 << 20, |p| p.weight_bytes);
        let bytes = model.memory_bytes.unwrap_or(weights);
        let id = ModelId(self.models.len() as u32);
        self.models.push(ModelInfo {
            key: model.key.clone(),
            bytes,
            infer_us: profile.map_or(10_000.0, |p| p.gpu_infer_ms * 1e3),
            load_us: LoadCost::DEFAULT.load_ms(weights) * 1e3,
        });
        self.by_key.insert(model.key.clone(), id);
        id
    }

    fn submit(
        &mut self,
        id: RequestId,
        target: String,
        function: String,
        model: ModelRef,
        events: mpsc::UnboundedSender<Event>,
        now: Micros,
    ) {
        if !self.nodes.iter().any(|n| n.up) {
            let _ = events.send(Event::Rejected(DispatchError::NoEndpoints(target)));
            return;
        }
        let model = self.intern(&model);
        let info = &self.models[model.0 as usize];
        let request = Request {
            id,
            model,
            bytes: info.bytes,
            infer_us: info.infer_us as Micros,
            load_us: info.load_us as Micros,
        };
        let refused = |e: SubmitError| match e {
            SubmitError::TooLarge { bytes, usable } => DispatchError::TooLarge {
                target: target.clone(),
                bytes,
                usable,
            },
            SubmitError::QueueFull { limit } => DispatchError::Overloaded { limit },
            SubmitError::Duplicate(_) => DispatchError::Unreachable(target.clone()),
        };
        self.queued(&function, 1.0);
        self.waiting.insert(
            id,
            Waiter {
                events,
                function,
                model,
                at: None,
            },
        );
        match self.scheduler.submit(request, now) {
            Ok(dispatches) => self.deliver(dispatches),
            Err(e) => {
                if let Some(w) = self.waiting.remove(&id) {
                    self.queued(&w.function, -1.0);
                    let _ = w.events.send(Event::Rejected(refused(e)));
                }
            }
        }
    }

    fn deliver(&mut self, dispatches: Vec<Dispatch>) {
        for d in dispatches {
            let Some(w) = self.waiting.get_mut(&d.request) else {
                continue;
            };
            if w.at.is_some() {
                self.metrics.retries.inc();
            } else {
                self.metrics
                    .queue_depth
                    .with_label_values(&[&w.function])
                    .sub(1.0);
            }
            w.at = Some((d.gpu, d.hit));
            let g = d.gpu.0 as usize;
            if self.next_order.len() <= g {
                self.next_order.resize(g + 1, 0);
            }
            let seq = self.next_order[g];
            self.next_order[g] += 1;
            self.metrics.queue_wait.observe(d.queued_us as f64 / 1e6);
            let node = &self.nodes[d.node.0 as usize];
            let (_, device, label) = &node.gpus[d.device as usize];
            let target = Target {
                gpu: d.gpu,
                node: d.node,
                url: node.url.clone(),
                device: device.clone(),
                label: label.clone(),
                hit: d.hit,
                victims: d
                    .victims
                    .iter()
                    .map(|m| self.models[m.0 as usize].key.clone())
                    .collect(),
                order: format!("{}.{seq}", self.epoch),
            };
            // A closed channel means the caller left; its Abandon is on the way.
            let _ = w.events.send(Event::Dispatched(target));
        }
    }

    fn done(&mut self, id: RequestId, gpu: GpuId, report: Option<InferReport>, now: Micros) {
        let Some(w) = self.waiting.remove(&id) else {
            return;
        };
        if w.at.is_none() {
            self.queued(&w.function, -1.0);
        }
        let mut touched = HashSet::from([w.model]);
        if let Some(r) = &report {
            for key in &r.cache.evicted {
                self.metrics.evictions.inc();
                if let Some(&m) = self.by_key.get(key) {
                    self.scheduler.model_evicted(gpu, m);
                    touched.insert(m);
                }
            }
            let info = &mut self.models[w.model.0 as usize];
            info.infer_us = info.infer_us * (1.0 - EWMA) + r.compute_ms * 1e3 * EWMA;
            match r.cache.outcome {
                CacheOutcome::Miss => {
                    info.bytes = r.cache.model_bytes;
                    let load = (r.cache.load_ms + r.cache.fetch_ms) * 1e3;
                    info.load_us = info.load_us * (1.0 - EWMA) + load * EWMA;
                    self.metrics
                        .cache_misses
                        .with_label_values(&[&w.function])
                        .inc();
                    if w.at.is_some_and(|(_, hit)| hit) {
                        self.metrics
                            .drift
                            .with_label_values(&["unexpected_miss"])
                            .inc();
                    }
                }
                CacheOutcome::Hit | CacheOutcome::Joined => {
                    self.metrics
                        .cache_hits
                        .with_label_values(&[&w.function])
                        .inc();
                }
            }
            self.scheduler
                .model_loaded(gpu, w.model, r.cache.model_bytes);
            let key = self.models[w.model.0 as usize].key.clone();
            self.view.write(|s| {
                let m = s.models.entry(key).or_default();
                match r.cache.outcome {
                    CacheOutcome::Miss => m.misses += 1,
                    _ => m.hits += 1,
                }
            });
        }
        let outcome = if report.is_some() {
            Outcome::Done
        } else {
            Outcome::Failed
        };
        let mut dispatches = Vec::new();
        match w.at {
            Some((at, _)) if at == gpu => {
                dispatches = self.scheduler.complete(gpu, id, outcome, now)
            }
            // Answered by a GPU it was moved away from: release the newer dispatch too.
            Some((at, _)) => dispatches = self.scheduler.complete(at, id, Outcome::Failed, now),
            None => {
                self.scheduler.cancel(id);
            }
        }
        self.refresh_models(touched);
        self.deliver(dispatches);
    }

    fn abandon(&mut self, id: RequestId, now: Micros) {
        let Some(w) = self.waiting.remove(&id) else {
            return;
        };
        if w.at.is_none() {
            self.queued(&w.function, -1.0);
        }
        if self.scheduler.cancel(id) {
            return;
        }
        if let Some((gpu, _)) = w.at {
            let dispatches = self.scheduler.complete(gpu, id, Outcome::Failed, now);
            self.refresh_models(HashSet::from([w.model]));
            self.deliver(dispatches);
        }
    }
}

/// Runs `actor` until every sender of `commands` is gone.
pub async fn run(
    mut actor: Actor,
    mut commands: mpsc::UnboundedReceiver<Command>,
    start: tokio::time::Instant,
) {
    while let Some(command) = commands.recv().await {
        let now = start.elapsed().as_micros() as Micros;
        actor.handle(command, now);
    }
}

mod members;

#[cfg(test)]
mod tests;
