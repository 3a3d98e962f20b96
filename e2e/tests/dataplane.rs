//! The data plane over real processes: `faas-provider up` (provider plus two in-process
//! Candle workers) started as a process on port 0, a model function deployed with
//! faas-cli's exact request sequence, and invoked through `/function/NAME`.

use std::process::Command;

use e2e::{Spawned, binary, deploy, mlp_deployment, mlp_input};
use serde_json::{Value, json};

fn up(state: &std::path::Path) -> Spawned {
    let mut cmd = Command::new(binary("faas-provider"));
    cmd.args([
        "up",
        "--port",
        "0",
        "--workers",
        "2",
        "--devices-per-worker",
        "2",
        "--device-memory",
        "512MiB",
    ])
    .arg("--state-dir")
    .arg(state)
    .env("RUST_LOG", "warn")
    .env("model_cache_dir", state.join("models"));
    Spawned::start(cmd)
}

#[tokio::test]
async fn a_model_function_deployed_with_faas_cli_answers_and_its_second_call_is_a_hit_on_the_same_gpu()
 {
    let dir = tempfile::tempdir().unwrap();
    let provider = up(dir.path());
    let base = provider.url();
    let client = reqwest::Client::new();

    let info: Value = e2e::get_json(&client, &format!("{base}/system/info")).await;
    assert_eq!(
        info["provider"]["provider"], "locus",
        "gateway wrapper shape: {info}"
    );
    assert!(
        info["version"]["release"].is_string() && info["arch"].is_string(),
        "{info}"
    );

    deploy(&client, &base, &mlp_deployment("mlp1", 1))
        .await
        .expect("deploy");
    let status: Value = e2e::get_json(&client, &format!("{base}/system/function/mlp1")).await;
    assert_eq!(status["replicas"], 1);
    assert!(
        status["availableReplicas"].as_u64().unwrap() > 0,
        "{status}"
    );

    let mut answers = Vec::new();
    for _ in 0..2 {
        let response = client
            .post(format!("{base}/function/mlp1.openfaas-fn"))
            .header("content-type", "application/json")
            .body(mlp_input(0.5))
            .send()
            .await
            .unwrap();
        let headers = response.headers().clone();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["outputs"][0]["shape"], json!([1, 1024]), "{body}");
        assert!(headers.contains_key("x-call-id") && headers.contains_key("x-start-time"));
        answers.push((
            headers["x-locus-cache"].to_str().unwrap().to_string(),
            headers["x-locus-gpu"].to_str().unwrap().to_string(),
        ));
    }
    assert_eq!(answers[0].0, "miss", "{answers:?}");
    assert_eq!(answers[1].0, "hit", "{answers:?}");
    assert_eq!(answers[0].1, answers[1].1, "the same GPU: {answers:?}");

    // `up` answers an unknown function as the gateway does (its scale-from-zero lookup).
    let missing = client
        .post(format!("{base}/function/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(
        missing
            .text()
            .await
            .unwrap()
            .starts_with("error finding function nope.openfaas-fn")
    );

    let status: Value = e2e::get_json(&client, &format!("{base}/system/function/mlp1")).await;
    assert_eq!(status["gpu"]["resident"], json!([answers[0].1]), "{status}");
    assert_eq!(
        (
            status["gpu"]["hits"].as_u64(),
            status["gpu"]["misses"].as_u64()
        ),
        (Some(1), Some(1)),
        "{status}"
    );
    // `faas-cli describe` shows this: the two calls, counted as the gateway counts them.
    assert_eq!(status["invocationCount"], 2.0, "{status}");

    let metrics = e2e::get_text(&client, &format!("{base}/metrics")).await;
    assert!(
        metrics.contains("locus_provider_cache_hits_total{function_name=\"mlp1.openfaas-fn\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("locus_provider_cache_misses_total{function_name=\"mlp1.openfaas-fn\"} 1")
    );
}
