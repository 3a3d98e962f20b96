//! `loadgen drift`: does the provider's cache view stay equal to the workers' caches
//! when many callers hit a few models at once? Starts `faas-provider up` on the
//! emulated backend with small devices, deploys four zoo models that do not all fit,
//! sends requests from several concurrent callers, and reports the answers' cache
//! outcomes and the provider's `locus_provider_cache_drift_total` (0 is the target).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use anyhow::Context;
use e2e::{Spawned, deploy};
use rand::SeedableRng;
use rand::distributions::{Distribution, WeightedIndex};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tokio::sync::Semaphore;

use super::{DriftArgs, bin};

/// The functions and their relative popularity.
const MODELS: [(&str, u32); 4] = [
    ("resnet18", 5),
    ("resnet34", 3),
    ("resnet50", 3),
    ("minilm", 2),
];

/// Runs the experiment and prints the outcomes and the drift counters.
pub async fn drift(args: DriftArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut cmd = Command::new(bin(&args.bin_dir, "faas-provider"));
    cmd.args([
        "up",
        "--port",
        "0",
        "--backend",
        "emulated",
        "--workers",
        "1",
    ])
    .args([
        "--devices-per-worker",
        "2",
        "--device-memory",
        &args.device_memory,
    ])
    .arg("--state-dir")
    .arg(dir.path())
    .env("policy", &args.policy)
    .env("emulated_time_scale", "1")
    .env("RUST_LOG", "error");
    let provider = Spawned::start(cmd);
    let base = provider.url();
    let client = reqwest::Client::new();
    for (arch, _) in MODELS {
        let body = json!({
            "service": arch, "image": "locus/emulated",
            "annotations": {"locus.io/model": arch, "locus.io/weights": format!("zoo://{arch}?seed=1")}
        });
        deploy(&client, &base, &body)
            .await
            .with_context(|| format!("deploying {arch}"))?;
    }
    let weights = WeightedIndex::new(MODELS.iter().map(|m| m.1))?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let tasks: Vec<_> = (0..args.requests)
        .map(|_| {
            let url = format!("{base}/function/{}", MODELS[weights.sample(&mut rng)].0);
            let (client, gate) = (client.clone(), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await;
                let response = client.post(url).body("hello world").send().await?;
                let status = response.status().as_u16();
                let cache = response
                    .headers()
                    .get("x-locus-cache")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_string();
                let _ = response.bytes().await;
                Ok::<_, reqwest::Error>(format!("{status} {cache}"))
            })
        })
        .collect();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for task in tasks {
        *outcomes.entry(task.await??).or_default() += 1;
    }
    let drift = super::drift_counters(&client, &base).await?;
    println!(
        "# policy {}, {} requests from {} concurrent callers, devices 2 x {}",
        args.policy, args.requests, args.concurrency, args.device_memory
    );
    for (outcome, n) in outcomes {
        println!("answers {outcome}: {n}");
    }
    if drift.is_empty() {
        println!("drift: none");
    }
    for line in drift {
        println!("drift: {line}");
    }
    Ok(())
}
