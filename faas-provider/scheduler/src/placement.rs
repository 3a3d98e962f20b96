//! Where each policy sends a request, and the pump that drains the central queue.
//!
//! The pump runs after every event. FIFO policies (`lb`, `lalb`, `locus`) place the head
//! until it cannot be placed. `lalb-o3` instead asks a non-busy GPU to pick: the oldest
//! waiting request whose model it holds (within `o3_window`), else the head; once the
//! head has been overtaken `o3_max_bypass` times it goes next whatever it costs.
//!
//! Every choice reads the cluster's indexes (holders of a model; GPUs by load; GPUs by
//! estimated free time), so a decision costs a few index look-ups, never a scan of all
//! GPUs or of the queue.

use rand::Rng;

use crate::policy::{LbMode, PolicyKind, WhenAllBusy};
use crate::scheduler::{InFlight, Scheduler};
use crate::types::{Dispatch, GpuId, Micros, Request};

impl Scheduler {
    /// Dispatches every waiting request the policy can place now.
    pub(crate) fn pump(&mut self, now: Micros) -> Vec<Dispatch> {
        let mut out = Vec::new();
        while let Some(head) = self.queue.head() {
            let pick = if self.config.policy == PolicyKind::LalbO3 {
                self.o3_pick()
            } else {
                let seq = head.seq;
                self.choose(&head.request.clone(), now).map(|g| (seq, g))
            };
            let Some((seq, gpu)) = pick else { break };
            match self.dispatch(seq, gpu, now) {
                Some(d) => out.push(d),
                None => break,
            }
        }
        out
    }

    /// `lalb-o3`: which waiting request goes where, if any.
    fn o3_pick(&mut self) -> Option<(u64, GpuId)> {
        let head = self.queue.head()?;
        let (head_seq, head_req) = (head.seq, head.request.clone());
        let knobs = &self.config.knobs;
        if self.queue.head_bypassed() < knobs.o3_max_bypass {
            let free = self
                .cluster
                .by_load()
                .next()
                .filter(|(n, _)| *n < knobs.busy_threshold);
            if let Some((_, gpu)) = free {
                let held = self.cluster.gpu(gpu)?.held();
                if let Some(seq) = self.queue.oldest_of(held, knobs.o3_window) {
                    return Some((seq, gpu));
                }
            }
        }
        self.lalb(&head_req).map(|g| (head_seq, g))
    }

    /// The GPU the policy sends `request` to now, or `None` to keep it waiting.
    fn choose(&mut self, request: &Request, now: Micros) -> Option<GpuId> {
        match self.config.policy {
            PolicyKind::Lb => self.lb(request),
            PolicyKind::Lalb | PolicyKind::LalbO3 => self.lalb(request),
            PolicyKind::Locus => self.locus(request, now),
        }
    }

    /// `lb`: residency ignored; any GPU that can take the model.
    fn lb(&mut self, request: &Request) -> Option<GpuId> {
        let n = self.cluster.len();
        match self.config.knobs.lb_mode {
            LbMode::LeastLoaded => self.least_loaded(request, u32::MAX),
            LbMode::RoundRobin => {
                let start = self.cursor;
                let g = self.probe_from(start, request)?;
                self.cursor = (g.0 as usize + 1) % n;
                Some(g)
            }
            LbMode::Random => {
                if n == 0 {
                    return None;
                }
                let start = self.rng.gen_range(0..n);
                self.probe_from(start, request)
            }
        }
    }

    /// The first GPU from `start` on (wrapping) that is up and can take `request`.
    fn probe_from(&self, start: usize, request: &Request) -> Option<GpuId> {
        let n = self.cluster.len();
        (0..n)
            .map(|i| GpuId(((start + i) % n) as u32))
            .find(|g| self.cluster.can_admit(*g, request))
    }

    /// The least-loaded up GPU with fewer than `below` outstanding requests that can take
    /// `request` (ties to the lowest index).
    fn least_loaded(&self, request: &Request, below: u32) -> Option<GpuId> {
        self.cluster
            .by_load()
            .take_while(|(n, _)| *n < below)
            .map(|(_, g)| g)
            .find(|g| self.cluster.can_admit(*g, request))
    }

