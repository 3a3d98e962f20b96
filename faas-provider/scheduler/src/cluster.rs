//! Cluster state and the global cache view (the paper's Cache Manager).
//!
//! One [`locus_vram::Cache`] per GPU mirrors what that GPU holds, under exactly the rules
//! the worker's own cache applies: bytes, eviction order, pins of in-flight requests,
//! single-flight loads. Around the caches the cluster keeps the indexes that make a
//! decision cheap with a thousand GPUs: the GPUs holding each model, and the up GPUs
//! ordered by outstanding requests, by estimated time they run dry, and by free room.

use std::collections::BTreeSet;

use locus_vram::{AdmitError, Cache, CacheConfig, Eviction, Lookup};

use crate::types::{GpuId, Micros, ModelId, NodeId, Request};

/// A GPU as it is added to the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuSpec {
    /// The node (gpu-worker) it sits in.
    pub node: NodeId,
    /// Its device index on that node.
    pub device: u32,
    /// Device memory, bytes.
    pub capacity_bytes: u64,
    /// Bytes kept free for activations and the context; never used by models.
    pub reserve_bytes: u64,
}

/// One GPU: its cache view and its load.
#[derive(Debug)]
pub struct Gpu {
    spec: GpuSpec,
    up: bool,
    cache: Cache<ModelId>,
    /// The keys of `cache` (unordered), so O3 can ask per held model without allocating.
    held: Vec<ModelId>,
    /// Requests dispatched here and not yet completed.
    outstanding: u32,
    /// Estimated service time of those requests, microseconds.
    work_us: Micros,
    /// When the request now running started (the last dispatch to an idle GPU, or the
    /// last completion). With `work_us` it estimates when the GPU runs dry.
    head_start: Micros,
}

impl Gpu {
    /// How the GPU was added.
    pub fn spec(&self) -> &GpuSpec {
        &self.spec
    }
    /// Whether it takes work.
    pub fn is_up(&self) -> bool {
        self.up
    }
    /// Its cache view.
    pub fn cache(&self) -> &Cache<ModelId> {
        &self.cache
    }
    /// Models resident or loading here (unordered).
    pub fn held(&self) -> &[ModelId] {
        &self.held
    }
    /// Requests dispatched here and not completed.
    pub fn outstanding(&self) -> u32 {
        self.outstanding
    }
    /// Estimated time this GPU finishes everything dispatched to it (0 when idle).
    pub fn free_at(&self) -> Micros {
        if self.outstanding == 0 {
            0
        } else {
            self.head_start + self.work_us
        }
    }
}

/// What [`Cluster::assign`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    /// The model was already resident or loading.
    pub hit: bool,
    /// Models evicted to make room (empty on a hit).
    pub victims: Vec<ModelId>,
}

/// How a finishing request's load ended, if it was the one loading its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadOutcome {
    /// It did not load (a hit, or someone else loads).
    NotLoader,
    /// It loaded the model, which is now resident.
    Loaded,
    /// Its load failed.
    Failed,
}

/// Every GPU, the cache views and the decision indexes.
#[derive(Debug)]
pub struct Cluster {
    gpus: Vec<Gpu>,
    eviction: Eviction,
    /// GPUs holding (resident or loading) each model, indexed by `ModelId.0`.
    holders: Vec<Vec<GpuId>>,
    /// Up GPUs by (outstanding, id).
    by_load: BTreeSet<(u32, u32)>,
    /// Up GPUs by (estimated free time, id).
    by_free: BTreeSet<(Micros, u32)>,
    /// Up GPUs by (free cache bytes, id).
    by_room: BTreeSet<(u64, u32)>,
    /// Whether `by_free` and `by_room` are kept (only cost-aware placement reads them).
    cost_indexes: bool,
    /// Largest usable bytes of any GPU.
    max_usable: u64,
}

impl Cluster {
    /// An empty cluster whose caches evict in `eviction` order. `cost_indexes` keeps
    /// the GPUs ordered by estimated free time and by free room as well (see
    /// [`Self::by_free`], [`Self::by_room`]); without it those iterators are empty.
    pub fn new(eviction: Eviction, cost_indexes: bool) -> Self {
        Self {
            gpus: Vec::new(),
            eviction,
            holders: Vec::new(),
            by_load: BTreeSet::new(),
            by_free: BTreeSet::new(),
            by_room: BTreeSet::new(),
            cost_indexes,
            max_usable: 0,
        }
    }

    /// Adds a GPU, up and empty.
    pub fn add(&mut self, spec: GpuSpec) -> GpuId {
        let id = GpuId(self.gpus.len() as u32);
        let cache = self.empty_cache(&spec);
        self.max_usable = self.max_usable.max(cache.usable_bytes());
        self.gpus.push(Gpu {
            spec,
            up: true,
            cache,
            held: Vec::new(),
            outstanding: 0,
            work_us: 0,
            head_start: 0,
        });
        self.index(id);
        id
    }

