//! Starting function processes: the command line, the environment (the watchdog's own
//! plus `Http_*` request variables, as the Go watchdogs set them), and request log lines.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::Stdio;

use ::http::request::Parts;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::FunctionError;
use crate::config::Config;
use crate::logs::{self, Stream};

/// Settings shared by the forking modes (streaming and serializing).
#[derive(Debug)]
pub struct Forking {
    /// `true` for streaming, `false` for serializing.
    pub(super) streaming: bool,
    pub(super) launcher: Launcher,
    pub(super) content_type: String,
    pub(super) max_request_bytes: Option<u64>,
    pub(super) log_callid: bool,
}

impl Forking {
    pub(super) fn new(config: &Config) -> Self {
        Self {
            streaming: config.mode == crate::config::Mode::Streaming,
            launcher: Launcher::new(config),
            content_type: config.content_type.clone(),
            max_request_bytes: config.max_request_bytes,
            log_callid: config.log_callid,
        }
    }
}

/// How to start `fprocess`.
#[derive(Debug, Clone)]
pub(super) struct Launcher {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    prefix_logs: bool,
}

impl Launcher {
    pub(super) fn new(config: &Config) -> Self {
        Self {
            argv: config.fprocess.clone(),
            env: config.env.clone(),
            prefix_logs: config.prefix_logs,
        }
    }

    /// The program name, for messages.
    pub(super) fn program(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }

    /// Spawns the process with piped stdio and `extra_env` on top of the watchdog's
    /// environment. Its stderr is relayed to the log; it is killed if the handle drops.
    pub(super) fn spawn(
        &self,
        extra_env: Vec<(OsString, OsString)>,
    ) -> Result<Child, FunctionError> {
        let mut command = Command::new(self.program());
        command
            .args(self.argv.iter().skip(1))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra_env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| FunctionError::Spawn {
            process: self.program().to_string(),
            source,
        })?;
        if let Some(stderr) = child.stderr.take() {
            logs::relay(Stream::Stderr, stderr, self.prefix_logs);
        }
        Ok(child)
    }

    /// Spawns the long-running http-mode process: stdin reads EOF (as Knative promises),
    /// stdout and stderr are relayed to the log. It is killed if the handle drops.
    pub(super) fn spawn_server(&self) -> Result<Child, FunctionError> {
        let mut command = Command::new(self.program());
        command
            .args(self.argv.iter().skip(1))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| FunctionError::Spawn {
            process: self.program().to_string(),
            source,
        })?;
        if let Some(stdout) = child.stdout.take() {
            logs::relay(Stream::Stdout, stdout, self.prefix_logs);
        }
        if let Some(stderr) = child.stderr.take() {
            logs::relay(Stream::Stderr, stderr, self.prefix_logs);
        }
        Ok(child)
    }

    /// The arguments after the program name, for the start-up log line.
    pub(super) fn args(&self) -> &[String] {
        self.argv.get(1..).unwrap_or_default()
    }
}

/// Sends SIGTERM to `pid` (the http-mode child), as of-watchdog relays it.
pub(super) fn terminate(pid: u32) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; the pid is that
    // of a child we spawned and have not yet reaped (the supervisor reaps it), so it cannot
    // have been recycled for another process.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The `Http_*` variables for a request: every header as `Http_<Canonical_Name>` (first
/// value), `Http_Method`, `Http_Query` (when present), `Http_Path`, `Http_Host` and
/// `Http_Transfer_Encoding` (when the body is chunked).
pub(super) fn request_env(parts: &Parts) -> Vec<(OsString, OsString)> {
    let mut env = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (name, value) in &parts.headers {
        // Go promotes Host and Transfer-Encoding out of the header map.
        if name == ::http::header::HOST
            || name == ::http::header::TRANSFER_ENCODING
            || !seen.insert(name)
        {
            continue;
        }
        let key = format!("Http_{}", canonical(name.as_str()).replace('-', "_"));
        env.push((key.into(), OsString::from_vec(value.as_bytes().to_vec())));
    }
    env.push(("Http_Method".into(), parts.method.as_str().into()));
    if let Some(query) = parts.uri.query().filter(|q| !q.is_empty()) {
        env.push(("Http_Query".into(), query.into()));
    }
    env.push(("Http_Path".into(), parts.uri.path().into()));
    let host = parts
        .headers
        .get(::http::header::HOST)
        .map(|h| h.as_bytes().to_vec())
        .or_else(|| {
            parts
                .uri
                .authority()
                .map(|a| a.as_str().as_bytes().to_vec())
        });
    if let Some(host) = host {
        env.push(("Http_Host".into(), OsString::from_vec(host)));
    }
    if let Some(te) = parts.headers.get(::http::header::TRANSFER_ENCODING) {
        env.push((
            "Http_Transfer_Encoding".into(),
            OsString::from_vec(te.as_bytes().to_vec()),
        ));
    }
    env
}

