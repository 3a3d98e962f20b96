//! The provider's configuration: one typed struct, loaded from environment-style pairs
//! with OpenFaaS's lower-case names (`port`, `read_timeout`, `basic_auth`, ...).
//!
//! envy 0.4.2 lower-cases keys before matching, so `READ_TIMEOUT` fills `read_timeout`
//! too. Durations accept OpenFaaS's forms: plain seconds (`30`) or a duration (`30s`,
//! `1m30s`, `500ms`); `0` disables a timeout. Defaults live here and only here. Tests load
//! from literal pairs with [`Config::from_iter`]; nothing mutates the process env.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::models::FunctionRuntime;

/// Everything `faas-provider serve` can be told.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Config {
    /// TCP port of the provider API (`port`; faasd's 8081). `0` picks a free port.
    #[serde(default = "defaults::port")]
    pub port: u16,
    /// Address to bind (`bind_address`); all interfaces by default.
    #[serde(default = "defaults::bind_address")]
    pub bind_address: IpAddr,
    /// Directory holding the database (`state_dir`); created when missing.
    #[serde(default = "defaults::state_dir")]
    pub state_dir: PathBuf,
    /// Require HTTP basic auth on the routes the contract lists (`basic_auth`).
    #[serde(default)]
    pub basic_auth: bool,
    /// Directory holding `basic-auth-user` and `basic-auth-password` (`secret_mount_path`).
    #[serde(default = "defaults::secret_mount_path")]
    pub secret_mount_path: PathBuf,
    /// Longest time to read a request body (`read_timeout`); zero = unlimited.
    #[serde(default = "defaults::timeout", deserialize_with = "duration")]
    pub read_timeout: Duration,
    /// Longest time to produce a response, and the life of a `follow=true` log stream
    /// (`write_timeout`); zero = unlimited.
    #[serde(default = "defaults::timeout", deserialize_with = "duration")]
    pub write_timeout: Duration,
    /// Largest request body accepted on `/system/*` routes, in bytes (`max_body_bytes`);
    /// larger bodies get 413.
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// What runs container functions, those without `locus.io/model`
    /// (`function_runtime`): `none` refuses them (400), `process` runs them as local
    /// watchdog processes, `fallback` forwards them to `fallback_provider_url`. When not
    /// given, `fallback` if `fallback_provider_url` is set, else `none`.
    #[serde(default)]
    pub function_runtime: FunctionRuntime,
    /// The provider container functions are forwarded to when `function_runtime=fallback`
    /// (`fallback_provider_url`), e.g. faas-netes's `http://faas-netes.openfaas:8081/`.
    #[serde(default)]
    pub fallback_provider_url: Option<String>,
    /// Longest wait for the fallback provider's response head (`fallback_timeout`); past
    /// it the caller gets 504. Zero = unlimited.
    #[serde(default = "defaults::timeout", deserialize_with = "duration")]
    pub fallback_timeout: Duration,
    /// Longest time a process replica may take to become ready, and so the longest a
    /// request to a function at zero replicas is held (`function_start_timeout`).
    #[serde(
        default = "defaults::function_start_timeout",
        deserialize_with = "duration"
    )]
    pub function_start_timeout: Duration,
    /// Log lines kept per container function for `/system/logs` (`function_log_lines`).
    #[serde(default = "defaults::function_log_lines")]
    pub function_log_lines: usize,
    /// The executable run as each replica's watchdog (`watchdog_exe`); by default this
    /// very binary (its hidden `watchdog` subcommand), so `up` needs nothing else.
    #[serde(default)]
    pub watchdog_exe: Option<PathBuf>,
}

/// The one place defaults are written down.
mod defaults {
    use super::*;

