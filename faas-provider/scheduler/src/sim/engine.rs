//! The discrete-event loop: arrivals from a trace, GPUs that run their dispatched
//! requests one at a time in dispatch order, and the scheduler in between.
//!
//! The simulated GPUs take the scheduler's cache view as the truth (they are the
//! workers that view mirrors): a dispatch marked a miss costs the model's load time
//! (setup + bytes / bandwidth) before its inference. The scheduler learns that a GPU
//! finished a request `view_lag_us` after the GPU did (a live provider hears of it when
//! the worker's answer arrives); the GPU itself goes straight on with its next request.
//! Ties in time go to completions first, then to the scheduler hearing of them, then
//! to arrivals, each by the lowest GPU index, so a run is a pure function of its inputs.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::cluster::GpuSpec;
use crate::scheduler::{Scheduler, SchedulerConfig};
use crate::sim::trace::{Arrival, SimModel};
use crate::types::{Dispatch, GpuId, Micros, NodeId, Outcome, Request, RequestId};

/// The simulated hardware.
#[derive(Clone, Debug, PartialEq)]
pub struct Hardware {
    /// Nodes.
    pub nodes: u32,
    /// GPUs per node.
    pub gpus_per_node: u32,
    /// Device memory per GPU, bytes.
    pub gpu_memory_bytes: u64,
    /// Reserve per GPU, bytes.
    pub reserve_bytes: u64,
    /// Fixed time every request spends outside the queue and the device, added to its
    /// latency.
    pub request_overhead_us: Micros,
    /// Time from a GPU finishing a request to the scheduler learning of it, during
    /// which the scheduler still counts the request on that GPU. Part of the request
    /// overhead above, so it adds nothing to latency by itself.
    pub view_lag_us: Micros,
}

/// What one run measured, over the requests after the warm-up.
#[derive(Clone, Debug, PartialEq)]
pub struct RunStats {
    /// Requests measured.
    pub requests: usize,
    /// End-to-end latency of each measured request (queueing + load + inference), ms,
    /// in arrival order.
    pub latencies_ms: Vec<f64>,
    /// Measured requests that loaded their model.
    pub misses: usize,
    /// Share of GPU time spent loading or running, over the measured span.
    pub gpu_busy: f64,
}

impl RunStats {
    /// Misses per measured request.
    pub fn miss_ratio(&self) -> f64 {
        self.misses as f64 / self.requests.max(1) as f64
    }
    /// Mean latency, ms.
    pub fn mean_ms(&self) -> f64 {
        self.latencies_ms.iter().sum::<f64>() / self.latencies_ms.len().max(1) as f64
    }
}

#[derive(Default)]
struct SimGpu {
    /// Dispatched requests not finished, in order; the front one runs.
    fifo: VecDeque<(RequestId, Micros)>,
}

