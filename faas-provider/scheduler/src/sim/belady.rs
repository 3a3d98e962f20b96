//! The offline reference: Belady's algorithm (evict what is needed farthest in the
//! future, and do not cache what is needed later than everything resident) on one
//! cache the size of all GPUs together. With models of different sizes this is the
//! classic size-oblivious variant, a near-optimal reference rather than an exact bound.

use std::collections::BTreeSet;

use crate::sim::trace::{Arrival, SimModel};

/// Miss ratio of Belady's algorithm over `trace[warmup..]` (the warm-up still fills the
/// cache) with `capacity` bytes.
pub fn miss_ratio(models: &[SimModel], trace: &[Arrival], warmup: usize, capacity: u64) -> f64 {
    let n = trace.len();
    let never = u64::MAX;
    let mut next_use = vec![never; n];
    let mut seen = vec![never; models.len()];
    for i in (0..n).rev() {
        let m = trace[i].model.0 as usize;
        next_use[i] = seen[m];
        seen[m] = i as u64;
    }
    // Resident models keyed by (next use, model); `key[m]` is m's current key if resident.
    let mut resident: BTreeSet<(u64, u32)> = BTreeSet::new();
    let mut key: Vec<Option<u64>> = vec![None; models.len()];
    let mut used = 0u64;
    let mut misses = 0usize;
    for (i, a) in trace.iter().enumerate() {
        let m = a.model.0;
        let bytes = models[m as usize].bytes;
        if let Some(k) = key[m as usize] {
            resident.remove(&(k, m));
        } else {
            if i >= warmup {
                misses += 1;
            }
            if bytes > capacity {
                continue;
            }
            while used + bytes > capacity {
                let Some(&(far, victim)) = resident.last() else {
                    break;
                };
                if far <= next_use[i] {
                    break;
                }
                resident.remove(&(far, victim));
                key[victim as usize] = None;
                used -= models[victim as usize].bytes;
            }
            if used + bytes > capacity {
                continue; // bypass: everything resident is needed sooner
            }
            used += bytes;
        }
        key[m as usize] = Some(next_use[i]);
        resident.insert((next_use[i], m));
    }
    misses as f64 / n.saturating_sub(warmup).max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ModelId;

    fn trace(models: &[u32]) -> Vec<Arrival> {
        models
            .iter()
            .map(|m| Arrival {
                at: 0,
                model: ModelId(*m),
            })
            .collect()
    }

    #[test]
    fn belady_keeps_what_is_needed_soonest() {
        let models = vec![
            SimModel {
                arch: "mlp",
                bytes: 1,
                infer_us: 1,
                load_us: 1
            };
            3
        ];
        // a b c a b: with room for two, c (never used again) is not cached; with room
        // for one, b is not cached either (a is needed sooner).
        let t = trace(&[0, 1, 2, 0, 1]);
        assert!((miss_ratio(&models, &t, 0, 1) - 4.0 / 5.0).abs() < 1e-9);
        assert!((miss_ratio(&models, &t, 0, 2) - 3.0 / 5.0).abs() < 1e-9);
        assert!((miss_ratio(&models, &t, 3, 3)).abs() < 1e-9);
    }
}
