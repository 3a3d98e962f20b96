//! End-to-end harness: starts the real binaries of the workspace as separate processes
//! on port 0 and finds where they listen from the one line each prints at start-up
//! (`listening on ADDR`, any case). Processes are killed when their handle drops, so a
//! failing test leaves nothing behind.
//!
//! The binaries are the ones `cargo test --workspace --release` has just built beside
//! the test executable (`target/release/`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a process may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The path of a workspace binary built next to the running test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target profile directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo test --workspace --release builds every binary)",
        path.display()
    );
    path
}

/// A running child process, killed on drop, with its captured output.
pub struct Spawned {
    child: Child,
    /// Where it listens, read from its start-up line.
    pub addr: SocketAddr,
    /// Every line it has printed so far (stdout and stderr, interleaved).
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Spawned {
    /// Starts `cmd` and waits until it prints `listening on ADDR`.
    pub fn start(mut cmd: Command) -> Spawned {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        for stream in [Box::new(stdout) as Box<dyn std::io::Read + Send>, Box::new(stderr)] {
            let (tx, lines) = (tx.clone(), lines.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(addr) = listening_addr(&line) {
                        let _ = tx.send(addr);
                    }
                    lines.lock().expect("lines").push(line);
                }
            });
        }
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let output = lines.lock().expect("lines").join("\n");
                panic!("{cmd:?} printed no `listening on ADDR` line:\n{output}");
            }
        };
        Spawned { child, addr, lines }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// Kills the process at once (SIGKILL) and waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses `... listening on 127.0.0.1:1234 ...` (any case) into an address.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let lower = line.to_ascii_lowercase();
    let at = lower.find("listening on ")? + "listening on ".len();
    let rest = line[at..].trim_start_matches("http://");
    let token: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != ',').collect();
    token.trim_end_matches('/').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_up_line_is_parsed_in_any_of_its_spellings() {
        let want: SocketAddr = "127.0.0.1:4321".parse().expect("addr");
        assert_eq!(listening_addr("Listening on 127.0.0.1:4321"), Some(want));
        assert_eq!(listening_addr("2026-11-29T05:00:00Z INFO faas-provider listening on http://127.0.0.1:4321/"), Some(want));
        assert_eq!(listening_addr("listening on 127.0.0.1:4321, metrics on 127.0.0.1:9"), Some(want));
        assert_eq!(listening_addr("starting"), None);
    }
}
