//! Hand-built cases for each policy, and seeded random-operation tests of the invariants.

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::policy::{LbMode, WhenAllBusy};
use crate::types::NodeId;

const MB: u64 = 1_000_000;
const LOAD_US: Micros = 60_000;

fn sched(
    policy: PolicyKind,
    gpus: u32,
    capacity: u64,
    tweak: impl FnOnce(&mut SchedulerConfig),
) -> Scheduler {
    let mut config = SchedulerConfig::new(policy);
    tweak(&mut config);
    let mut s = Scheduler::new(config);
    for i in 0..gpus {
        s.add_gpu(
            GpuSpec {
                node: NodeId(i / 2),
                device: i % 2,
                capacity_bytes: capacity,
                reserve_bytes: 0,
            },
            0,
        );
    }
    s
}

fn req(id: u64, model: u32) -> Request {
    Request {
        id: RequestId(id),
        model: ModelId(model),
        bytes: 100 * MB,
        infer_us: 1_000,
        load_us: LOAD_US,
    }
}

/// Submits and expects exactly one dispatch; returns it.
fn one(s: &mut Scheduler, r: Request, now: Micros) -> Dispatch {
    let mut d = s.submit(r, now).unwrap();
    assert_eq!(d.len(), 1, "expected one dispatch, got {d:?}");
    d.remove(0)
}

#[test]
fn lalb_sends_a_hit_to_the_idle_holder() {
    let mut s = sched(PolicyKind::Lalb, 3, 1_000 * MB, |_| {});
    let d = one(&mut s, req(1, 7), 0);
    assert!(!d.hit);
    one(&mut s, req(2, 8), 1);
    s.complete(d.gpu, RequestId(1), Outcome::Done, 10);
    let again = one(&mut s, req(3, 7), 12);
    assert!(again.hit);
    assert_eq!(again.gpu, d.gpu);
    s.check_invariants().unwrap();
}

#[test]
fn lalb_skips_a_busy_holder_and_loads_on_an_idle_gpu() {
    let mut s = sched(PolicyKind::Lalb, 2, 1_000 * MB, |_| {});
    let first = one(&mut s, req(1, 7), 0);
    let second = one(&mut s, req(2, 7), 1);
    assert_ne!(first.gpu, second.gpu);
    assert!(!second.hit);
    // Both busy now: the next one waits, then goes to whichever frees first.
    assert!(s.submit(req(3, 7), 2).unwrap().is_empty());
    let d = s.complete(second.gpu, RequestId(2), Outcome::Done, 3);
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].gpu, d[0].hit, d[0].queued_us), (second.gpu, true, 1));
}

#[test]
fn when_all_busy_can_queue_on_the_holder_instead_of_waiting() {
    let mut s = sched(PolicyKind::Lalb, 2, 1_000 * MB, |c| {
        c.knobs.when_all_busy = WhenAllBusy::QueueOnCached
    });
    let a = one(&mut s, req(1, 7), 0);
    one(&mut s, req(2, 8), 0);
    let d = one(&mut s, req(3, 7), 0);
    assert_eq!((d.gpu, d.hit), (a.gpu, true));
    assert_eq!(s.gpu(a.gpu).unwrap().outstanding(), 2);
}

#[test]
fn lb_ignores_residency_and_balances_ties_to_the_lowest_index() {
    let mut s = sched(PolicyKind::Lb, 2, 1_000 * MB, |_| {});
    let a = one(&mut s, req(1, 7), 0);
    assert_eq!(a.gpu, GpuId(0));
    let b = one(&mut s, req(2, 7), 0);
    assert_eq!((b.gpu, b.hit), (GpuId(1), false));
    let c = one(&mut s, req(3, 9), 0);
    assert_eq!(c.gpu, GpuId(0));
    assert_eq!(s.gpu(GpuId(0)).unwrap().outstanding(), 2);
}

