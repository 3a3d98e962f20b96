//! Membership and the view: workers joining, failing, coming back and being
//! reconciled, idle unloads, and the shared snapshot the status routes read. The same
//! [`Actor`] as its parent module; split out to keep each file readable.

use std::collections::HashSet;
use std::sync::Arc;

use gpu_worker::wire::{ModelKey, WorkerStatus};
use locus_scheduler::{GpuId, GpuSpec, Micros, ModelId, NodeId};

use super::{Actor, ModelRef, Node};
use crate::dispatch::view::GpuSeat;

impl Actor {
    /// Takes a worker's GPUs out: their view is emptied and their in-flight requests
    /// are placed again elsewhere.
    pub(super) fn lose(&mut self, node: NodeId, now: Micros) {
        let Some(n) = self.nodes.get_mut(node.0 as usize).filter(|n| n.up) else {
            return;
        };
        n.up = false;
        tracing::warn!(worker = %n.url, "worker lost: its GPUs are down, its requests re-dispatched");
        let gpus: Vec<GpuId> = n.gpus.iter().map(|g| g.0).collect();
        let mut dispatches = Vec::new();
        for gpu in gpus {
            dispatches.extend(self.scheduler.gpu_down(gpu, now));
        }
        self.refresh_all();
        self.deliver(dispatches);
    }

