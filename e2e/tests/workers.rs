//! The provider (`faas-provider serve`) and two `gpu-worker` processes, all on port 0,
//! running real Candle models: a model that does not fit evicts the least-recently used
//! one, a worker killed mid-request loses no accepted request, and a restarted provider
//! keeps its functions and rebuilds its cache view from the workers.

use std::time::Duration;

use e2e::{Spawned, deploy, gpu_worker, mlp_deployment, mlp_input, provider, wait_ready};
use serde_json::{Value, json};

/// Invokes `name`; returns (status, cache outcome, GPU).
async fn invoke(client: &reqwest::Client, base: &str, name: &str) -> (u16, String, String) {
    let response = client
        .post(format!("{base}/function/{name}"))
        .header("content-type", "application/json")
        .body(mlp_input(0.25))
        .send()
        .await
        .expect("the provider answers");
    let header = |h: &str| {
        response
            .headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (cache, gpu) = (header("x-locus-cache"), header("x-locus-gpu"));
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    assert!(status != 200 || body.contains("outputs"), "{body}");
    (status, cache, gpu)
}

struct Cluster {
    dir: tempfile::TempDir,
    workers: Vec<Spawned>,
    urls: Vec<String>,
}

/// Two workers, each with one CPU device of `memory`, URLs sorted as the provider
/// numbers its nodes (node 0 = the first).
fn cluster(memory: &str) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("models");
    let mut workers: Vec<Spawned> = (0..2)
        .map(|_| gpu_worker(&cache, &[("devices", "cpu:1"), ("device_memory", memory)]))
        .collect();
    workers.sort_by_key(|w| w.url());
    let urls = workers.iter().map(Spawned::url).collect();
    Cluster { dir, workers, urls }
}

async fn metric(client: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = e2e::get_text(client, &format!("{base}/metrics")).await;
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_third_model_that_does_not_fit_evicts_the_least_recently_used_one() {
    // One device of 40 MiB holds two 16 MiB mlps, not three; the other worker is
    // started with too little memory for any, so every model lands on worker 0.
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("models");
    let small = gpu_worker(&cache, &[("devices", "cpu:1"), ("device_memory", "40MiB")]);
    let tiny = gpu_worker(&cache, &[("devices", "cpu:1"), ("device_memory", "8MiB")]);
    let p = provider(
        &dir.path().join("state"),
        &[small.url(), tiny.url()],
        &[("policy", "lalb-o3")],
    );
    let (client, base) = (reqwest::Client::new(), p.url());
    for (name, seed) in [("a", 1), ("b", 2), ("c", 3)] {
        deploy(&client, &base, &mlp_deployment(name, seed))
            .await
            .unwrap();
        wait_ready(&client, &base, name, Duration::from_secs(30))
            .await
            .unwrap();
    }
    assert_eq!(invoke(&client, &base, "a").await.1, "miss");
    assert_eq!(invoke(&client, &base, "b").await.1, "miss");
    assert_eq!(
        invoke(&client, &base, "a").await.1,
        "hit",
        "a is now the most recent"
    );
    assert_eq!(
        invoke(&client, &base, "c").await.1,
        "miss",
        "c evicts b, the least recent"
    );
    assert_eq!(invoke(&client, &base, "a").await.1, "hit", "a stayed");
    assert_eq!(invoke(&client, &base, "b").await.1, "miss", "b was evicted");
    assert!(metric(&client, &base, "locus_provider_evictions_total").await >= 2.0);
    let status: Value = e2e::get_json(&client, &format!("{base}/system/function/a")).await;
    // Nodes are numbered in the order of their sorted URLs.
    let node = if small.url() < tiny.url() { 0 } else { 1 };
    assert_eq!(
        status["gpu"]["resident"],
        json!([format!("{node}/cpu:0")]),
        "{status}"
    );
    // `serve` answers an unknown function as faas-provider's proxy does.
    let missing = client
        .post(format!("{base}/function/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 503);
    assert_eq!(missing.headers()["x-openfaas-internal"], "proxy");
    assert_eq!(
        missing.text().await.unwrap(),
        "No endpoints available for: nope.\n"
    );
}

#[tokio::test]
async fn killing_a_worker_mid_request_still_completes_every_accepted_request_on_the_other() {
    let mut c = cluster("256MiB");
    let p = provider(&c.dir.path().join("state"), &c.urls, &[("policy", "lb")]);
    let (client, base) = (reqwest::Client::new(), p.url());
    deploy(&client, &base, &mlp_deployment("m", 1))
        .await
        .unwrap();
    wait_ready(&client, &base, "m", Duration::from_secs(30))
        .await
        .unwrap();
    let (tx, mut first) = tokio::sync::mpsc::unbounded_channel();
    let calls: Vec<_> = (0..24)
        .map(|_| {
            let (client, base, tx) = (client.clone(), base.clone(), tx.clone());
            tokio::spawn(async move {
                let answer = invoke(&client, &base, "m").await;
                let _ = tx.send(());
                answer
            })
        })
        .collect();
    // Kill worker 1 as soon as the first answer is back: both workers hold requests.
    first.recv().await.unwrap();
    c.workers.remove(1).kill();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    assert!(answers.iter().all(|a| a.0 == 200), "{answers:?}");
    let retries = metric(&client, &base, "locus_provider_retries_total").await;
    assert!(
        retries > 0.0,
        "some requests were moved off the killed worker: {answers:?}"
    );
    let (status, _, gpu) = invoke(&client, &base, "m").await;
    assert_eq!(
        (status, gpu.as_str()),
        (200, "0/cpu:0"),
        "the survivor serves"
    );
}

#[tokio::test]
async fn a_restarted_provider_keeps_its_functions_and_rebuilds_the_cache_view_from_the_workers() {
    let c = cluster("256MiB");
    let state = c.dir.path().join("state");
    let client = reqwest::Client::new();
    let first_gpu = {
        let p = provider(&state, &c.urls, &[]);
        let base = p.url();
        deploy(&client, &base, &mlp_deployment("keep", 7))
            .await
            .unwrap();
        wait_ready(&client, &base, "keep", Duration::from_secs(30))
            .await
            .unwrap();
        let (status, cache, gpu) = invoke(&client, &base, "keep").await;
        assert_eq!((status, cache.as_str()), (200, "miss"));
        p.kill();
        gpu
    };
    let p = provider(&state, &c.urls, &[]);
    let base = p.url();
    let list: Value = e2e::get_json(&client, &format!("{base}/system/functions")).await;
    assert_eq!(list[0]["name"], "keep", "{list}");
    wait_ready(&client, &base, "keep", Duration::from_secs(30))
        .await
        .unwrap();
    let (status, cache, gpu) = invoke(&client, &base, "keep").await;
    assert_eq!(
        (status, cache.as_str(), gpu),
        (200, "hit", first_gpu),
        "the view was rebuilt from the workers"
    );
    assert_eq!(
        metric(&client, &base, "locus_provider_cache_drift_total").await,
        0.0
    );
}
