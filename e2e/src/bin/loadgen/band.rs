//! How far the simulator's own answer moves when its arrivals are timed like a live
//! system's: the same trace, every arrival moved by up to ± a millisecond (a timer's
//! granularity, an HTTP hop), simulated again and again. A live run is one such timing,
//! so a live figure that lies inside this band differs from the simulator by no more
//! than the simulator differs from itself.

use locus_scheduler::PolicyKind;
use locus_scheduler::sim::report::Summary;
use locus_scheduler::sim::{self, scenario::Scenario, trace::Arrival};
use locus_scheduler::types::Micros;

/// The simulator's mean latency and miss ratio over jittered replays of one trace.
pub struct Band {
    /// Each replay's mean latency, ms.
    pub means: Vec<f64>,
    /// Each replay's miss ratio.
    pub misses: Vec<f64>,
}

impl Band {
    /// `runs` replays of `trace` under `policy`, arrivals moved by up to `jitter_us`.
    pub fn of(
        s: &Scenario,
        policy: PolicyKind,
        wss: u32,
        trace: &[Arrival],
        runs: usize,
        jitter_us: Micros,
    ) -> Band {
        let (means, misses) = (1..=runs as u64)
            .map(|seed| {
                let replay = sim::trace::jitter(trace, jitter_us, seed);
                let r = Summary::of(&sim::simulate_trace(s, policy, wss, &replay));
                (r.mean_ms, r.miss_ratio)
            })
            .unzip();
        Band { means, misses }
    }

    /// The replays' average mean latency (ms) and miss ratio.
    pub fn averages(&self) -> (f64, f64) {
        (mean(&self.means), mean(&self.misses))
    }

    /// `min–max (average)` of one measure, and whether `live` lies within min..=max.
    pub fn describe(values: &[f64], live: f64, digits: usize) -> (String, bool) {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg = mean(values);
        (
            format!("{lo:.digits$}–{hi:.digits$} (avg {avg:.digits$})"),
            (lo..=hi).contains(&live),
        )
    }
}

/// The arithmetic mean of `v` (0 when empty).
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}
