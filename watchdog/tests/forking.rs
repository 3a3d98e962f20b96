//! The forking modes (streaming, serializing) with real child processes: output, the
//! `Http_*` environment, failures, timeouts, limits and client disconnects.

mod common;

use std::time::Duration;

use common::{Embedded, client, get_status, script};
use futures::StreamExt;

#[tokio::test]
async fn streaming_cat_echoes_the_body_with_the_configured_content_type() {
    let wd = Embedded::start(&[("fprocess", "cat"), ("content_type", "text/plain")]).await;
    let response = client()
        .post(wd.url("/"))
        .body("hello world")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert!(response.headers().contains_key("x-duration-seconds"));
    assert_eq!(response.text().await.unwrap(), "hello world");
}

#[tokio::test]
async fn serializing_cat_answers_with_the_whole_output_and_its_length() {
    let wd = Embedded::start(&[("fprocess", "cat"), ("mode", "serializing")]).await;
    let response = client()
        .post(wd.url("/"))
        .body("hello world")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(response.content_length(), Some(11));
    assert_eq!(response.text().await.unwrap(), "hello world");
}

#[tokio::test]
async fn forked_processes_see_the_request_as_http_variables_and_the_watchdog_env() {
    let scripts = tempfile::tempdir().unwrap();
    let env = script(
        scripts.path(),
        "env.sh",
        "env | grep -E '^(Http_|greeting=)' | sort",
    );
    for mode in ["streaming", "serializing"] {
        let wd =
            Embedded::start(&[("fprocess", &env), ("mode", mode), ("greeting", "hello")]).await;
        let text = client()
            .post(wd.url("/sub/path?testing=1"))
            .header("X-Custom-Header", "yes")
            .header("Content-Type", "text/plain")
            .body("x")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for expected in [
            "Http_Method=POST",
            "Http_Query=testing=1",
            "Http_Path=/sub/path",
            "Http_X_Custom_Header=yes",
            "Http_Content_Type=text/plain",
            "greeting=hello",
        ] {
            assert!(
                text.lines().any(|l| l == expected),
                "{mode}: {expected} missing in\n{text}"
            );
        }
    }
}

#[tokio::test]
async fn streaming_output_reaches_the_client_before_the_process_exits() {
    let scripts = tempfile::tempdir().unwrap();
    let slow = script(
        scripts.path(),
        "slow.sh",
        "echo first; while [ ! -f \"$TMPDIR/go\" ]; do sleep 0.02; done; echo second",
    );
    let wd = Embedded::start(&[("fprocess", &slow)]).await;
    let response = client().get(wd.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    assert_eq!(&body.next().await.unwrap().unwrap()[..], b"first\n");
    std::fs::write(wd.dir.path().join("go"), "").unwrap();
    let rest: Vec<u8> = body.map(|c| c.unwrap().to_vec()).concat().await;
    assert_eq!(rest, b"second\n");
}

#[tokio::test]
async fn a_child_that_fails_gets_500_with_its_exit_status_and_the_next_request_is_served() {
    let scripts = tempfile::tempdir().unwrap();
    let failing = script(
        scripts.path(),
        "fail.sh",
        "echo 'something broke' >&2; exit 3",
    );
    for mode in ["streaming", "serializing"] {
        let wd = Embedded::start(&[("fprocess", &failing), ("mode", mode)]).await;
        for _ in 0..2 {
            let response = client().post(wd.url("/")).body("x").send().await.unwrap();
            assert_eq!(response.status(), 500, "{mode}");
            assert_eq!(response.headers()["x-openfaas-internal"], "of-watchdog");
            let text = response.text().await.unwrap();
            assert!(text.contains("exited with status 3"), "{mode}: {text}");
        }
        let health = client().get(wd.url("/_/health")).send().await.unwrap();
        assert_eq!(
            health.status(),
            200,
            "a failing function does not make the watchdog unhealthy"
        );
    }
}

#[tokio::test]
async fn a_missing_or_non_executable_fprocess_gets_500_naming_it_and_serving_continues() {
    let scripts = tempfile::tempdir().unwrap();
    let plain = scripts.path().join("not-executable.sh");
    std::fs::write(&plain, "#!/bin/sh\necho hi\n").unwrap();
    for fprocess in ["/nonexistent/function", plain.to_str().unwrap()] {
        for mode in ["streaming", "serializing"] {
            let wd = Embedded::start(&[("fprocess", fprocess), ("mode", mode)]).await;
            for _ in 0..2 {
                let response = client().post(wd.url("/")).body("x").send().await.unwrap();
                assert_eq!(response.status(), 500, "{mode} {fprocess}");
                let text = response.text().await.unwrap();
                assert!(text.contains("Unable to start function process"), "{text}");
                assert!(text.contains(fprocess), "{text}");
            }
        }
    }
}

#[tokio::test]
async fn a_process_past_the_exec_timeout_is_killed_and_answered_504() {
    for mode in ["streaming", "serializing"] {
        let wd = Embedded::start(&[
            ("fprocess", "sleep 30"),
            ("mode", mode),
            ("exec_timeout", "300ms"),
        ])
        .await;
        let response = client().get(wd.url("/")).send().await.unwrap();
        assert_eq!(response.status(), 504, "{mode}");
        assert_eq!(response.headers()["x-openfaas-internal"], "of-watchdog");
    }
}

#[tokio::test]
async fn x_timeout_shortens_the_exec_timeout_for_one_request() {
    let wd = Embedded::start(&[("fprocess", "sleep 30"), ("exec_timeout", "20s")]).await;
    let response = client()
        .get(wd.url("/"))
        .header("X-Timeout", "200ms")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
}

#[tokio::test]
async fn a_timeout_after_output_started_aborts_the_streamed_body() {
    let scripts = tempfile::tempdir().unwrap();
    let partial = script(scripts.path(), "partial.sh", "echo partial; sleep 30");
    let wd = Embedded::start(&[("fprocess", &partial), ("exec_timeout", "400ms")]).await;
    let response = client().get(wd.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.bytes().await.is_err(),
        "the client must see a truncated body"
    );
}

#[tokio::test]
async fn excess_concurrency_gets_429_and_ready_reports_it() {
    let scripts = tempfile::tempdir().unwrap();
    let slow = script(
        scripts.path(),
        "slow.sh",
        "echo started; while [ ! -f \"$TMPDIR/go\" ]; do sleep 0.02; done; echo done",
    );
    let wd = Embedded::start(&[("fprocess", &slow), ("max_inflight", "1")]).await;
    let first = client().get(wd.url("/")).send().await.unwrap();
    assert_eq!(first.status(), 200);

    let refused = client().get(wd.url("/")).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused.text().await.unwrap(),
        "Concurrent request limit exceeded. Max concurrent requests: 1\n"
    );
    assert_eq!(get_status(&wd.url("/_/ready")).await, 429);
    assert_eq!(get_status(&wd.url("/_/health")).await, 200);

    std::fs::write(wd.dir.path().join("go"), "").unwrap();
    assert_eq!(first.text().await.unwrap(), "started\ndone\n");
    assert_eq!(get_status(&wd.url("/_/ready")).await, 200);
    assert_eq!(get_status(&wd.url("/")).await, 200);
}

