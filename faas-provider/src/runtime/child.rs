//! The replica side of the process runtime: the hidden `faas-provider watchdog`
//! subcommand that each replica of a container function runs.
//!
//! It reads a [`Manifest`] (the function's secrets) from stdin, puts the secrets where
//! the function looks for them, and then runs Locus's watchdog (the `watchdog` crate)
//! with the environment the runtime gave it, printing `Listening on 127.0.0.1:PORT` as the
//! watchdog binary does. Where the host allows it (root, or `CAP_SYS_ADMIN`), the replica
//! enters a private mount namespace and mounts a read-only tmpfs at
//! `/var/openfaas/secrets` holding only its own secrets, so they never touch the host's
//! disk and no function sees another's. Otherwise it writes them to the manifest's
//! `fallback_dir` (owner-only) and tells the function with `secret_mount_path`, the
//! variable OpenFaaS's function SDKs read.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The subcommand's name.
pub const SUBCOMMAND: &str = "watchdog";

/// Where OpenFaaS functions read their secrets.
pub const SECRETS_PATH: &str = "/var/openfaas/secrets";

/// What a replica is told on stdin before it starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Secret name → value, base64.
    pub secrets: BTreeMap<String, String>,
    /// Mount the secrets privately at [`SECRETS_PATH`].
    pub isolate: bool,
    /// Where to write them when not isolated.
    pub fallback_dir: PathBuf,
    /// Only try the isolation and exit (0 when it works): the runtime's start-up probe.
    #[serde(default)]
    pub probe: bool,
}

impl Manifest {
    /// Adds a secret's bytes.
    pub fn add_secret(&mut self, name: &str, value: &[u8]) {
        self.secrets.insert(
            name.to_string(),
            base64::engine::general_purpose::STANDARD.encode(value),
        );
    }
}

/// Why a replica could not start.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// The manifest on stdin is unreadable.
    #[error("cannot read the replica manifest from stdin: {0}")]
    Manifest(String),
    /// The secrets could not be placed.
    #[error("cannot place the function's secrets: {0}")]
    Secrets(String),
    /// The watchdog's configuration is invalid.
    #[error(transparent)]
    Config(#[from] watchdog::ConfigError),
    /// The watchdog failed.
    #[error(transparent)]
    Watchdog(#[from] watchdog::Error),
    /// Binding or runtime start-up failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs one replica: secrets, then the watchdog until SIGTERM. Call before any other
/// thread exists (the mount namespace is entered by this, the only, thread).
pub fn main() -> Result<(), ChildError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| ChildError::Manifest(e.to_string()))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| ChildError::Manifest(e.to_string()))?;
    // The replica goes when the provider goes, even if the provider is killed.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM);
    if manifest.probe {
        return isolate(&BTreeMap::new()).map_err(ChildError::Secrets);
    }
    let secrets = decode(&manifest.secrets)?;
    let mut extra = Vec::new();
    if manifest.isolate {
        isolate(&secrets).map_err(ChildError::Secrets)?;
    } else {
        write_files(&manifest.fallback_dir, &secrets, 0o400).map_err(ChildError::Secrets)?;
        extra.push((
            "secret_mount_path".to_string(),
            manifest.fallback_dir.display().to_string(),
        ));
    }
    let pairs = watchdog::config::env_pairs().chain(extra);
    let config = watchdog::Config::from_iter(pairs)?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(serve(config))
}

async fn serve(config: watchdog::Config) -> Result<(), ChildError> {
    watchdog::logs::init();
    let http = tokio::net::TcpListener::bind((config.bind_address, config.port)).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "Listening on 127.0.0.1:{}", http.local_addr()?.port())?;
    out.flush()?;
    drop(out);
    let listeners = watchdog::Listeners {
        http,
        metrics: None,
    };
    let shutdown = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
                tracing::info!("Received SIGTERM");
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    watchdog::run(listeners, config, prometheus::Registry::new(), shutdown).await?;
    Ok(())
}

fn decode(secrets: &BTreeMap<String, String>) -> Result<BTreeMap<String, Vec<u8>>, ChildError> {
    secrets
        .iter()
        .map(|(name, value)| {
            base64::engine::general_purpose::STANDARD
                .decode(value)
                .map(|bytes| (name.clone(), bytes))
                .map_err(|e| ChildError::Manifest(format!("secret {name}: {e}")))
        })
        .collect()
}

/// Enters a private mount namespace and mounts a read-only tmpfs holding `secrets` at
/// [`SECRETS_PATH`].
fn isolate(secrets: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
    use nix::mount::{MsFlags, mount};
    use nix::sched::{CloneFlags, unshare};

    let step = |what: &str, e: nix::Error| format!("{what}: {e}");
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| step("unshare(CLONE_NEWNS)", e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| step("making / private", e))?;
    std::fs::create_dir_all(SECRETS_PATH).map_err(|e| format!("creating {SECRETS_PATH}: {e}"))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("locus-secrets"),
        SECRETS_PATH,
        Some("tmpfs"),
        flags,
        Some("mode=0755,size=16m"),
    )
    .map_err(|e| step("mounting a tmpfs", e))?;
    write_files(Path::new(SECRETS_PATH), secrets, 0o444)?;
    mount(
        None::<&str>,
        SECRETS_PATH,
        None::<&str>,
        flags | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|e| step("remounting read-only", e))
}

/// Writes each secret as a file named after it, with `mode`, in `dir` (created 0700
/// when missing).
fn write_files(dir: &Path, secrets: &BTreeMap<String, Vec<u8>>, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for (name, value) in secrets {
        let path = dir.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&path)
            .and_then(|mut f| f.write_all(value))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}
