//! The Grafana dashboard, rendered from live metrics: starts two emulated
//! `gpu-worker`s, `faas-provider serve` and Debian's `prometheus` as separate processes
//! (the e2e harness), deploys four model functions that do not all fit in GPU memory,
//! sends a skewed traffic mix that changes halfway, then runs every query of
//! `helm/locus/dashboards/locus.json` against Prometheus's `/api/v1/query_range` over
//! the run and draws its panels, titled and grouped by row as in the dashboard, into
//! one SVG.
//!
//! ```text
//! cargo build --release --workspace && target/release/dashboard --out docs/dashboard.svg
//! ```
//!
//! The binaries it starts are the ones beside it (`target/release/`); `prometheus`
//! comes from PATH (`helm/ci/install-tools.sh` installs it).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;

// A crate root's modules would sit beside it in src/bin/; these live in src/bin/dashboard/.
#[path = "dashboard/draw.rs"]
mod draw;
#[path = "dashboard/panels.rs"]
mod panels;
#[path = "dashboard/system.rs"]
mod system;
#[path = "dashboard/traffic.rs"]
mod traffic;
#[path = "dashboard/units.rs"]
mod units;

/// Command-line options.
#[derive(Parser)]
#[command(
    name = "dashboard",
    about = "Render the Grafana dashboard's panels from a live run into one SVG"
)]
struct Cli {
    /// Where the SVG goes.
    #[arg(long, default_value = "docs/dashboard.svg")]
    out: PathBuf,
    /// The Grafana dashboard JSON.
    #[arg(long, default_value = "helm/locus/dashboards/locus.json")]
    dashboard: PathBuf,
    /// Seconds of traffic (the popularity changes halfway).
    #[arg(long, default_value_t = 90)]
    seconds: u64,
    /// Mean requests per second (Poisson arrivals).
    #[arg(long, default_value_t = 40.0)]
    rate: f64,
    /// Multiplies every emulated load and inference time (1 = as profiled).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Memory of each worker's one emulated GPU.
    #[arg(long, default_value = "160MiB")]
    device_memory: String,
    /// Share of requests sent to a function that does not exist.
    #[arg(long, default_value_t = 0.02)]
    error_share: f64,
    /// Seed of the traffic.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Seconds since the Unix epoch.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Idle seconds before and after the traffic, so the picture shows the baseline.
const IDLE: u64 = 5;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let text = std::fs::read_to_string(&cli.dashboard)
        .with_context(|| format!("reading {}", cli.dashboard.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("parsing {}", cli.dashboard.display()))?;
    let panels = panels::read(&json)?;

    let started = tokio::time::Instant::now();
    let dir = tempfile::tempdir()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let functions = system::functions();
    let sizing = system::Sizing {
        workers: 2,
        device_memory: cli.device_memory.clone(),
        time_scale: cli.time_scale,
    };
    let system = system::start(dir.path(), &sizing, &functions, &client).await?;
    println!(
        "started {} workers, the provider at {} and Prometheus at {}",
        system.workers.len(),
        system.provider.url(),
        system.prometheus.url()
    );

    let window_start = now();
    tokio::time::sleep(Duration::from_secs(IDLE)).await;
    let traffic_start = now() - window_start;
    let names: Vec<String> = functions.iter().map(|f| f.name.clone()).collect();
    let plan = traffic::Plan {
        rate: cli.rate,
        duration: Duration::from_secs(cli.seconds),
        error_share: cli.error_share,
        seed: cli.seed,
    };
    let outcome = traffic::run(&client, &system.provider.url(), &names, &plan).await;
    let traffic_end = now() - window_start;
    // Idle time after the traffic, and two more scrapes so the last points are stored.
    tokio::time::sleep(Duration::from_secs(IDLE + 2)).await;
    let window = panels::Window {
        start: window_start,
        end: window_start + traffic_end + IDLE as f64,
        step: 1.0,
    };
    for ((name, status), n) in &outcome {
        println!("sent {n} requests to {name}: status {status}");
    }

    let mut drawn = Vec::new();
    let mut empty = Vec::new();
    for panel in panels {
        let mut series = Vec::new();
        for target in &panel.targets {
            let found = panels::query(&client, &system.prometheus.url(), target, window).await?;
            if found.is_empty() {
                empty.push(format!("{}: {}", panel.title, target.expr));
            }
            series.extend(found);
        }
        if panel.kind != panels::Kind::TimeSeries {
            // A stat or table shows the instant at the window's end: series that had
            // ended by then (a model evicted earlier) are not in it.
            let end = window.end - window.start;
            series.retain(|s| s.at(end, window.step).is_some());
        }
        println!("{}", summary(&panel, &series));
        drawn.push(draw::Drawn { panel, series });
    }
    drop(system);

    let phase_change = traffic_start + cli.seconds as f64 / 2.0;
    let marks = [
        (traffic_start, "traffic starts".to_string()),
        (phase_change, "popularity flips".to_string()),
        (traffic_end, "traffic ends".to_string()),
    ];
    let pct = |w: &[f64; 4]| {
        w.iter()
            .map(|x| format!("{:.0}", x * 100.0))
            .collect::<Vec<_>>()
            .join("/")
    };
    let caption = [
        format!(
            "Locus dashboard ({}), every panel rendered from a live run",
            cli.dashboard.display()
        ),
        format!(
            "2 gpu-workers (emulated backend, 1 GPU of {} each, load and inference times x{}), faas-provider serve, Prometheus scraping all three every 1 s.",
            cli.device_memory, cli.time_scale
        ),
        format!(
            "4 functions: resnet18 (47 MB), resnet34 (87 MB), minilm (90 MB), resnet50 (102 MB). Poisson traffic, {} req/s for {} s: popularity {} % then {} %, {} % to a missing function.",
            cli.rate,
            cli.seconds,
            pct(&traffic::FIRST_HALF),
            pct(&traffic::SECOND_HALF),
            cli.error_share * 100.0
        ),
        "x: seconds since the window's start; $function = All (.*). Stat: the sum's last value; table: the last values at the window's end.".to_string(),
    ];
    let frame = draw::Frame {
        caption: &caption,
        marks: &marks,
        span: window.end - window.start,
        step: window.step,
    };
    let svg = draw::svg(&drawn, &frame)?;
    if let Some(parent) = cli.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&cli.out, svg).with_context(|| format!("writing {}", cli.out.display()))?;
    println!(
        "wrote {} ({} panels) in {:.0} s",
        cli.out.display(),
        drawn.len(),
        started.elapsed().as_secs_f64()
    );
    for query in &empty {
        println!("NO DATA: {query}");
    }
    Ok(())
}

/// `title: N series, last values` on one line.
fn summary(panel: &panels::Panel, series: &[panels::Series]) -> String {
    let lasts: Vec<String> = series
        .iter()
        .map(|s| {
            let v = s
                .last()
                .map_or("–".to_string(), |v| units::format(&panel.unit, v));
            format!("{} = {v}", s.name)
        })
        .collect();
    format!(
        "{} / {}: {} series; last: {}",
        panel.row,
        panel.title,
        series.len(),
        if lasts.is_empty() {
            "no data".to_string()
        } else {
            lasts.join(", ")
        }
    )
}