/// Runs `trace` through a fresh scheduler on `hw`; the first `warmup` arrivals are
/// simulated but not measured.
pub fn run(
    config: &SchedulerConfig,
    hw: &Hardware,
    models: &[SimModel],
    trace: &[Arrival],
    warmup: usize,
) -> RunStats {
    let mut sched = Scheduler::new(config.clone());
    for n in 0..hw.nodes {
        for d in 0..hw.gpus_per_node {
            let spec = GpuSpec {
                node: NodeId(n),
                device: d,
                capacity_bytes: hw.gpu_memory_bytes,
                reserve_bytes: hw.reserve_bytes,
            };
            sched.add_gpu(spec, 0);
        }
    }
    let gpus = (hw.nodes * hw.gpus_per_node) as usize;
    let mut sim: Vec<SimGpu> = (0..gpus).map(|_| SimGpu::default()).collect();
    let mut done: BinaryHeap<Reverse<(Micros, u32)>> = BinaryHeap::new();
    // Completions the scheduler has yet to hear of: (when it hears, GPU, request).
    let mut heard: BinaryHeap<Reverse<(Micros, u32, u64)>> = BinaryHeap::new();
    let mut finish: Vec<Micros> = vec![0; trace.len()];
    let mut missed: Vec<bool> = vec![false; trace.len()];
    let mut service: Vec<Micros> = vec![0; trace.len()];
    let mut next = 0;
    let mut start = |ds: Vec<Dispatch>,
                     now: Micros,
                     sim: &mut Vec<SimGpu>,
                     done: &mut BinaryHeap<Reverse<(Micros, u32)>>| {
        for d in ds {
            let i = d.request.0 as usize;
            let m = &models[d.model.0 as usize];
            let svc = m.infer_us + if d.hit { 0 } else { m.load_us };
            missed[i] = !d.hit;
            service[i] = svc;
            let g = &mut sim[d.gpu.0 as usize];
            g.fifo.push_back((d.request, svc));
            if g.fifo.len() == 1 {
                done.push(Reverse((now + svc, d.gpu.0)));
            }
        }
    };
    loop {
        let arrival = trace.get(next).map(|a| a.at);
        let completion = done.peek().map(|Reverse((t, _))| *t);
        let news = heard.peek().map(|Reverse((t, _, _))| *t);
        let first = [completion, news, arrival]
            .into_iter()
            .enumerate()
            .filter_map(|(kind, t)| Some((t?, kind)))
            .min();
        match first {
            Some((now, 0)) => {
                let Some(Reverse((_, g))) = done.pop() else {
                    break;
                };
                let Some((id, _)) = sim[g as usize].fifo.pop_front() else {
                    continue;
                };
                finish[id.0 as usize] = now;
                if let Some(&(_, svc)) = sim[g as usize].fifo.front() {
                    done.push(Reverse((now + svc, g)));
                }
                // Without a lag the scheduler hears at once, inside this event, so a
                // run without one keeps the event order it always had.
                if hw.view_lag_us == 0 {
                    let ds = sched.complete(GpuId(g), id, Outcome::Done, now);
                    start(ds, now, &mut sim, &mut done);
                } else {
                    heard.push(Reverse((now + hw.view_lag_us, g, id.0)));
                }
            }
            Some((now, 1)) => {
                let Some(Reverse((_, g, id))) = heard.pop() else {
                    break;
                };
                let ds = sched.complete(GpuId(g), RequestId(id), Outcome::Done, now);
                start(ds, now, &mut sim, &mut done);
            }
            Some((now, _)) => {
                let a = trace[next];
                let m = &models[a.model.0 as usize];
                let r = Request {
                    id: RequestId(next as u64),
                    model: a.model,
                    bytes: m.bytes,
                    infer_us: m.infer_us,
                    load_us: m.load_us,
                };
                next += 1;
                if let Ok(ds) = sched.submit(r, now) {
                    start(ds, now, &mut sim, &mut done);
                }
            }
            None => break,
        }
    }
    let measured = warmup.min(trace.len())..trace.len();
    let latencies_ms: Vec<f64> = measured
        .clone()
        .map(|i| (finish[i].saturating_sub(trace[i].at) + hw.request_overhead_us) as f64 / 1e3)
        .collect();
    let misses = measured.clone().filter(|i| missed[*i]).count();
    let span_start = trace.get(measured.start).map_or(0, |a| a.at);
    let span_end = measured
        .clone()
        .map(|i| finish[i])
        .max()
        .unwrap_or(span_start);
    let busy: Micros = measured.clone().map(|i| service[i]).sum();
    let span = span_end.saturating_sub(span_start).max(1) as f64 * gpus.max(1) as f64;
    RunStats {
        requests: measured.len(),
        latencies_ms,
        misses,
        gpu_busy: (busy as f64 / span).min(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyKind;
    use crate::types::ModelId;

    /// One GPU, one model (2 ms inference, 50 ms load), two requests 1 ms apart, run
    /// under `policy` with `overhead_us` of per-request overhead of which `lag_us`
    /// passes before the scheduler hears of a completion.
    fn two_requests_on_one_gpu(
        policy: PolicyKind,
        overhead_us: Micros,
        lag_us: Micros,
    ) -> RunStats {
        let models = vec![SimModel {
            arch: "mlp",
            bytes: 10,
            infer_us: 2_000,
            load_us: 50_000,
        }];
        let hw = Hardware {
            nodes: 1,
            gpus_per_node: 1,
            gpu_memory_bytes: 100,
            reserve_bytes: 0,
            request_overhead_us: overhead_us,
            view_lag_us: lag_us,
        };
        let trace = [0, 1_000].map(|at| Arrival {
            at,
            model: ModelId(0),
        });
        run(&SchedulerConfig::new(policy), &hw, &models, &trace, 0)
    }

    #[test]
    fn a_miss_costs_its_load_and_a_request_behind_it_waits_for_the_gpu() {
        let stats = two_requests_on_one_gpu(PolicyKind::Lalb, 0, 0);
        // The first loads (50 ms) and runs (2 ms); the second, a hit, starts at 52 ms.
        assert_eq!(stats.latencies_ms, [52.0, 53.0]);
        assert_eq!(stats.misses, 1);
        assert!((stats.gpu_busy - 54.0 / 54.0).abs() < 1e-9);
    }

    #[test]
    fn the_request_overhead_adds_to_latency_but_never_holds_the_gpu() {
        let stats = two_requests_on_one_gpu(PolicyKind::Lalb, 700, 0);
        // As without overhead (52 and 53 ms), each 0.7 ms later; the second request
        // still starts when the first one's 52 ms of device work end.
        assert_eq!(stats.latencies_ms, [52.7, 53.7]);
        assert!((stats.gpu_busy - 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_view_lag_holds_the_gpu_in_the_schedulers_view_but_not_on_the_device() {
        // lb sends both requests at once: the GPU runs them back to back whatever the
        // scheduler hears, so the lag changes nothing.
        let lb = two_requests_on_one_gpu(PolicyKind::Lb, 700, 500);
        assert_eq!(lb.latencies_ms, [52.7, 53.7]);
        // lalb keeps the second request queued while the GPU is busy in its view, and
        // hears of the first one's end 0.5 ms late: the second starts at 52.5 ms.
        let lalb = two_requests_on_one_gpu(PolicyKind::Lalb, 700, 500);
        assert_eq!(lalb.latencies_ms, [52.7, 54.2]);
        assert_eq!(lalb.misses, 1);
    }
}
