//! The watchdog's configuration: of-watchdog's environment variables and defaults, plus the
//! Knative runtime contract's `PORT` and `K_*` variables.
//!
//! Loaded with `envy` from injected key/value pairs ([`Config::from_iter`]); envy 0.4.2
//! lower-cases keys, so `PORT` and `port` would collide there: the raw pairs are kept and
//! read directly for the few keys whose case matters (`PORT`, `TMPDIR`, `K_*`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::duration;

/// The process environment as key/value pairs, for every `Config::from_iter` of the
/// workspace. `std::env::vars()` would panic on a non-UTF-8 variable; such variables
/// are never configuration, so they are skipped.
pub fn env_pairs() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

/// How requests reach the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Start `fprocess` once and reverse-proxy to `upstream_url`.
    Http,
    /// Fork per request; stdin ← request body, stdout → response, streamed.
    Streaming,
    /// Fork per request; body and output buffered in memory.
    Serializing,
    /// Serve the files under `static_path`.
    Static,
}

impl Mode {
    /// The name as the `mode` variable spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Streaming => "streaming",
            Self::Serializing => "serializing",
            Self::Static => "static",
        }
    }
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable has a value that cannot be parsed.
    #[error("invalid value for {key}: {reason}")]
    Invalid {
        /// The variable.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A required variable is missing.
    #[error("{0}")]
    Missing(&'static str),
    /// envy could not map the pairs.
    #[error("reading environment: {0}")]
    Envy(#[from] envy::Error),
}

/// The Knative identity of this instance (`K_SERVICE`, `K_CONFIGURATION`, `K_REVISION`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Knative {
    /// `K_SERVICE`.
    pub service: Option<String>,
    /// `K_CONFIGURATION`.
    pub configuration: Option<String>,
    /// `K_REVISION`.
    pub revision: Option<String>,
}

/// The watchdog's whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `mode`: default `streaming`.
    pub mode: Mode,
    /// `fprocess` or `function_process` (the latter wins), split on whitespace.
    pub fprocess: Vec<String>,
    /// `upstream_url` or `http_upstream_url` (http mode).
    pub upstream_url: Option<String>,
    /// `exec_timeout`: default 30 s; 0 = none.
    pub exec_timeout: Option<Duration>,
    /// `read_timeout`: default 30 s (header read timeout; 0 = none).
    pub read_timeout: Duration,
    /// `write_timeout`: default 30 s; must be over 0. Also the drain deadline.
    pub write_timeout: Duration,
    /// `healthcheck_interval`: default = `write_timeout`.
    pub healthcheck_interval: Duration,
    /// `max_inflight`: 0 = unlimited.
    pub max_inflight: usize,
    /// `ready_path`: when set, `/_/ready` is passed to the function at this path.
    pub ready_path: Option<String>,
    /// `suppress_lock`: when true no lock file is written and health follows the
    /// accepting flag alone.
    pub suppress_lock: bool,
    /// Where the lock file lives: `$TMPDIR/.lock`, `/tmp/.lock` by default.
    pub lock_file: PathBuf,
    /// `content_type` for forking modes: default `application/octet-stream`.
    pub content_type: String,
    /// `prefix_logs`: default true (timestamp and `stderr:`/`stdout:` on function output).
    pub prefix_logs: bool,
    /// `log_callid`: add the `X-Call-Id` to request log lines.
    pub log_callid: bool,
    /// `http_buffer_req_body` or `buffer_http`: buffer request bodies before proxying.
    pub buffer_http_body: bool,
    /// `static_path`: default `/home/app/public`.
    pub static_path: PathBuf,
    /// Largest request body accepted, in bytes (`max_request_bytes`, a Locus extension;
    /// 0 = unlimited, as in of-watchdog). Larger requests get 413.
    pub max_request_bytes: Option<u64>,
    /// The serving port: `PORT` (Knative) when set, else `port`, else 8080.
    pub port: u16,
    /// `metrics_port`: default 8081.
    pub metrics_port: u16,
    /// Address both ports bind to (`bind_address`, a Locus extension): default `0.0.0.0`
    /// as of-watchdog; the provider's local process runtime can use `127.0.0.1`.
    pub bind_address: std::net::IpAddr,
    /// The Knative identity, used in logs and as constant metric labels.
    pub knative: Knative,
    /// Every pair the configuration was loaded from, passed on to child processes so an
    /// embedding caller's function environment reaches the function.
    pub env: Vec<(String, String)>,
}

