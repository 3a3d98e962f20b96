//! `loadgen overhead`: the provider's added latency and its throughput, against calling
//! the worker directly, side by side in one run.

use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use e2e::{Spawned, deploy};
use serde_json::json;
use tokio::time::Instant;

use super::{OverheadArgs, bin};

/// Latency percentiles of `samples` (ms): p50, p99.
fn percentiles(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99))
}

async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&'static str, String)],
    rate: f64,
    seconds: u64,
) -> anyhow::Result<Vec<f64>> {
    let n = (rate * seconds as f64) as usize;
    let start = Instant::now() + Duration::from_millis(100);
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let mut request = client.post(url).body("x");
            for (k, v) in headers {
                request = request.header(*k, v);
            }
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                let sent = Instant::now();
                let response = request.send().await.ok()?;
                let ok = response.status().is_success();
                let _ = response.bytes().await;
                ok.then(|| sent.elapsed().as_secs_f64() * 1e3)
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await?.context("a request failed")?);
    }
    Ok(out)
}

async fn closed_loop(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&'static str, String)],
    connections: usize,
    seconds: u64,
) -> anyhow::Result<f64> {
    let end = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url, headers) = (client.clone(), url.to_string(), headers.to_vec());
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < end {
                    let mut request = client.post(&url).body("x");
                    for (k, v) in &headers {
                        request = request.header(*k, v);
                    }
                    let response = request.send().await?;
                    anyhow::ensure!(
                        response.status().is_success(),
                        "status {}",
                        response.status()
                    );
                    let _ = response.bytes().await?;
                    done += 1;
                }
                Ok(done)
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / seconds as f64)
}

pub async fn overhead(args: OverheadArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut worker = Command::new(bin(&args.bin_dir, "gpu-worker"));
    worker
        .env("port", "0")
        .env("backend", "emulated")
        .env("devices", "gpu:1")
        .env("emulated_time_scale", "0")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .env("model_cache_dir", dir.path().join("models"));
    let worker = Spawned::start(worker);
    let mut provider = Command::new(bin(&args.bin_dir, "faas-provider"));
    provider
        .arg("serve")
        .env("port", "0")
        .env("bind_address", "127.0.0.1")
        .env("state_dir", dir.path().join("state"))
        .env("workers", worker.url())
        .env("RUST_LOG", "error");
    let provider = Spawned::start(provider);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .build()?;
    let base = provider.url();
    let body = json!({
        "service": "zero", "image": "locus/emulated", "labels": {},
        "annotations": {"locus.io/model": "mlp", "locus.io/weights": "zoo://mlp?seed=1"}
    });
    deploy(&client, &base, &body).await?;
    e2e::wait_ready(&client, &base, "zero", Duration::from_secs(30)).await?;
    let via = format!("{base}/function/zero");
    let direct = format!("{}/v1/infer", worker.url());
    let model_headers: Vec<(&'static str, String)> = vec![
        ("x-locus-function", "zero.openfaas-fn".to_string()),
        ("x-locus-model", "mlp".to_string()),
        ("x-locus-weights", "zoo://mlp?seed=1".to_string()),
        ("x-locus-device", "gpu:0".to_string()),
    ];
    // Warm both paths (connections, the model resident).
    open_loop(&client, &via, &[], 200.0, 1).await?;
    open_loop(&client, &direct, &model_headers, 200.0, 1).await?;
    let mut d = open_loop(&client, &direct, &model_headers, args.rate, args.seconds).await?;
    let mut p = open_loop(&client, &via, &[], args.rate, args.seconds).await?;
    let ((d50, d99), (p50, p99)) = (percentiles(&mut d), percentiles(&mut p));
    println!(
        "latency at {} req/s, {} s each (ms):",
        args.rate, args.seconds
    );
    println!("  direct to worker   p50 {d50:.3}  p99 {d99:.3}");
    println!("  through provider   p50 {p50:.3}  p99 {p99:.3}");
    println!(
        "  added              p50 {:.3}  p99 {:.3}",
        p50 - d50,
        p99 - d99
    );
    let direct_rps = closed_loop(
        &client,
        &direct,
        &model_headers,
        args.connections,
        args.seconds,
    )
    .await?;
    let via_rps = closed_loop(&client, &via, &[], args.connections, args.seconds).await?;
    println!(
        "throughput, {} connections, {} s: direct {direct_rps:.0} req/s, through provider {via_rps:.0} req/s",
        args.connections, args.seconds
    );
    Ok(())
}