    pub(super) fn health(
        &mut self,
        results: Vec<(String, Result<WorkerStatus, String>)>,
        reconcile: bool,
        now: Micros,
    ) {
        let listed: HashSet<&str> = results.iter().map(|(u, _)| u.as_str()).collect();
        let gone: Vec<NodeId> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.up && !listed.contains(&*n.url))
            .map(|(i, _)| NodeId(i as u32))
            .collect();
        for node in gone {
            self.lose(node, now);
        }
        for (url, result) in results {
            let known = self.by_url.get(url.as_str()).copied();
            match (known, result) {
                (Some(node), Ok(status)) if !status.draining => {
                    if !self.nodes[node.0 as usize].up {
                        self.rejoin(node, &status, now);
                    } else if reconcile {
                        self.reconcile(node, &status, true);
                    }
                }
                (Some(node), Ok(_)) => self.lose(node, now),
                (Some(node), Err(why)) => {
                    if self.nodes[node.0 as usize].up {
                        tracing::warn!(%url, %why, "worker health check failed");
                    }
                    self.lose(node, now);
                }
                (None, Ok(status)) if !status.draining => self.join(url, &status, now),
                (None, _) => {}
            }
        }
        self.metrics
            .workers_up
            .set(self.nodes.iter().filter(|n| n.up).count() as f64);
    }

    pub(super) fn join(&mut self, url: String, status: &WorkerStatus, now: Micros) {
        let node = NodeId(self.nodes.len() as u32);
        let url: Arc<str> = url.into();
        let mut gpus = Vec::new();
        let mut dispatches = Vec::new();
        for (i, d) in status.devices.iter().enumerate() {
            let spec = GpuSpec {
                node,
                device: i as u32,
                capacity_bytes: d.capacity_bytes,
                reserve_bytes: d.reserve_bytes,
            };
            let (gpu, ds) = self.scheduler.add_gpu(spec, now);
            dispatches.extend(ds);
            self.gpu_node.push(node);
            gpus.push((
                gpu,
                Arc::from(d.name.as_str()),
                Arc::from(format!("{}/{}", node.0, d.name).as_str()),
            ));
        }
        tracing::info!(worker = %url, devices = gpus.len(), backend = %status.backend, "worker joined");
        self.nodes.push(Node {
            url: url.clone(),
            up: true,
            gpus,
        });
        self.by_url.insert(url, node);
        self.reconcile(node, status, false);
        self.refresh_all();
        self.deliver(dispatches);
    }

    pub(super) fn rejoin(&mut self, node: NodeId, status: &WorkerStatus, now: Micros) {
        let n = &mut self.nodes[node.0 as usize];
        n.up = true;
        tracing::info!(worker = %n.url, "worker back");
        let gpus: Vec<GpuId> = n.gpus.iter().map(|g| g.0).collect();
        let mut dispatches = Vec::new();
        for gpu in gpus {
            dispatches.extend(self.scheduler.gpu_up(gpu, now));
        }
        self.reconcile(node, status, false);
        self.refresh_all();
        self.deliver(dispatches);
    }

    /// Makes the view of the worker's idle GPUs match its own status; `count` adds any
    /// difference to the drift metric (joining is not drift).
    pub(super) fn reconcile(&mut self, node: NodeId, status: &WorkerStatus, count: bool) {
        let gpus = self.nodes[node.0 as usize].gpus.clone();
        let mut touched = HashSet::new();
        for ((gpu, _, _), device) in gpus.iter().zip(&status.devices) {
            if self.scheduler.gpu(*gpu).is_none_or(|g| g.outstanding() > 0) {
                continue;
            }
            let resident: Vec<(ModelId, u64)> = device
                .models
                .iter()
                .map(|m| {
                    let r = ModelRef {
                        key: m.model_key.clone(),
                        arch: m.arch.clone(),
                        memory_bytes: None,
                    };
                    let id = self.intern(&r);
                    (id, m.bytes)
                })
                .collect();
            let drift = self.scheduler.reconcile(*gpu, &resident);
            touched.extend(drift.dropped.iter().chain(&drift.adopted).copied());
            if count && !drift.is_empty() {
                tracing::warn!(
                    gpu = gpu.0,
                    ?drift,
                    "cache view drifted from the worker; corrected"
                );
                let m = &self.metrics.drift;
                m.with_label_values(&["dropped"])
                    .inc_by(drift.dropped.len() as u64);
                m.with_label_values(&["adopted"])
                    .inc_by(drift.adopted.len() as u64);
                m.with_label_values(&["unadoptable"])
                    .inc_by(drift.unadoptable.len() as u64);
            }
            // The worker's own byte counts are the truth (for what the view now holds).
            for (m, bytes) in resident {
                if self.scheduler.cluster().holds(*gpu, m) {
                    self.scheduler.model_loaded(*gpu, m, bytes);
                }
            }
        }
        self.refresh_models(touched);
    }

    pub(super) fn unload(&mut self, key: &str) -> Vec<(String, String)> {
        let Some(&model) = self.by_key.get(key) else {
            return Vec::new();
        };
        let holders: Vec<GpuId> = self.scheduler.cluster().holders(model).to_vec();
        let mut evict = Vec::new();
        for gpu in holders {
            if self.scheduler.model_evicted(gpu, model) {
                let node = &self.nodes[self.gpu_node[gpu.0 as usize].0 as usize];
                if let Some((_, device, _)) = node.gpus.iter().find(|g| g.0 == gpu) {
                    evict.push((node.url.to_string(), device.to_string()));
                }
            }
        }
        self.refresh_models(HashSet::from([model]));
        evict
    }

    pub(super) fn label(&self, gpu: GpuId) -> String {
        let node = &self.nodes[self.gpu_node[gpu.0 as usize].0 as usize];
        node.gpus
            .iter()
            .find(|g| g.0 == gpu)
            .map_or_else(String::new, |g| g.2.to_string())
    }

    pub(super) fn refresh_models(&self, models: HashSet<ModelId>) {
        let updates: Vec<(ModelKey, Vec<String>, u64)> = models
            .into_iter()
            .map(|m| {
                let holders = self
                    .scheduler
                    .cluster()
                    .holders(m)
                    .iter()
                    .map(|g| self.label(*g))
                    .collect();
                let info = &self.models[m.0 as usize];
                (info.key.clone(), holders, info.bytes)
            })
            .collect();
        self.view.write(|s| {
            for (key, holders, bytes) in updates {
                let view = s.models.entry(key).or_default();
                view.resident = holders;
                view.bytes = bytes;
            }
        });
    }

    pub(super) fn refresh_all(&self) {
        let gpus: Vec<GpuSeat> = self
            .scheduler
            .cluster()
            .gpus()
            .iter()
            .enumerate()
            .filter(|(_, g)| g.is_up())
            .map(|(i, g)| GpuSeat {
                name: self.label(GpuId(i as u32)),
                usable_bytes: g
                    .spec()
                    .capacity_bytes
                    .saturating_sub(g.spec().reserve_bytes),
            })
            .collect();
        self.metrics.gpus_up.set(gpus.len() as f64);
        self.view.write(|s| s.gpus = gpus);
        self.refresh_models((0..self.models.len() as u32).map(ModelId).collect());
    }
}
