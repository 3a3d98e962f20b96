//! The load driver: replays PAPER.md's default experiment against the running system
//! (`faas-provider up --backend emulated`, one process per policy) and prints the table
//! `faas-provider simulate` prints, for the simulator and live side by side; and
//! measures the provider's proxy overhead against calling a worker directly.
//!
//! ```text
//! loadgen paper    [--wss 35] [--requests 20000] [--warmup 2000] [--seed 0]
//!                  [--time-scale 0.05] [--policies lb,lalb,lalb-o3,locus]
//!                  [--jitter-runs 20] [--jitter-ms 1]
//! loadgen overhead [--rate 1000] [--seconds 10] [--connections 64]
//! loadgen drift    [--policy locus] [--requests 600] [--concurrency 8]
//! loadgen pool     FILE...   (records of `paper --record FILE`, pooled per policy)
//! ```
//!
//! Time scaling: every emulated device delay is multiplied by `--time-scale` (k) and
//! the arrival times of the trace too, so the live run takes k × the simulated span;
//! live latencies are divided by k before they are reported, which also magnifies the
//! HTTP and scheduling overhead by 1/k (see docs/benchmarks.md).
//!
//! Beside each policy's live figures it prints the band of the simulator's own answers
//! when the trace's arrivals are moved by up to ±`--jitter-ms` (see `band.rs`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod band;
mod drift;
mod overhead;
mod pool;
use e2e::{Spawned, deploy};
use locus_scheduler::PolicyKind;
use locus_scheduler::sim::engine::RunStats;
use locus_scheduler::sim::report::{self, Summary};
use locus_scheduler::sim::{self, SimArgs, trace};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tokio::time::Instant;

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Locus load driver: live replay of the default experiment, proxy overhead"
)]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Replay the default experiment live and beside the simulator.
    Paper(PaperArgs),
    /// Proxy overhead: provider vs calling the worker directly.
    Overhead(OverheadArgs),
    /// Cache-view drift under concurrent callers.
    Drift(DriftArgs),
    /// Pool the records of several `paper --record` runs per policy.
    Pool(pool::PoolArgs),
}

#[derive(clap::Args)]
struct PaperArgs {
    /// Working-set size (distinct models).
    #[arg(long, default_value_t = 35)]
    wss: u32,
    /// Measured requests.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Warm-up requests before measuring.
    #[arg(long, default_value_t = 2_000)]
    warmup: usize,
    /// Trace seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Multiplies every device delay and arrival time (k).
    #[arg(long, default_value_t = 0.05)]
    time_scale: f64,
    /// Policies, comma-separated.
    #[arg(long, default_value = "lb,lalb,lalb-o3,locus")]
    policies: String,
    /// Workers x emulated GPUs per worker.
    #[arg(long, default_value = "2x4")]
    cluster: String,
    /// Directory of the `faas-provider` binary (default: beside this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Requests of the overhead probe run before the policies (0: none); the measured
    /// per-request overhead, divided by the time scale, becomes the simulator's
    /// `request_overhead_ms`.
    #[arg(long, default_value_t = 200)]
    probe: usize,
    /// Jittered replays of the trace through the simulator, for the band of its own
    /// answers (0: none).
    #[arg(long, default_value_t = 20)]
    jitter_runs: usize,
    /// Largest move of an arrival in those replays, ms of simulated time.
    #[arg(long, default_value_t = 1.0)]
    jitter_ms: f64,
    /// Append one JSON line per policy to this file, for `loadgen pool`.
    #[arg(long)]
    record: Option<PathBuf>,
}