    fn empty_cache(&self, spec: &GpuSpec) -> Cache<ModelId> {
        Cache::new(CacheConfig {
            capacity_bytes: spec.capacity_bytes,
            reserve_bytes: spec.reserve_bytes.min(spec.capacity_bytes),
            eviction: self.eviction,
        })
    }

    /// Number of GPUs ever added.
    pub fn len(&self) -> usize {
        self.gpus.len()
    }

    /// GPUs up now.
    pub fn up_count(&self) -> usize {
        self.by_load.len()
    }

    /// True when no GPU was added.
    pub fn is_empty(&self) -> bool {
        self.gpus.is_empty()
    }

    /// One GPU.
    pub fn gpu(&self, id: GpuId) -> Option<&Gpu> {
        self.gpus.get(id.0 as usize)
    }

    /// Every GPU, by id.
    pub fn gpus(&self) -> &[Gpu] {
        &self.gpus
    }

    /// GPUs holding `model` (resident or loading), up or not.
    pub fn holders(&self, model: ModelId) -> &[GpuId] {
        self.holders
            .get(model.0 as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// Up GPUs by (outstanding, id), least loaded first.
    pub fn by_load(&self) -> impl Iterator<Item = (u32, GpuId)> + '_ {
        self.by_load.iter().map(|&(n, g)| (n, GpuId(g)))
    }

    /// Up GPUs by estimated free time, earliest first.
    pub fn by_free(&self) -> impl Iterator<Item = (Micros, GpuId)> + '_ {
        self.by_free.iter().map(|&(t, g)| (t, GpuId(g)))
    }

