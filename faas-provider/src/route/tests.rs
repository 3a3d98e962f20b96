//! The router sends each function to the plane its kind names, and answers the
//! contract's 503 for names it cannot resolve.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use time::macros::datetime;

use super::*;
use crate::types::FunctionDeployment;

/// A plane that answers 200 with its own name and counts what it was asked.
#[derive(Default)]
struct Fake {
    name: &'static str,
    invoked: AtomicUsize,
    logs: AtomicUsize,
}

impl Invoker for Fake {
    fn invoke(&self, _: Invocation) -> BoxFuture<'static, Response> {
        self.invoked.fetch_add(1, Ordering::SeqCst);
        let name = self.name;
        Box::pin(async move { (StatusCode::OK, name).into_response() })
    }
}

impl LogSource for Fake {
    fn logs(&self, _: LogRequest) -> BoxStream<'static, LogMessage> {
        self.logs.fetch_add(1, Ordering::SeqCst);
        Box::pin(futures::stream::empty())
    }
}

impl Availability for Fake {
    fn available_replicas(&self, _: &FunctionRecord) -> u64 {
        7
    }
}

fn model_record(name: &str) -> FunctionRecord {
    let annotations = [
        (models::MODEL.to_string(), "mlp".to_string()),
        (models::WEIGHTS.to_string(), "zoo://mlp?seed=1".to_string()),
    ];
    FunctionRecord {
        deployment: FunctionDeployment {
            service: name.into(),
            image: "locus/mlp".into(),
            namespace: "openfaas-fn".into(),
            annotations: Some(annotations.into_iter().collect()),
            ..Default::default()
        },
        replicas: 1,
        created_at: datetime!(2026-01-02 03:04:05 UTC),
    }
}

fn plain_record(name: &str) -> FunctionRecord {
    FunctionRecord {
        deployment: FunctionDeployment {
            service: name.into(),
            image: "example/echo".into(),
            namespace: "openfaas-fn".into(),
            ..Default::default()
        },
        replicas: 1,
        created_at: datetime!(2026-01-02 03:04:05 UTC),
    }
}

fn invocation(target: &str) -> Invocation {
    Invocation {
        target: target.to_string(),
        function: target.to_string(),
        namespace: "openfaas-fn".to_string(),
        path: "/".to_string(),
        request: Request::new(Body::empty()),
    }
}

fn setup() -> (tempfile::TempDir, Arc<Store>, Arc<Fake>, Arc<Fake>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    store.create_function(&model_record("mlp1")).unwrap();
    store.create_function(&plain_record("echo")).unwrap();
    let models = Arc::new(Fake {
        name: "models",
        ..Fake::default()
    });
    let containers = Arc::new(Fake {
        name: "containers",
        ..Fake::default()
    });
    (dir, store, models, containers)
}

async fn body(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn a_model_function_goes_to_the_model_plane() {
    let (_dir, store, models, containers) = setup();
    let router = KindRouter::new(store, models.clone()).with_containers(containers.clone());
    let response = router.invoke(invocation("mlp1")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, "models");
    assert_eq!(models.invoked.load(Ordering::SeqCst), 1);
    assert_eq!(containers.invoked.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn any_other_function_goes_to_the_container_runtime_when_one_is_plugged_in() {
    let (_dir, store, models, containers) = setup();
    let router = KindRouter::new(store, models.clone()).with_containers(containers.clone());
    assert_eq!(
        body(router.invoke(invocation("echo")).await).await,
        "containers"
    );
    assert_eq!(models.invoked.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_unknown_function_is_the_contracts_503_with_the_proxy_marker() {
    let (_dir, store, models, _) = setup();
    let router = KindRouter::new(store, models.clone());
    let response = router.invoke(invocation("nope")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["x-openfaas-internal"], "proxy");
    assert_eq!(body(response).await, "No endpoints available for: nope.\n");
    assert_eq!(models.invoked.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_container_function_without_a_runtime_has_no_endpoints() {
    let (_dir, store, models, _) = setup();
    let router = KindRouter::new(store, models.clone());
    let response = router.invoke(invocation("echo")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        router.available_replicas(&plain_record("echo")),
        0,
        "nothing can serve it"
    );
}

#[test]
fn availability_and_logs_follow_the_same_kind() {
    let (_dir, store, models, containers) = setup();
    let router = KindRouter::new(store, models.clone()).with_containers(containers.clone());
    assert_eq!(router.available_replicas(&model_record("mlp1")), 7);
    let request = |name: &str| LogRequest {
        name: name.to_string(),
        namespace: "openfaas-fn".to_string(),
        instance: None,
        since: None,
        tail: None,
        follow: false,
    };
    drop(router.logs(request("mlp1")));
    drop(router.logs(request("echo")));
    drop(router.logs(request("unknown")));
    assert_eq!(models.logs.load(Ordering::SeqCst), 1);
    assert_eq!(containers.logs.load(Ordering::SeqCst), 1);
}