/// Go's canonical header form: `x-call-id` → `X-Call-Id`.
fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// What one request log line needs, captured before the request is consumed.
#[derive(Debug, Clone)]
pub(super) struct RequestLine {
    method: String,
    uri: String,
    call_id: Option<String>,
    quiet: bool,
    pub(super) started: Instant,
}

impl RequestLine {
    pub(super) fn new(parts: &Parts, log_callid: bool, started: Instant) -> Self {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        Self {
            method: parts.method.to_string(),
            uri: parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".into(), |p| p.to_string()),
            call_id: log_callid.then(|| header("x-call-id").unwrap_or("none").to_string()),
            // Kubelet probes would flood the logs, as of-watchdog notes.
            quiet: header("user-agent").is_some_and(|ua| ua.starts_with("kube-probe")),
            started,
        }
    }

    /// Logs `POST /path - 200 - ContentLength: 11B (0.0012s) [call-id]`.
    pub(super) fn log(&self, status: u16, bytes: u64) {
        if self.quiet {
            return;
        }
        let seconds = self.started.elapsed().as_secs_f64();
        let size = logs::human_size(bytes);
        match &self.call_id {
            Some(id) => tracing::info!(
                "{} {} - {status} - ContentLength: {size} ({seconds:.4}s) [{id}]",
                self.method,
                self.uri
            ),
            None => tracing::info!(
                "{} {} - {status} - ContentLength: {size} ({seconds:.4}s)",
                self.method,
                self.uri
            ),
        }
    }

    /// Logs the classic watchdog's completion line, `Wrote 11 Bytes - Duration: 0.001234s`.
    pub(super) fn log_wrote(&self, bytes: u64) {
        tracing::info!(
            "Wrote {bytes} Bytes - Duration: {:.6}s",
            self.started.elapsed().as_secs_f64()
        );
    }
}

#[cfg(test)]
mod tests {
    use ::http::Request;

    use super::*;

    fn env_of(request: Request<()>) -> Vec<(String, String)> {
        let (parts, ()) = request.into_parts();
        request_env(&parts)
            .into_iter()
            .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
            .collect()
    }

    #[test]
    fn headers_method_query_and_path_become_http_variables() {
        let env = env_of(
            Request::post("/sub/path?testing=1")
                .header("content-type", "text/plain")
                .header("x-call-id", "abc")
                .header("host", "fn.local")
                .header("transfer-encoding", "chunked")
                .body(())
                .unwrap(),
        );
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("Http_Content_Type"), Some("text/plain"));
        assert_eq!(get("Http_X_Call_Id"), Some("abc"));
        assert_eq!(get("Http_Method"), Some("POST"));
        assert_eq!(get("Http_Query"), Some("testing=1"));
        assert_eq!(get("Http_Path"), Some("/sub/path"));
        assert_eq!(get("Http_Host"), Some("fn.local"));
        assert_eq!(get("Http_Transfer_Encoding"), Some("chunked"));
        assert_eq!(
            env.iter()
                .filter(|(k, _)| k == "Http_Transfer_Encoding")
                .count(),
            1
        );
    }

    #[test]
    fn an_empty_query_sets_no_http_query() {
        let env = env_of(Request::get("/").body(()).unwrap());
        assert!(env.iter().all(|(k, _)| k != "Http_Query"));
    }
}
