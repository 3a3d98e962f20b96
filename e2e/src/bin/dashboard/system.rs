//! The system under observation, as separate processes: two emulated `gpu-worker`s, a
//! `faas-provider serve` dispatching to them, and Debian's `prometheus` scraping all
//! three every second on loopback (as `e2e/tests/prometheus.rs` does), plus the model
//! functions deployed as faas-cli would.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use e2e::{Spawned, deploy, gpu_worker, provider, wait_ready};

/// One model function: its name and the zoo architecture it serves.
#[derive(Debug, Clone)]
pub struct Function {
    /// The OpenFaaS service name.
    pub name: String,
    /// `locus.io/model`.
    pub arch: &'static str,
}

/// The functions deployed: four zoo architectures of different sizes (47, 87, 90 and
/// 102 MB of weights), which do not all fit in the workers' memory at once.
pub fn functions() -> Vec<Function> {
    ["resnet18", "resnet34", "minilm", "resnet50"]
        .into_iter()
        .map(|arch| Function {
            name: arch.to_string(),
            arch,
        })
        .collect()
}

/// How the workers are set up.
#[derive(Debug, Clone)]
pub struct Sizing {
    /// `gpu-worker` processes.
    pub workers: usize,
    /// Memory of each worker's one emulated GPU (`device_memory`, e.g. `160MiB`).
    pub device_memory: String,
    /// `emulated_time_scale`: multiplies every emulated load and inference time.
    pub time_scale: f64,
}

/// Every running process; dropping it stops them all.
pub struct System {
    /// The workers, in start order.
    pub workers: Vec<Spawned>,
    /// The provider.
    pub provider: Spawned,
    /// Prometheus.
    pub prometheus: Spawned,
}

/// Starts the workers, the provider and Prometheus under `dir`, deploys `functions`
/// and waits until each is ready and every target is scraped.
pub async fn start(
    dir: &Path,
    sizing: &Sizing,
    functions: &[Function],
    client: &reqwest::Client,
) -> anyhow::Result<System> {
    let time_scale = sizing.time_scale.to_string();
    let workers: Vec<Spawned> = (0..sizing.workers)
        .map(|i| {
            gpu_worker(
                &dir.join(format!("cache{i}")),
                &[
                    ("backend", "emulated"),
                    ("devices", "gpu:1"),
                    ("device_memory", &sizing.device_memory),
                    ("emulated_speed", "gpu"),
                    ("emulated_time_scale", &time_scale),
                ],
            )
        })
        .collect();
    let urls: Vec<String> = workers.iter().map(Spawned::url).collect();
    let provider = provider(&dir.join("state"), &urls, &[]);
    let base = provider.url();
    for f in functions {
        let body = serde_json::json!({
            "service": f.name,
            "image": "locus/emulated",
            "labels": {},
            "annotations": {
                "locus.io/model": f.arch,
                "locus.io/weights": format!("zoo://{}?seed=1", f.arch),
            }
        });
        deploy(client, &base, &body)
            .await
            .with_context(|| format!("deploying {}", f.name))?;
        wait_ready(client, &base, &f.name, Duration::from_secs(30)).await?;
    }
    let mut targets = vec![provider.addr.to_string()];
    targets.extend(workers.iter().map(|w| w.addr.to_string()));
    let prometheus = e2e::prometheus::start(dir, &targets, "1s")?;
    wait_scraped(client, &prometheus.url(), targets.len()).await?;
    Ok(System {
        workers,
        provider,
        prometheus,
    })
}

/// Waits (bounded) until Prometheus is ready and sees all `targets` up.
async fn wait_scraped(client: &reqwest::Client, prom: &str, targets: usize) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        // The API answers 503 until the storage is open; errors just mean "not yet".
        let up = async {
            let answer: serde_json::Value = client
                .get(format!("{prom}/api/v1/query"))
                .query(&[("query", "sum(up{job=\"locus\"})")])
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(
                answer["data"]["result"][0]["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0),
            )
        }
        .await
        .unwrap_or(0.0);
        if up >= targets as f64 {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "Prometheus did not see {targets} targets up within a minute"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
