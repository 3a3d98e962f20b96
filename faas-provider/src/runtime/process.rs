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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use prometheus::{IntCounterVec, Opts};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::RuntimeError;
use super::child::{Manifest, SUBCOMMAND};
use super::keeper::{self, Replicas, Shared, Slot};
use super::logbook::LogBook;
use super::proxy;
use crate::dataplane::{Availability, Invocation, Invoker, LogRequest, LogSource};
use crate::events::FunctionEvent;
use crate::models::{self, FunctionKind};
use crate::state::AppState;
use crate::store::FunctionRecord;
use crate::types::{FunctionDeployment, LogMessage};

type Key = (String, String);

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
        let event_loop = EventLoop {
            shared,
            state: state.clone(),
            replicas: runtime.replicas.clone(),
            slots: HashMap::new(),
        };
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
                let waited =
                    tokio::time::timeout(within, ready.wait_for(|v| !v.is_empty())).await;
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
        proxy::forward(&self.client, url, invocation.request, std::time::Duration::ZERO)
            .await
            .map_err(|e| {
                tracing::warn!(function = %name, instance = %endpoint.instance, "{e}");
                RuntimeError::Unreachable(invocation.target)
            })
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
        map.get(&(function.namespace().to_string(), function.name().to_string()))
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
        Err(text.trim().lines().last().unwrap_or("probe failed").to_string())
    }
}

/// The task that turns committed changes into keeper slots.
struct EventLoop {
    shared: Shared,
    state: AppState,
    replicas: Arc<Mutex<HashMap<Key, Arc<Replicas>>>>,
    slots: HashMap<Key, Function>,
}

/// One container function's keepers.
struct Function {
    deployment: FunctionDeployment,
    generation: u64,
    slots: Vec<Slot>,
}

impl EventLoop {
    async fn run(
        mut self,
        mut events: broadcast::Receiver<FunctionEvent>,
        mut shutdown: mpsc::Receiver<oneshot::Sender<()>>,
    ) {
        self.resync().await;
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => self.apply(event),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.resync().await,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                done = shutdown.recv() => {
                    let stopping: Vec<Slot> =
                        self.slots.drain().flat_map(|(_, f)| f.slots).collect();
                    futures::future::join_all(stopping.into_iter().map(Slot::stop)).await;
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    break;
                }
            }
        }
    }

    /// Re-reads the store: the truth after a lag, and the starting point.
    async fn resync(&mut self) {
        let records = match self.state.store.call(|s| s.all_functions()).await {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(error = %e, "process runtime cannot read the functions");
                return;
            }
        };
        let mut seen = Vec::new();
        for record in records.into_iter().filter(is_container) {
            seen.push(key_of(&record));
            self.converge(record, false);
        }
        let gone: Vec<Key> = self
            .slots
            .keys()
            .filter(|k| !seen.contains(k))
            .cloned()
            .collect();
        for key in gone {
            self.remove(&key);
        }
    }

    fn apply(&mut self, event: FunctionEvent) {
        let record = event.record().clone();
        if !is_container(&record) {
            return;
        }
        match event {
            FunctionEvent::Deleted(_) => {
                self.remove(&key_of(&record));
                self.shared
                    .logs
                    .forget(record.namespace(), record.name());
            }
            FunctionEvent::Updated(_) => self.converge(record, true),
            FunctionEvent::Deployed(_) | FunctionEvent::Scaled(_) => self.converge(record, false),
        }
    }

    fn remove(&mut self, key: &Key) {
        if let Some(function) = self.slots.remove(key) {
            for slot in function.slots {
                tokio::spawn(slot.stop());
            }
        }
        let mut map = self.replicas.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(key);
    }

    /// Brings a function to `record`: new replicas when its deployment changed (or
    /// `restart`), then as many slots as it wants.
    fn converge(&mut self, record: FunctionRecord, restart: bool) {
        let key = key_of(&record);
        let replicas = {
            let mut map = self.replicas.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(key.clone()).or_default().clone()
        };
        let function = self.slots.entry(key).or_insert_with(|| Function {
            deployment: record.deployment.clone(),
            generation: 0,
            slots: Vec::new(),
        });
        if restart || function.deployment != record.deployment {
            function.generation += 1;
            function.deployment = record.deployment.clone();
            for slot in function.slots.drain(..) {
                tokio::spawn(slot.stop());
            }
        }
        let want = usize::try_from(record.replicas)
            .unwrap_or(usize::MAX)
            .min(MAX_REPLICAS);
        if record.replicas > MAX_REPLICAS as u64 {
            tracing::warn!(
                function = %record.name(),
                wanted = record.replicas,
                "the process runtime runs at most {MAX_REPLICAS} replicas of a function"
            );
        }
        while function.slots.len() > want {
            let slot = function.slots.pop().expect("more slots than wanted");
            tokio::spawn(slot.stop());
        }
        while function.slots.len() < want {
            let index = function.slots.len();
            function.slots.push(keeper::spawn(
                self.shared.clone(),
                replicas.clone(),
                function.deployment.clone(),
                function.generation,
                index,
            ));
        }
    }
}

fn key_of(record: &FunctionRecord) -> Key {
    (record.namespace().to_string(), record.name().to_string())
}

fn is_container(record: &FunctionRecord) -> bool {
    matches!(
        models::classify(&record.deployment),
        Ok(FunctionKind::Container)
    )
}
