//! Unit tests of the cache rules, and a seeded random-operation test that checks the
//! invariants after every step (STYLE.md rule 6).

use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn lru(capacity: u64, reserve: u64) -> Cache<&'static str> {
    Cache::new(CacheConfig { capacity_bytes: capacity, reserve_bytes: reserve, eviction: Eviction::Lru })
}

/// Loads `key` and releases the loader's pin, leaving it resident and unpinned.
fn load(cache: &mut Cache<&'static str>, key: &'static str, bytes: u64) -> Vec<&'static str> {
    let victims = cache.begin_load(key, bytes).expect("admit");
    cache.finish_load(&key, bytes).expect("finish");
    assert!(cache.unpin(&key));
    victims
}

#[test]
fn usable_bytes_are_capacity_minus_reserve() {
    let cache = lru(1000, 100);
    assert_eq!(cache.usable_bytes(), 900);
    assert_eq!(cache.free_bytes(), 900);
}

#[test]
fn a_model_larger_than_the_device_is_refused() {
    let mut cache = lru(1000, 100);
    assert_eq!(cache.begin_load("big", 901), Err(AdmitError::TooLarge { bytes: 901, usable: 900 }));
    assert!(cache.is_empty());
}

#[test]
fn the_least_recently_used_models_are_evicted_until_the_new_one_fits() {
    let mut cache = lru(1000, 0);
    load(&mut cache, "a", 300);
    load(&mut cache, "b", 300);
    load(&mut cache, "c", 300);
    cache.touch(&"a");
    // 100 free; 500 needed: b (least recent) then c go, a stays.
    assert_eq!(load(&mut cache, "d", 500), vec!["b", "c"]);
    assert_eq!(cache.lookup(&"a"), Lookup::Resident);
    assert_eq!(cache.lookup(&"b"), Lookup::Absent);
    assert_eq!(cache.used_bytes(), 800);
    let order: Vec<_> = cache.entries().into_iter().map(|e| e.key).collect();
    assert_eq!(order, vec!["a", "d"]);
}

#[test]
fn pinned_and_loading_models_are_never_victims() {
    let mut cache = lru(1000, 0);
    load(&mut cache, "a", 400);
    assert!(cache.pin(&"a"));
    cache.begin_load("b", 400).expect("admit b");
    // a is pinned, b is loading: nothing can make room for 300.
    assert_eq!(cache.plan_admit(300), Err(AdmitError::NoRoom { bytes: 300, evictable: 200 }));
    assert_eq!(cache.evict(&"a"), Err(EvictError::Pinned));
    assert_eq!(cache.evict(&"b"), Err(EvictError::Loading));
    assert!(cache.unpin(&"a"));
    assert_eq!(cache.plan_admit(300), Ok(vec!["a"]));
}

#[test]
fn a_second_load_of_a_present_model_is_refused_so_callers_wait_for_the_first() {
    let mut cache = lru(1000, 0);
    cache.begin_load("a", 100).expect("admit");
    assert_eq!(cache.lookup(&"a"), Lookup::Loading);
    assert_eq!(cache.begin_load("a", 100), Err(AdmitError::Present));
    assert_eq!(cache.used_bytes(), 100);
}

#[test]
fn a_load_that_measures_larger_evicts_more_and_a_failed_load_frees_its_bytes() {
    let mut cache = lru(1000, 0);
    load(&mut cache, "a", 500);
    cache.begin_load("b", 400).expect("admit");
    assert_eq!(cache.finish_load(&"b", 600), Ok(vec!["a"]));
    assert_eq!(cache.used_bytes(), 600);
    cache.begin_load("c", 300).expect("admit");
    assert!(cache.abort_load(&"c"));
    assert_eq!(cache.used_bytes(), 600);
    assert_eq!(cache.lookup(&"c"), Lookup::Absent);
}

#[test]
fn explicit_eviction_frees_exactly_the_models_bytes() {
    let mut cache = lru(1000, 0);
    load(&mut cache, "a", 250);
    assert_eq!(cache.evict(&"a"), Ok(250));
    assert_eq!(cache.evict(&"a"), Err(EvictError::Absent));
    assert_eq!(cache.used_bytes(), 0);
}

