//! `faas-provider simulate`: the discrete-event simulator over the scheduler.
//!
//! For every working-set size and seed it generates one trace, runs every policy on
//! that same trace through the very scheduler the provider serves with, and reports
//! mean and spread over the seeds, the reductions versus `lb`, and Belady's offline
//! miss ratio as a reference. Identical settings give identical output.

pub mod belady;
pub mod engine;
pub mod plot;
pub mod report;
pub mod scenario;
pub mod trace;

use std::io;

use clap::Args;
use locus_vram::LoadCost;

use crate::policy::{EvictionKind, LbMode, PolicyKind, WhenAllBusy};
use crate::scheduler::SchedulerConfig;
use crate::types::Micros;
use engine::{Hardware, RunStats};
use report::{Row, Summary};
use scenario::Scenario;
use trace::{Arrival, Popularity};

/// Command-line arguments of `faas-provider simulate`. Every flag overrides the
/// scenario (`--scenario FILE`, else PAPER.md's default experiment).
#[derive(Debug, Clone, Default, Args)]
pub struct SimArgs {
    /// Policies to compare: a comma list of `lb`, `lalb`, `lalb-o3`, `locus`, or `all`.
    #[arg(long)]
    pub policy: Option<String>,
    /// Working-set sizes (distinct models), comma list, e.g. `5,35,100`.
    #[arg(long)]
    pub wss: Option<String>,
    /// Seeds per working-set size.
    #[arg(long)]
    pub seeds: Option<u32>,
    /// Measured requests per run.
    #[arg(long)]
    pub requests: Option<usize>,
    /// Requests simulated before measuring.
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Cluster shape, NODESxGPUS (e.g. `4x2`).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Memory per GPU (e.g. `16GiB`).
    #[arg(long)]
    pub gpu_memory: Option<String>,
    /// Memory per GPU kept out of the model cache (e.g. `1GiB`).
    #[arg(long)]
    pub reserve: Option<String>,
    /// Host-to-GPU bandwidth (e.g. `12GB/s`).
    #[arg(long)]
    pub bandwidth: Option<String>,
    /// Fixed cost of every model load, ms.
    #[arg(long)]
    pub setup_ms: Option<f64>,
    /// Memory each resident model costs beyond its weights (e.g. `1.5GiB`).
    #[arg(long)]
    pub model_overhead: Option<String>,
    /// Model popularity: `zipf:S` or `uniform`.
    #[arg(long)]
    pub popularity: Option<String>,
    /// Target busy share of `lb`'s GPUs at the calibration working-set size.
    #[arg(long)]
    pub load: Option<f64>,
    /// Working-set size at which `--load` fixes the arrival rate.
    #[arg(long)]
    pub load_wss: Option<u32>,
    /// Arrival rate in requests per second (instead of `--load`).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Fixed time of every request outside the queue and the GPU, ms (default 0).
    #[arg(long)]
    pub request_overhead_ms: Option<f64>,
    /// Of that overhead, the time from a GPU finishing a request to the scheduler
    /// hearing of it, ms (default 0).
    #[arg(long)]
    pub view_lag_ms: Option<f64>,
    /// A JSON scenario file with the same settings (flags override it).
    #[arg(long)]
    pub scenario: Option<std::path::PathBuf>,
    /// Output format: `table` (also when empty) or `json` (one object per line).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Also draw latency and miss ratio against working-set size into this SVG file.
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// `lb`: least_loaded, round_robin or random.
    #[arg(long)]
    pub lb_mode: Option<LbMode>,
    /// `lalb`, `lalb-o3`: outstanding requests from which a GPU counts as busy.
    #[arg(long)]
    pub busy_threshold: Option<u32>,
    /// `lalb`, `lalb-o3`: wait, queue_on_cached or queue_on_least_loaded.
    #[arg(long)]
    pub when_all_busy: Option<WhenAllBusy>,
    /// `lalb-o3`: waiting requests a freed GPU scans (default: all).
    #[arg(long)]
    pub o3_window: Option<usize>,
    /// `lalb-o3`: times a request may be overtaken.
    #[arg(long)]
    pub o3_max_bypass: Option<u64>,
    /// `lb`, `lalb`, `lalb-o3`: eviction order, lru or gds.
    #[arg(long)]
    pub eviction: Option<EvictionKind>,
    /// `locus`: eviction order, lru or gds.
    #[arg(long)]
    pub locus_eviction: Option<EvictionKind>,
    /// `locus`: how many times a load counts against a non-holder.
    #[arg(long)]
    pub locus_load_weight: Option<f64>,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// The scenario `args` describe: the file (or the default), then each flag.
pub fn scenario(args: &SimArgs) -> io::Result<Scenario> {
    let mut s = match &args.scenario {
        Some(path) => serde_json::from_str(&std::fs::read_to_string(path)?)
            .map_err(|e| invalid(format!("scenario {}: {e}", path.display())))?,
        None => Scenario::default(),
    };
    let a = args;
    if let Some(p) = &a.policy {
        s.policies = scenario::parse_policies(p).map_err(invalid)?;
    }
    if let Some(w) = &a.wss {
        s.wss = scenario::parse_wss(w).map_err(invalid)?;
    }
    if let Some(c) = &a.cluster {
        (s.nodes, s.gpus_per_node) = scenario::parse_cluster(c).map_err(invalid)?;
    }
    let bytes = |v: &Option<String>| {
        v.as_deref()
            .map(scenario::parse_bytes)
            .transpose()
            .map_err(invalid)
    };
    s.gpu_memory_bytes = bytes(&a.gpu_memory)?.unwrap_or(s.gpu_memory_bytes);
    s.reserve_bytes = bytes(&a.reserve)?.unwrap_or(s.reserve_bytes);
    s.model_overhead_bytes = bytes(&a.model_overhead)?.unwrap_or(s.model_overhead_bytes);
    if let Some(b) = &a.bandwidth {
        s.bandwidth_bytes_per_s = scenario::parse_bandwidth(b).map_err(invalid)?;
    }
    s.seeds = a.seeds.unwrap_or(s.seeds);
    s.requests = a.requests.unwrap_or(s.requests);
    s.warmup = a.warmup.unwrap_or(s.warmup);
    s.setup_ms = a.setup_ms.unwrap_or(s.setup_ms);
    s.popularity = a.popularity.clone().unwrap_or(s.popularity);
    s.load = a.load.unwrap_or(s.load);
    s.load_wss = a.load_wss.unwrap_or(s.load_wss);
    s.rate_per_s = a.rate.or(s.rate_per_s);
    s.request_overhead_ms = a.request_overhead_ms.unwrap_or(s.request_overhead_ms);
    s.view_lag_ms = a.view_lag_ms.unwrap_or(s.view_lag_ms);
    let k = &mut s.knobs;
    k.lb_mode = a.lb_mode.unwrap_or(k.lb_mode);
    k.busy_threshold = a.busy_threshold.unwrap_or(k.busy_threshold);
    k.when_all_busy = a.when_all_busy.unwrap_or(k.when_all_busy);
    k.o3_window = a.o3_window.or(k.o3_window);
    k.o3_max_bypass = a.o3_max_bypass.unwrap_or(k.o3_max_bypass);
    k.eviction = a.eviction.unwrap_or(k.eviction);
    k.locus_eviction = a.locus_eviction.unwrap_or(k.locus_eviction);
    k.locus_load_weight = a.locus_load_weight.unwrap_or(k.locus_load_weight);
    Ok(s)
}

/// Runs the simulation described by `args` and writes its report to `out`.
pub fn run(args: &SimArgs, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let s = scenario(args)?;
    let popularity = s.validate().map_err(invalid)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let rows = sweep(&s, popularity, threads);
    match args.format.as_str() {
        "json" => report::write_json(&rows, out)?,
        "table" | "" => {
            writeln!(
                out,
                "# {}",
                describe(&s, rows.first().map_or(0.0, |r| r.rate_per_s))
            )?;
            report::write_table(&rows, out)?;
        }
        other => return Err(invalid(format!("format `{other}`: expected table or json"))),
    }
    if let Some(path) = &args.plot {
        let names: Vec<String> = s.policies.iter().map(|p| p.name().to_owned()).collect();
        let title = describe(&s, rows.first().map_or(0.0, |r| r.rate_per_s));
        let svg = plot::svg(&rows, &names, &title).map_err(io::Error::other)?;
        std::fs::write(path, svg)?;
    }
    Ok(())
}

/// One line naming the scenario.
pub fn describe(s: &Scenario, rate: f64) -> String {
    format!(
        "{}x{} GPUs, {:.1} GiB each, {:.0} GB/s, setup {} ms, overhead {:.0} MiB/model, {}, {:.0} req/s, {} seeds x {} requests (+{} warm-up)",
        s.nodes,
        s.gpus_per_node,
        s.gpu_memory_bytes as f64 / (1u64 << 30) as f64,
        s.bandwidth_bytes_per_s / 1e9,
        s.setup_ms,
        s.model_overhead_bytes as f64 / (1u64 << 20) as f64,
        s.popularity,
        rate,
        s.seeds,
        s.requests,
        s.warmup
    )
}

fn config(s: &Scenario, policy: PolicyKind) -> SchedulerConfig {
    SchedulerConfig {
        policy,
        knobs: s.knobs.clone(),
        load_cost: load_cost(s),
        max_queue: None,
    }
}

fn load_cost(s: &Scenario) -> LoadCost {
    LoadCost {
        bandwidth_bytes_per_s: s.bandwidth_bytes_per_s,
        setup_ms: s.setup_ms,
    }
}

fn hardware(s: &Scenario) -> Hardware {
    Hardware {
        nodes: s.nodes,
        gpus_per_node: s.gpus_per_node,
        gpu_memory_bytes: s.gpu_memory_bytes,
        reserve_bytes: s.reserve_bytes,
        request_overhead_us: (s.request_overhead_ms * 1e3).round() as Micros,
        view_lag_us: (s.view_lag_ms * 1e3).round() as Micros,
    }
}

/// One run of `policy` on the trace of (`wss`, `seed`).
pub fn simulate(
    s: &Scenario,
    popularity: Popularity,
    policy: PolicyKind,
    wss: u32,
    seed: u64,
    rate: f64,
) -> RunStats {
    let t = trace::generate(s.warmup + s.requests, wss, popularity, rate, seed);
    simulate_trace(s, policy, wss, &t)
}

/// One run of `policy` on a given trace over `wss` models (arrivals in time order).
pub fn simulate_trace(s: &Scenario, policy: PolicyKind, wss: u32, t: &[Arrival]) -> RunStats {
    let models = trace::catalogue(wss, s.model_overhead_bytes, load_cost(s));
    engine::run(&config(s, policy), &hardware(s), &models, t, s.warmup)
}

/// The arrival rate that keeps `lb` at `s.load` busy at `s.load_wss` (seed 0, a pilot
/// of at most 50,000 requests), found by bisection between a rate that cannot reach it
/// and the rate that reaches it with no misses at all; or `s.rate_per_s` if set.
pub fn calibrate(s: &Scenario, popularity: Popularity) -> f64 {
    if let Some(r) = s.rate_per_s {
        return r;
    }
    let gpus = f64::from(s.nodes * s.gpus_per_node);
    let models = trace::catalogue(s.load_wss, s.model_overhead_bytes, load_cost(s));
    let mean_infer_s =
        models.iter().map(|m| m.infer_us as f64).sum::<f64>() / models.len() as f64 / 1e6;
    let pilot = Scenario {
        requests: s.requests.min(50_000),
        warmup: s.warmup.min(10_000),
        ..s.clone()
    };
    let (mut lo, mut hi) = (0.0f64, s.load * gpus / mean_infer_s.max(1e-6));
    for _ in 0..24 {
        let mid = if lo > 0.0 {
            (lo * hi).sqrt()
        } else {
            hi / 64.0
        };
        let busy = simulate(&pilot, popularity, PolicyKind::Lb, s.load_wss, 0, mid).gpu_busy;
        if busy < s.load {
            lo = mid
        } else {
            hi = mid
        }
        if lo > 0.0 && hi / lo < 1.002 {
            break;
        }
    }
    if lo > 0.0 { (lo * hi).sqrt() } else { hi }
}

/// The whole sweep: every (working-set size, seed) trace through `lb` and every policy
/// asked for, on `threads` threads; rows in (wss, policy) order.
pub fn sweep(s: &Scenario, popularity: Popularity, threads: usize) -> Vec<Row> {
    let rate = calibrate(s, popularity);
    let mut policies = vec![PolicyKind::Lb];
    policies.extend(s.policies.iter().copied().filter(|p| *p != PolicyKind::Lb));
    let mut jobs: Vec<(u32, u64, PolicyKind)> = Vec::new();
    for &w in &s.wss {
        for seed in 0..u64::from(s.seeds) {
            jobs.extend(policies.iter().map(|&p| (w, seed, p)));
        }
    }
    let results = parallel(&jobs, threads, |&(w, seed, p)| {
        Summary::of(&simulate(s, popularity, p, w, seed, rate))
    });
    let belady_jobs: Vec<(u32, u64)> = s
        .wss
        .iter()
        .flat_map(|&w| (0..u64::from(s.seeds)).map(move |seed| (w, seed)))
        .collect();
    let capacity = u64::from(s.nodes * s.gpus_per_node) * (s.gpu_memory_bytes - s.reserve_bytes);
    let belady = parallel(&belady_jobs, threads, |&(w, seed)| {
        let models = trace::catalogue(w, s.model_overhead_bytes, load_cost(s));
        let t = trace::generate(s.warmup + s.requests, w, popularity, rate, seed);
        belady::miss_ratio(&models, &t, s.warmup, capacity)
    });
    let mut rows = Vec::new();
    for &w in &s.wss {
        let pick = |p: PolicyKind| -> Vec<Summary> {
            jobs.iter()
                .zip(&results)
                .filter(|((jw, _, jp), _)| *jw == w && *jp == p)
                .map(|(_, r)| r.clone())
                .collect()
        };
        let lb = pick(PolicyKind::Lb);
        let bel: Vec<f64> = belady_jobs
            .iter()
            .zip(&belady)
            .filter(|((jw, _), _)| *jw == w)
            .map(|(_, b)| *b)
            .collect();
        for &p in &s.policies {
            rows.push(report::row(p, w, rate, &pick(p), &lb, &bel));
        }
    }
    rows
}

/// Maps `f` over `jobs` on `threads` scoped threads, results in job order.
fn parallel<J: Sync, R: Send>(jobs: &[J], threads: usize, f: impl Fn(&J) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut slots: Vec<Option<R>> = (0..jobs.len()).map(|_| None).collect();
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.min(jobs.len()).max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let r = f(job);
                    if let Ok(mut d) = done.lock() {
                        d.push((i, r));
                    }
                }
            });
        }
    });
    for (i, r) in done.into_inner().unwrap_or_default() {
        slots[i] = Some(r);
    }
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests;
