//! End-to-end harness: starts the real binaries of the workspace as separate processes
//! on port 0 and finds where they listen from the one line each prints at start-up
//! (`listening on ADDR`, any case). Processes are killed when their handle drops, so a
//! failing test leaves nothing behind.
//!
//! The binaries are the ones `cargo test --workspace --release` has just built beside
//! the test executable (`target/release/`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a process may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub mod prometheus;

/// The path of a workspace binary built next to the running test executable, or next
/// to the running binary when that is itself one of the workspace's (`dashboard`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    let beside = exe.with_file_name(name);
    if beside.exists() {
        return beside;
    }
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo test --workspace --release builds every binary)",
        path.display()
    );
    path
}

/// A running child process, killed on drop, with its captured output.
pub struct Spawned {
    child: Child,
    /// Where it listens, read from its start-up line.
    pub addr: SocketAddr,
    /// Every line it has printed so far (stdout and stderr, interleaved).
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Spawned {
    /// Starts `cmd` and waits until it prints `listening on ADDR`.
    pub fn start(mut cmd: Command) -> Spawned {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let (tx, lines) = (tx.clone(), lines.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(addr) = listening_addr(&line) {
                        let _ = tx.send(addr);
                    }
                    lines.lock().expect("lines").push(line);
                }
            });
        }
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let output = lines.lock().expect("lines").join("\n");
                panic!("{cmd:?} printed no `listening on ADDR` line:\n{output}");
            }
        };
        Spawned { child, addr, lines }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// Kills the process at once (SIGKILL) and waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `gpu-worker` process on a free loopback port with `env` (e.g. `devices`,
/// `device_memory`, `backend`), its model cache under `cache`.
pub fn gpu_worker(cache: &Path, env: &[(&str, &str)]) -> Spawned {
    let mut cmd = Command::new(binary("gpu-worker"));
    cmd.env("port", "0")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .env("probe_period", "0s");
    cmd.env("model_cache_dir", cache);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Spawned::start(cmd)
}

/// `faas-provider serve` on a free loopback port, keeping its state in `state` and
/// dispatching to `workers` (base URLs), plus `env`.
pub fn provider(state: &Path, workers: &[String], env: &[(&str, &str)]) -> Spawned {
    let mut cmd = Command::new(binary("faas-provider"));
    cmd.arg("serve")
        .env("port", "0")
        .env("bind_address", "127.0.0.1")
        .env("state_dir", state)
        .env("workers", workers.join(","))
        .env("health_interval", "200ms")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Spawned::start(cmd)
}

/// Deploys `body` as faas-cli does: PUT, then POST when the PUT is 404 (contract §3).
pub async fn deploy(
    client: &reqwest::Client,
    base: &str,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    let put = client
        .put(format!("{base}/system/functions"))
        .json(body)
        .send()
        .await?;
    let status = if put.status() == 404 {
        client
            .post(format!("{base}/system/functions"))
            .json(body)
            .send()
            .await?
            .status()
    } else {
        put.status()
    };
    anyhow::ensure!(status == 200 || status == 202, "deploy answered {status}");
    Ok(())
}

/// A model function serving the zoo's default `mlp` with generated weights of `seed`,
/// as faas-cli would send it.
pub fn mlp_deployment(name: &str, seed: u32) -> serde_json::Value {
    serde_json::json!({
        "service": name,
        "image": "locus/mlp",
        "labels": {},
        "annotations": {"locus.io/model": "mlp", "locus.io/weights": format!("zoo://mlp?seed={seed}")}
    })
}

/// A KServe v2 request for the default `mlp`: one `[1, 1024]` input filled with `value`.
pub fn mlp_input(value: f32) -> String {
    serde_json::json!({"inputs": [{"name": "input", "shape": [1, 1024], "datatype": "FP32", "data": vec![value; 1024]}]})
        .to_string()
}

/// `GET url` as JSON; panics (a test helper) on a transport or decoding error.
pub async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    let response = client.get(url).send().await.expect("GET");
    response.json().await.expect("JSON body")
}

/// `GET url` as text; panics (a test helper) on a transport error.
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    let response = client.get(url).send().await.expect("GET");
    response.text().await.expect("text body")
}

/// Polls the function's status as `faas-cli ready` does until `availableReplicas > 0`.
pub async fn wait_ready(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    limit: Duration,
) -> anyhow::Result<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let response = client
            .get(format!("{base}/system/function/{name}"))
            .send()
            .await?;
        if response.status() == 200 {
            let status: serde_json::Value = response.json().await?;
            if status["availableReplicas"].as_u64().unwrap_or(0) > 0 {
                return Ok(status);
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{name} not ready within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Parses `... listening on 127.0.0.1:1234 ...` (any case), or a tracing line's
/// `listening addr=0.0.0.0:1234` (gpu-worker's), into an address; an unspecified IP
/// (`0.0.0.0`) becomes loopback, where a test can reach it.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let line = &strip_ansi(line);
    let lower = line.to_ascii_lowercase();
    // Prometheus (logfmt) writes `msg="Listening on" address=127.0.0.1:9090`.
    let at = [
        "listening on\" address=",
        "listening on ",
        "listening addr=",
    ]
    .iter()
    .find_map(|marker| lower.find(marker).map(|i| i + marker.len()))?;
    let rest = line[at..].trim_start_matches("http://");
    let token: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ',')
        .collect();
    let mut addr: SocketAddr = token.trim_end_matches('/').parse().ok()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Some(addr)
}

/// `line` without ANSI colour sequences (`ESC [ ... m`), as a coloured log prints them.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_up_line_is_parsed_in_any_of_its_spellings() {
        let want: SocketAddr = "127.0.0.1:4321".parse().expect("addr");
        assert_eq!(listening_addr("Listening on 127.0.0.1:4321"), Some(want));
        assert_eq!(
            listening_addr(
                "2026-11-29T05:00:00Z INFO faas-provider listening on http://127.0.0.1:4321/"
            ),
            Some(want)
        );
        assert_eq!(
            listening_addr("listening on 127.0.0.1:4321, metrics on 127.0.0.1:9"),
            Some(want)
        );
        assert_eq!(
            listening_addr(
                "ts=2026-11-29T07:45:37Z level=info component=web msg=\"Listening on\" address=127.0.0.1:4321"
            ),
            Some(want)
        );
        assert_eq!(
            listening_addr("2026-11-29T05:00:00Z  INFO gpu_worker: listening addr=0.0.0.0:4321"),
            Some(want)
        );
        let coloured = "\u{1b}[32m INFO\u{1b}[0m listening \u{1b}[3maddr\u{1b}[0m\u{1b}[2m=\u{1b}[0m0.0.0.0:4321";
        assert_eq!(listening_addr(coloured), Some(want));
        assert_eq!(listening_addr("starting"), None);
    }
}
