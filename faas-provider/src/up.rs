//! `faas-provider up`: the whole of Locus on one machine with no GPU. In one process:
//! `--workers` in-process gpu-workers (each with `--devices-per-worker` CPU devices of
//! `--device-memory`, `--backend candle|emulated`) on loopback ports, the provider's
//! data plane over them, and the provider API on 127.0.0.1:8080, where faas-cli looks
//! when given no `--gateway`. It faces clients as an OpenFaaS gateway would:
//! `/system/info` in the gateway's wrapper shape, and `X-Call-Id` and `X-Start-Time` on
//! every invocation answer.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clap::Args;
use prometheus::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{app, provider_info};
use crate::config::Config;
use crate::dispatch::DispatchConfig;
use crate::server::{self, ServerError};

/// `faas-provider up` flags; everything else comes from the environment as for `serve`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Port of the provider API on 127.0.0.1 (faas-cli's default gateway port).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// In-process workers to start.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// CPU devices per worker.
    #[arg(long, default_value_t = 2)]
    pub devices_per_worker: usize,
    /// Memory of each device (`2GiB`, `512Mi`, bytes).
    #[arg(long, default_value = "2GiB")]
    pub device_memory: String,
    /// Model backend: `candle` (real models) or `emulated` (timings from profiles).
    #[arg(long, default_value = "candle")]
    pub backend: String,
    /// Where functions, secrets and namespaces are kept (default: `state_dir`).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

/// Why `up` could not start.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    /// A flag or setting is wrong.
    #[error("{0}")]
    Config(String),
    /// An in-process worker failed to start.
    #[error("worker: {0}")]
    Worker(#[from] gpu_worker::StartError),
    /// The provider failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A socket could not be bound.
    #[error("cannot bind: {0}")]
    Io(#[from] std::io::Error),
}

/// Starts the workers, then serves the provider on `listener` until `shutdown`.
/// `env` is the environment (`Config` and `DispatchConfig` keys, and worker keys
/// such as `emulated_time_scale`); the flags override it.
pub async fn run(
    listener: TcpListener,
    args: UpArgs,
    env: Vec<(String, String)>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), UpError> {
    let mut config = Config::from_iter(env.clone()).map_err(|e| UpError::Config(e.to_string()))?;
    if let Some(dir) = &args.state_dir {
        config.state_dir = dir.clone();
    }
    // Container functions run as local watchdog processes unless told otherwise.
    if !env
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("function_runtime"))
    {
        config.function_runtime = crate::models::FunctionRuntime::Process;
    }
    let (stop, stopped) = watch::channel(false);
    let mut urls = Vec::new();
    for _ in 0..args.workers {
        let worker_env = env.iter().cloned().chain([
            (
                "devices".to_string(),
                format!("cpu:{}", args.devices_per_worker),
            ),
            ("device_memory".to_string(), args.device_memory.clone()),
            ("backend".to_string(), args.backend.clone()),
            ("probe_period".to_string(), "0s".to_string()),
        ]);
        let worker_config = gpu_worker::config::Config::from_iter(worker_env)
            .map_err(|e| UpError::Config(format!("worker: {e}")))?;
        let worker_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        urls.push(format!("http://{}", worker_listener.local_addr()?));
        let mut stopped = stopped.clone();
        let state = gpu_worker::build(&worker_config, &Registry::new())?;
        tokio::spawn(async move {
            let signal = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = gpu_worker::serve(worker_listener, state, signal).await {
                tracing::error!(error = %e, "in-process worker failed");
            }
        });
    }
    let mut dispatch =
        DispatchConfig::from_iter(env).map_err(|e| UpError::Config(e.to_string()))?;
    dispatch.workers = urls.join(",");
    let state = server::prepare(config, Registry::new()).await?;
    let (state, plane) = server::attach_dataplane(state, &dispatch, true)
        .map_err(|e| UpError::Config(e.to_string()))?;
    let (state, processes) = crate::runtime::attach(state)
        .await
        .map_err(|e| UpError::Config(e.to_string()))?;
    let gpus = args.workers * args.devices_per_worker;
    if !plane.wait_for_gpus(gpus, Duration::from_secs(30)).await {
        return Err(UpError::Config(format!(
            "the {} in-process workers did not come up",
            args.workers
        )));
    }
    let bound = listener.local_addr()?;
    println!("listening on {bound}");
    println!("{}", banner(bound, &args));
    let face =
        axum::middleware::from_fn_with_state(state.clone(), crate::runtime::face::gateway_face);
    let router = app(state)
        .layer(face)
        .layer(axum::middleware::from_fn(gateway_info));
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await?;
    if let Some(processes) = processes {
        processes.shutdown().await;
    }
    Ok(())
}

/// The address `up` listens on by default: loopback only.
pub fn default_addr(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

/// What `up` prints once it is ready: where it listens and how to deploy.
pub fn banner(bound: SocketAddr, args: &UpArgs) -> String {
    let gateway = if bound.port() == 8080 && bound.ip().is_loopback() {
        String::new()
    } else {
        format!(" --gateway http://{bound}")
    };
    format!(
        "Locus is up: {w} workers x {d} CPU devices of {m} ({b} backend).\n\
         Deploy the example functions:   faas-cli deploy -f stack.yml{gateway}\n\
         or one model function by hand:  curl -X POST http://{bound}/system/functions -H 'Content-Type: application/json' \\\n\
         \x20   -d '{{\"service\":\"mlp\",\"image\":\"locus/mlp\",\"annotations\":{{\"locus.io/model\":\"mlp\",\"locus.io/weights\":\"zoo://mlp?seed=1\"}}}}'\n\
         Invoke it:                      curl -X POST http://{bound}/function/mlp -H 'Content-Type: application/json' \\\n\
         \x20   -d '{{\"inputs\":[{{\"name\":\"input\",\"shape\":[1,1024],\"datatype\":\"FP32\",\"data\":[...]}}]}}'",
        w = args.workers,
        d = args.devices_per_worker,
        m = args.device_memory,
        b = args.backend,
    )
}

/// `GET /system/info` as the gateway answers it: the provider's info wrapped with the
/// gateway's own version and the architecture (contract §1.8).
async fn gateway_info(request: Request, next: Next) -> Response {
    let is_info = request.method() == Method::GET && request.uri().path() == "/system/info";
    let response = next.run(request).await;
    if !is_info || response.status() != StatusCode::OK {
        return response;
    }
    let info = provider_info();
    let body = json!({
        "provider": info,
        "version": {
            "sha": info.version.sha,
            "release": info.version.release,
            "commit_message": "",
        },
        "arch": std::env::consts::ARCH,
    });
    let mut answer = (StatusCode::OK, axum::Json(body)).into_response();
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("static"),
    );
    answer
}
