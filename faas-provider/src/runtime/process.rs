//! The process runtime: container functions as local processes of Locus's watchdog.
//!
//! [`ProcessRuntime::start`] subscribes to the committed [`FunctionEvent`]s and, in one
//! event-loop task, keeps `replicas` keeper slots per container function ([`keeper`]):
//! a deploy starts them, an update replaces them (so new secret values are read), a
//! scale adds or drops slots, a delete stops them; a lagging loop re-reads the store.
//! The runtime answers the data-plane seams for container functions: [`Invoker`]
//! (round robin over ready replicas; a function at zero is scaled to one through the
//! store, as the gateway would, and the request is held until a replica is ready),
//! [`LogSource`] (the [`LogBook`]) and [`Availability`] (replicas that serve).
//!
//! The image is recorded, never pulled: the function's `envProcess` runs on this host.
//!
//! [`keeper`]: super::keeper
//! The event loop itself is in [`super::lifecycle`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use prometheus::{IntCounterVec, Opts};
use tokio::sync::{mpsc, oneshot};

use super::RuntimeError;
use super::child::{Manifest, SUBCOMMAND};
use super::keeper::{Replicas, Shared};
use super::lifecycle::EventLoop;
use super::logbook::LogBook;
use super::proxy;
use crate::dataplane::{Availability, Invocation, Invoker, LogRequest, LogSource};
use crate::events::FunctionEvent;
use crate::state::AppState;
use crate::store::FunctionRecord;
use crate::types::{FunctionDeployment, LogMessage};

pub(super) type Key = (String, String);

/// The most processes one function gets, whatever its `replicas` says: a scale request
/// must not be able to fork-bomb the host.
pub const MAX_REPLICAS: usize = 32;

/// Why the process runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Its metrics could not be registered.
    #[error("cannot register the process runtime's metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The executable to run as the watchdog is unknown.
    #[error("cannot find the watchdog executable (set watchdog_exe): {0}")]
    Exe(std::io::Error),
    /// `function_runtime=fallback` without a usable `fallback_provider_url`.
    #[error("{0}")]
    Fallback(String),
    /// The run directory could not be prepared.
    #[error("cannot prepare {path}: {source}")]
    RunDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The process runtime's handle; cheap to clone through `Arc`.
pub struct ProcessRuntime {
    state: AppState,
    logs: LogBook,
    replicas: Arc<Mutex<HashMap<Key, Arc<Replicas>>>>,
    client: reqwest::Client,
    commands: mpsc::Sender<oneshot::Sender<()>>,
    /// Whether replicas get a private mount namespace for their secrets.
    pub isolated: bool,
}

impl std::fmt::Debug for ProcessRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessRuntime")
            .field("isolated", &self.isolated)
            .finish_non_exhaustive()
    }
}

impl ProcessRuntime {
    /// Starts the runtime for `state`'s container functions: registers its metrics, clears
    /// `<state_dir>/run`, probes whether secrets can be mounted privately (saying so at
    /// start-up either way) and starts every stored container function.
    pub async fn start(state: &AppState) -> Result<Arc<Self>, StartupError> {
        let config = state.config.clone();
        let restarts = IntCounterVec::new(
            Opts::new(
                "locus_provider_process_restarts_total",
                "Container-function replicas restarted after a crash or a failed start.",
            ),
            &["function"],
        )?;
        state.registry.register(Box::new(restarts.clone()))?;
        let exe = match &config.watchdog_exe {
            Some(path) => path.clone(),
            None => std::env::current_exe().map_err(StartupError::Exe)?,
        };
        let run_dir = config.state_dir.join("run");
        let _ = tokio::fs::remove_dir_all(&run_dir).await;
        tokio::fs::create_dir_all(&run_dir)
            .await
            .map_err(|source| StartupError::RunDir {
                path: run_dir.clone(),
                source,
            })?;
        let isolated = probe(&exe).await;
        match &isolated {
            Ok(()) => tracing::info!(
                "container functions run as local watchdog processes (images are recorded, not pulled); \
                 secrets are mounted at {} in a private mount namespace per replica",
                super::child::SECRETS_PATH
            ),
            Err(why) => tracing::warn!(
                "container functions run as local watchdog processes (images are recorded, not pulled); \
                 a private mount namespace is not available ({why}; it needs root or CAP_SYS_ADMIN), so \
                 {} is NOT provided: each replica's secrets are written under {}/<namespace>/<replica>/secrets \
                 (owner-only) and named by the secret_mount_path variable",
                super::child::SECRETS_PATH,
                run_dir.display()
            ),
        }
        let logs = LogBook::new(config.function_log_lines);
        let shared = Shared {
            store: state.store.clone(),
            logs: logs.clone(),
            exe,
            run_dir,
            isolate: isolated.is_ok(),
            start_timeout: config.function_start_timeout,
            restarts,
        };
        let (commands, received) = mpsc::channel(4);
        let runtime = Arc::new(ProcessRuntime {
            state: state.clone(),
            logs,
            replicas: Arc::default(),
            client: proxy::client(),
            commands,
            isolated: isolated.is_ok(),
        });
        let events = state.events.subscribe();
        let event_loop = EventLoop::new(shared, state.clone(), runtime.replicas.clone());
        tokio::spawn(event_loop.run(events, received));
        Ok(runtime)
    }

    /// Stops every replica (each drains, then is killed past its grace) and waits.
    pub async fn shutdown(&self) {
        let (done, stopped) = oneshot::channel();
        if self.commands.send(done).await.is_ok() {
            let _ = stopped.await;
        }
    }

    /// The log book replicas write to.
    pub fn log_book(&self) -> &LogBook {
        &self.logs
    }

