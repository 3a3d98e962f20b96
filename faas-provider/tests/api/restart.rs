//! The real binary as a process on port 0: it prints `listening on ADDR`, keeps what it
//! was given across a hard kill and restart, and refuses to start on a corrupt store.

use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::common::model_fn;

fn provider(state_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faas-provider"));
    cmd.arg("serve")
        .env_clear()
        .env("port", "0")
        .env("bind_address", "127.0.0.1")
        .env("state_dir", state_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Starts the provider and waits for its `listening on` line; returns it and its URL.
async fn start(state_dir: &Path) -> (Child, String) {
    let mut child = provider(state_dir).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = lines
        .next_line()
        .await
        .unwrap()
        .expect("the provider printed nothing");
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    (child, format!("http://{addr}"))
}

#[tokio::test]
async fn everything_deployed_survives_a_kill_and_restart_of_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (mut child, url) = start(dir.path()).await;

    let ns = json!({"name": "team-a", "labels": {"openfaas": "1"}});
    let r = client
        .post(format!("{url}/system/namespace/"))
        .json(&ns)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let secret = json!({"name": "tok", "value": "v", "namespace": "team-a"});
    let r = client
        .post(format!("{url}/system/secrets"))
        .json(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // Deployed as the gateway forwards it: chunked, no Content-Length.
    let mut body = model_fn("fn1");
    body["namespace"] = json!("team-a");
    body["secrets"] = json!(["tok"]);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
        .to_string()
        .into_bytes()
        .chunks(7)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let r = client
        .post(format!("{url}/system/functions"))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let scale = json!({"serviceName": "fn1", "replicas": 3});
    let r = client
        .post(format!("{url}/system/scale-function/fn1?namespace=team-a"))
        .json(&scale)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let before: Value = client
        .get(format!("{url}/system/function/fn1?namespace=team-a"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    child.kill().await.unwrap();
    let (_child, url) = start(dir.path()).await;

    let after: Value = client
        .get(format!("{url}/system/function/fn1?namespace=team-a"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after, before);
    assert_eq!(after["replicas"], 3);
    let namespaces: Value = client
        .get(format!("{url}/system/namespaces"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(namespaces, json!(["openfaas-fn", "team-a"]));
    let secrets: Value = client
        .get(format!("{url}/system/secrets?namespace=team-a"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(secrets, json!([{"name": "tok", "namespace": "team-a"}]));
}

#[tokio::test]
async fn a_corrupt_store_stops_the_binary_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("locus.redb"), vec![0x5A; 16384]).unwrap();
    let output = provider(dir.path()).output().await.unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("store"), "{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("listening"));
    assert_eq!(
        std::fs::read(dir.path().join("locus.redb")).unwrap(),
        vec![0x5A; 16384],
        "the file was touched"
    );
}

#[tokio::test]
async fn missing_basic_auth_files_stop_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let output = provider(dir.path())
        .env("basic_auth", "true")
        .env("secret_mount_path", dir.path().join("nowhere"))
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("basic-auth-user"));
}
