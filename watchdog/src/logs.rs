//! Log lines shaped like the Go watchdogs' (`2006/01/02 15:04:05 message`), and the relay
//! of a function process's stdout/stderr into the watchdog's own logs.
//!
//! Log readers (the OpenFaaS certifier, the provider's logs route) look for lines such as
//! `Forking fprocess.` and `Wrote 11 Bytes - Duration: 0.001s` right after a timestamp, so
//! the binary formats every event as Go's `log` package does: timestamp, space, message,
//! with no level or target.

use std::fmt;
use std::io::Write;
use std::time::SystemTime;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// Which stream of the function process a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// Relays `pipe` line by line until it closes: with `prefix`, as a timestamped
/// `stderr: line` log event (of-watchdog's `prefix_logs=true`); without, the raw line on
/// the watchdog's own stdout or stderr.
pub(crate) fn relay<R>(stream: Stream, pipe: R, prefix: bool)
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(line)) if prefix => tracing::info!("{}: {line}", stream.name()),
                Ok(Some(line)) => {
                    // A failed write to our own stdio has nowhere better to be reported.
                    let _ = match stream {
                        Stream::Stdout => writeln!(std::io::stdout().lock(), "{line}"),
                        Stream::Stderr => writeln!(std::io::stderr().lock(), "{line}"),
                    };
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::info!("Error reading {}: {e}", stream.name());
                    break;
                }
            }
        }
    });
}

/// A `tracing-subscriber` timer printing UTC time as Go's `log` does: `2006/01/02 15:04:05`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoTime;

impl FormatTime for GoTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        write!(w, "{}", go_timestamp(SystemTime::now()))
    }
}

/// `2006/01/02 15:04:05` for `at`, in UTC.
pub fn go_timestamp(at: SystemTime) -> String {
    // RFC 3339 is `2006-01-02T15:04:05Z`; reshape it rather than redo calendar maths.
    let rfc = humantime::format_rfc3339_seconds(at).to_string();
    rfc.trim_end_matches('Z')
        .replacen('-', "/", 2)
        .replacen('T', " ", 1)
}

/// Installs the Go-shaped formatter on stderr as the global subscriber (for the binary;
/// embedders keep their own). `RUST_LOG` filters as usual; the default is `info`.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(GoTime)
        .with_level(false)
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Bytes in the short form of Go's `units.HumanSize`: `11B`, `1.5kB`, `2.048MB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    // Four significant digits, trailing zeros dropped, like `%.4g`.
    let decimals = match value {
        v if v >= 100.0 => 1,
        v if v >= 10.0 => 2,
        _ => 3,
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn timestamps_look_like_go_log_lines() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(go_timestamp(at), "2023/11/14 22:13:20");
    }

    #[test]
    fn sizes_read_like_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(11), "11B");
        assert_eq!(human_size(1500), "1.5kB");
        assert_eq!(human_size(2_048_000), "2.048MB");
        assert_eq!(human_size(999), "999B");
    }
}
