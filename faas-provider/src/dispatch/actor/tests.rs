//! The actor driven by hand: workers join, requests are placed, answers feed the
//! view, lost workers' requests move, and a full queue refuses.

use gpu_worker::wire::{CacheReport, DeviceStatus, ResidentModel};
use prometheus::Registry;

use super::*;

fn device(name: &str, models: &[(&str, u64)]) -> DeviceStatus {
    DeviceStatus {
        name: name.to_string(),
        capacity_bytes: 100 << 20,
        reserve_bytes: 0,
        usable_bytes: 100 << 20,
        used_bytes: models.iter().map(|m| m.1).sum(),
        device_free_bytes: None,
        queue_depth: 0,
        models: models
            .iter()
            .map(|(key, bytes)| ResidentModel {
                model_key: key.to_string(),
                arch: "mlp".into(),
                weights: "zoo://mlp?seed=1".into(),
                bytes: *bytes,
                pins: 0,
                loading: false,
            })
            .collect(),
    }
}

fn worker(devices: Vec<DeviceStatus>) -> WorkerStatus {
    WorkerStatus {
        backend: "emulated".into(),
        draining: false,
        devices,
    }
}

fn actor(queue: usize) -> (Actor, SharedView, DispatchMetrics) {
    let metrics = DispatchMetrics::new(&Registry::new()).unwrap();
    let view = SharedView::default();
    let mut config = SchedulerConfig::new(locus_scheduler::PolicyKind::LalbO3);
    config.max_queue = Some(queue);
    (
        Actor::new(config, metrics.clone(), view.clone()),
        view,
        metrics,
    )
}

fn model(seed: u32) -> ModelRef {
    ModelRef {
        key: format!("mlp@zoo://mlp?seed={seed}"),
        arch: "mlp".into(),
        memory_bytes: Some(30 << 20),
    }
}

fn submit(a: &mut Actor, id: u64, m: ModelRef) -> mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = mpsc::unbounded_channel();
    let command = Command::Submit {
        id: RequestId(id),
        target: "f".into(),
        function: "f.openfaas-fn".into(),
        model: m,
        events: tx,
    };
    a.handle(command, id);
    rx
}

fn placed(rx: &mut mpsc::UnboundedReceiver<Event>) -> Target {
    match rx.try_recv() {
        Ok(Event::Dispatched(t)) => t,
        other => panic!("expected a dispatch, got {other:?}"),
    }
}

fn report(key: &str, outcome: CacheOutcome, evicted: &[&str]) -> InferReport {
    InferReport {
        cache: CacheReport {
            device: "cpu:0".into(),
            model_key: key.into(),
            outcome,
            model_bytes: 30 << 20,
            evicted: evicted.iter().map(|s| s.to_string()).collect(),
            fetch_ms: 1.0,
            load_ms: 5.0,
            wait_ms: 0.0,
        },
        compute_ms: 1.0,
    }
}

fn join(a: &mut Actor, url: &str, devices: Vec<DeviceStatus>) {
    a.handle(
        Command::Health {
            results: vec![(url.to_string(), Ok(worker(devices)))],
            reconcile: false,
        },
        0,
    );
}

#[test]
fn with_no_worker_a_request_is_refused_as_no_endpoints() {
    let (mut a, _, _) = actor(8);
    let mut rx = submit(&mut a, 1, model(1));
    assert!(matches!(
        rx.try_recv(),
        Ok(Event::Rejected(DispatchError::NoEndpoints(_)))
    ));
}

#[test]
fn the_second_request_for_a_model_is_a_hit_on_the_same_gpu() {
    let (mut a, view, metrics) = actor(8);
    join(
        &mut a,
        "http://w0",
        vec![device("cpu:0", &[]), device("cpu:1", &[])],
    );
    assert_eq!(view.read(|s| s.gpus.len()), 2);
    let m = model(1);
    let first = placed(&mut submit(&mut a, 1, m.clone()));
    assert!(!first.hit);
    a.handle(
        Command::Done {
            id: RequestId(1),
            gpu: first.gpu,
            report: Some(report(&m.key, CacheOutcome::Miss, &[])),
        },
        10,
    );
    let second = placed(&mut submit(&mut a, 2, m.clone()));
    assert!(second.hit);
    assert_eq!(second.gpu, first.gpu);
    // Consecutive places in that GPU's order, under one epoch.
    let place = |t: &Target| {
        let (epoch, seq) = t.order.split_once('.').expect("EPOCH.SEQ");
        (epoch.to_string(), seq.parse::<u64>().expect("seq"))
    };
    let ((e1, s1), (e2, s2)) = (place(&first), place(&second));
    assert_eq!((e1, s2), (e2, s1 + 1));
    assert_eq!(view.model(&m.key).resident, vec![first.label.to_string()]);
    assert_eq!(
        metrics
            .cache_misses
            .with_label_values(&["f.openfaas-fn"])
            .get(),
        1.0
    );
    a.scheduler().check_invariants().unwrap();
}

#[test]
fn a_lost_worker_s_requests_are_dispatched_again_elsewhere() {
    let (mut a, view, metrics) = actor(8);
    join(&mut a, "http://w0", vec![device("cpu:0", &[])]);
    a.handle(
        Command::Health {
            results: vec![
                ("http://w0".into(), Ok(worker(vec![device("cpu:0", &[])]))),
                ("http://w1".into(), Ok(worker(vec![device("cpu:0", &[])]))),
            ],
            reconcile: false,
        },
        1,
    );
    let mut rx = submit(&mut a, 1, model(1));
    let first = placed(&mut rx);
    a.handle(Command::WorkerFailed { node: first.node }, 5);
    let again = placed(&mut rx);
    assert_ne!(again.node, first.node);
    assert_eq!(metrics.retries.get(), 1);
    assert_eq!(view.read(|s| s.gpus.len()), 1);
    a.scheduler().check_invariants().unwrap();
}