    /// Up GPUs by free cache bytes, most room first.
    pub fn by_room(&self) -> impl Iterator<Item = (u64, GpuId)> + '_ {
        self.by_room.iter().rev().map(|&(b, g)| (b, GpuId(g)))
    }

    /// Largest usable bytes of any GPU (what the largest admissible model may need).
    pub fn max_usable(&self) -> u64 {
        self.max_usable
    }

    /// Whether `request` can run on `gpu` now: it holds the model, or room can be made.
    pub fn can_admit(&self, gpu: GpuId, request: &Request) -> bool {
        let g = &self.gpus[gpu.0 as usize];
        g.up && (g.cache.free_bytes() >= request.bytes
            || g.cache.lookup(&request.model) != Lookup::Absent
            || g.cache.plan_admit(request.bytes).is_ok())
    }

    /// Whether `gpu` holds `model` (resident or loading).
    pub fn holds(&self, gpu: GpuId, model: ModelId) -> bool {
        self.gpus[gpu.0 as usize].cache.lookup(&model) != Lookup::Absent
    }

    /// Dispatches `request` to `gpu`: pins its model there (loading it, evicting victims,
    /// on a miss) and counts `est_us` of work.
    pub fn assign(
        &mut self,
        gpu: GpuId,
        request: &Request,
        est_us: Micros,
        now: Micros,
    ) -> Result<Assigned, AdmitError> {
        let i = gpu.0 as usize;
        let model = request.model;
        self.unindex(gpu);
        let assigned = if self.gpus[i].cache.pin(&model) {
            Assigned {
                hit: true,
                victims: Vec::new(),
            }
        } else {
            let victims = match self.gpus[i].cache.begin_load(model, request.bytes) {
                Ok(v) => v,
                Err(e) => {
                    self.index(gpu);
                    return Err(e);
                }
            };
            self.forget(gpu, &victims);
            self.remember(gpu, model);
            Assigned {
                hit: false,
                victims,
            }
        };
        let g = &mut self.gpus[i];
        if g.outstanding == 0 {
            g.head_start = now;
        }
        g.outstanding += 1;
        g.work_us += est_us;
        self.index(gpu);
        Ok(assigned)
    }

    /// A dispatched request finished on `gpu`: unpins its model, settles its load (made
    /// resident with the request's bytes, or dropped if it failed) and removes `est_us`
    /// of work.
    pub fn release(
        &mut self,
        gpu: GpuId,
        request: &Request,
        load: LoadOutcome,
        est_us: Micros,
        now: Micros,
    ) {
        let i = gpu.0 as usize;
        let (model, bytes) = (request.model, request.bytes);
        self.unindex(gpu);
        if load != LoadOutcome::NotLoader && self.gpus[i].cache.lookup(&model) == Lookup::Loading {
            if load == LoadOutcome::Loaded {
                match self.gpus[i].cache.finish_load(&model, bytes) {
                    Ok(victims) => self.forget(gpu, &victims),
                    Err(_) => self.forget(gpu, &[model]),
                }
            } else if self.gpus[i].cache.abort_load(&model) {
                self.forget(gpu, &[model]);
            }
        }
        self.gpus[i].cache.unpin(&model);
        let g = &mut self.gpus[i];
        g.outstanding = g.outstanding.saturating_sub(1);
        g.work_us = g.work_us.saturating_sub(est_us);
        g.head_start = now;
        self.index(gpu);
    }

    /// The worker reports `model` resident on `gpu` with `bytes`: settles a load the view
    /// knows of, or adopts one it did not. False if it could not be made to fit.
    pub fn loaded(&mut self, gpu: GpuId, model: ModelId, bytes: u64) -> bool {
        self.unindex(gpu);
        let ok = self.settle_loaded(gpu, model, bytes);
        self.index(gpu);
        ok
    }

    fn settle_loaded(&mut self, gpu: GpuId, model: ModelId, bytes: u64) -> bool {
        let i = gpu.0 as usize;
        match self.gpus[i].cache.lookup(&model) {
            Lookup::Resident => true,
            Lookup::Loading => match self.gpus[i].cache.finish_load(&model, bytes) {
                Ok(victims) => {
                    self.forget(gpu, &victims);
                    true
                }
                Err(_) => {
                    self.forget(gpu, &[model]);
                    false
                }
            },
            Lookup::Absent => match self.gpus[i].cache.begin_load(model, bytes) {
                Ok(victims) => {
                    self.forget(gpu, &victims);
                    self.remember(gpu, model);
                    let extra = self.gpus[i]
                        .cache
                        .finish_load(&model, bytes)
                        .unwrap_or_default();
                    self.forget(gpu, &extra);
                    self.gpus[i].cache.unpin(&model);
                    true
                }
                Err(_) => false,
            },
        }
    }

    /// The worker evicted `model` from `gpu` (or never had it): drops it from the view
    /// unless requests still pin it. True if it was dropped.
    pub fn evicted(&mut self, gpu: GpuId, model: ModelId) -> bool {
        self.unindex(gpu);
        let ok = self.gpus[gpu.0 as usize].cache.evict(&model).is_ok();
        if ok {
            self.forget(gpu, &[model]);
        }
        self.index(gpu);
        ok
    }

    /// Marks a GPU up (with an empty cache: a restarted worker holds nothing) or down
    /// (no longer indexed; its cache view is emptied; its load forgotten).
    pub fn set_up(&mut self, gpu: GpuId, up: bool) {
        let i = gpu.0 as usize;
        if self.gpus[i].up {
            self.unindex(gpu);
        }
        let held = std::mem::take(&mut self.gpus[i].held);
        for m in &held {
            self.unhold(gpu, *m);
        }
        let cache = self.empty_cache(&self.gpus[i].spec);
        let g = &mut self.gpus[i];
        g.cache = cache;
        g.up = up;
        g.outstanding = 0;
        g.work_us = 0;
        if up {
            self.index(gpu);
        }
    }

    fn index(&mut self, gpu: GpuId) {
        let g = &self.gpus[gpu.0 as usize];
        if g.up {
            self.by_load.insert((g.outstanding, gpu.0));
            if self.cost_indexes {
                self.by_free.insert((g.free_at(), gpu.0));
                self.by_room.insert((g.cache.free_bytes(), gpu.0));
            }
        }
    }

    fn unindex(&mut self, gpu: GpuId) {
        let g = &self.gpus[gpu.0 as usize];
        if g.up {
            self.by_load.remove(&(g.outstanding, gpu.0));
            if self.cost_indexes {
                self.by_free.remove(&(g.free_at(), gpu.0));
                self.by_room.remove(&(g.cache.free_bytes(), gpu.0));
            }
        }
    }

    fn remember(&mut self, gpu: GpuId, model: ModelId) {
        self.gpus[gpu.0 as usize].held.push(model);
        let m = model.0 as usize;
        if self.holders.len() <= m {
            self.holders.resize_with(m + 1, Vec::new);
        }
        self.holders[m].push(gpu);
    }

    fn forget(&mut self, gpu: GpuId, models: &[ModelId]) {
        for &m in models {
            let held = &mut self.gpus[gpu.0 as usize].held;
            if let Some(pos) = held.iter().position(|x| *x == m) {
                held.swap_remove(pos);
            }
            self.unhold(gpu, m);
        }
    }

    fn unhold(&mut self, gpu: GpuId, model: ModelId) {
        if let Some(list) = self.holders.get_mut(model.0 as usize)
            && let Some(pos) = list.iter().position(|x| *x == gpu)
        {
            list.remove(pos);
        }
    }
}

mod check;
