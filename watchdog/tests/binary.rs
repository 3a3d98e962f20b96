//! The `watchdog` binary as a process: `PORT` versus `port`, the SIGTERM drain, log lines
//! in the classic watchdog's shape, bad configuration, and http mode over a real upstream
//! process (a second watchdog).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{client, get_status, script};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

const BIN: &str = env!("CARGO_BIN_EXE_watchdog");

/// A running watchdog binary, its port and its captured stderr.
struct Process {
    child: Child,
    port: u16,
    logs: watch::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Process {
    async fn spawn(env: &[(&str, &str)]) -> Self {
        Self::try_spawn(env)
            .await
            .unwrap_or_else(|(status, logs)| panic!("exited {status}: {logs}"))
    }

    /// Spawns the binary with a clean environment plus `env`; returns the exit status and
    /// logs if it ends before printing its address.
    async fn try_spawn(env: &[(&str, &str)]) -> Result<Self, (ExitStatus, String)> {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(BIN);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TMPDIR", dir.path())
            .env("metrics_port", "0")
            .env("port", "0")
            .env("bind_address", "127.0.0.1")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap();
        let (tx, logs) = watch::channel(String::new());
        let tx = Arc::new(tx);
        let stderr = child.stderr.take().unwrap();
        let stderr_done = tokio::spawn(collect(BufReader::new(stderr), tx.clone()));
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = loop {
            match stdout.next_line().await.unwrap() {
                Some(line) => {
                    if let Some(port) = line.strip_prefix("Listening on 127.0.0.1:") {
                        break port.parse().unwrap();
                    }
                }
                None => {
                    let status = child.wait().await.unwrap();
                    // The process has exited: read its stderr to the end, every line of
                    // the error chain, not only the first.
                    let _ = tokio::time::timeout(Duration::from_secs(5), stderr_done).await;
                    return Err((status, logs.borrow().clone()));
                }
            }
        };
        // Later stdout lines (the function's own output) go to the log too.
        tokio::spawn(collect(stdout.into_inner(), tx));
        Ok(Self {
            child,
            port,
            logs,
            _dir: dir,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits (bounded) until the logs contain `what`.
    async fn wait_for_log(&mut self, what: &str) -> String {
        self.wait_for_logs(what, 1).await
    }

    /// Waits (bounded) until the logs contain `what` at least `times` times.
    async fn wait_for_logs(&mut self, what: &str, times: usize) -> String {
        let seen = |logs: &String| logs.matches(what).count() >= times;
        let found = tokio::time::timeout(Duration::from_secs(10), self.logs.wait_for(seen))
            .await
            .map(|logs| logs.map(|l| l.clone()));
        match found {
            Ok(Ok(logs)) => logs,
            _ => panic!(
                "log line {what:?} never appeared {times} times in:\n{}",
                *self.logs.borrow()
            ),
        }
    }

    fn sigterm(&self) {
        let pid = i32::try_from(self.child.id().unwrap()).unwrap();
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    async fn exit_status(&mut self) -> ExitStatus {
        tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("exits")
            .unwrap()
    }
}

async fn collect<R: tokio::io::AsyncBufRead + Unpin>(reader: R, logs: Arc<watch::Sender<String>>) {
    let mut lines = reader.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        logs.send_modify(|all| {
            all.push_str(&line);
            all.push('\n');
        });
    }
}

#[tokio::test]
async fn knative_port_wins_over_the_lower_case_port() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let held_port = held.local_addr().unwrap().port().to_string();
    let wd = Process::spawn(&[("fprocess", "cat"), ("port", &held_port), ("PORT", "0")]).await;
    assert_ne!(wd.port.to_string(), held_port);
    assert_eq!(get_status(&wd.url("/_/health")).await, 200);
}

#[tokio::test]
async fn the_lower_case_port_is_used_when_port_is_unset() {
    let wd = Process::spawn(&[("fprocess", "cat"), ("port", "0")]).await;
    assert_ne!(
        wd.port, 8080,
        "port=0 must bind an ephemeral port, not the default"
    );
    let response = client().post(wd.url("/")).body("hi").send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "hi");
}

#[tokio::test]
async fn sigterm_flips_health_then_drains_every_accepted_request() {
    let scripts = tempfile::tempdir().unwrap();
    let gate = scripts.path().join("go");
    let slow = script(
        scripts.path(),
        "slow.sh",
        &format!(
            "echo begun; while [ ! -f {} ]; do sleep 0.02; done; echo finished",
            gate.display()
        ),
    );
    let mut wd = Process::spawn(&[
        ("fprocess", &slow),
        ("PORT", "0"),
        ("healthcheck_interval", "1s"),
        ("write_timeout", "20s"),
    ])
    .await;
    let first = tokio::spawn(client().get(wd.url("/")).send());
    wd.wait_for_log("Forking fprocess.").await;

    wd.sigterm();
    wd.wait_for_log("Removing lock-file").await;
    assert_eq!(get_status(&wd.url("/_/health")).await, 503);
    // Still accepting during the health-check interval; this request must finish too.
    let second = tokio::spawn(client().get(wd.url("/")).send());
    let logs = wd.wait_for_logs("Forking fprocess.", 2).await;
    assert!(
        !logs.contains("No new connections allowed"),
        "accepted within the interval:\n{logs}"
    );
    wd.wait_for_log("No new connections allowed, draining: 2 requests")
        .await;

    std::fs::write(&gate, "").unwrap();
    for request in [first, second] {
        let response = request.await.unwrap().unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "begun\nfinished\n");
    }
    let status = wd.exit_status().await;
    assert!(status.success(), "{status:?}");
    assert!(
        client().get(wd.url("/_/health")).send().await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn log_lines_have_the_classic_watchdog_shape() {
    let mut wd = Process::spawn(&[("fprocess", "cat")]).await;
    let response = client()
        .post(wd.url("/"))
        .body("hello world")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "hello world");
    let logs = wd.wait_for_log("Wrote 11 Bytes").await;
    let after_timestamp = |line: &str| -> Option<String> {
        // `2006/01/02 15:04:05 message`
        let (stamp, message) = line.split_at_checked(20)?;
        let shape = stamp.chars().enumerate().all(|(i, c)| match i {
            4 | 7 => c == '/',
            10 | 19 => c == ' ',
            13 | 16 => c == ':',
            _ => c.is_ascii_digit(),
        });
        shape.then(|| message.to_string())
    };
    let messages: Vec<String> = logs.lines().filter_map(after_timestamp).collect();
    assert!(
        messages.iter().any(|m| m.starts_with("Forking fprocess")),
        "{logs}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("Wrote 11 Bytes - Duration: ")),
        "{logs}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("POST / - 200 - ContentLength: 11B")),
        "{logs}"
    );
}

#[tokio::test]
async fn function_stderr_is_logged_with_or_without_prefix() {
    let scripts = tempfile::tempdir().unwrap();
    let noisy = script(
        scripts.path(),
        "noisy.sh",
        "echo 'warming up' >&2; echo out",
    );
    let mut prefixed = Process::spawn(&[("fprocess", &noisy)]).await;
    client()
        .get(prefixed.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let logs = prefixed.wait_for_log("warming up").await;
    let line = logs.lines().find(|l| l.contains("warming up")).unwrap();
    assert!(
        line.ends_with(" stderr: warming up") && line.len() > 30,
        "{line}"
    );

    let mut raw = Process::spawn(&[("fprocess", &noisy), ("prefix_logs", "false")]).await;
    client()
        .get(raw.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let logs = raw.wait_for_log("warming up").await;
    assert!(logs.lines().any(|l| l == "warming up"), "{logs}");
}

#[tokio::test]
async fn a_missing_fprocess_variable_stops_the_binary_with_a_clear_message() {
    let Err((status, logs)) = Process::try_spawn(&[("mode", "streaming")]).await else {
        panic!("started without fprocess");
    };
    assert!(!status.success() && status.signal().is_none(), "{status:?}");
    assert!(logs.contains("fprocess"), "{logs}");
}

#[tokio::test]
async fn http_mode_proxies_to_a_real_upstream_process_and_relays_sigterm_to_it() {
    let scripts = tempfile::tempdir().unwrap();
    let inner_port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let inner_tmp = scripts.path().join("inner");
    std::fs::create_dir(&inner_tmp).unwrap();
    // The upstream is a second watchdog (streaming `cat`) with its own settings.
    let upstream = script(
        scripts.path(),
        "upstream.sh",
        &format!(
            "exec env mode=streaming fprocess=cat port={inner_port} metrics_port=0 \
             healthcheck_interval=100ms TMPDIR={} {BIN}",
            inner_tmp.display()
        ),
    );
    let upstream_url = format!("http://127.0.0.1:{inner_port}");
    let mut wd = Process::spawn(&[
        ("mode", "http"),
        ("fprocess", &upstream),
        ("upstream_url", &upstream_url),
        ("healthcheck_interval", "100ms"),
    ])
    .await;
    let response = client()
        .post(wd.url("/any/path"))
        .body("through two watchdogs")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "through two watchdogs");
    assert_eq!(get_status(&wd.url("/_/health")).await, 200);

    wd.sigterm();
    let status = wd.exit_status().await;
    assert!(status.success(), "{status:?}");
    let logs = wd.logs.borrow().clone();
    assert!(
        logs.contains("Forwarding SIGTERM to function process"),
        "{logs}"
    );
    assert!(
        logs.contains("Forked function has terminated: exited with status 0"),
        "{logs}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", inner_port)).is_err(),
        "upstream stopped"
    );
}
