//! The in-process harness: a provider over a temporary state directory.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use faas_provider::config::Config;
use faas_provider::{AppState, app};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A provider app over its own temporary state directory.
pub struct Harness {
    pub state: AppState,
    app: Router,
    _dir: tempfile::TempDir,
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts a contract error: status, one plain-text line, and a message fragment.
    pub fn assert_error(&self, status: u16, fragment: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.header("content-type"), "text/plain; charset=utf-8");
        assert!(
            self.body.ends_with('\n') && self.body.trim_end().lines().count() == 1,
            "{:?}",
            self.body
        );
        assert!(
            self.body.contains(fragment),
            "{:?} lacks {fragment:?}",
            self.body
        );
    }
}

impl Harness {
    pub async fn new() -> Self {
        Self::with(&[]).await
    }

    /// A harness whose config is loaded from `pairs` (plus its own `state_dir`).
    pub async fn with(pairs: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::over(dir, pairs).await
    }

    /// A harness over an existing state directory.
    pub async fn over(dir: tempfile::TempDir, pairs: &[(&str, &str)]) -> Self {
        let mut all: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.push(("state_dir".into(), dir.path().display().to_string()));
        let config = Config::from_iter(all).unwrap();
        let state = faas_provider::server::prepare(config, prometheus::Registry::new())
            .await
            .unwrap();
        Harness {
            app: app(state.clone()),
            state,
            _dir: dir,
        }
    }

    /// The same state directory served by a router over `state` (e.g. with other seams).
    pub fn rebuild(self, state: AppState) -> Self {
        Harness {
            app: app(state.clone()),
            state,
            _dir: self._dir,
        }
    }

    /// Drops the app (closing the store) and hands back the state directory.
    pub fn into_dir(self) -> tempfile::TempDir {
        self._dir
    }

    pub async fn call(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Sends `body` (empty = no body) with `method` to `uri`.
    pub async fn send(&self, method: &str, uri: &str, body: &str) -> Reply {
        let request = Request::builder().method(method).uri(uri);
        let request = if body.is_empty() {
            request.body(Body::empty())
        } else {
            request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
        };
        self.call(request.unwrap()).await
    }

    pub async fn send_json(&self, method: &str, uri: &str, body: &Value) -> Reply {
        self.send(method, uri, &body.to_string()).await
    }

    /// Deploys `model_fn(name)`, asserting 202.
    pub async fn deploy(&self, name: &str) {
        let reply = self
            .send_json("POST", "/system/functions", &model_fn(name))
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    }

    /// Names listed by `GET /system/functions[?namespace=ns]`.
    pub async fn listed(&self, ns: Option<&str>) -> Vec<String> {
        let uri = match ns {
            Some(ns) => format!("/system/functions?namespace={ns}"),
            None => "/system/functions".to_string(),
        };
        let reply = self.send("GET", &uri, "").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// A valid model function deployment.
pub fn model_fn(name: &str) -> Value {
    json!({
        "service": name,
        "image": format!("example/{name}:latest"),
        "labels": {},
        "annotations": {
            "locus.io/model": "resnet18",
            "locus.io/weights": "zoo://resnet18?seed=1"
        }
    })
}
