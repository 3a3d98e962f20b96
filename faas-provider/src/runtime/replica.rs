//! One replica of a container function: a child process running the hidden `watchdog`
//! subcommand ([`super::child`]) with the function's environment.
//!
//! [`start`] spawns it in its own process group, hands it the secrets on stdin, waits for
//! its `Listening on 127.0.0.1:PORT` line and its `/_/health` to answer 200, and pumps its
//! stdout and stderr into the [`LogBook`] line by line (each line bounded). [`Running`]
//! is the live replica: wait for it to exit, or stop it (SIGTERM, drain, then SIGKILL of
//! the whole group).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use time::OffsetDateTime;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use super::child::{Manifest, SUBCOMMAND};
use super::logbook::{LogBook, MAX_LINE_BYTES};
use crate::types::LogMessage;

/// Everything needed to start one replica.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The executable whose `watchdog` subcommand is run.
    pub exe: PathBuf,
    /// The replica's whole environment (the runtime's and the function's).
    pub env: Vec<(String, String)>,
    /// Secrets and where they go.
    pub manifest: Manifest,
    /// The function's name and namespace, for log lines.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// This replica's name in logs (`instance`).
    pub instance: String,
    /// Longest time to become ready.
    pub start_timeout: Duration,
    /// How long a stopping replica may drain before it is killed.
    pub grace: Duration,
}

/// Why a replica did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The process could not be spawned.
    #[error("cannot start {exe}: {source}")]
    Spawn {
        /// The executable.
        exe: String,
        /// Why.
        source: std::io::Error,
    },
    /// The process exited before it was ready.
    #[error("the replica exited before it was ready ({0}); see the function's logs")]
    Exited(String),
    /// It was not ready in time.
    #[error("the replica was not ready within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
}

/// A ready replica.
#[derive(Debug)]
pub struct Running {
    /// Where its watchdog listens.
    pub addr: SocketAddr,
    child: Child,
    pid: Option<Pid>,
    grace: Duration,
}

impl Running {
    /// Resolves when the process exits on its own.
    pub async fn exited(&mut self) -> String {
        let status = describe(self.child.wait().await);
        // Function processes it forked must not outlive it.
        if let Some(pid) = self.pid {
            let _ = killpg(pid, Signal::SIGKILL);
        }
        status
    }

    /// SIGTERM to the watchdog (it drains what it serves), then after `grace` SIGKILL to
    /// its whole process group (forked function processes included).
    pub async fn stop(mut self) {
        terminate(&mut self.child, self.grace).await;
    }
}

/// Starts a replica and waits until it is ready.
pub async fn start(launch: &Launch, logs: &LogBook) -> Result<Running, StartError> {
    let mut command = Command::new(&launch.exe);
    command
        .arg(SUBCOMMAND)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| StartError::Spawn {
        exe: launch.exe.display().to_string(),
        source,
    })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let manifest = serde_json::to_vec(&launch.manifest).expect("a manifest always encodes");
    // A replica that dies before reading its manifest is seen below, by its exit.
    let _ = stdin.write_all(&manifest).await;
    drop(stdin);
    let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
    pump(stderr, logs.clone(), launch.clone());

    let ready = async {
        let mut stdout = stdout;
        let port = loop {
            match read_line(&mut stdout).await {
                Some(line) => {
                    if let Some(port) = listening_port(&line) {
                        break port;
                    }
                    record(logs, launch, line);
                }
                None => return Err(StartError::Exited("it closed its stdout".into())),
            }
        };
        pump(stdout, logs.clone(), launch.clone());
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_healthy(addr).await;
        Ok(addr)
    };
    let outcome = tokio::select! {
        ready = tokio::time::timeout(launch.start_timeout, ready) => match ready {
            Ok(result) => result,
            Err(_) => Err(StartError::Timeout(launch.start_timeout)),
        },
        status = child.wait() => Err(StartError::Exited(describe(status))),
    };
    match outcome {
        Ok(addr) => Ok(Running {
            addr,
            pid: child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .map(Pid::from_raw),
            child,
            grace: launch.grace,
        }),
        Err(e) => {
            terminate(&mut child, Duration::ZERO).await;
            Err(e)
        }
    }
}