    pub fn port() -> u16 {
        8081
    }
    pub fn bind_address() -> IpAddr {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
    pub fn state_dir() -> PathBuf {
        PathBuf::from("locus-state")
    }
    pub fn secret_mount_path() -> PathBuf {
        PathBuf::from("/run/secrets/")
    }
    pub fn timeout() -> Duration {
        Duration::from_secs(60)
    }
    pub fn max_body_bytes() -> usize {
        4 * 1024 * 1024
    }
    pub fn function_start_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn function_log_lines() -> usize {
        2000
    }
}

/// A configuration that cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(#[from] envy::Error);

impl Default for Config {
    fn default() -> Self {
        Config::from_iter(std::iter::empty()).expect("the defaults are valid")
    }
}

impl Config {
    /// Loads from the process environment.
    /// Variables whose name or value is not UTF-8 are skipped (none of ours can be).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_iter(watchdog::config::env_pairs())
    }

    /// Loads from key/value pairs (keys matched case-insensitively); unknown keys are
    /// ignored, so a whole environment can be passed.
    // Named after `envy::from_iter`, as the house style asks; it is not `FromIterator`.
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter(
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let pairs: Vec<(String, String)> = pairs.into_iter().collect();
        let mut config: Config = envy::from_iter(pairs.iter().cloned())?;
        // A fallback URL alone means "use it" (the Helm chart sets only the URL).
        let runtime_given = pairs
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("function_runtime"));
        if !runtime_given && config.fallback_provider_url.is_some() {
            config.function_runtime = FunctionRuntime::Fallback;
        }
        Ok(config)
    }
}

/// Parses `30` (seconds) or a duration such as `30s`, `1m30s`, `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text).map_err(|e| format!("{text:?} is not a duration: {e}"))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_iter(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_match_faasd_and_the_contract() {
        let c = load(&[]).unwrap();
        assert_eq!(c.port, 8081);
        assert!(!c.basic_auth);
        assert_eq!(c.secret_mount_path, PathBuf::from("/run/secrets/"));
        assert_eq!(c.read_timeout, Duration::from_secs(60));
        assert_eq!(c, Config::default());
    }

    #[test]
    fn lower_case_openfaas_names_and_upper_case_names_both_fill_fields() {
        let c = load(&[
            ("port", "9000"),
            ("STATE_DIR", "/tmp/x"),
            ("basic_auth", "true"),
        ])
        .unwrap();
        assert_eq!(
            (c.port, c.state_dir, c.basic_auth),
            (9000, PathBuf::from("/tmp/x"), true)
        );
        let c = load(&[("READ_TIMEOUT", "5s"), ("write_timeout", "7")]).unwrap();
        assert_eq!(c.read_timeout, Duration::from_secs(5));
        assert_eq!(c.write_timeout, Duration::from_secs(7));
    }

    #[test]
    fn durations_accept_seconds_and_go_style_forms() {
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn malformed_values_are_errors_that_name_the_problem() {
        assert!(load(&[("port", "eighty")]).is_err());
        let err = load(&[("read_timeout", "forever")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("forever"), "{err}");
    }

    #[test]
    fn container_runtime_settings_load_and_default_to_none() {
        let c = load(&[]).unwrap();
        assert_eq!(c.function_runtime, FunctionRuntime::None);
        assert_eq!(c.fallback_provider_url, None);
        let c = load(&[
            ("function_runtime", "fallback"),
            ("fallback_provider_url", "http://127.0.0.1:9/"),
            ("function_start_timeout", "5s"),
        ])
        .unwrap();
        assert_eq!(c.function_runtime, FunctionRuntime::Fallback);
        assert_eq!(
            c.fallback_provider_url.as_deref(),
            Some("http://127.0.0.1:9/")
        );
        assert_eq!(c.function_start_timeout, Duration::from_secs(5));
        assert!(load(&[("function_runtime", "docker")]).is_err());
        let c = load(&[("fallback_provider_url", "http://f:8081/")]).unwrap();
        assert_eq!(c.function_runtime, FunctionRuntime::Fallback);
        let c = load(&[
            ("fallback_provider_url", "http://f:8081/"),
            ("FUNCTION_RUNTIME", "none"),
        ])
        .unwrap();
        assert_eq!(c.function_runtime, FunctionRuntime::None);
    }

    #[test]
    fn unrelated_keys_are_ignored() {
        assert!(load(&[("PATH", "/bin"), ("HOME", "/root")]).is_ok());
    }
}