    fn replicas_of(&self, namespace: &str, name: &str) -> Arc<Replicas> {
        let mut map = self.replicas.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((namespace.to_string(), name.to_string()))
            .or_default()
            .clone()
    }

    async fn serve(self: Arc<Self>, invocation: Invocation) -> Result<Response, RuntimeError> {
        let (ns, name) = (invocation.namespace.clone(), invocation.function.clone());
        let replicas = self.replicas_of(&ns, &name);
        let endpoint = match replicas.pick() {
            Some(endpoint) => endpoint,
            None => {
                self.scale_from_zero(&ns, &name).await;
                let mut ready = replicas.ready.subscribe();
                let within = self.state.config.function_start_timeout;
                let waited = tokio::time::timeout(within, ready.wait_for(|v| !v.is_empty())).await;
                match (waited, replicas.pick()) {
                    (Ok(Ok(_)), Some(endpoint)) => endpoint,
                    _ => {
                        let why = replicas.last_error().unwrap_or_else(|| {
                            format!(
                                "No replica became ready within {}.",
                                humantime::format_duration(within)
                            )
                        });
                        return Err(RuntimeError::NotReady {
                            target: invocation.target,
                            why,
                        });
                    }
                }
            }
        };
        let query = invocation
            .request
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let url = format!("http://{}{}{query}", endpoint.addr, invocation.path);
        match proxy::forward(
            &self.client,
            url,
            invocation.request,
            std::time::Duration::ZERO,
        )
        .await
        {
            Ok(response) => Ok(response),
            Err(e) => {
                tracing::warn!(function = %name, instance = %endpoint.instance, "{e}");
                // A replica that broke the exchange has most likely died: give its keeper
                // a moment to take it out of rotation, so the next request is not sent
                // to it too (it is left in rotation if it is alive after all).
                let mut ready = replicas.ready.subscribe();
                let gone = ready.wait_for(|v| v.iter().all(|e| e.addr != endpoint.addr));
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), gone).await;
                Err(RuntimeError::Unreachable(invocation.target))
            }
        }
    }

    /// A function whose desired replicas are zero is scaled to one, as the gateway's
    /// scale-from-zero does (so status shows it); others are left to their keepers.
    async fn scale_from_zero(&self, ns: &str, name: &str) {
        let (n, f) = (ns.to_string(), name.to_string());
        let Ok(record) = self.state.store.call(move |s| s.function(&n, &f)).await else {
            return;
        };
        if record.replicas > 0 {
            return;
        }
        let (n, f) = (ns.to_string(), name.to_string());
        match self
            .state
            .store
            .call(move |s| s.scale_function(&n, &f, 1))
            .await
        {
            Ok(record) => self.state.publish(FunctionEvent::Scaled(record)),
            Err(e) => tracing::warn!(function = %name, error = %e, "scale from zero failed"),
        }
    }
}

impl Invoker for Arc<ProcessRuntime> {
    fn invoke(&self, invocation: Invocation) -> BoxFuture<'static, Response> {
        let runtime = self.clone();
        Box::pin(async move {
            match runtime.serve(invocation).await {
                Ok(response) => response,
                Err(e) => e.into_response(),
            }
        })
    }
}

impl LogSource for Arc<ProcessRuntime> {
    fn logs(&self, request: LogRequest) -> BoxStream<'static, LogMessage> {
        self.logs.logs(request)
    }
}

impl Availability for Arc<ProcessRuntime> {
    fn available_replicas(&self, function: &FunctionRecord) -> u64 {
        let map = self.replicas.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(
            function.namespace().to_string(),
            function.name().to_string(),
        ))
        .map_or(0, |r| r.available())
    }
}

/// Deploy-time check of a container function for the process runtime: it needs a
/// process to run, and that program must exist on this host.
pub fn check_deployment(deployment: &FunctionDeployment) -> Result<(), String> {
    let vars = &deployment.env_vars;
    if vars.get("mode").map(String::as_str) == Some("static") {
        return Ok(());
    }
    let fprocess = vars
        .get("function_process")
        .or_else(|| vars.get("fprocess"))
        .unwrap_or(&deployment.env_process);
    let Some(program) = fprocess.split_whitespace().next() else {
        return Err(format!(
            "function {} has no fprocess: the process runtime runs the function's envProcess \
             (stack.yml `fprocess`) as a local process and never pulls its image ({})",
            deployment.service, deployment.image
        ));
    };
    if find_program(program).is_none() {
        return Err(format!(
            "fprocess program {program:?} of function {} is not found on this host's PATH: \
             the process runtime runs it here and never pulls the image ({})",
            deployment.service, deployment.image
        ));
    }
    Ok(())
}

/// Where `program` resolves: itself when it contains a `/`, else the first match on PATH.
fn find_program(program: &str) -> Option<PathBuf> {
    let exists = |p: &Path| p.is_file();
    if program.contains('/') {
        return exists(Path::new(program)).then(|| PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| exists(p))
}

/// Runs the watchdog executable once in probe mode: `Ok` when it could make a private
/// mount namespace, else why not.
async fn probe(exe: &Path) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let manifest = Manifest {
        probe: true,
        ..Manifest::default()
    };
    let mut child = tokio::process::Command::new(exe)
        .arg(SUBCOMMAND)
        .env_clear()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let _ = stdin
        .write_all(&serde_json::to_vec(&manifest).unwrap_or_default())
        .await;
    drop(stdin);
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| format!("probe failed: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&output.stderr);
        Err(text
            .trim()
            .lines()
            .last()
            .unwrap_or("probe failed")
            .to_string())
    }
}