#[derive(clap::Args)]
struct DriftArgs {
    /// Scheduling policy of the provider.
    #[arg(long, default_value = "locus")]
    policy: String,
    /// Requests to send.
    #[arg(long, default_value_t = 600)]
    requests: usize,
    /// Concurrent callers.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Memory of each of the two emulated devices.
    #[arg(long, default_value = "160MiB")]
    device_memory: String,
    /// Seed of the request mix.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory of the `faas-provider` binary (default: beside this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct OverheadArgs {
    /// Requests per second of the latency comparison (open loop).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds of each latency run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent connections of the throughput run (closed loop).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Directory of the binaries (default: beside this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

fn bin(dir: &Option<PathBuf>, name: &str) -> PathBuf {
    match dir {
        Some(d) => d.join(name),
        None => std::env::current_exe().expect("exe").with_file_name(name),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Mode::Paper(args) => paper(args).await,
        Mode::Overhead(args) => overhead::overhead(args).await,
        Mode::Drift(args) => drift::drift(args).await,
        Mode::Pool(args) => pool::run(args),
    }
}

/// One live request's outcome.
struct Answer {
    ok: bool,
    ms: f64,
    miss: bool,
    service_ms: f64,
}

async fn paper(args: PaperArgs) -> anyhow::Result<()> {
    let (nodes, per_node) =
        sim::scenario::parse_cluster(&args.cluster).map_err(anyhow::Error::msg)?;
    let sim_args = SimArgs {
        cluster: Some(args.cluster.clone()),
        requests: Some(args.requests),
        warmup: Some(args.warmup),
        seeds: Some(1),
        ..SimArgs::default()
    };
    let mut s = sim::scenario(&sim_args)?;
    let popularity = s.validate().map_err(anyhow::Error::msg)?;
    let rate = sim::calibrate(&s, popularity);
    println!("# {}", sim::describe(&s, rate));
    println!(
        "# live: {nodes} workers x {per_node} emulated GPUs, time scale {}, W={}, seed {}",
        args.time_scale, args.wss, args.seed
    );
    let models = trace::catalogue(
        args.wss,
        s.model_overhead_bytes,
        locus_vram::LoadCost {
            bandwidth_bytes_per_s: s.bandwidth_bytes_per_s,
            setup_ms: s.setup_ms,
        },
    );
    let arrivals = trace::generate(s.warmup + s.requests, args.wss, popularity, rate, args.seed);
    let policies = sim::scenario::parse_policies(&args.policies).map_err(anyhow::Error::msg)?;
    let paper_model = s.clone();
    if args.probe > 0 {
        let real_rate = rate / args.time_scale;
        let probe = probe_overhead(&args, &s, args.probe, real_rate, nodes, per_node).await?;
        s.request_overhead_ms = probe.overhead_ms / args.time_scale;
        s.view_lag_ms = (probe.overhead_ms - probe.hop_ms).max(0.0) / args.time_scale;
        println!(
            "# overhead probe: {:.3} ms real per request outside queue and device \
             (mean of {}), {:.2} ms at time scale {}: the simulator adds it to every latency",
            probe.overhead_ms, args.probe, s.request_overhead_ms, args.time_scale
        );
        println!(
            "# of which {:.3} ms is the caller's own round trip to the provider (GET /healthz, \
             mean of {}); the rest, {:.2} ms, passes while the provider counts the request on \
             its GPU: the simulator's scheduler hears of each completion that much later",
            probe.hop_ms, args.probe, s.view_lag_ms
        );
    }
    let (mut sim_rows, mut live_rows) = (Vec::new(), Vec::new());
    let (mut sim_lb, mut live_lb) = (None, None);
    for policy in policies {
        let simulated = Summary::of(&sim::simulate(
            &s, popularity, policy, args.wss, args.seed, rate,
        ));
        let paper_mean =
            sim::simulate(&paper_model, popularity, policy, args.wss, args.seed, rate).mean_ms();
        let live = live_run(&args, &s, &models, &arrivals, policy, nodes, per_node).await?;
        let mut band_avg = None;
        if args.jitter_runs > 0 {
            let jitter_us = (args.jitter_ms * 1e3).round() as locus_scheduler::Micros;
            let b = band::Band::of(&s, policy, args.wss, &arrivals, args.jitter_runs, jitter_us);
            let (means, mean_in) = band::Band::describe(&b.means, live.mean_ms, 2);
            let (misses, miss_in) = band::Band::describe(&b.misses, live.miss_ratio, 4);
            println!(
                "# {policy}: simulator over {} replays with arrivals moved up to ±{} ms: mean {means} ms, live {}inside; miss ratio {misses}, live {}inside",
                args.jitter_runs,
                args.jitter_ms,
                if mean_in { "" } else { "not " },
                if miss_in { "" } else { "not " },
            );
            band_avg = Some(b.averages());
        }
        if let Some(path) = &args.record {
            let misses = |r: &Summary| (r.miss_ratio * r.requests as f64).round() as usize;
            pool::Record {
                wss: args.wss,
                seed: args.seed,
                policy: policy.name().to_string(),
                requests: live.requests,
                overhead_ms: s.request_overhead_ms,
                view_lag_ms: s.view_lag_ms,
                sim_mean_ms: simulated.mean_ms,
                sim_misses: misses(&simulated),
                band_mean_ms: band_avg.map(|b| b.0),
                band_miss_ratio: band_avg.map(|b| b.1),
                live_mean_ms: live.mean_ms,
                live_misses: misses(&live),
            }
            .append(path)?;
        }
        if policy == PolicyKind::Lb {
            sim_lb = Some(simulated.clone());
            live_lb = Some(live.clone());
        }
        let lb_s = sim_lb.clone().unwrap_or_else(|| simulated.clone());
        let lb_l = live_lb.clone().unwrap_or_else(|| live.clone());
        sim_rows.push(report::row(
            policy,
            args.wss,
            rate,
            std::slice::from_ref(&simulated),
            &[lb_s],
            &[0.0],
        ));
        live_rows.push(report::row(
            policy,
            args.wss,
            rate,
            std::slice::from_ref(&live),
            &[lb_l],
            &[0.0],
        ));
        println!(
            "# {policy}: live mean {:.2} ms vs simulated {:.2} ms ({:+.1} %; {paper_mean:.2} ms without the overhead), miss ratio live {:.4} vs {:.4} ({:+.1} %)",
            live.mean_ms,
            simulated.mean_ms,
            100.0 * (live.mean_ms / simulated.mean_ms - 1.0),
            live.miss_ratio,
            simulated.miss_ratio,
            if simulated.miss_ratio > 0.0 {
                100.0 * (live.miss_ratio / simulated.miss_ratio - 1.0)
            } else {
                0.0
            },
        );
    }
    println!("\n## simulated");
    report::write_table(&sim_rows, &mut std::io::stdout())?;
    println!("\n## live (latencies divided by the time scale)");
    report::write_table(&live_rows, &mut std::io::stdout())?;
    let order = |rows: &[report::Row]| {
        pool::ranking(rows.iter().map(|r| (r.policy.as_str(), r.mean_latency_ms)))
    };
    println!(
        "\n# ranking by mean latency: simulated {}; live {}",
        order(&sim_rows),
        order(&live_rows)
    );
    Ok(())
}

async fn live_run(
    args: &PaperArgs,
    s: &sim::scenario::Scenario,
    models: &[trace::SimModel],
    arrivals: &[trace::Arrival],
    policy: PolicyKind,
    nodes: u32,
    per_node: u32,
) -> anyhow::Result<Summary> {
    let (_dir, provider, client) = start_up(args, s, policy, nodes, per_node)?;
    let base = provider.url();
    for (i, m) in models.iter().enumerate() {
        let body = json!({
            "service": format!("f{i}"), "image": "locus/emulated", "labels": {},
            "annotations": {
                "locus.io/model": m.arch,
                "locus.io/weights": format!("zoo://{}?seed={i}", m.arch),
                "locus.io/memory": m.bytes.to_string(),
            }
        });
        deploy(&client, &base, &body)
            .await
            .with_context(|| format!("deploying f{i}"))?;
    }
    let k = args.time_scale;
    let start = Instant::now() + Duration::from_millis(200);
    let client = Arc::new(client);
    let tasks: Vec<_> = arrivals
        .iter()
        .map(|a| {
            let (client, url) = (client.clone(), format!("{base}/function/f{}", a.model.0));
            let at = start + Duration::from_secs_f64(a.at as f64 / 1e6 * k);
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                let sent = Instant::now();
                let response = client.post(url).body("x").send().await;
                let Ok(response) = response else {
                    return Answer {
                        ok: false,
                        ms: 0.0,
                        miss: false,
                        service_ms: 0.0,
                    };
                };
                let h = |n: &str| {
                    response
                        .headers()
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let miss = h("x-locus-cache").as_deref() == Some("miss");
                let service_ms = device_ms(response.headers());
                let ok = response.status().is_success();
                let _ = response.bytes().await;
                Answer {
                    ok,
                    ms: sent.elapsed().as_secs_f64() * 1e3,
                    miss,
                    service_ms,
                }
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for t in tasks {
        answers.push(t.await?);
    }
    let failed = answers.iter().filter(|a| !a.ok).count();
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} requests failed under {policy}",
        answers.len()
    );
    let measured = &answers[s.warmup.min(answers.len())..];
    let span_ms = (arrivals.last().map_or(0, |a| a.at)
        - arrivals[s.warmup.min(arrivals.len() - 1)].at) as f64
        / 1e3
        * k;
    let gpus = f64::from(nodes * per_node);
    let stats = RunStats {
        requests: measured.len(),
        latencies_ms: measured.iter().map(|a| a.ms / k).collect(),
        misses: measured.iter().filter(|a| a.miss).count(),
        gpu_busy: measured.iter().map(|a| a.service_ms).sum::<f64>() / (gpus * span_ms.max(1.0)),
    };
    let drift = drift_counters(&client, &base).await?;
    println!(
        "# {policy}: view drift counters after the run: {}",
        if drift.is_empty() {
            "none".to_string()
        } else {
            drift.join(", ")
        }
    );
    drop(provider);
    Ok(Summary::of(&stats))
}

/// `faas-provider up` on the emulated backend with the scenario's hardware and timing,
/// under `policy`; its state directory lives as long as the returned guard.
fn start_up(
    args: &PaperArgs,
    s: &sim::scenario::Scenario,
    policy: PolicyKind,
    nodes: u32,
    per_node: u32,
) -> anyhow::Result<(tempfile::TempDir, Spawned, reqwest::Client)> {
    let dir = tempfile::tempdir()?;
    let mut cmd = Command::new(bin(&args.bin_dir, "faas-provider"));
    cmd.args(["up", "--port", "0", "--backend", "emulated"])
        .args([
            "--workers",
            &nodes.to_string(),
            "--devices-per-worker",
            &per_node.to_string(),
        ])
        .args(["--device-memory", &s.gpu_memory_bytes.to_string()])
        .arg("--state-dir")
        .arg(dir.path())
        .env("policy", policy.name())
        .env("device_reserve", s.reserve_bytes.to_string())
        .env(
            "emulated_bandwidth",
            (s.bandwidth_bytes_per_s as u64).to_string(),
        )
        .env("emulated_setup_ms", s.setup_ms.to_string())
        .env("emulated_speed", "gpu")
        .env("emulated_time_scale", args.time_scale.to_string())
        .env("queue_capacity", "1000000")
        .env("request_timeout", "0")
        .env("reconcile_interval", "0")
        .env("RUST_LOG", "error");
    let provider = Spawned::start(cmd);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .build()?;
    Ok((dir, provider, client))
}

/// What the probe measured, real milliseconds.
struct Probe {
    /// Mean latency minus the device time the worker reports.
    overhead_ms: f64,
    /// Mean round trip of a request the provider answers at once (`GET /healthz`).
    hop_ms: f64,
}

/// The live system's own time per request outside the central queue and the device:
/// the mean, over `n` requests sent one at a time to one resident model, of the latency
/// minus the device time the worker reports; and the caller's own share of it, the mean
/// round trip of `n` requests to `/healthz`, which the provider answers at once. The
/// requests are spaced like the trace's arrivals (exponential gaps at `rate_per_s`, real
/// time), so the probe pays what a trace request pays for waking idle threads, which
/// back-to-back requests would not.
async fn probe_overhead(
    args: &PaperArgs,
    s: &sim::scenario::Scenario,
    n: usize,
    rate_per_s: f64,
    nodes: u32,
    per_node: u32,
) -> anyhow::Result<Probe> {
    let (_dir, provider, client) = start_up(args, s, PolicyKind::Locus, nodes, per_node)?;
    let base = provider.url();
    let arch = "mlp";
    let body = json!({
        "service": "probe", "image": "locus/emulated", "labels": {},
        "annotations": {"locus.io/model": arch, "locus.io/weights": "zoo://mlp?seed=0"}
    });
    deploy(&client, &base, &body)
        .await
        .context("deploying the probe")?;
    let (url, health) = (format!("{base}/function/probe"), format!("{base}/healthz"));
    let (mut extra, mut hops) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut gaps = ChaCha8Rng::seed_from_u64(args.seed);
    let mut pause = || {
        // Exponential inter-arrival time, capped so a slow rate cannot stall the probe.
        let gap_s = -(1.0 - gaps.r#gen::<f64>()).ln() / rate_per_s;
        tokio::time::sleep(Duration::from_secs_f64(gap_s.min(1.0)))
    };
    for i in 0..=n {
        pause().await;
        let sent = Instant::now();
        let response = client.post(&url).body("x").send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "probe: {}",
            response.status()
        );
        let device_ms = device_ms(response.headers());
        let _ = response.bytes().await?;
        // The first request loads the model: not counted.
        if i > 0 {
            extra.push(sent.elapsed().as_secs_f64() * 1e3 - device_ms);
            pause().await;
            let sent = Instant::now();
            let response = client.get(&health).send().await?;
            anyhow::ensure!(
                response.status().is_success(),
                "probe /healthz: {}",
                response.status()
            );
            let _ = response.bytes().await?;
            hops.push(sent.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(Probe {
        overhead_ms: band::mean(&extra),
        hop_ms: band::mean(&hops),
    })
}

/// Load plus inference time the worker reports for one request, ms.
fn device_ms(headers: &reqwest::header::HeaderMap) -> f64 {
    ["x-locus-load-ms", "x-locus-compute-ms"]
        .iter()
        .filter_map(|n| headers.get(*n)?.to_str().ok()?.parse::<f64>().ok())
        .sum()
}

/// The provider's `locus_provider_cache_drift_total` lines (none while the view never
/// drifted from the workers).
async fn drift_counters(client: &reqwest::Client, base: &str) -> anyhow::Result<Vec<String>> {
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(metrics
        .lines()
        .filter(|l| l.starts_with("locus_provider_cache_drift_total"))
        .map(str::to_string)
        .collect())
}