#[test]
fn greedy_dual_size_evicts_the_large_model_before_an_equally_old_small_one() {
    let mut cache: Cache<&str> = Cache::new(CacheConfig {
        capacity_bytes: 1000,
        reserve_bytes: 0,
        eviction: Eviction::GreedyDualSize { setup_bytes: 100 },
    });
    for (k, b) in [("small", 100), ("large", 600)] {
        cache.begin_load(k, b).expect("admit");
        cache.finish_load(&k, b).expect("finish");
        cache.unpin(&k);
    }
    // Under LRU "small" would go first; GreedyDual-Size prefers freeing the large one.
    assert_eq!(cache.plan_admit(500), Ok(vec!["large"]));
}

#[test]
fn random_operations_keep_bytes_within_capacity_pins_in_place_and_lru_order() {
    const KEYS: [&str; 12] = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11"];
    for seed in 0..20u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut cache = lru(10_000, 1_000);
        // Our own record of pins and of recency, to check the cache against.
        let mut pins: HashMap<&str, u32> = HashMap::new();
        let mut last_use: HashMap<&str, u64> = HashMap::new();
        let mut clock = 0u64;
        for _ in 0..2_000 {
            let key = KEYS[rng.gen_range(0..KEYS.len())];
            clock += 1;
            match rng.gen_range(0..6) {
                0 | 1 => {
                    let bytes = rng.gen_range(100..4_000);
                    let before = cache.entries();
                    match cache.begin_load(key, bytes) {
                        Ok(victims) => {
                            // Victims are the least recent unpinned, non-loading ones, in order.
                            let expected: Vec<_> = before
                                .iter()
                                .filter(|e| e.pins == 0 && !e.loading)
                                .map(|e| e.key)
                                .take(victims.len())
                                .collect();
                            assert_eq!(victims, expected, "seed {seed}: eviction order");
                            for v in &victims {
                                assert_eq!(pins.get(v).copied().unwrap_or(0), 0, "pinned {v} evicted");
                                last_use.remove(v);
                            }
                            *pins.entry(key).or_default() = 1;
                            last_use.insert(key, clock);
                        }
                        Err(AdmitError::Present) => assert_ne!(cache.lookup(&key), Lookup::Absent),
                        Err(_) => {}
                    }
                }
                2 => {
                    if cache.lookup(&key) == Lookup::Loading {
                        let bytes = cache.bytes_of(&key).unwrap_or(0);
                        let actual = bytes + rng.gen_range(0..200);
                        match cache.finish_load(&key, actual) {
                            Ok(victims) => {
                                for v in &victims {
                                    assert_eq!(pins.get(v).copied().unwrap_or(0), 0);
                                    last_use.remove(v);
                                }
                            }
                            Err(_) => {
                                pins.remove(key);
                                last_use.remove(key);
                            }
                        }
                    }
                }
                3 => {
                    if cache.pin(&key) {
                        *pins.entry(key).or_default() += 1;
                        last_use.insert(key, clock);
                    }
                }
                4 => {
                    let held = pins.get(key).copied().unwrap_or(0);
                    assert_eq!(cache.unpin(&key), held > 0);
                    if held > 0 {
                        *pins.entry(key).or_default() -= 1;
                    }
                }
                _ => {
                    if cache.evict(&key).is_ok() {
                        assert_eq!(pins.get(key).copied().unwrap_or(0), 0);
                        pins.remove(key);
                        last_use.remove(key);
                    }
                }
            }
            cache.check_invariants().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            for (k, n) in &pins {
                if *n > 0 {
                    assert_ne!(cache.lookup(k), Lookup::Absent, "seed {seed}: pinned {k} vanished");
                    assert_eq!(cache.pins(k), *n);
                }
            }
            let order: Vec<_> = cache.entries().into_iter().map(|e| e.key).collect();
            let mut expected: Vec<_> = last_use.keys().copied().filter(|k| cache.lookup(k) != Lookup::Absent).collect();
            expected.sort_by_key(|k| last_use[k]);
            assert_eq!(order, expected, "seed {seed}: entries are not least-recent first");
        }
    }
}
