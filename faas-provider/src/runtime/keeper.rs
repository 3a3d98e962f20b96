//! Keeping replicas alive: one keeper task per replica slot starts its process, publishes
//! its address while it serves, restarts it (with backoff, counted) when it crashes or
//! fails to start, and stops it when the slot is dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::IntCounterVec;
use time::OffsetDateTime;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::child::Manifest;
use super::logbook::LogBook;
use super::replica::{self, Launch};
use crate::store::Store;
use crate::types::{FunctionDeployment, LogMessage};

/// A replica that serves: its name and address.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// The replica's `instance` name.
    pub instance: String,
    /// Where its watchdog listens.
    pub addr: SocketAddr,
}

/// A function's ready replicas, shared by its keepers and the invoker.
#[derive(Debug)]
pub struct Replicas {
    /// The ready endpoints; the invoker waits on changes when there are none.
    pub ready: watch::Sender<Vec<Endpoint>>,
    next: AtomicUsize,
    last_error: Mutex<Option<String>>,
}

impl Default for Replicas {
    fn default() -> Self {
        Replicas {
            ready: watch::channel(Vec::new()).0,
            next: AtomicUsize::new(0),
            last_error: Mutex::new(None),
        }
    }
}

impl Replicas {
    /// The next ready endpoint, round robin.
    pub fn pick(&self) -> Option<Endpoint> {
        let ready = self.ready.borrow();
        if ready.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % ready.len();
        Some(ready[i].clone())
    }

    /// How many replicas serve.
    pub fn available(&self) -> u64 {
        self.ready.borrow().len() as u64
    }

    /// The last start failure, if the function has not served since.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }

    fn add(&self, endpoint: Endpoint) {
        self.ready.send_modify(|v| v.push(endpoint));
    }

    fn remove(&self, addr: SocketAddr) {
        self.ready.send_modify(|v| v.retain(|e| e.addr != addr));
    }
}

/// What every keeper shares.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Secret values come from here, read at each start.
    pub store: Arc<Store>,
    /// Where replica lines go.
    pub logs: LogBook,
    /// The executable run as the watchdog.
    pub exe: PathBuf,
    /// Parent of every replica's private directory.
    pub run_dir: PathBuf,
    /// Whether replicas mount their secrets in a private namespace.
    pub isolate: bool,
    /// Longest start.
    pub start_timeout: Duration,
    /// `locus_provider_process_restarts_total{function}`.
    pub restarts: IntCounterVec,
}

/// A running keeper: drop `stop` (or the whole slot) to stop its replica.
#[derive(Debug)]
pub struct Slot {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Slot {
    /// Stops the replica and waits until it is gone.
    pub async fn stop(mut self) {
        self.stop.take();
        let _ = (&mut self.task).await;
    }
}

/// Starts a keeper for replica `slot` of `deployment` at `generation`.
pub fn spawn(
    shared: Shared,
    replicas: Arc<Replicas>,
    deployment: FunctionDeployment,
    generation: u64,
    slot: usize,
) -> Slot {
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(keep(
        shared,
        replicas,
        deployment,
        format!("-{generation}-{slot}"),
        stopped,
    ));
    Slot {
        stop: Some(stop),
        task,
    }
}

async fn keep(
    shared: Shared,
    replicas: Arc<Replicas>,
    deployment: FunctionDeployment,
    suffix: String,
    mut stop: oneshot::Receiver<()>,
) {
    let instance = format!("{}{suffix}", deployment.service);
    let key = format!("{}.{}", deployment.service, deployment.namespace);
    // A keeper of its own directory: a stopping keeper of the same instance name (scale
    // to zero, then up again) removes only its own.
    static KEEPERS: AtomicU64 = AtomicU64::new(0);
    let unique = KEEPERS.fetch_add(1, Ordering::Relaxed);
    let dir = shared
        .run_dir
        .join(&deployment.namespace)
        .join(format!("{instance}.{unique}"));
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        let attempt = async {
            let launch = launch(&shared, &deployment, &instance, &dir).await?;
            replica::start(&launch, &shared.logs)
                .await
                .map_err(|e| e.to_string())
        };
        let running = tokio::select! {
            running = attempt => running,
            _ = &mut stop => break,
        };
        let failure = match running {
            Ok(mut running) => {
                replicas.set_error(None);
                let addr = running.addr;
                replicas.add(Endpoint {
                    instance: instance.clone(),
                    addr,
                });
                let outcome = tokio::select! {
                    status = running.exited() => Some(status),
                    _ = &mut stop => None,
                };
                replicas.remove(addr);
                match outcome {
                    Some(status) => format!("replica {instance} exited ({status})"),
                    None => {
                        running.stop().await;
                        break;
                    }
                }
            }
            Err(why) => {
                let why = format!("replica {instance} failed to start: {why}");
                replicas.set_error(Some(why.clone()));
                why
            }
        };
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(100);
        }
        shared.restarts.with_label_values(&[&key]).inc();
        let count = shared.restarts.with_label_values(&[&key]).get();
        note(
            &shared.logs,
            &deployment,
            &instance,
            format!(
                "{failure}; restarting in {} (restart {count})",
                humantime::format_duration(backoff)
            ),
        );
        tracing::warn!(function = %key, %instance, restarts = count, "{failure}");
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = &mut stop => break,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    let _ = tokio::fs::remove_dir_all(&dir).await;
}

