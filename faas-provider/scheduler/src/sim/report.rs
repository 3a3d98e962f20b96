//! Turning runs into results: per-run summaries, the mean and spread over seeds, the
//! reductions versus `lb` on the same trace, and the table and JSON-lines formats.

use std::io::{self, Write};

use serde::Serialize;

use crate::policy::PolicyKind;
use crate::sim::engine::RunStats;

/// One run, summarised.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Mean latency, ms.
    pub mean_ms: f64,
    /// Percentiles, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Misses per request.
    pub miss_ratio: f64,
    /// GPU busy share.
    pub gpu_busy: f64,
    /// Measured requests.
    pub requests: usize,
}

impl Summary {
    /// Summarises a run (sorts a copy of its latencies).
    pub fn of(stats: &RunStats) -> Self {
        let mut l = stats.latencies_ms.clone();
        l.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            if l.is_empty() {
                return 0.0;
            }
            let rank = ((p * l.len() as f64).ceil() as usize).clamp(1, l.len());
            l[rank - 1]
        };
        Self {
            mean_ms: stats.mean_ms(),
            p50_ms: pct(0.50),
            p95_ms: pct(0.95),
            p99_ms: pct(0.99),
            miss_ratio: stats.miss_ratio(),
            gpu_busy: stats.gpu_busy,
            requests: stats.requests,
        }
    }
}

/// The result for one (policy, working-set size): means over seeds, with spread.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// Policy name.
    pub policy: String,
    /// Working-set size.
    pub wss: u32,
    /// Seeds averaged.
    pub seeds: u32,
    /// Measured requests per seed.
    pub requests: usize,
    /// Arrival rate, requests per second.
    pub rate_per_s: f64,
    /// Mean end-to-end latency, ms (mean over seeds).
    pub mean_latency_ms: f64,
    /// Standard deviation of the per-seed mean latency.
    pub mean_latency_ms_sd: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 95th percentile latency, ms.
    pub p95_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Cache misses per request.
    pub miss_ratio: f64,
    /// Standard deviation of the per-seed miss ratio.
    pub miss_ratio_sd: f64,
    /// Share of GPU time loading or running.
    pub gpu_busy: f64,
    /// `1 - latency / latency(lb)`, both averaged over the same traces; absent for lb.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_reduction: Option<f64>,
    /// `1 - misses / misses(lb)`, both averaged over the same traces (0 when lb has
    /// none); absent for lb.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub miss_reduction: Option<f64>,
    /// Miss ratio of Belady's offline algorithm on one cache the size of all GPUs.
    pub belady_miss_ratio: f64,
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

fn sd(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

fn reduction(policy: f64, lb: f64) -> f64 {
    if lb > 0.0 { 1.0 - policy / lb } else { 0.0 }
}

/// Aggregates one policy's per-seed summaries (paired with `lb`'s on the same traces).
pub fn row(
    policy: PolicyKind,
    wss: u32,
    rate_per_s: f64,
    runs: &[Summary],
    lb: &[Summary],
    belady: &[f64],
) -> Row {
    let get = |f: fn(&Summary) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    let lat = get(|s| s.mean_ms);
    let miss = get(|s| s.miss_ratio);
    let is_lb = policy == PolicyKind::Lb;
    let lb_lat = mean(&lb.iter().map(|s| s.mean_ms).collect::<Vec<_>>());
    let lb_miss = mean(&lb.iter().map(|s| s.miss_ratio).collect::<Vec<_>>());
    Row {
        policy: policy.name().to_owned(),
        wss,
        seeds: runs.len() as u32,
        requests: runs.first().map_or(0, |s| s.requests),
        rate_per_s,
        mean_latency_ms: mean(&lat),
        mean_latency_ms_sd: sd(&lat),
        p50_ms: mean(&get(|s| s.p50_ms)),
        p95_ms: mean(&get(|s| s.p95_ms)),
        p99_ms: mean(&get(|s| s.p99_ms)),
        miss_ratio: mean(&miss),
        miss_ratio_sd: sd(&miss),
        gpu_busy: mean(&get(|s| s.gpu_busy)),
        latency_reduction: (!is_lb).then(|| reduction(mean(&lat), lb_lat)),
        miss_reduction: (!is_lb).then(|| reduction(mean(&miss), lb_miss)),
        belady_miss_ratio: mean(belady),
    }
}

/// Writes one JSON object per line.
pub fn write_json(rows: &[Row], out: &mut dyn Write) -> io::Result<()> {
    for r in rows {
        serde_json::to_writer(&mut *out, r).map_err(io::Error::other)?;
        writeln!(out)?;
    }
    Ok(())
}

/// Writes an aligned table.
pub fn write_table(rows: &[Row], out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<8} {:>4} {:>12} {:>9} {:>9} {:>10} {:>10} {:>7} {:>6} {:>6} {:>7} {:>7} {:>7}",
        "policy",
        "wss",
        "mean_ms",
        "±sd",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "miss",
        "±sd",
        "busy",
        "lat_red",
        "miss_red",
        "belady"
    )?;
    let pct = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |v| format!("{:.2}%", v * 100.0));
    for r in rows {
        writeln!(
            out,
            "{:<8} {:>4} {:>12.2} {:>9.2} {:>9.2} {:>10.2} {:>10.2} {:>7.4} {:>6.4} {:>6.3} {:>7} {:>7} {:>7.4}",
            r.policy,
            r.wss,
            r.mean_latency_ms,
            r.mean_latency_ms_sd,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.miss_ratio,
            r.miss_ratio_sd,
            r.gpu_busy,
            pct(r.latency_reduction),
            pct(r.miss_reduction),
            r.belady_miss_ratio
        )?;
    }
    Ok(())
}