/// The variables as envy sees them (lower-cased keys), all as text so every value is
/// validated here with a message naming the variable.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Raw {
    mode: Option<String>,
    fprocess: Option<String>,
    function_process: Option<String>,
    upstream_url: Option<String>,
    http_upstream_url: Option<String>,
    exec_timeout: Option<String>,
    read_timeout: Option<String>,
    write_timeout: Option<String>,
    healthcheck_interval: Option<String>,
    max_inflight: Option<String>,
    ready_path: Option<String>,
    suppress_lock: Option<String>,
    content_type: Option<String>,
    prefix_logs: Option<String>,
    log_callid: Option<String>,
    http_buffer_req_body: Option<String>,
    buffer_http: Option<String>,
    static_path: Option<String>,
    max_request_bytes: Option<String>,
    metrics_port: Option<String>,
    bind_address: Option<String>,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl Config {
    /// Loads from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_iter(env_pairs())
    }

    /// Loads from key/value pairs (tests pass literals; the provider passes a function's env).
    /// Named like envy's loader, which it wraps (STYLE rule 10).
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter<I, K, V>(pairs: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let env: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let raw: Raw = envy::from_iter(env.iter().cloned())?;
        let exact = |key: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };

        let mode = match raw.mode.as_deref().filter(|m| !m.is_empty()) {
            None | Some("streaming") => Mode::Streaming,
            Some("serializing") => Mode::Serializing,
            Some("http") => Mode::Http,
            Some("static") => Mode::Static,
            Some(other) => {
                return Err(invalid(
                    "mode",
                    format!("unknown mode {other:?}; use http, streaming, serializing or static"),
                ));
            }
        };
        let fprocess: Vec<String> = raw
            .function_process
            .or(raw.fprocess)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if fprocess.is_empty() && mode != Mode::Static {
            return Err(ConfigError::Missing(
                "provide a \"function_process\" or \"fprocess\" environmental variable for your function",
            ));
        }
        let upstream_url = raw
            .http_upstream_url
            .or(raw.upstream_url)
            .filter(|u| !u.is_empty());
        if mode == Mode::Http && upstream_url.is_none() {
            return Err(ConfigError::Missing(
                "For \"mode=http\" you must specify a valid URL for \"http_upstream_url\"",
            ));
        }

        let write_timeout = duration_or("write_timeout", raw.write_timeout, DEFAULT_TIMEOUT)?;
        if write_timeout.is_zero() {
            return Err(invalid(
                "write_timeout",
                "HTTP write timeout must be over 0s".into(),
            ));
        }
        let port = match exact("PORT") {
            Some(port) => parse_port("PORT", &port)?,
            None => match env.iter().rev().find(|(k, _)| k == "port") {
                Some((_, port)) => parse_port("port", port)?,
                None => 8080,
            },
        };
        let lock_dir = exact("TMPDIR").unwrap_or_else(|| "/tmp".to_string());

        Ok(Self {
            mode,
            fprocess,
            upstream_url,
            exec_timeout: Some(duration_or(
                "exec_timeout",
                raw.exec_timeout,
                DEFAULT_TIMEOUT,
            )?)
            .filter(|d| !d.is_zero()),
            read_timeout: duration_or("read_timeout", raw.read_timeout, DEFAULT_TIMEOUT)?,
            write_timeout,
            healthcheck_interval: duration_or(
                "healthcheck_interval",
                raw.healthcheck_interval,
                write_timeout,
            )?,
            max_inflight: number_or("max_inflight", raw.max_inflight, 0)?,
            ready_path: raw.ready_path.filter(|p| !p.is_empty()),
            suppress_lock: flag(raw.suppress_lock.as_deref(), false),
            lock_file: PathBuf::from(lock_dir).join(".lock"),
            content_type: raw
                .content_type
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "application/octet-stream".to_string()),
            prefix_logs: flag(raw.prefix_logs.as_deref(), true),
            log_callid: flag(raw.log_callid.as_deref(), false),
            buffer_http_body: flag(raw.http_buffer_req_body.as_deref(), false)
                || flag(raw.buffer_http.as_deref(), false),
            static_path: PathBuf::from(
                raw.static_path.unwrap_or_else(|| "/home/app/public".into()),
            ),
            max_request_bytes: Some(number_or("max_request_bytes", raw.max_request_bytes, 0)?)
                .filter(|n| *n > 0),
            port,
            metrics_port: match raw.metrics_port {
                Some(p) => parse_port("metrics_port", &p)?,
                None => 8081,
            },
            bind_address: match raw.bind_address.filter(|a| !a.is_empty()) {
                Some(a) => a
                    .trim()
                    .parse()
                    .map_err(|_| invalid("bind_address", format!("{a:?} is not an IP address")))?,
                None => std::net::IpAddr::from([0, 0, 0, 0]),
            },
            knative: Knative {
                service: exact("K_SERVICE"),
                configuration: exact("K_CONFIGURATION"),
                revision: exact("K_REVISION"),
            },
            env,
        })
    }
}

fn invalid(key: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { key, reason }
}

fn duration_or(
    key: &'static str,
    value: Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) => duration::parse(&v).map_err(|e| invalid(key, e.to_string())),
        None => Ok(default),
    }
}

fn number_or<T: std::str::FromStr>(
    key: &'static str,
    value: Option<String>,
    default: T,
) -> Result<T, ConfigError> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| invalid(key, format!("{v:?} is not a non-negative integer"))),
        None => Ok(default),
    }
}

fn parse_port(key: &'static str, value: &str) -> Result<u16, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(key, format!("{value:?} is not a port number (0-65535)")))
}

/// Go's `strconv.ParseBool` spellings; unset or unrecognised values keep `default`.
fn flag(value: Option<&str>, default: bool) -> bool {
    match value {
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => true,
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => false,
        _ => default,
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