    /// The least-loaded up GPU holding the model with fewer than `below` outstanding.
    fn least_loaded_holder(&self, request: &Request, below: u32) -> Option<GpuId> {
        self.cluster
            .holders(request.model)
            .iter()
            .filter_map(|g| {
                self.cluster
                    .gpu(*g)
                    .filter(|x| x.is_up() && x.outstanding() < below)
                    .map(|x| (x.outstanding(), *g))
            })
            .min()
            .map(|(_, g)| g)
    }

    /// `lalb`: a non-busy holder (hit), else the least-loaded non-busy GPU (miss), else
    /// what `when_all_busy` says.
    fn lalb(&self, request: &Request) -> Option<GpuId> {
        let threshold = self.config.knobs.busy_threshold;
        self.least_loaded_holder(request, threshold)
            .or_else(|| self.least_loaded(request, threshold))
            .or_else(|| match self.config.knobs.when_all_busy {
                WhenAllBusy::Wait => None,
                WhenAllBusy::QueueOnCached => self
                    .least_loaded_holder(request, u32::MAX)
                    .or_else(|| self.least_loaded(request, u32::MAX)),
                WhenAllBusy::QueueOnLeastLoaded => self.least_loaded(request, u32::MAX),
            })
    }

    /// `locus`: the GPU where the request is expected to start first. A holder costs its
    /// backlog; a non-holder its backlog plus the load weighted by `locus_load_weight`,
    /// plus one more load if it must evict (the victim will be missed later).
    fn locus(&self, request: &Request, now: Micros) -> Option<GpuId> {
        let holder = self
            .cluster
            .holders(request.model)
            .iter()
            .filter_map(|g| {
                self.cluster
                    .gpu(*g)
                    .filter(|x| x.is_up())
                    .map(|x| (x.free_at().max(now), *g))
            })
            .min();
        let load = request.load_us as f64 * self.config.knobs.locus_load_weight;
        if let Some((t, _)) = holder {
            // No non-holder can beat a holder that starts before the load would end.
            if (t - now) as f64 <= load {
                return holder.map(|(_, g)| g);
            }
        }
        // Two candidates that do not hold it: the one free soonest, and the one with the
        // most room. A load that must evict pays one more load (the victim's reload).
        let fits = |g: &GpuId| {
            !self.cluster.holds(*g, request.model) && self.cluster.can_admit(*g, request)
        };
        let soonest = self.cluster.by_free().map(|(_, g)| g).take(8).find(fits);
        let roomiest = self.cluster.by_room().map(|(_, g)| g).take(8).find(fits);
        let cost = |g: GpuId| {
            let x = self.cluster.gpu(g)?;
            let evicts = x.cache().free_bytes() < request.bytes;
            let t = x.free_at().max(now) as f64
                + load
                + if evicts { request.load_us as f64 } else { 0.0 };
            Some((t, g))
        };
        let other = [soonest, roomiest]
            .into_iter()
            .flatten()
            .filter_map(cost)
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        match (holder, other) {
            (Some((th, h)), Some((to, o))) => Some(if (th as f64) <= to { h } else { o }),
            (Some((_, h)), None) => Some(h),
            (None, Some((_, o))) => Some(o),
            (None, None) => None,
        }
    }

    /// Moves the waiting request `seq` onto `gpu`. `None` (and the request stays queued)
    /// if the GPU cannot take it after all.
    fn dispatch(&mut self, seq: u64, gpu: GpuId, now: Micros) -> Option<Dispatch> {
        let request = self.queue.get(seq)?.request.clone();
        let hit = self.cluster.holds(gpu, request.model);
        let est_us = request.infer_us + if hit { 0 } else { request.load_us };
        let assigned = self.cluster.assign(gpu, &request, est_us, now).ok()?;
        let entry = self.queue.take(seq)?;
        let spec = self.cluster.gpu(gpu)?.spec();
        let d = Dispatch {
            request: request.id,
            model: request.model,
            gpu,
            node: spec.node,
            device: spec.device,
            hit: assigned.hit,
            victims: assigned.victims,
            queued_us: now.saturating_sub(entry.enqueued_at),
        };
        self.inflight.insert(
            request.id,
            InFlight {
                gpu,
                entry,
                est_us,
                loader: !assigned.hit,
            },
        );
        Some(d)
    }
}
