//! Tests of the device layer with a fake backend: hits and misses, LRU victims,
//! pins, single-flight loads, failed and cancelled loads, and random operation
//! sequences that must keep the cache's invariants.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use locus_vram::{CacheConfig, Eviction};
use rand::{Rng, SeedableRng};

use super::*;
use crate::backend::{BackendKind, DeviceMemory};
use crate::tasks::InferMode;
use crate::zoo::Arch;

/// What the fake backend has seen; shared with the test.
#[derive(Default)]
struct Seen {
    loads: AtomicUsize,
    resident: Mutex<HashSet<String>>,
    /// The device's work in the order it ran: `load KEY`, `infer KEY`.
    work: Mutex<Vec<String>>,
}

struct Fake {
    seen: Arc<Seen>,
    load_delay: Duration,
}

impl ModelBackend for Fake {
    fn kind(&self) -> BackendKind {
        BackendKind::Emulated
    }
    fn load(&mut self, req: LoadRequest) -> Result<Loaded, BackendError> {
        std::thread::sleep(self.load_delay);
        self.seen.loads.fetch_add(1, Ordering::SeqCst);
        self.seen.work.lock().unwrap().push(format!("load {}", req.key));
        if req.key.contains("bad") {
            return Err(BackendError::Mismatch(format!("{} does not fit", req.key)));
        }
        if req.key.contains("panic") {
            panic!("boom");
        }
        self.seen.resident.lock().unwrap().insert(req.key.clone());
        let bytes = if req.key.contains("grows") { req.declared_bytes * 2 } else { req.declared_bytes };
        Ok(Loaded { bytes, measured_by: "fake" })
    }
    fn unload(&mut self, key: &ModelKey) -> bool {
        self.seen.resident.lock().unwrap().remove(key)
    }
    fn infer(&mut self, key: &ModelKey, _: &InferInput) -> Result<InferOutput, BackendError> {
        assert!(self.seen.resident.lock().unwrap().contains(key), "inference on a model that is not loaded: {key}");
        self.seen.work.lock().unwrap().push(format!("infer {key}"));
        Ok(InferOutput { body: key.as_bytes().to_vec(), content_type: "text/plain" })
    }
    fn memory(&mut self) -> Option<DeviceMemory> {
        None
    }
}

const MB: u64 = 1_000_000;

fn device(capacity: u64, load_delay: Duration) -> (DeviceHandle, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let metrics = Metrics::new(&prometheus::Registry::new()).unwrap();
    let cache = CacheConfig { capacity_bytes: capacity, reserve_bytes: 0, eviction: Eviction::Lru };
    let backend = Box::new(Fake { seen: seen.clone(), load_delay });
    (DeviceHandle::spawn("cpu:0", cache, backend, metrics).unwrap(), seen)
}

fn prepared(key: &str, bytes: u64) -> Prepared {
    let req = LoadRequest { key: key.to_string(), arch: Arch::Mlp, weights: None, declared_bytes: bytes, memory_override: None };
    Prepared { req, fetch_ms: 0.0 }
}

async fn get(d: &DeviceHandle, key: &str, bytes: u64) -> Result<(PinGuard, CacheReport), DeviceError> {
    let key = key.to_string();
    d.acquire(&key, ("mlp".into(), "zoo://mlp".into()), || async { Ok::<_, DeviceError>(prepared(&key, bytes)) }).await
}

fn keys(d: &DeviceHandle) -> Vec<String> {
    d.status().models.into_iter().map(|m| m.model_key).collect()
}

fn input() -> InferInput {
    InferInput { body: bytes::Bytes::new(), json: false, mode: InferMode::Task, top_k: 1 }
}

