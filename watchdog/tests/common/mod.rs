//! Shared harness: an embedded watchdog on port 0 with a private `TMPDIR`, and helpers
//! that write small shell-script functions.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use watchdog::{Config, Listeners};

/// A watchdog running in this process.
pub struct Embedded {
    /// The function port.
    pub addr: SocketAddr,
    /// The metrics port.
    pub metrics_addr: SocketAddr,
    /// The watchdog's `TMPDIR` (lock file, and a scratch place for scripts).
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), watchdog::Error>>,
}

impl Embedded {
    /// Starts a watchdog configured by `pairs` plus `TMPDIR=<dir>` (a fresh one unless given).
    pub async fn start(pairs: &[(&str, &str)]) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), pairs).await
    }

    /// As [`Embedded::start`] with a given `TMPDIR`.
    pub async fn start_in(dir: tempfile::TempDir, pairs: &[(&str, &str)]) -> Self {
        let mut env: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.push(("TMPDIR".into(), dir.path().display().to_string()));
        let config = Config::from_iter(env).expect("valid config");
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr, metrics_addr) = (http.local_addr().unwrap(), metrics.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let listeners = Listeners {
            http,
            metrics: Some(metrics),
        };
        let task = tokio::spawn(watchdog::run(listeners, config, Registry::new(), async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            metrics_addr,
            dir,
            stop: Some(stop),
            task,
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Signals shutdown and waits for `run` to return.
    pub async fn shutdown(mut self) -> Result<(), watchdog::Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("run task")
    }
}

/// Writes a shell script named `name` under `dir` and returns the `fprocess` that runs it
/// (`/bin/sh PATH`). Running it through `sh` rather than exec'ing the fresh file avoids
/// ETXTBSY: another test thread forking while the file is open for writing would make a
/// direct exec fail.
pub fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("/bin/sh {}", path.display())
}

/// A client that never pools connections, so each request is independent.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
        .unwrap()
}

/// The status of a `GET url` made with [`client`].
pub async fn get_status(url: &str) -> reqwest::StatusCode {
    client().get(url).send().await.unwrap().status()
}