#[test]
fn a_full_queue_refuses_as_overloaded_and_an_abandoned_request_leaves_it() {
    let (mut a, _, metrics) = actor(1);
    let depth = || {
        let function = metrics
            .queue_depth
            .with_label_values(&["f.openfaas-fn"])
            .get();
        (function, metrics.waiting.get())
    };
    join(&mut a, "http://w0", vec![device("cpu:0", &[])]);
    let _busy = placed(&mut submit(&mut a, 1, model(1)));
    assert_eq!(depth(), (0.0, 0.0), "dispatched at once");
    let mut waiting = submit(&mut a, 2, model(2));
    assert!(waiting.try_recv().is_err(), "queued behind the busy GPU");
    assert_eq!(depth(), (1.0, 1.0));
    let mut refused = submit(&mut a, 3, model(3));
    assert!(matches!(
        refused.try_recv(),
        Ok(Event::Rejected(DispatchError::Overloaded { limit: 1 }))
    ));
    assert_eq!(depth(), (1.0, 1.0), "a refused request never counted");
    a.handle(Command::Abandon { id: RequestId(2) }, 4);
    assert_eq!(a.scheduler().queued(), 0);
    assert_eq!(depth(), (0.0, 0.0));
    a.scheduler().check_invariants().unwrap();
}

#[test]
fn reconciliation_adopts_what_a_worker_holds_and_counts_drift() {
    let (mut a, view, metrics) = actor(8);
    let key = "mlp@zoo://mlp?seed=9";
    join(
        &mut a,
        "http://w0",
        vec![device("cpu:0", &[(key, 30 << 20)])],
    );
    assert_eq!(view.model(key).resident, vec!["0/cpu:0".to_string()]);
    assert_eq!(
        metrics.drift.with_label_values(&["adopted"]).get(),
        0,
        "joining is not drift"
    );
    a.handle(
        Command::Health {
            results: vec![("http://w0".into(), Ok(worker(vec![device("cpu:0", &[])])))],
            reconcile: true,
        },
        9,
    );
    assert!(view.model(key).resident.is_empty());
    assert_eq!(metrics.drift.with_label_values(&["dropped"]).get(), 1);
}

#[test]
fn evictions_reported_by_a_worker_leave_the_view() {
    let (mut a, view, metrics) = actor(8);
    let old = "mlp@zoo://mlp?seed=9";
    join(
        &mut a,
        "http://w0",
        vec![device("cpu:0", &[(old, 30 << 20)])],
    );
    let m = model(1);
    let t = placed(&mut submit(&mut a, 1, m.clone()));
    a.handle(
        Command::Done {
            id: RequestId(1),
            gpu: t.gpu,
            report: Some(report(&m.key, CacheOutcome::Miss, &[old])),
        },
        3,
    );
    assert!(view.model(old).resident.is_empty());
    assert_eq!(metrics.evictions.get(), 1);
    a.scheduler().check_invariants().unwrap();
}

#[test]
fn a_worker_that_fails_its_health_check_is_taken_out_and_comes_back_with_its_models() {
    let (mut a, view, metrics) = actor(8);
    let key = "mlp@zoo://mlp?seed=4";
    join(&mut a, "http://w0", vec![device("cpu:0", &[])]);
    let failed = Command::Health {
        results: vec![("http://w0".into(), Err("connection refused".into()))],
        reconcile: false,
    };
    a.handle(failed, 1);
    assert_eq!(view.read(|s| s.gpus.len()), 0);
    assert_eq!(metrics.workers_up.get(), 0.0);
    let mut rx = submit(&mut a, 1, model(1));
    assert!(matches!(
        rx.try_recv(),
        Ok(Event::Rejected(DispatchError::NoEndpoints(_)))
    ));
    join(
        &mut a,
        "http://w0",
        vec![device("cpu:0", &[(key, 30 << 20)])],
    );
    assert_eq!(view.read(|s| s.gpus.len()), 1, "the same worker is back");
    assert_eq!(
        view.model(key).resident,
        vec!["0/cpu:0".to_string()],
        "its models are adopted"
    );
    a.scheduler().check_invariants().unwrap();
}

#[test]
fn a_worker_gone_from_the_source_is_lost() {
    let (mut a, view, _) = actor(8);
    join(&mut a, "http://w0", vec![device("cpu:0", &[])]);
    a.handle(
        Command::Health {
            results: vec![],
            reconcile: false,
        },
        1,
    );
    assert_eq!(view.read(|s| s.gpus.len()), 0);
}

#[test]
fn a_miss_that_must_make_room_names_its_victims_for_the_worker() {
    let (mut a, _, _) = actor(8);
    // 100 MiB device, 30 MiB models: the fourth evicts the least recently used.
    join(&mut a, "http://w0", vec![device("cpu:0", &[])]);
    for seed in 1..=3 {
        let m = model(seed);
        let t = placed(&mut submit(&mut a, u64::from(seed), m.clone()));
        assert!(t.victims.is_empty());
        let done = Command::Done {
            id: RequestId(u64::from(seed)),
            gpu: t.gpu,
            report: Some(report(&m.key, CacheOutcome::Miss, &[])),
        };
        a.handle(done, u64::from(seed) * 10);
    }
    let t = placed(&mut submit(&mut a, 9, model(4)));
    assert_eq!(t.victims, vec![model(1).key]);
    a.scheduler().check_invariants().unwrap();
}
