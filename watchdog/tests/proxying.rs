//! `mode=http` against a real upstream server, and `mode=static`.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::routing::{any, get};
use common::{Embedded, client, get_status};
use tokio::net::TcpListener;

/// An upstream that echoes what it received, plus a slow and a teapot route.
async fn upstream() -> String {
    let app = Router::new()
        .route(
            "/echo/{*rest}",
            any(|request: Request| async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let header = |name: &str| {
                    parts
                        .headers
                        .get(name)
                        .map_or("-", |v| v.to_str().unwrap())
                        .to_string()
                };
                format!(
                    "{} {} host={} forwarded={} xff={} xfp={} body={}",
                    parts.method,
                    parts.uri,
                    header("host"),
                    header("forwarded"),
                    header("x-forwarded-for"),
                    header("x-forwarded-proto"),
                    String::from_utf8_lossy(&body)
                )
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/teapot",
            get(|| async {
                (
                    StatusCode::IM_A_TEAPOT,
                    [("x-upstream", "yes")],
                    Bytes::from_static(b"short and stout"),
                )
            }),
        )
        .route("/ready", get(|| async { StatusCode::SERVICE_UNAVAILABLE }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn http_watchdog(upstream_url: &str, extra: &[(&str, &str)]) -> Embedded {
    let mut pairs = vec![
        ("mode", "http"),
        ("fprocess", "sleep 1000"),
        ("upstream_url", upstream_url),
    ];
    pairs.extend_from_slice(extra);
    Embedded::start(&pairs).await
}

#[tokio::test]
async fn requests_are_proxied_with_path_query_body_and_forwarding_headers() {
    let wd = http_watchdog(&upstream().await, &[]).await;
    let response = client()
        .post(wd.url("/echo/a/b?x=1"))
        .header("Forwarded", "for=192.0.2.60;proto=http")
        .header("X-Forwarded-For", "192.0.2.60")
        .header("X-Forwarded-Proto", "https")
        .header("Host", "fn.example")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-duration-seconds"));
    assert_eq!(
        response.text().await.unwrap(),
        "POST /echo/a/b?x=1 host=fn.example forwarded=for=192.0.2.60;proto=http xff=192.0.2.60 xfp=https body=payload"
    );
}

#[tokio::test]
async fn upstream_status_headers_and_body_are_returned_as_is() {
    let wd = http_watchdog(&upstream().await, &[("http_buffer_req_body", "true")]).await;
    let response = client().get(wd.url("/teapot")).send().await.unwrap();
    assert_eq!(response.status(), 418);
    assert_eq!(response.headers()["x-upstream"], "yes");
    assert!(response.headers().contains_key("x-duration-seconds"));
    assert_eq!(response.text().await.unwrap(), "short and stout");
}

#[tokio::test]
async fn a_slow_upstream_gets_504_marked_internal() {
    let wd = http_watchdog(&upstream().await, &[("exec_timeout", "300ms")]).await;
    let response = client().get(wd.url("/slow")).send().await.unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(response.headers()["x-openfaas-internal"], "of-watchdog");
    let shortened = http_watchdog(&upstream().await, &[("exec_timeout", "30s")]).await;
    let response = client()
        .get(shortened.url("/slow"))
        .header("X-Timeout", "200ms")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
}

#[tokio::test]
async fn an_upstream_that_drops_connections_gets_500_marked_internal() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let wd = http_watchdog(&url, &[]).await;
    for _ in 0..2 {
        let response = client().get(wd.url("/")).send().await.unwrap();
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()["x-openfaas-internal"], "of-watchdog");
        assert!(response.headers().contains_key("x-duration-seconds"));
    }
}

#[tokio::test]
async fn a_child_that_exits_at_once_leaves_the_watchdog_unhealthy_but_answering_500() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let unused = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut pairs = vec![
        ("mode", "http"),
        ("fprocess", "false"),
        ("upstream_url", unused.as_str()),
    ];
    pairs.push(("exec_timeout", "5s"));
    let wd = Embedded::start(&pairs).await;
    let response = client().get(wd.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 500);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Upstream HTTP request error")
    );
    assert_eq!(get_status(&wd.url("/_/health")).await, 503);
}

#[tokio::test]
async fn ready_is_delegated_to_ready_path_on_the_upstream() {
    let wd = http_watchdog(&upstream().await, &[("ready_path", "/ready")]).await;
    // A function request waits for the upstream, so readiness below is not a race.
    client().get(wd.url("/teapot")).send().await.unwrap();
    assert_eq!(get_status(&wd.url("/_/health")).await, 200);
    assert_eq!(get_status(&wd.url("/_/ready")).await, 503);
}

#[tokio::test]
async fn shutdown_relays_sigterm_to_the_http_mode_child() {
    let wd = http_watchdog(
        &upstream().await,
        &[("healthcheck_interval", "50ms"), ("write_timeout", "20s")],
    )
    .await;
    client().get(wd.url("/teapot")).send().await.unwrap();
    // `sleep` dies on SIGTERM at once; without the relay, stop() would wait out its
    // 10-second grace before killing it.
    tokio::time::timeout(Duration::from_secs(5), wd.shutdown())
        .await
        .expect("run returns promptly")
        .unwrap();
}

#[tokio::test]
async fn static_mode_serves_files_index_html_and_404s() {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), "<h1>home</h1>").unwrap();
    std::fs::create_dir(site.path().join("css")).unwrap();
    std::fs::write(site.path().join("css/site.css"), "body{}").unwrap();
    let wd = Embedded::start(&[
        ("mode", "static"),
        ("static_path", site.path().to_str().unwrap()),
    ])
    .await;

    let home = client().get(wd.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert_eq!(home.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(home.text().await.unwrap(), "<h1>home</h1>");
    let css = client().get(wd.url("/css/site.css")).send().await.unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(get_status(&wd.url("/missing.txt")).await, 404);
    assert_eq!(get_status(&wd.url("/../etc/passwd")).await, 404);
    assert_eq!(
        client().post(wd.url("/")).send().await.unwrap().status(),
        405
    );
}
