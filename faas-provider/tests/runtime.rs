//! The process runtime as a user meets it: the real binary (`serve` with
//! `function_runtime=process`) on port 0, ordinary OpenFaaS functions deployed over HTTP,
//! each replica a real watchdog process running the function's `fprocess` on this host.

use std::path::Path;
use std::process::Stdio;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A provider process and its URL.
struct Provider {
    url: String,
    client: reqwest::Client,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Provider {
    async fn start() -> Self {
        Self::start_in(tempfile::tempdir().unwrap()).await
    }

    /// Kills the provider outright and returns its state directory.
    async fn kill(mut self) -> tempfile::TempDir {
        self._child.kill().await.unwrap();
        self._dir
    }

    async fn start_in(dir: tempfile::TempDir) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_faas-provider"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("port", "0")
            .env("bind_address", "127.0.0.1")
            .env("state_dir", dir.path())
            .env("function_runtime", "process")
            .env("function_start_timeout", "10s")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next_line().await.unwrap().expect("no listening line");
        let addr = line.strip_prefix("listening on ").expect("listening line");
        Provider {
            url: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            _child: child,
            _dir: dir,
        }
    }

    async fn deploy(&self, body: Value) -> (u16, String) {
        let r = self
            .client
            .post(format!("{}/system/functions", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn deployed(&self, name: &str, fprocess: &str) {
        let (status, body) = self
            .deploy(
                json!({"service": name, "image": "docker.io/functions/alpine:latest",
                           "envProcess": fprocess}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }

    async fn invoke(&self, method: &str, name: &str, query: &str, body: &str) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = self
            .client
            .request(method, format!("{}/function/{name}{query}", self.url))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn status(&self, name: &str) -> Value {
        let r = self
            .client
            .get(format!("{}/system/function/{name}", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn logs(&self, name: &str) -> Vec<Value> {
        let r = self
            .client
            .get(format!("{}/system/logs?name={name}&follow=false", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text()
            .await
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn texts(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn env_and_sha512sum_functions_answer_every_method_with_the_request_in_http_variables() {
    let p = Provider::start().await;
    let (status, body) = p
        .deploy(json!({"service": "env", "image": "functions/alpine:latest",
                       "envProcess": "env", "envVars": {"custom_var": "custom_value"}}))
        .await;
    assert_eq!(status, 202, "{body}");
    p.deployed("sha", "sha512sum").await;
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let (status, out) = p.invoke(method, "env", "?testing=1", "").await;
        assert_eq!(status, 200, "{method}: {out}");
        assert!(out.contains(&format!("Http_Method={method}")), "{out}");
        assert!(out.contains("Http_Query=testing=1"), "{out}");
        assert!(out.contains("custom_var=custom_value"), "{out}");
    }
    let (status, out) = p.invoke("POST", "sha.openfaas-fn", "", "hello").await;
    assert_eq!(status, 200);
    assert!(
        out.starts_with("9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca7"),
        "{out}"
    );
    let status = p.status("env").await;
    assert_eq!(status["availableReplicas"], 1);
    // Counted as the gateway counts: one per answered invocation, whatever the method.
    assert_eq!(status["invocationCount"], 5.0, "{status}");
    assert_eq!(p.status("sha").await["invocationCount"], 1.0);
    assert_eq!(status["envProcess"], "env");
    assert_eq!(status["image"], "functions/alpine:latest");
    assert_eq!(status["kind"], "container");
    assert!(
        status["runtime"].as_str().unwrap().contains("not pulled"),
        "{status}"
    );
}

#[tokio::test]
async fn a_secret_is_readable_by_its_function_and_by_no_other_path() {
    let p = Provider::start().await;
    let r = p
        .client
        .post(format!("{}/system/secrets", p.url))
        .json(&json!({"name": "api-key", "value": "s3cr3t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let root = nix::unistd::geteuid().is_root();
    let fprocess = if root {
        "cat /var/openfaas/secrets/api-key"
    } else {
        "env"
    };
    let (status, body) = p
        .deploy(
            json!({"service": "reader", "image": "functions/alpine:latest",
                       "envProcess": fprocess, "secrets": ["api-key"]}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, out) = p.invoke("POST", "reader", "", "").await;
    assert_eq!(status, 200, "{out}");
    if root {
        assert_eq!(out, "s3cr3t");
    } else {
        // No private mount namespace: the documented fallback, secret_mount_path.
        let dir = out
            .lines()
            .find_map(|l| l.strip_prefix("secret_mount_path="))
            .expect("secret_mount_path is set");
        assert_eq!(
            std::fs::read_to_string(Path::new(dir).join("api-key")).unwrap(),
            "s3cr3t"
        );
    }
    let (status, body) = p
        .deploy(
            json!({"service": "nosecret", "image": "x", "envProcess": "env",
                       "secrets": ["missing"]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("missing"), "{body}");
}

#[tokio::test]
async fn logs_carry_the_classic_watchdog_lines_and_end_when_not_following() {
    let p = Provider::start().await;
    p.deployed("logger", "cat").await;
    let (status, out) = p.invoke("POST", "logger", "", "openfaas-fn").await;
    assert_eq!((status, out.as_str()), (200, "openfaas-fn"));
    // The watchdog logs after the response is written: wait for its line to arrive.
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = p.logs("logger").await;
        if texts(&lines).iter().any(|t| t.contains("Wrote 11 Bytes")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let texts = texts(&lines);
    let starts = |prefix: &str| {
        texts.iter().any(|t| {
            t.trim_start_matches(|c: char| c.is_ascii_digit() || "/: ".contains(c))
                .starts_with(prefix)
        })
    };
    assert!(starts("Forking fprocess"), "{texts:?}");
    assert!(starts("Wrote 11 Bytes"), "{texts:?}");
    assert!(lines.iter().all(|l| l["name"] == "logger"
        && l["namespace"] == "openfaas-fn"
        && l["instance"].as_str().unwrap().starts_with("logger-")));
}

#[tokio::test]
async fn scaled_to_zero_a_function_starts_again_on_the_next_request() {
    let p = Provider::start().await;
    p.deployed("sleepy", "env").await;
    assert_eq!(p.invoke("GET", "sleepy", "", "").await.0, 200);
    let r = p
        .client
        .post(format!("{}/system/scale-function/sleepy", p.url))
        .json(&json!({"serviceName": "sleepy", "replicas": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let status = p.status("sleepy").await;
    assert_eq!(status.get("replicas"), None, "{status}");
    assert_eq!(status.get("availableReplicas"), None, "{status}");
    let (code, out) = p.invoke("GET", "sleepy", "", "").await;
    assert_eq!(code, 200, "{out}");
    let status = p.status("sleepy").await;
    assert_eq!(
        (
            status["replicas"].clone(),
            status["availableReplicas"].clone()
        ),
        (json!(1), json!(1))
    );
}

#[tokio::test]
async fn a_crashed_replica_is_restarted_counted_and_logged() {
    let p = Provider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("crash.sh");
    std::fs::write(
        &script,
        "if [ \"$Http_Query\" = crash ]; then kill -9 $PPID; fi\necho alive\n",
    )
    .unwrap();
    p.deployed("fragile", &format!("sh {}", script.display()))
        .await;
    assert_eq!(
        p.invoke("GET", "fragile", "", "").await,
        (200, "alive\n".into())
    );
    let (code, _) = p.invoke("GET", "fragile", "?crash", "").await;
    assert_ne!(code, 200);
    // Held until the restarted replica is ready.
    assert_eq!(
        p.invoke("GET", "fragile", "", "").await,
        (200, "alive\n".into())
    );
    let metrics = p
        .client
        .get(format!("{}/metrics", p.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .contains("locus_provider_process_restarts_total{function=\"fragile.openfaas-fn\"} 1"),
        "{metrics}"
    );
    let logs = texts(&p.logs("fragile").await);
    assert!(
        logs.iter()
            .any(|t| t.contains("locus: replica") && t.contains("restart 1")),
        "{logs:?}"
    );
}

#[tokio::test]
async fn bad_functions_get_clear_errors() {
    let p = Provider::start().await;
    let (status, body) = p
        .deploy(json!({"service": "ghost", "image": "x", "envProcess": "no-such-program-xyz"}))
        .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("no-such-program-xyz") && body.contains("PATH"),
        "{body}"
    );
    let (status, body) = p.deploy(json!({"service": "empty", "image": "x"})).await;
    assert_eq!(status, 400);
    assert!(body.contains("fprocess"), "{body}");
    let (status, body) = p
        .deploy(json!({"service": "typo", "image": "x", "envProcess": "env",
                       "annotations": {"locus.io/modle": "mlp"}}))
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("locus.io/modle"), "{body}");
    p.deployed("quitter", "false").await;
    let (status, out) = p.invoke("POST", "quitter", "", "").await;
    assert_eq!(status, 500, "{out}");
    assert!(out.contains("exit"), "{out}");
}

#[tokio::test]
async fn endless_output_streams_and_stops_when_the_caller_goes() {
    let p = Provider::start().await;
    p.deployed("firehose", "yes").await;
    let r = p
        .client
        .get(format!("{}/function/firehose", p.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let mut seen = 0usize;
    while seen < 64 * 1024 * 1024 {
        seen += stream.next().await.unwrap().unwrap().len();
    }
    drop(stream);
    // Nothing was buffered whole, and the provider goes on serving.
    p.deployed("after", "env").await;
    assert_eq!(p.invoke("GET", "after", "", "").await.0, 200);
    assert_eq!(p.status("firehose").await["availableReplicas"], 1);
}

#[tokio::test]
async fn a_redirecting_function_s_302_reaches_the_caller_unfollowed() {
    // What the certifier's theaxer/redirector image does, as an http-mode function whose
    // upstream is a tiny server here (the image itself cannot run without a registry).
    let upstream = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::FOUND,
            [(axum::http::header::LOCATION, "http://example.com/")],
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, upstream).await });
    let p = Provider::start().await;
    let (status, body) = p
        .deploy(
            json!({"service": "redirector", "image": "theaxer/redirector:latest",
                       "envProcess": "sleep 600",
                       "envVars": {"mode": "http", "upstream_url": format!("http://{addr}")}}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let r = p
        .client
        .get(format!("{}/function/redirector", p.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "http://example.com/");
}

#[tokio::test]
async fn replicas_die_with_the_provider_and_come_back_when_it_restarts() {
    let p = Provider::start().await;
    p.deployed("durable", "env").await;
    assert_eq!(p.invoke("GET", "durable", "", "").await.0, 200);
    let dir = p.kill().await;
    // The replica's watchdog got SIGTERM from the kernel (PR_SET_PDEATHSIG) and drained:
    // no process whose environment names this state directory is left.
    let mut alive = true;
    for _ in 0..200 {
        alive = processes_mentioning(dir.path());
        if !alive {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!alive, "a replica outlived the provider");
    let p = Provider::start_in(dir).await;
    let (status, out) = p.invoke("GET", "durable", "", "").await;
    assert_eq!(status, 200, "{out}");
    assert!(out.contains("Http_Method=GET"), "{out}");
}

/// Whether any process's environment mentions `path` (replicas' `TMPDIR` does).
fn processes_mentioning(path: &Path) -> bool {
    let needle = path.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("environ")).ok())
        .any(|env| String::from_utf8_lossy(&env).contains(&needle))
}

#[tokio::test]
async fn up_runs_container_functions_with_the_gateway_s_face() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_faas-provider"))
        .args([
            "up",
            "--port",
            "0",
            "--workers",
            "1",
            "--devices-per-worker",
            "1",
        ])
        .args(["--backend", "emulated", "--state-dir"])
        .arg(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().expect("no listening line");
    let addr = line.strip_prefix("listening on ").expect("listening line");
    assert!(
        addr.starts_with("127.0.0.1:"),
        "up must listen on loopback: {addr}"
    );
    let p = Provider {
        url: format!("http://{addr}"),
        client: reqwest::Client::new(),
        _child: child,
        _dir: dir,
    };
    // No function_runtime given: up runs container functions as processes.
    p.deployed("hello", "env").await;
    let r = p
        .client
        .post(format!("{}/function/hello?x=1", p.url))
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let call_id = r.headers()["x-call-id"].to_str().unwrap().to_string();
    assert!(r.headers().contains_key("x-start-time"));
    let body = r.text().await.unwrap();
    assert!(
        body.contains(&format!("Http_X_Call_Id={call_id}")),
        "{body}"
    );
    assert!(body.contains("Http_Query=x=1"), "{body}");
    let r = p
        .client
        .get(format!("{}/function/nosuch", p.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let info: Value = p
        .client
        .get(format!("{}/system/info", p.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["provider"]["provider"], "locus");
}
