//! Basic auth: on exactly the routes contract §1.2 lists.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;

use crate::common::{Harness, model_fn};

async fn with_auth() -> (Harness, tempfile::TempDir) {
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("basic-auth-user"), "admin\n").unwrap();
    std::fs::write(secrets.path().join("basic-auth-password"), "s3cret\n").unwrap();
    let path = secrets.path().display().to_string();
    let h = Harness::with(&[("basic_auth", "true"), ("secret_mount_path", &path)]).await;
    (h, secrets)
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

async fn get(h: &Harness, uri: &str, authorization: Option<&str>) -> crate::common::Reply {
    let mut request = Request::get(uri);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    h.call(request.body(Body::empty()).unwrap()).await
}

const GUARDED: &[&str] = &[
    "/system/functions",
    "/system/function/fn1",
    "/system/info",
    "/system/secrets",
    "/system/logs?name=fn1&follow=false",
];

const OPEN: &[&str] = &[
    "/system/namespaces",
    "/system/namespace/openfaas-fn",
    "/healthz",
    "/metrics",
    "/openapi.json",
];

#[tokio::test]
async fn guarded_routes_refuse_missing_or_wrong_credentials_with_401() {
    let (h, _secrets) = with_auth().await;
    for uri in GUARDED {
        for authorization in [
            None,
            Some("Bearer "),
            Some(basic("admin", "wrong").as_str()),
            Some(basic("root", "s3cret").as_str()),
        ] {
            let reply = get(&h, uri, authorization).await;
            reply.assert_error(401, "invalid credentials");
            assert_eq!(
                reply.header("www-authenticate"),
                "Basic realm=\"Restricted\""
            );
        }
    }
    let scale = Request::post("/system/scale-function/fn1")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(h.call(scale).await.status, StatusCode::UNAUTHORIZED);
    let deploy = Request::post("/system/functions")
        .body(Body::from(model_fn("fn1").to_string()))
        .unwrap();
    assert_eq!(h.call(deploy).await.status, StatusCode::UNAUTHORIZED);
    assert!(
        h.state.store.all_functions().unwrap().is_empty(),
        "a refused deploy stored something"
    );
}

#[tokio::test]
async fn guarded_routes_accept_the_right_credentials() {
    let (h, _secrets) = with_auth().await;
    let credentials = basic("admin", "s3cret");
    let deploy = Request::post("/system/functions")
        .header("authorization", &credentials)
        .body(Body::from(model_fn("fn1").to_string()))
        .unwrap();
    assert_eq!(h.call(deploy).await.status, StatusCode::ACCEPTED);
    for uri in GUARDED {
        assert_eq!(
            get(&h, uri, Some(&credentials)).await.status,
            StatusCode::OK,
            "{uri}"
        );
    }
}

#[tokio::test]
async fn open_routes_and_invocations_need_no_credentials() {
    let (h, _secrets) = with_auth().await;
    for uri in OPEN {
        assert_eq!(get(&h, uri, None).await.status, StatusCode::OK, "{uri}");
    }
    assert_eq!(
        get(&h, "/function/fn1", None).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn without_basic_auth_an_empty_bearer_token_is_ignored() {
    let h = Harness::new().await;
    for uri in GUARDED.iter().take(4) {
        let status = get(&h, uri, Some("Bearer ")).await.status;
        assert!(
            status == StatusCode::OK || status == StatusCode::NOT_FOUND,
            "{uri}: {status}"
        );
    }
    assert_eq!(
        get(&h, "/system/functions", Some("Bearer ")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn missing_credential_files_stop_the_provider_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let config = faas_provider::config::Config::from_iter([
        ("basic_auth".to_string(), "true".to_string()),
        (
            "secret_mount_path".to_string(),
            empty.path().display().to_string(),
        ),
        ("state_dir".to_string(), dir.path().display().to_string()),
    ])
    .unwrap();
    let err = faas_provider::server::prepare(config, prometheus::Registry::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("basic-auth-user"), "{err}");
}