/// The port of a `Listening on 127.0.0.1:PORT` line.
pub fn listening_port(line: &str) -> Option<u16> {
    line.trim()
        .strip_prefix("Listening on ")?
        .rsplit_once(':')?
        .1
        .parse()
        .ok()
}

/// Polls `/_/health` until it answers 200. The watchdog has no push signal for this;
/// streaming functions are healthy at the first probe, http ones once their upstream is up.
async fn wait_healthy(addr: SocketAddr) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap_or_default();
    let url = format!("http://{addr}/_/health");
    let mut pause = Duration::from_millis(10);
    loop {
        if let Ok(r) = client.get(&url).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Copies every line of `pipe` into the log book until it closes.
fn pump<R: AsyncBufRead + Unpin + Send + 'static>(mut pipe: R, logs: LogBook, launch: Launch) {
    tokio::spawn(async move {
        while let Some(line) = read_line(&mut pipe).await {
            record(&logs, &launch, line);
        }
    });
}

fn record(logs: &LogBook, launch: &Launch, text: String) {
    logs.push(LogMessage {
        name: launch.name.clone(),
        namespace: launch.namespace.clone(),
        instance: launch.instance.clone(),
        timestamp: OffsetDateTime::now_utc(),
        text,
    });
}

/// The next line of `pipe` without its newline, at most [`MAX_LINE_BYTES`] kept (the rest
/// of a longer line is read and dropped, so a function writing gigabytes without a
/// newline costs no memory); `None` at the end.
pub async fn read_line<R: AsyncBufRead + Unpin>(pipe: &mut R) -> Option<String> {
    let mut line = Vec::new();
    let mut cut = false;
    loop {
        let available = match pipe.fill_buf().await {
            Ok(b) => b,
            Err(_) => return None,
        };
        if available.is_empty() {
            return (!line.is_empty() || cut).then(|| finish(line, cut));
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1),
            None => (available, available.len()),
        };
        let room = MAX_LINE_BYTES.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        cut |= chunk.len() > room;
        let newline = done > chunk.len();
        pipe.consume(done);
        if newline {
            return Some(finish(line, cut));
        }
    }
}

fn finish(line: Vec<u8>, cut: bool) -> String {
    let mut text = String::from_utf8_lossy(&line)
        .trim_end_matches('\r')
        .to_string();
    if cut {
        text.push_str(" [line truncated]");
    }
    text
}

fn describe(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(e) => format!("cannot wait for it: {e}"),
    }
}

async fn terminate(child: &mut Child, grace: Duration) {
    let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) else {
        return; // already reaped
    };
    let pid = Pid::from_raw(pid);
    if !grace.is_zero() {
        let _ = kill(pid, Signal::SIGTERM);
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            let _ = killpg(pid, Signal::SIGKILL);
            return;
        }
    }
    let _ = killpg(pid, Signal::SIGKILL);
    let _ = child.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_port() {
        assert_eq!(listening_port("Listening on 127.0.0.1:4321\n"), Some(4321));
        assert_eq!(listening_port("Forking fprocess."), None);
    }

    #[tokio::test]
    async fn lines_are_read_bounded_and_a_last_line_without_newline_counts() {
        let long = "x".repeat(MAX_LINE_BYTES * 3);
        let text = format!("one\r\n{long}\nlast");
        let mut reader = BufReader::with_capacity(64, text.as_bytes());
        assert_eq!(read_line(&mut reader).await.unwrap(), "one");
        let cut = read_line(&mut reader).await.unwrap();
        assert!(cut.ends_with("[line truncated]") && cut.len() < MAX_LINE_BYTES + 20);
        assert_eq!(read_line(&mut reader).await.unwrap(), "last");
        assert_eq!(read_line(&mut reader).await, None);
    }
}
