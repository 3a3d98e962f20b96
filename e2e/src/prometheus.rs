//! A real Prometheus on loopback (Debian's `prometheus`, installed by
//! `helm/ci/install-tools.sh`), for the Prometheus test and the dashboard renderer.

use std::path::Path;
use std::process::Command;

use crate::Spawned;

/// The path of the program `name` on PATH, or an error saying how to install it.
pub fn tool(name: &str) -> anyhow::Result<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{name} is not on PATH: run `bash helm/ci/install-tools.sh` (.ci/run does)"
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A free loopback port (Prometheus cannot report a port 0 it was given).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Prometheus scraping `targets` (`host:port`) as job `locus` every `interval` (a
/// Prometheus duration, e.g. `1s`), its config and storage under `dir`. It logs
/// `msg="Listening on" address=…`, which [`Spawned`] reads; its API answers 503 until
/// its storage is open (`/-/ready`).
pub fn start(dir: &Path, targets: &[String], interval: &str) -> anyhow::Result<Spawned> {
    let port = free_port()?;
    let config = dir.join("prometheus.yml");
    let quoted: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: {interval}, evaluation_interval: {interval}}}\n\
             scrape_configs:\n  - job_name: locus\n    static_configs:\n      - targets: [{}]\n",
            quoted.join(", ")
        ),
    )?;
    let mut cmd = Command::new(tool("prometheus")?);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    Ok(Spawned::start(cmd))
}
