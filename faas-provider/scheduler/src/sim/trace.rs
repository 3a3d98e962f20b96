//! The workload: a catalogue of W models drawn round-robin from the zoo, and a seeded
//! trace of Poisson arrivals over them with Zipf or uniform popularity.

use locus_vram::{LoadCost, ZOO};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};
use serde::{Deserialize, Serialize};

use crate::types::{Micros, ModelId};

/// How requests spread over the models.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Popularity {
    /// Zipf with exponent `s`: the k-th most popular model gets weight `1 / k^s`.
    Zipf(f64),
    /// Every model equally likely.
    Uniform,
}

impl std::str::FromStr for Popularity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "uniform" {
            return Ok(Self::Uniform);
        }
        match s.strip_prefix("zipf:").map(str::parse::<f64>) {
            Some(Ok(x)) if x.is_finite() && x >= 0.0 => Ok(Self::Zipf(x)),
            _ => Err(format!(
                "popularity `{s}`: expected zipf:S (S >= 0) or uniform"
            )),
        }
    }
}

impl std::fmt::Display for Popularity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Zipf(s) => write!(f, "zipf:{s}"),
            Self::Uniform => f.write_str("uniform"),
        }
    }
}

/// One model of the simulated working set.
#[derive(Clone, Debug, PartialEq)]
pub struct SimModel {
    /// Zoo architecture it was drawn from.
    pub arch: &'static str,
    /// VRAM footprint: weights plus the per-model overhead.
    pub bytes: u64,
    /// GPU time of one inference, microseconds.
    pub infer_us: Micros,
    /// Time to load it: setup plus its weight bytes (not the overhead) over bandwidth.
    pub load_us: Micros,
}

/// W models, round-robin over the zoo's architectures.
pub fn catalogue(wss: u32, overhead_bytes: u64, cost: LoadCost) -> Vec<SimModel> {
    (0..wss as usize)
        .map(|i| {
            let p = &ZOO[i % ZOO.len()];
            SimModel {
                arch: p.arch,
                bytes: p.weight_bytes + overhead_bytes,
                infer_us: (p.gpu_infer_ms * 1e3).round() as Micros,
                load_us: (cost.load_ms(p.weight_bytes) * 1e3).round() as Micros,
            }
        })
        .collect()
}

/// One arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// When it arrives, microseconds of virtual time.
    pub at: Micros,
    /// Which model it runs.
    pub model: ModelId,
}

/// The seed of the generator for one (seed, working-set size) pair.
pub fn trace_seed(seed: u64, wss: u32) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(wss)
}

/// `n` Poisson arrivals at `rate_per_s` (> 0, else no arrivals) over `wss` models. Which model is the most
/// popular is itself drawn from the seed, so no architecture is favoured.
pub fn generate(
    n: usize,
    wss: u32,
    popularity: Popularity,
    rate_per_s: f64,
    seed: u64,
) -> Vec<Arrival> {
    let mut rng = ChaCha8Rng::seed_from_u64(trace_seed(seed, wss));
    let mut rank: Vec<u32> = (0..wss).collect();
    rank.shuffle(&mut rng);
    let weights: Vec<f64> = (0..wss)
        .map(|k| match popularity {
            Popularity::Zipf(s) => 1.0 / f64::from(k + 1).powf(s),
            Popularity::Uniform => 1.0,
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(weights.len());
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cdf.push(acc);
    }
    let Ok(gap) = Exp::new(rate_per_s) else {
        return Vec::new();
    };
    let mut t = 0.0f64;
    (0..n)
        .map(|_| {
            t += gap.sample(&mut rng);
            let u: f64 = rng.r#gen();
            let k = cdf.partition_point(|c| *c < u).min(cdf.len() - 1);
            Arrival {
                at: (t * 1e6) as Micros,
                model: ModelId(rank[k]),
            }
        })
        .collect()
}

/// `trace` with every arrival moved by a uniform offset in `[-max_us, +max_us]` (not
/// before 0), in time order again: the same requests, timed as a live system's timers
/// and hops would time them. Seeded, so one `seed` gives one perturbation.
pub fn jitter(trace: &[Arrival], max_us: Micros, seed: u64) -> Vec<Arrival> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut moved: Vec<Arrival> = trace
        .iter()
        .map(|a| {
            let offset = rng.gen_range(-(max_us as i64)..=max_us as i64);
            Arrival {
                at: (a.at as i64 + offset).max(0) as Micros,
                ..*a
            }
        })
        .collect();
    moved.sort_by_key(|a| a.at);
    moved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_moves_arrivals_by_at_most_its_bound_and_keeps_them_in_order() {
        let t = generate(2_000, 35, Popularity::Zipf(0.9), 100.0, 3);
        let j = jitter(&t, 1_000, 7);
        assert_eq!(j, jitter(&t, 1_000, 7));
        assert_ne!(j, t);
        assert!(j.windows(2).all(|w| w[0].at <= w[1].at));
        let models = |v: &[Arrival]| {
            let mut m: Vec<u32> = v.iter().map(|a| a.model.0).collect();
            m.sort_unstable();
            m
        };
        assert_eq!(models(&j), models(&t), "the same requests");
        let (before, after): (u64, u64) =
            (t.iter().map(|a| a.at).sum(), j.iter().map(|a| a.at).sum());
        assert!(before.abs_diff(after) <= 1_000 * t.len() as u64);
        assert_eq!(jitter(&t, 0, 1), t);
    }

    #[test]
    fn the_same_seed_gives_the_same_trace_and_another_seed_another() {
        let a = generate(1_000, 35, Popularity::Zipf(0.9), 100.0, 1);
        assert_eq!(a, generate(1_000, 35, Popularity::Zipf(0.9), 100.0, 1));
        assert_ne!(a, generate(1_000, 35, Popularity::Zipf(0.9), 100.0, 2));
    }

    #[test]
    fn arrivals_have_the_requested_rate_and_zipf_favours_one_model() {
        let t = generate(20_000, 20, Popularity::Zipf(0.9), 1_000.0, 3);
        let span_s = t.last().map_or(0, |a| a.at) as f64 / 1e6;
        assert!((span_s - 20.0).abs() < 1.0, "{span_s}");
        let mut counts = [0u32; 20];
        for a in &t {
            counts[a.model.0 as usize] += 1;
        }
        let top = *counts.iter().max().unwrap_or(&0) as f64 / 20_000.0;
        assert!((0.2..0.35).contains(&top), "{top}");
        let u = generate(20_000, 20, Popularity::Uniform, 1_000.0, 3);
        let mut c = [0u32; 20];
        u.iter().for_each(|a| c[a.model.0 as usize] += 1);
        assert!(c.iter().all(|n| (800..1_200).contains(n)));
    }

    #[test]
    fn models_cycle_through_the_zoo_with_their_profiles() {
        let m = catalogue(8, 10, LoadCost::DEFAULT);
        assert_eq!(m[0].arch, ZOO[0].arch);
        assert_eq!(m[ZOO.len()].arch, ZOO[0].arch);
        assert_eq!(m[1].bytes, ZOO[1].weight_bytes + 10);
        assert_eq!(
            m[1].load_us,
            (LoadCost::DEFAULT.load_ms(ZOO[1].weight_bytes) * 1e3).round() as Micros
        );
        assert_eq!("zipf:0.9".parse::<Popularity>(), Ok(Popularity::Zipf(0.9)));
        assert!("zipf:x".parse::<Popularity>().is_err());
    }
}
