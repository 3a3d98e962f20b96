//! Prometheus, for real: Debian's `prometheus` server (installed by
//! `helm/ci/install-tools.sh`) scrapes `faas-provider serve` and two `gpu-worker`
//! processes on loopback while real Candle models serve traffic; the Prometheus HTTP
//! API must then hold the gateway-compatible series and the `locus_*` series with the
//! values the traffic implies. `promtool check metrics` must accept every `/metrics`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::{
    Spawned, deploy, gpu_worker, mlp_deployment, mlp_input, prometheus, provider, wait_ready,
};
use serde_json::Value;

/// Names the gateway chose that promtool's naming lint dislikes; kept for compatibility.
const GATEWAY_NAMES: [&str; 2] = [
    "gateway_function_invocation_started",
    "gateway_service_count",
];

/// Requests the test sends: three calls of one function (one miss, then hits).
const CALLS: u64 = 3;

/// `promtool check metrics` on one exposition; returns its complaints, if any.
fn promtool_check(exposition: &str) -> Result<(), String> {
    let mut child = Command::new(prometheus::tool("promtool").unwrap_or_else(|e| panic!("{e}")))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit 0: clean; exit 3: lint findings only; anything else: unparsable. The only
    // findings allowed are on the OpenFaaS gateway's own names, which dashboards query
    // exactly as the gateway spells them.
    match out.status.code() {
        Some(0) => Ok(()),
        Some(3)
            if report.lines().filter(|l| !l.trim().is_empty()).all(|l| {
                GATEWAY_NAMES
                    .iter()
                    .any(|name| l.starts_with(&format!("{name} ")))
            }) =>
        {
            Ok(())
        }
        _ => Err(report),
    }
}

/// One instant query; the result vector.
async fn query(client: &reqwest::Client, prom: &str, promql: &str) -> Vec<Value> {
    let answer: Value = client
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["status"], "success", "{promql}: {answer}");
    answer["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn value(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Waits (bounded) until `promql` sums to `want` in Prometheus.
async fn eventually(client: &reqwest::Client, prom: &str, promql: &str, want: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let sum: f64 = query(client, prom, promql).await.iter().map(value).sum();
        if (sum - want).abs() < 1e-9 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{promql} = {sum}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_the_provider_and_workers_and_finds_gateway_and_locus_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let workers: Vec<Spawned> = (0..2)
        .map(|i| {
            gpu_worker(
                &dir.path().join(format!("cache{i}")),
                &[("devices", "cpu:1"), ("device_memory", "256MiB")],
            )
        })
        .collect();
    let urls: Vec<String> = workers.iter().map(Spawned::url).collect();
    let provider = provider(&dir.path().join("state"), &urls, &[]);
    let base = provider.url();
    let client = reqwest::Client::new();

    deploy(&client, &base, &mlp_deployment("metered", 1))
        .await
        .expect("deploy");
    wait_ready(&client, &base, "metered", Duration::from_secs(30))
        .await
        .expect("ready");
    for _ in 0..CALLS {
        let answer = client
            .post(format!("{base}/function/metered"))
            .header("content-type", "application/json")
            .body(mlp_input(0.5))
            .send()
            .await
            .expect("invoke");
        assert_eq!(answer.status(), 200);
    }

    // Every exposition is valid Prometheus text.
    let mut targets = vec![provider.addr.to_string()];
    targets.extend(workers.iter().map(|w| w.addr.to_string()));
    for target in &targets {
        let text = client
            .get(format!("http://{target}/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("body");
        promtool_check(&text).unwrap_or_else(|e| panic!("promtool check metrics on {target}: {e}"));
    }

    // A real Prometheus scraping all three on loopback.
    // Prometheus logs `msg="Listening on" address=127.0.0.1:PORT`, which the harness reads.
    let prometheus =
        prometheus::start(dir.path(), &targets, "500ms").unwrap_or_else(|e| panic!("{e}"));
    let prom = prometheus.url();
    // It listens before its storage is open; the API answers 503 until `/-/ready` is 200.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{prom}/-/ready"))
        .send()
        .await
        .map(|r| r.status())
        .ok()
        != Some(reqwest::StatusCode::OK)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "prometheus never became ready:\n{}",
            prometheus.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    eventually(&client, &prom, "sum(up{job=\"locus\"})", 3.0).await;
    // The gateway's own series, as OpenFaaS dashboards query them.
    eventually(
        &client,
        &prom,
        "sum(gateway_function_invocation_total{function_name=\"metered.openfaas-fn\",code=\"200\"})",
        CALLS as f64,
    )
    .await;
    eventually(
        &client,
        &prom,
        "sum(gateway_service_count{function_name=\"metered.openfaas-fn\"})",
        1.0,
    )
    .await;
    eventually(
        &client,
        &prom,
        "sum(gateway_functions_seconds_count{function_name=\"metered.openfaas-fn\"})",
        CALLS as f64,
    )
    .await;
    // Locus's own: one miss then hits, seen by the provider and by the workers.
    eventually(
        &client,
        &prom,
        "sum(locus_provider_cache_misses_total{function_name=\"metered.openfaas-fn\"})",
        1.0,
    )
    .await;
    eventually(
        &client,
        &prom,
        "sum(locus_provider_cache_hits_total{function_name=\"metered.openfaas-fn\"})",
        (CALLS - 1) as f64,
    )
    .await;
    eventually(&client, &prom, "sum(locus_worker_cache_misses_total)", 1.0).await;
    eventually(
        &client,
        &prom,
        "sum(locus_worker_cache_hits_total)",
        (CALLS - 1) as f64,
    )
    .await;
    eventually(&client, &prom, "sum(locus_worker_resident_models)", 1.0).await;
    eventually(
        &client,
        &prom,
        "count(locus_worker_device_memory_capacity_bytes == 268435456)",
        2.0,
    )
    .await;
    drop(prometheus);
}