#[tokio::test]
async fn a_request_over_max_request_bytes_gets_413() {
    for mode in ["streaming", "serializing"] {
        let wd = Embedded::start(&[
            ("fprocess", "cat"),
            ("mode", mode),
            ("max_request_bytes", "10"),
        ])
        .await;
        let declared = client()
            .post(wd.url("/"))
            .body(vec![b'x'; 100])
            .send()
            .await
            .unwrap();
        assert_eq!(declared.status(), 413, "{mode} with Content-Length");
        let chunks =
            futures::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 10])));
        let chunked = client()
            .post(wd.url("/"))
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await;
        match chunked {
            Ok(response) if response.status() == 413 => {}
            Ok(response) if mode == "streaming" => {
                // cat may have echoed the first bytes before the limit was crossed; the
                // body must then be cut off rather than completed.
                assert!(
                    response.bytes().await.is_err(),
                    "{mode}: truncated body expected"
                );
            }
            other => panic!("{mode} chunked: unexpected {other:?}"),
        }
        let ok = client()
            .post(wd.url("/"))
            .body("small")
            .send()
            .await
            .unwrap();
        assert_eq!(
            ok.text().await.unwrap(),
            "small",
            "{mode}: the next request is served"
        );
    }
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_gets_its_process_killed() {
    let scripts = tempfile::tempdir().unwrap();
    let endless = script(
        scripts.path(),
        "endless.sh",
        "echo $$ > \"$TMPDIR/pid\"; exec yes",
    );
    let wd = Embedded::start(&[("fprocess", &endless), ("max_inflight", "1")]).await;
    let response = client().get(wd.url("/")).send().await.unwrap();
    let mut body = response.bytes_stream();
    assert!(!body.next().await.unwrap().unwrap().is_empty());
    let pid = std::fs::read_to_string(wd.dir.path().join("pid")).unwrap();
    let proc_path = format!("/proc/{}", pid.trim());
    drop(body);

    // The kill is asynchronous; give it a bounded moment.
    let gone = async {
        while std::path::Path::new(&proc_path).exists()
            && !std::fs::read_to_string(format!("{proc_path}/stat"))
                .unwrap_or_default()
                .contains(") Z")
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), gone)
        .await
        .expect("process killed");
    let next = client().post(wd.url("/")).body("x").send().await.unwrap();
    assert_eq!(
        next.status(),
        200,
        "the slot was released and serving continues"
    );
}

#[tokio::test]
async fn a_zero_exit_with_no_output_is_an_empty_200() {
    let wd = Embedded::start(&[("fprocess", "true")]).await;
    let response = client()
        .post(wd.url("/"))
        .body("ignored")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "");
}

#[tokio::test]
async fn metrics_count_requests_by_code_and_method() {
    let wd = Embedded::start(&[("fprocess", "cat"), ("K_SERVICE", "echo")]).await;
    client()
        .post(wd.url("/"))
        .body("x")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let text = client()
        .get(format!("http://{}/metrics", wd.metrics_addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"http_requests_total{code="200",method="post",service="echo"} 1"#),
        "{text}"
    );
    assert!(text.contains("http_requests_in_flight"), "{text}");
}

#[tokio::test]
async fn ready_path_is_passed_to_the_function() {
    let scripts = tempfile::tempdir().unwrap();
    let ready = script(
        scripts.path(),
        "ready.sh",
        "if [ \"$Http_Path\" = /ready ] && [ ! -f \"$TMPDIR/ready\" ]; then exit 1; fi; echo ok",
    );
    let wd = Embedded::start(&[
        ("fprocess", &ready),
        ("mode", "serializing"),
        ("ready_path", "/ready"),
    ])
    .await;
    assert_eq!(get_status(&wd.url("/_/ready")).await, 500);
    std::fs::write(wd.dir.path().join("ready"), "").unwrap();
    assert_eq!(get_status(&wd.url("/_/ready")).await, 200);
}

#[tokio::test]
async fn h2c_requests_are_served_on_the_same_port() {
    let wd = Embedded::start(&[("fprocess", "cat")]).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    let response = h2.post(wd.url("/")).body("over h2c").send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "over h2c");
}
