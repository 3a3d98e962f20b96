//! Tests of [`Config::from_iter`] with literal pairs (never the process env).

use std::time::Duration;

use super::*;

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_iter(pairs.iter().copied())
}

#[test]
fn defaults_match_of_watchdog() {
    let c = load(&[("fprocess", "cat")]).unwrap();
    assert_eq!(c.mode, Mode::Streaming);
    assert_eq!(c.fprocess, vec!["cat"]);
    assert_eq!(c.exec_timeout, Some(Duration::from_secs(30)));
    assert_eq!(c.read_timeout, Duration::from_secs(30));
    assert_eq!(c.write_timeout, Duration::from_secs(30));
    assert_eq!(c.healthcheck_interval, Duration::from_secs(30));
    assert_eq!(c.max_inflight, 0);
    assert_eq!(c.content_type, "application/octet-stream");
    assert!(c.prefix_logs);
    assert!(!c.log_callid && !c.suppress_lock && !c.buffer_http_body);
    assert_eq!(c.port, 8080);
    assert_eq!(c.metrics_port, 8081);
    assert_eq!(c.bind_address.to_string(), "0.0.0.0");
    assert_eq!(c.lock_file, PathBuf::from("/tmp/.lock"));
    assert_eq!(c.static_path, PathBuf::from("/home/app/public"));
    assert_eq!(c.max_request_bytes, None);
    assert_eq!(c.knative, Knative::default());
}

#[test]
fn durations_accept_plain_seconds_and_go_durations_and_zero_exec_timeout_means_none() {
    let c = load(&[
        ("fprocess", "cat"),
        ("exec_timeout", "0"),
        ("read_timeout", "5"),
        ("write_timeout", "1m30s"),
    ])
    .unwrap();
    assert_eq!(c.exec_timeout, None);
    assert_eq!(c.read_timeout, Duration::from_secs(5));
    assert_eq!(c.write_timeout, Duration::from_secs(90));
    assert_eq!(
        c.healthcheck_interval,
        Duration::from_secs(90),
        "defaults to write_timeout"
    );
    let c = load(&[("fprocess", "cat"), ("healthcheck_interval", "250ms")]).unwrap();
    assert_eq!(c.healthcheck_interval, Duration::from_millis(250));
}

#[test]
fn knative_port_wins_over_the_lower_case_port() {
    assert_eq!(
        load(&[("fprocess", "cat"), ("port", "9000")]).unwrap().port,
        9000
    );
    let both = load(&[("fprocess", "cat"), ("port", "9000"), ("PORT", "9100")]).unwrap();
    assert_eq!(both.port, 9100);
    let reversed = load(&[("PORT", "9100"), ("fprocess", "cat"), ("port", "9000")]).unwrap();
    assert_eq!(reversed.port, 9100);
    assert_eq!(load(&[("fprocess", "cat"), ("PORT", "0")]).unwrap().port, 0);
}

#[test]
fn knative_identity_is_read_from_the_k_variables() {
    let c = load(&[
        ("fprocess", "cat"),
        ("K_SERVICE", "resize"),
        ("K_CONFIGURATION", "resize"),
        ("K_REVISION", "resize-00002"),
    ])
    .unwrap();
    assert_eq!(c.knative.service.as_deref(), Some("resize"));
    assert_eq!(c.knative.configuration.as_deref(), Some("resize"));
    assert_eq!(c.knative.revision.as_deref(), Some("resize-00002"));
}

#[test]
fn aliases_fill_the_same_fields_with_the_of_watchdog_precedence() {
    let c = load(&[
        ("fprocess", "cat"),
        ("function_process", "node index.js"),
        ("mode", "http"),
        ("upstream_url", "http://127.0.0.1:3000"),
        ("http_upstream_url", "http://127.0.0.1:4000"),
        ("buffer_http", "true"),
    ])
    .unwrap();
    assert_eq!(c.fprocess, vec!["node", "index.js"]);
    assert_eq!(c.upstream_url.as_deref(), Some("http://127.0.0.1:4000"));
    assert!(c.buffer_http_body);
    let c = load(&[("fprocess", "cat"), ("http_buffer_req_body", "1")]).unwrap();
    assert!(c.buffer_http_body);
}

#[test]
fn flags_use_go_boolean_spellings() {
    let c = load(&[
        ("fprocess", "cat"),
        ("prefix_logs", "false"),
        ("log_callid", "1"),
        ("suppress_lock", "true"),
        ("max_inflight", "4"),
        ("ready_path", "/ready"),
        ("content_type", "text/plain"),
        ("TMPDIR", "/var/tmp/fn"),
    ])
    .unwrap();
    assert!(!c.prefix_logs && c.log_callid && c.suppress_lock);
    assert_eq!(c.max_inflight, 4);
    assert_eq!(c.ready_path.as_deref(), Some("/ready"));
    assert_eq!(c.content_type, "text/plain");
    assert_eq!(c.lock_file, PathBuf::from("/var/tmp/fn/.lock"));
}

#[test]
fn static_mode_needs_no_fprocess_but_other_modes_do() {
    assert_eq!(load(&[("mode", "static")]).unwrap().mode, Mode::Static);
    let err = load(&[("mode", "serializing")]).unwrap_err();
    assert!(err.to_string().contains("fprocess"), "{err}");
    let err = load(&[("fprocess", "  ")]).unwrap_err();
    assert!(matches!(err, ConfigError::Missing(_)));
}

#[test]
fn http_mode_needs_an_upstream_url() {
    let err = load(&[("fprocess", "node"), ("mode", "http")]).unwrap_err();
    assert!(err.to_string().contains("http_upstream_url"), "{err}");
}

#[test]
fn bad_values_are_refused_naming_the_variable() {
    for (key, value) in [
        ("exec_timeout", "soon"),
        ("write_timeout", "0"),
        ("max_inflight", "-1"),
        ("port", "http"),
        ("PORT", "70000"),
        ("mode", "afterburn"),
        ("metrics_port", "x"),
        ("bind_address", "localhost"),
    ] {
        let err = load(&[("fprocess", "cat"), (key, value)]).unwrap_err();
        assert!(err.to_string().contains(key), "{key}={value}: {err}");
    }
}

#[test]
fn the_given_pairs_are_kept_for_child_processes() {
    let c = load(&[("fprocess", "cat"), ("greeting", "hello")]).unwrap();
    assert!(
        c.env
            .contains(&("greeting".to_string(), "hello".to_string()))
    );
}

#[test]
fn bind_address_can_restrict_the_ports_to_loopback() {
    let c = load(&[("fprocess", "cat"), ("bind_address", "127.0.0.1")]).unwrap();
    assert!(c.bind_address.is_loopback());
}