#[tokio::test]
async fn a_first_request_misses_and_loads_and_the_second_hits() {
    let (d, seen) = device(100 * MB, Duration::ZERO);
    let (g, r) = get(&d, "a", 10 * MB).await.unwrap();
    assert_eq!(r.outcome, CacheOutcome::Miss);
    assert_eq!(r.model_bytes, 10 * MB);
    assert_eq!(d.infer(&g, input()).await.unwrap().0.body, b"a");
    drop(g);
    let (_g, r) = get(&d, "a", 10 * MB).await.unwrap();
    assert_eq!(r.outcome, CacheOutcome::Hit);
    assert_eq!(seen.loads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn room_is_made_by_evicting_least_recently_used_models_first_and_several_if_needed() {
    let (d, seen) = device(100 * MB, Duration::ZERO);
    for k in ["a", "b", "c"] {
        get(&d, k, 30 * MB).await.unwrap();
    }
    get(&d, "a", 30 * MB).await.unwrap(); // a is now the most recent
    assert_eq!(keys(&d), vec!["b", "c", "a"]);
    let (_g, r) = get(&d, "big", 60 * MB).await.unwrap();
    assert_eq!(r.evicted, vec!["b", "c"]);
    assert_eq!(keys(&d), vec!["a", "big"]);
    let resident = seen.resident.lock().unwrap().clone();
    assert_eq!(resident, HashSet::from(["a".to_string(), "big".to_string()]));
}

#[tokio::test]
async fn a_pinned_model_is_never_a_victim_and_a_full_device_says_no_room() {
    let (d, _) = device(100 * MB, Duration::ZERO);
    let (pin_a, _) = get(&d, "a", 50 * MB).await.unwrap();
    get(&d, "b", 40 * MB).await.unwrap();
    let (_g, r) = get(&d, "c", 50 * MB).await.unwrap();
    assert_eq!(r.evicted, vec!["b"]);
    let err = get(&d, "d", 10 * MB).await.unwrap_err();
    assert!(matches!(err, DeviceError::Admit(AdmitError::NoRoom { .. })), "{err}");
    assert!(keys(&d).contains(&"a".to_string()));
    drop(pin_a);
}

#[tokio::test]
async fn a_model_larger_than_the_device_is_refused_and_nothing_is_evicted() {
    let (d, seen) = device(100 * MB, Duration::ZERO);
    get(&d, "a", 50 * MB).await.unwrap();
    let err = get(&d, "huge", 101 * MB).await.unwrap_err();
    assert!(matches!(err, DeviceError::Admit(AdmitError::TooLarge { .. })));
    assert_eq!(keys(&d), vec!["a"]);
    assert_eq!(seen.loads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn concurrent_requests_for_a_loading_model_share_one_load() {
    let (d, seen) = device(100 * MB, Duration::from_millis(100));
    let results = futures::future::join_all((0..8).map(|_| get(&d, "a", 10 * MB))).await;
    let outcomes: Vec<CacheOutcome> = results.into_iter().map(|r| r.unwrap().1.outcome).collect();
    assert_eq!(seen.loads.load(Ordering::SeqCst), 1);
    assert_eq!(outcomes.iter().filter(|o| **o == CacheOutcome::Miss).count(), 1);
    assert_eq!(outcomes.iter().filter(|o| **o == CacheOutcome::Joined).count(), 7);
    d.check_invariants().unwrap();
    assert_eq!(d.status().models[0].pins, 0);
}

#[tokio::test]
async fn a_failed_load_is_reported_to_every_waiter_and_leaves_nothing_behind() {
    let (d, _) = device(100 * MB, Duration::from_millis(50));
    let results = futures::future::join_all((0..3).map(|_| get(&d, "bad", 10 * MB))).await;
    for r in results {
        assert!(matches!(r, Err(DeviceError::Backend(BackendError::Mismatch(_)))));
    }
    assert!(keys(&d).is_empty());
    assert_eq!(d.status().used_bytes, 0);
    assert!(get(&d, "good", 10 * MB).await.is_ok());
}

#[tokio::test]
async fn a_panicking_backend_is_an_internal_error_and_the_device_keeps_serving() {
    let (d, _) = device(100 * MB, Duration::ZERO);
    let err = get(&d, "panic", 10 * MB).await.unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
    let (g, _) = get(&d, "fine", 10 * MB).await.unwrap();
    assert!(d.infer(&g, input()).await.is_ok());
}

#[tokio::test]
async fn a_model_measured_larger_than_declared_evicts_more_and_reports_those_victims_too() {
    let (d, _) = device(100 * MB, Duration::ZERO);
    get(&d, "a", 40 * MB).await.unwrap();
    get(&d, "b", 30 * MB).await.unwrap();
    let (_g, r) = get(&d, "grows", 30 * MB).await.unwrap();
    assert_eq!(r.model_bytes, 60 * MB);
    assert_eq!(r.evicted, vec!["a"]);
    d.check_invariants().unwrap();
}

#[tokio::test]
async fn a_request_that_goes_away_mid_load_still_finishes_the_load_and_unpins() {
    let (d, seen) = device(100 * MB, Duration::from_millis(100));
    let d2 = d.clone();
    let cancelled = tokio::spawn(async move { get(&d2, "a", 10 * MB).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(20)).await;
    cancelled.abort();
    let (_g, r) = get(&d, "a", 10 * MB).await.unwrap();
    assert!(matches!(r.outcome, CacheOutcome::Joined | CacheOutcome::Hit));
    assert_eq!(seen.loads.load(Ordering::SeqCst), 1);
    drop(_g);
    assert_eq!(d.status().models[0].pins, 0);
    assert!(d.evict(&"a".to_string()).await.is_ok());
}

#[tokio::test]
async fn explicit_eviction_refuses_pinned_and_absent_models_and_frees_the_rest() {
    let (d, seen) = device(100 * MB, Duration::ZERO);
    let (g, _) = get(&d, "a", 10 * MB).await.unwrap();
    assert_eq!(d.evict(&"a".to_string()).await, Err(DeviceError::Evict(EvictError::Pinned)));
    drop(g);
    assert_eq!(d.evict(&"a".to_string()).await, Ok(10 * MB));
    assert!(seen.resident.lock().unwrap().is_empty());
    assert_eq!(d.evict(&"a".to_string()).await, Err(DeviceError::Evict(EvictError::Absent)));
}

#[tokio::test]
async fn random_request_sequences_keep_the_cache_and_the_backend_in_agreement() {
    let (d, seen) = device(100 * MB, Duration::ZERO);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let mut held: Vec<PinGuard> = Vec::new();
    for _ in 0..2000 {
        match rng.gen_range(0..10) {
            0..=5 => {
                let k = format!("m{}", rng.gen_range(0..12));
                let bytes = (rng.gen_range(5..40) as u64) * MB;
                match get(&d, &k, bytes).await {
                    Ok((g, _)) if rng.gen_bool(0.3) => held.push(g),
                    Ok(_) => {}
                    Err(DeviceError::Admit(AdmitError::NoRoom { .. })) => {}
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            6..=7 if !held.is_empty() => {
                let i = rng.gen_range(0..held.len());
                held.swap_remove(i);
            }
            _ => {
                let k = format!("m{}", rng.gen_range(0..12));
                let _ = d.evict(&k).await;
            }
        }
        d.check_invariants().unwrap();
        for g in &held {
            assert!(keys(&d).contains(g.key()), "pinned {} was evicted", g.key());
        }
    }
    drop(held);
    // Unloads are queued on the owner thread; an inference round trip flushes them.
    let (g, _) = get(&d, "flush", MB).await.unwrap();
    d.infer(&g, input()).await.unwrap();
    let cached: HashSet<String> = keys(&d).into_iter().collect();
    assert_eq!(*seen.resident.lock().unwrap(), cached);
}

async fn admit_in_order(d: &DeviceHandle, key: &str, bytes: u64) -> Result<(PinGuard, CacheReport), DeviceError> {
    let key = key.to_string();
    let admission = Admission { in_order: true, ..Admission::default() };
    d.admit(&key, ("mlp".into(), "zoo://mlp".into()), admission, || async { Ok::<_, DeviceError>(prepared(&key, bytes)) }).await
}

#[tokio::test]
async fn a_request_in_order_infers_right_after_its_load_not_behind_a_load_admitted_later() {
    let (d, seen) = device(100 * MB, Duration::from_millis(50));
    let first = {
        let d = d.clone();
        tokio::spawn(async move {
            let (g, r) = admit_in_order(&d, "a", 10 * MB).await.unwrap();
            assert_eq!(r.outcome, CacheOutcome::Miss);
            d.infer(&g, input()).await.unwrap();
        })
    };
    // "a" is decided and loading before "b" is admitted.
    while d.status().models.is_empty() {
        tokio::task::yield_now().await;
    }
    let (g, r) = admit_in_order(&d, "b", 10 * MB).await.unwrap();
    assert_eq!(r.outcome, CacheOutcome::Miss);
    d.infer(&g, input()).await.unwrap();
    first.await.unwrap();
    assert_eq!(*seen.work.lock().unwrap(), ["load a", "infer a", "load b", "infer b"]);
}

#[tokio::test]
async fn places_given_up_or_never_filled_never_stall_the_device() {
    // Concurrent callers in order over more models than fit: some drop their pin
    // without inferring, some are cancelled mid-admission, loads fail or evict. Every
    // caller must finish.
    let (d, _) = device(60 * MB, Duration::from_millis(1));
    let callers: Vec<_> = (0..8u64)
        .map(|c| {
            let d = d.clone();
            tokio::spawn(async move {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(c);
                for _ in 0..150 {
                    let k = match rng.gen_range(0..10) {
                        0 => "bad".to_string(),
                        n => format!("m{n}"),
                    };
                    let bytes = rng.gen_range(5..30) * MB;
                    match rng.gen_range(0..4) {
                        0 => {
                            let _ = tokio::time::timeout(Duration::from_micros(300), admit_in_order(&d, &k, bytes)).await;
                        }
                        1 => drop(admit_in_order(&d, &k, bytes).await),
                        _ => {
                            if let Ok((g, _)) = admit_in_order(&d, &k, bytes).await {
                                assert_eq!(d.infer(&g, input()).await.unwrap().0.body, k.as_bytes());
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let all = async {
        for c in callers {
            c.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all).await.expect("a caller never finished");
    d.check_invariants().unwrap();
}