/// Writes a line of the runtime's own into a function's logs, shaped like the watchdog's.
pub fn note(logs: &LogBook, deployment: &FunctionDeployment, instance: &str, text: String) {
    let now = OffsetDateTime::now_utc();
    logs.push(LogMessage {
        name: deployment.service.clone(),
        namespace: deployment.namespace.clone(),
        instance: instance.to_string(),
        timestamp: now,
        text: format!(
            "{} locus: {text}",
            watchdog::logs::go_timestamp(std::time::SystemTime::now())
        ),
    });
}

/// Variables the runtime sets for every replica; a function's own `envVars` cannot
/// override them (the replica must listen on a loopback port of its own).
const RUNTIME_VARS: [&str; 5] = ["port", "PORT", "bind_address", "metrics_port", "TMPDIR"];

/// Builds a replica's launch: environment, secrets (read now, so a restart picks up new
/// values) and its private directories.
async fn launch(
    shared: &Shared,
    deployment: &FunctionDeployment,
    instance: &str,
    dir: &std::path::Path,
) -> Result<Launch, String> {
    let mut manifest = Manifest {
        isolate: shared.isolate,
        fallback_dir: dir.join("secrets"),
        ..Manifest::default()
    };
    for name in &deployment.secrets {
        let (ns, secret) = (deployment.namespace.clone(), name.clone());
        let value = shared
            .store
            .call(move |s| s.secret_value(&ns, &secret))
            .await
            .map_err(|e| format!("secret {name}: {e}"))?;
        manifest.add_secret(name, &value);
    }
    let tmp = dir.join("tmp");
    tokio::fs::create_dir_all(&tmp)
        .await
        .map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    let mut env: Vec<(String, String)> = ["PATH", "HOME", "LANG", "TZ"]
        .into_iter()
        .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
        .collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    let has = |key: &str| deployment.env_vars.contains_key(key);
    if !deployment.env_process.is_empty() && !has("fprocess") && !has("function_process") {
        env.push(("fprocess".into(), deployment.env_process.clone()));
    }
    env.extend(
        deployment
            .env_vars
            .iter()
            .filter(|(k, _)| !RUNTIME_VARS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    if !has("healthcheck_interval") {
        // The runtime stops routing to a replica before stopping it: no need to linger.
        env.push(("healthcheck_interval".into(), "0".into()));
    }
    for (k, v) in [
        ("port", "0".to_string()),
        ("bind_address", "127.0.0.1".to_string()),
        ("TMPDIR", tmp.display().to_string()),
        ("K_SERVICE", deployment.service.clone()),
        ("K_CONFIGURATION", deployment.service.clone()),
        ("K_REVISION", instance.to_string()),
    ] {
        env.push((k.to_string(), v));
    }
    let write_timeout = deployment
        .env_vars
        .get("write_timeout")
        .and_then(|t| crate::config::parse_duration(t).ok())
        .unwrap_or(Duration::from_secs(30));
    Ok(Launch {
        exe: shared.exe.clone(),
        env,
        manifest,
        name: deployment.service.clone(),
        namespace: deployment.namespace.clone(),
        instance: instance.to_string(),
        start_timeout: shared.start_timeout,
        grace: write_timeout + Duration::from_secs(1),
    })
}
