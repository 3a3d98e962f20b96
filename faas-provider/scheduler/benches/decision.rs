//! One scheduling decision with 1,000 GPUs and 1,000 queued requests.
//!
//! Each iteration completes the request running on one GPU (the scheduler picks what
//! that GPU runs next: the decision) and submits one new request (so the queue stays at
//! 1,000). The reported time per iteration therefore covers one decision plus one
//! enqueue. Run: `cargo bench -p locus-scheduler --bench decision`.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::collections::VecDeque;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use locus_scheduler::{
    GpuId, GpuSpec, ModelId, NodeId, Outcome, PolicyKind, Request, RequestId, Scheduler,
    SchedulerConfig,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const GPUS: u32 = 1_000;
const QUEUED: usize = 1_000;
const MODELS: u32 = 2_000;
const GIB: u64 = 1 << 30;

struct Bench {
    sched: Scheduler,
    running: Vec<VecDeque<RequestId>>,
    rng: ChaCha8Rng,
    next: u64,
    turn: u32,
    now: u64,
}

impl Bench {
    fn new(policy: PolicyKind) -> Self {
        let mut sched = Scheduler::new(SchedulerConfig::new(policy));
        for i in 0..GPUS {
            sched.add_gpu(
                GpuSpec {
                    node: NodeId(i / 8),
                    device: i % 8,
                    capacity_bytes: 16 * GIB,
                    reserve_bytes: 0,
                },
                0,
            );
        }
        let mut b = Bench {
            sched,
            running: vec![VecDeque::new(); GPUS as usize],
            rng: ChaCha8Rng::seed_from_u64(7),
            next: 0,
            turn: 0,
            now: 0,
        };
        for _ in 0..GPUS as usize + QUEUED {
            b.submit();
        }
        for _ in 0..50_000 {
            b.step();
        }
        b
    }

    fn submit(&mut self) {
        let model = ModelId(self.rng.gen_range(0..MODELS));
        let r = Request {
            id: RequestId(self.next),
            model,
            bytes: GIB,
            infer_us: 2_000,
            load_us: 130_000,
        };
        self.next += 1;
        for d in self.sched.submit(r, self.now).unwrap_or_default() {
            self.running[d.gpu.0 as usize].push_back(d.request);
        }
    }

    /// Completes the oldest request of the next busy GPU, then submits a new one.
    fn step(&mut self) {
        self.now += 10;
        let mut g = self.turn;
        while self.running[g as usize].is_empty() {
            g = (g + 1) % GPUS;
        }
        self.turn = (g + 1) % GPUS;
        if let Some(id) = self.running[g as usize].pop_front() {
            for d in self.sched.complete(GpuId(g), id, Outcome::Done, self.now) {
                self.running[d.gpu.0 as usize].push_back(d.request);
            }
        }
        self.submit();
    }
}

fn decision(c: &mut Criterion) {
    for policy in PolicyKind::ALL {
        let mut b = Bench::new(policy);
        c.bench_function(&format!("decision/{policy}/1000gpus_1000queued"), |bench| {
            bench.iter(|| {
                b.step();
                black_box(b.sched.queued())
            })
        });
    }
}

criterion_group!(benches, decision);
criterion_main!(benches);