#[test]
fn lb_round_robin_and_random_modes_spread_requests() {
    let mut s = sched(PolicyKind::Lb, 3, 1_000 * MB, |c| {
        c.knobs.lb_mode = LbMode::RoundRobin
    });
    let gpus: Vec<u32> = (0..6).map(|i| one(&mut s, req(i, 1), 0).gpu.0).collect();
    assert_eq!(gpus, [0, 1, 2, 0, 1, 2]);
    let picks = |seed| {
        let mut s = sched(PolicyKind::Lb, 8, 1_000 * MB, |c| {
            c.knobs.lb_mode = LbMode::Random;
            c.knobs.lb_seed = seed;
        });
        (0..20)
            .map(|i| one(&mut s, req(i, 1), 0).gpu.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(picks(3), picks(3));
    assert!(picks(3).iter().collect::<BTreeSet<_>>().len() > 3);
}

#[test]
fn o3_lets_a_freed_gpu_take_a_later_request_for_a_model_it_holds() {
    let mut s = sched(PolicyKind::LalbO3, 2, 1_000 * MB, |_| {});
    let a = one(&mut s, req(1, 1), 0);
    let b = one(&mut s, req(2, 2), 0);
    assert!(s.submit(req(3, 3), 1).unwrap().is_empty());
    assert!(s.submit(req(4, 1), 2).unwrap().is_empty());
    let d = s.complete(a.gpu, RequestId(1), Outcome::Done, 5);
    assert_eq!(
        (d[0].request, d[0].gpu, d[0].hit),
        (RequestId(4), a.gpu, true)
    );
    // Without O3 the head goes first, as a miss.
    let mut f = sched(PolicyKind::Lalb, 2, 1_000 * MB, |_| {});
    let a = one(&mut f, req(1, 1), 0);
    one(&mut f, req(2, 2), 0);
    f.submit(req(3, 3), 1).unwrap();
    f.submit(req(4, 1), 2).unwrap();
    let d = f.complete(a.gpu, RequestId(1), Outcome::Done, 5);
    assert_eq!((d[0].request, d[0].hit), (RequestId(3), false));
    drop(b);
}

#[test]
fn o3_stops_overtaking_the_head_at_the_bypass_bound() {
    let mut s = sched(PolicyKind::LalbO3, 1, 1_000 * MB, |c| {
        c.knobs.o3_max_bypass = 2
    });
    let mut running = one(&mut s, req(0, 1), 0).request;
    s.submit(req(1, 2), 1).unwrap(); // the head, for a model the GPU does not hold
    for id in 2..6 {
        s.submit(req(id, 1), 1).unwrap();
    }
    let mut order = Vec::new();
    for t in 2..7 {
        let d = s.complete(GpuId(0), running, Outcome::Done, t);
        running = d[0].request;
        order.push(running.0);
    }
    assert_eq!(order, [2, 3, 1, 4, 5]);
}

#[test]
fn o3_window_limits_how_far_a_freed_gpu_looks() {
    let mut s = sched(PolicyKind::LalbO3, 1, 1_000 * MB, |c| {
        c.knobs.o3_window = Some(2)
    });
    let running = one(&mut s, req(0, 1), 0).request;
    for (id, model) in [(1, 2), (2, 3), (3, 1)] {
        s.submit(req(id, model), 1).unwrap();
    }
    let d = s.complete(GpuId(0), running, Outcome::Done, 2);
    assert_eq!(d[0].request, RequestId(1));
}

#[test]
fn locus_waits_for_a_busy_holder_rather_than_pay_a_load() {
    let mut s = sched(PolicyKind::Locus, 2, 1_000 * MB, |_| {});
    let a = one(&mut s, req(1, 7), 0);
    let b = one(&mut s, req(2, 7), 1);
    assert_eq!((b.gpu, b.hit), (a.gpu, true));
}

#[test]
fn locus_replicates_a_model_whose_holder_is_backed_up() {
    let mut s = sched(PolicyKind::Locus, 2, 1_000 * MB, |_| {});
    let load = LOAD_US;
    let first = one(&mut s, req(0, 7), 0);
    let mut id = 1;
    let replica = loop {
        let d = one(&mut s, req(id, 7), 0);
        if d.gpu != first.gpu {
            break d;
        }
        id += 1;
    };
    assert!(!replica.hit);
    // It replicated only once the holder's backlog exceeded the weighted load time.
    let backlog = s.gpu(first.gpu).unwrap().free_at();
    assert!(
        backlog as f64 >= load as f64 * s.config().knobs.locus_load_weight,
        "{backlog} vs {load}"
    );
}

#[test]
fn a_model_too_large_for_every_gpu_is_refused_with_its_error_type() {
    let mut s = sched(PolicyKind::Lalb, 2, 50 * MB, |_| {});
    let err = s.submit(req(1, 1), 0).unwrap_err();
    assert_eq!(err.error_type(), "model_too_large");
    assert_eq!(s.queued(), 0);
}

#[test]
fn a_full_queue_refuses_with_overloaded() {
    let mut s = sched(PolicyKind::Lalb, 1, 1_000 * MB, |c| c.max_queue = Some(1));
    one(&mut s, req(1, 1), 0);
    s.submit(req(2, 1), 0).unwrap();
    assert_eq!(
        s.submit(req(3, 1), 0).unwrap_err().error_type(),
        "overloaded"
    );
    assert_eq!(
        s.submit(req(2, 1), 0).unwrap_err().error_type(),
        "duplicate_request"
    );
}

#[test]
fn policies_that_dispatch_at_once_are_bounded_by_what_waits_on_the_gpus() {
    for policy in [PolicyKind::Lb, PolicyKind::Locus] {
        let mut s = sched(policy, 1, 1_000 * MB, |c| c.max_queue = Some(2));
        // One runs on the only GPU, two wait behind it: the limit.
        for id in 1..=3 {
            s.submit(req(id, 1), 0).unwrap();
        }
        assert_eq!(s.waiting(), 2, "{policy:?}");
        let refused = s.submit(req(4, 1), 0).unwrap_err();
        assert_eq!(refused.error_type(), "overloaded", "{policy:?}");
        // The first finishes: one waits less, and a new one is taken.
        s.complete(GpuId(0), RequestId(1), Outcome::Done, 10);
        assert_eq!(s.waiting(), 1, "{policy:?}");
        s.submit(req(4, 1), 10).unwrap();
    }
}

#[test]
fn a_gpu_going_down_puts_its_requests_back_and_they_run_elsewhere() {
    let mut s = sched(PolicyKind::Lalb, 2, 1_000 * MB, |_| {});
    let a = one(&mut s, req(1, 1), 0);
    let b = one(&mut s, req(2, 2), 0);
    let moved = s.gpu_down(a.gpu, 5);
    assert!(moved.is_empty(), "the other GPU is busy");
    assert_eq!(s.queued(), 1);
    assert!(
        s.complete(a.gpu, RequestId(1), Outcome::Done, 6).is_empty(),
        "stale completion ignored"
    );
    let d = s.complete(b.gpu, RequestId(2), Outcome::Done, 7);
    assert_eq!((d[0].request, d[0].gpu), (RequestId(1), b.gpu));
    let back = s.gpu_up(a.gpu, 8);
    assert!(back.is_empty());
    s.check_invariants().unwrap();
}

#[test]
fn reconcile_drops_and_adopts_models_to_match_the_worker() {
    let mut s = sched(PolicyKind::Lalb, 1, 1_000 * MB, |_| {});
    let d = one(&mut s, req(1, 1), 0);
    s.complete(d.gpu, RequestId(1), Outcome::Done, 1);
    let drift = s.reconcile(GpuId(0), &[(ModelId(5), 10 * MB)]);
    assert_eq!(drift.dropped, [ModelId(1)]);
    assert_eq!(drift.adopted, [ModelId(5)]);
    assert!(s.reconcile(GpuId(0), &[(ModelId(5), 10 * MB)]).is_empty());
    s.check_invariants().unwrap();
}

#[test]
fn a_failed_load_hands_the_load_to_the_next_request_for_that_model() {
    let mut s = sched(PolicyKind::Lalb, 1, 1_000 * MB, |c| {
        c.knobs.when_all_busy = WhenAllBusy::QueueOnCached
    });
    one(&mut s, req(1, 1), 0);
    one(&mut s, req(2, 1), 0);
    s.complete(GpuId(0), RequestId(1), Outcome::Failed, 1);
    s.check_invariants().unwrap();
    assert_eq!(
        s.gpu(GpuId(0)).unwrap().cache().lookup(&ModelId(1)),
        locus_vram::Lookup::Loading
    );
    s.complete(GpuId(0), RequestId(2), Outcome::Done, 2);
    assert_eq!(
        s.gpu(GpuId(0)).unwrap().cache().lookup(&ModelId(1)),
        locus_vram::Lookup::Resident
    );
}

/// Random submits, completions, cancellations, GPU failures and cache reports; after
/// every step: invariants hold, no request is dispatched while already running, no
/// waiting request has been overtaken more than the bound; at the end every accepted
/// request completed exactly once.
fn random_operations(policy: PolicyKind, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let bound = 4;
    let mut s = sched(policy, 4, 450 * MB, |c| {
        c.knobs.o3_max_bypass = bound;
        c.knobs.busy_threshold = 1 + (seed % 2) as u32;
        c.knobs.o3_window = [None, Some(3)][(seed / 3 % 2) as usize];
        c.knobs.lb_mode =
            [LbMode::LeastLoaded, LbMode::RoundRobin, LbMode::Random][(seed % 3) as usize];
    });
    let mut running: BTreeMap<u64, GpuId> = BTreeMap::new();
    let mut waiting: BTreeMap<u64, u64> = BTreeMap::new(); // id (= arrival order) -> times overtaken
    let mut done: BTreeSet<u64> = BTreeSet::new();
    let mut cancelled: BTreeSet<u64> = BTreeSet::new();
    let mut down: BTreeSet<u32> = BTreeSet::new();
    let mut next = 0u64;
    let mut now = 0;
    let apply = |ds: Vec<Dispatch>,
                 running: &mut BTreeMap<u64, GpuId>,
                 waiting: &mut BTreeMap<u64, u64>| {
        for d in ds {
            let id = d.request.0;
            assert!(
                waiting.remove(&id).is_some(),
                "{id} dispatched but not waiting"
            );
            for (_, n) in waiting.range_mut(..id) {
                *n += 1;
            }
            assert!(running.insert(id, d.gpu).is_none(), "{id} dispatched twice");
            if policy == PolicyKind::LalbO3 {
                assert!(
                    waiting.values().all(|n| *n <= bound),
                    "overtaken past the bound: {waiting:?} by {id}"
                );
            }
        }
    };
    for step in 0..3_000 {
        now += rng.gen_range(0..500);
        let op = rng.gen_range(0..100);
        if op < 45 {
            let model = rng.gen_range(0..12u32);
            let r = Request {
                id: RequestId(next),
                model: ModelId(model),
                bytes: (30 + 40 * (model as u64 % 5)) * MB,
                infer_us: 500,
                load_us: 5_000,
            };
            waiting.insert(next, 0);
            next += 1;
            let ds = s.submit(r, now).unwrap();
            apply(ds, &mut running, &mut waiting);
        } else if op < 85 {
            if let Some((&id, &gpu)) = running.iter().nth(
                rng.gen_range(0..running.len().max(1))
                    .min(running.len().saturating_sub(1)),
            ) {
                running.remove(&id);
                let outcome = if rng.gen_bool(0.05) {
                    Outcome::Failed
                } else {
                    Outcome::Done
                };
                assert!(done.insert(id));
                let ds = s.complete(gpu, RequestId(id), outcome, now);
                apply(ds, &mut running, &mut waiting);
            }
        } else if op < 89 {
            let id = rng.gen_range(0..next.max(1));
            if s.cancel(RequestId(id)) {
                assert!(waiting.remove(&id).is_some());
                cancelled.insert(id);
            }
        } else if op < 92 {
            let g = rng.gen_range(0..4u32);
            if down.len() < 3 && down.insert(g) {
                let back: Vec<u64> = running
                    .iter()
                    .filter(|(_, x)| x.0 == g)
                    .map(|(id, _)| *id)
                    .collect();
                for id in back {
                    running.remove(&id);
                    waiting.insert(id, 0);
                }
                let ds = s.gpu_down(GpuId(g), now);
                apply(ds, &mut running, &mut waiting);
            }
        } else if op < 95 {
            if let Some(&g) = down.iter().next() {
                down.remove(&g);
                let ds = s.gpu_up(GpuId(g), now);
                apply(ds, &mut running, &mut waiting);
            }
        } else {
            let g = GpuId(rng.gen_range(0..4u32));
            if let Some(&m) = s.gpu(g).and_then(|x| x.held().first()) {
                s.model_evicted(g, m);
            }
        }
        s.check_invariants()
            .unwrap_or_else(|e| panic!("{policy} seed {seed} step {step}: {e}"));
        assert_eq!(s.queued(), waiting.len());
        assert_eq!(s.in_flight(), running.len());
    }
    for g in down.clone() {
        let ds = s.gpu_up(GpuId(g), now);
        apply(ds, &mut running, &mut waiting);
    }
    while let Some((&id, &gpu)) = running.iter().next() {
        running.remove(&id);
        assert!(done.insert(id));
        now += 1;
        let ds = s.complete(gpu, RequestId(id), Outcome::Done, now);
        apply(ds, &mut running, &mut waiting);
    }
    assert!(
        waiting.is_empty(),
        "{} requests never dispatched",
        waiting.len()
    );
    assert_eq!(done.len() + cancelled.len(), next as usize);
}

#[test]
fn random_operations_keep_every_invariant_under_every_policy() {
    for policy in PolicyKind::ALL {
        for seed in 0..6 {
            random_operations(policy, seed);
        }
    }
}
