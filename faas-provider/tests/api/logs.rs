//! `/system/logs`: NDJSON, parameters, and stream ends.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use faas_provider::dataplane::{LogRequest, LogSource};
use faas_provider::types::LogMessage;
use futures::stream::BoxStream;
use time::macros::datetime;

use crate::common::Harness;

#[tokio::test]
async fn a_non_follow_request_for_a_known_function_is_an_ndjson_stream_that_ends() {
    let h = Harness::new().await;
    h.deploy("fn1").await;
    let reply = h
        .send("GET", "/system/logs?name=fn1&follow=false&tail=-1", "")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "application/x-ndjson");
    assert_eq!(reply.body, "");
}

#[tokio::test]
async fn a_follow_request_stays_open_until_write_timeout() {
    let h = Harness::with(&[("write_timeout", "1s")]).await;
    h.deploy("fn1").await;
    let start = tokio::time::Instant::now();
    let reply = h.send("GET", "/system/logs?name=fn1&follow=true", "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "application/x-ndjson");
    let open = start.elapsed();
    assert!(
        open >= Duration::from_secs(1) && open < Duration::from_secs(30),
        "open for {open:?}"
    );
}

#[tokio::test]
async fn unknown_functions_are_404_and_unparsable_parameters_422() {
    let h = Harness::new().await;
    h.deploy("fn1").await;
    h.send("GET", "/system/logs?name=ghost&follow=false", "")
        .await
        .assert_error(404, "ghost");
    for (query, fragment) in [
        ("", "name is required"),
        ("name=", "name is required"),
        ("name=fn1&tail=ten", "tail"),
        ("name=fn1&follow=maybe", "follow"),
        ("name=fn1&since=yesterday", "since"),
        ("name=a/b", "must not contain"),
    ] {
        h.send("GET", &format!("/system/logs?{query}"), "")
            .await
            .assert_error(422, fragment);
    }
}

/// A source that records what it was asked and answers two lines.
struct TwoLines(std::sync::Mutex<Option<LogRequest>>);

impl LogSource for TwoLines {
    fn logs(&self, request: LogRequest) -> BoxStream<'static, LogMessage> {
        *self.0.lock().unwrap() = Some(request.clone());
        let line = |text: &str| LogMessage {
            name: request.name.clone(),
            namespace: request.namespace.clone(),
            instance: "fn1-0".into(),
            timestamp: datetime!(2026-01-02 03:04:05.5 UTC),
            text: text.into(),
        };
        Box::pin(futures::stream::iter(vec![
            line("Forking fprocess"),
            line("Wrote 11 Bytes"),
        ]))
    }
}

#[tokio::test]
async fn parameters_reach_the_log_source_and_each_line_is_one_json_object() {
    let h = Harness::new().await;
    let source = Arc::new(TwoLines(Default::default()));
    let state = h.state.clone().with_logs(source.clone());
    let h = h.rebuild(state);
    h.deploy("fn1").await;
    let uri = "/system/logs?name=fn1&namespace=openfaas-fn&instance=fn1-0&tail=5&follow=false&since=2026-01-01T00:00:00Z&tail=7";
    let reply = h.send("GET", uri, "").await;
    let lines: Vec<serde_json::Value> = reply
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["name"], "fn1");
    assert_eq!(lines[1]["text"], "Wrote 11 Bytes");
    assert_eq!(lines[0]["timestamp"], "2026-01-02T03:04:05.5Z");
    let asked = source.0.lock().unwrap().clone().unwrap();
    assert_eq!(
        asked,
        LogRequest {
            name: "fn1".into(),
            namespace: "openfaas-fn".into(),
            instance: Some("fn1-0".into()),
            since: Some(datetime!(2026-01-01 00:00:00 UTC)),
            tail: Some(7),
            follow: false,
        }
    );
}
