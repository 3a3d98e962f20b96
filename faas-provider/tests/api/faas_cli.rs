//! Replays of faas-cli's request sequences (contract §3), with its observed bodies and
//! headers: `User-Agent: faas-cli/…`, `Content-Type: application/json` when a body is
//! sent, and `Authorization: Bearer ` with an empty token when nobody is logged in.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::common::{Harness, Reply};

/// The deploy body faas-cli 0.16.37 sent for the contract's example stack (observed).
const OBSERVED_DEPLOY: &str = r#"{"service":"fn1","image":"example/fn1:latest","envVars":{"MODEL":"llama"},"constraints":["gpu=a100"],"secrets":["hf-token"],"labels":{"com.openfaas.scale.min":"1"},"annotations":{"gpu":"1"},"limits":{"memory":"1Gi"}}"#;

async fn cli(h: &Harness, method: &str, uri: &str, body: Option<&str>) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("user-agent", "faas-cli/0.16.37")
        .header("authorization", "Bearer ");
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body
        .map(|b| Body::from(b.to_string()))
        .unwrap_or_else(Body::empty);
    h.call(request.body(body).unwrap()).await
}

/// The observed stack body with the annotations a Locus model function adds.
fn locus_deploy() -> String {
    let mut body: Value = serde_json::from_str(OBSERVED_DEPLOY).unwrap();
    body["annotations"]["locus.io/model"] = json!("resnet18");
    body["annotations"]["locus.io/weights"] = json!("zoo://resnet18?seed=42");
    body.to_string()
}

/// `faas-cli deploy`: PUT, and on 404 POST the same body; success only 200/202.
async fn deploy(h: &Harness, body: &str) -> Reply {
    let put = cli(h, "PUT", "/system/functions", Some(body)).await;
    if put.status == StatusCode::NOT_FOUND {
        return cli(h, "POST", "/system/functions", Some(body)).await;
    }
    put
}

#[tokio::test]
async fn deploy_list_describe_logs_remove_as_faas_cli_does_them() {
    let h = Harness::new().await;
    assert_eq!(
        cli(&h, "GET", "/healthz", None).await.status,
        StatusCode::OK
    ); // faas-cli ready

    // secret create hf-token (the function needs it); --from-file sends value and rawValue.
    let secret = r#"{"name":"hf-token","value":"abc","rawValue":"YWJj"}"#;
    assert_eq!(
        cli(&h, "POST", "/system/secrets", Some(secret))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    // secret create --replace: 409, then PUT.
    assert_eq!(
        cli(&h, "POST", "/system/secrets", Some(secret))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        cli(&h, "PUT", "/system/secrets", Some(secret)).await.status,
        StatusCode::ACCEPTED
    );
    let secrets = cli(&h, "GET", "/system/secrets", None).await;
    assert_eq!(
        secrets.json(),
        json!([{"name": "hf-token", "namespace": "openfaas-fn"}])
    );

    // The plain OpenFaaS body names no model: refused, saying which annotation.
    deploy(&h, OBSERVED_DEPLOY)
        .await
        .assert_error(400, "locus.io/model");

    // First deploy: PUT 404 → POST 202. Second: PUT 202 ("attempting rolling-update").
    let body = locus_deploy();
    assert_eq!(
        cli(&h, "PUT", "/system/functions", Some(&body))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        cli(&h, "POST", "/system/functions", Some(&body))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(deploy(&h, &body).await.status, StatusCode::ACCEPTED);

    // list
    let list = cli(&h, "GET", "/system/functions", None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json()[0]["name"], "fn1");

    // describe: status with usage=1, then the list for the invocation count.
    let status = cli(&h, "GET", "/system/function/fn1?usage=1", None)
        .await
        .json();
    assert!(
        status["availableReplicas"].as_u64().unwrap() > 0,
        "describe would say Not Ready"
    );
    assert_eq!(status["envVars"], json!({"MODEL": "llama"}));
    assert_eq!(status["limits"], json!({"memory": "1Gi"}));
    assert_eq!(
        cli(&h, "GET", "/system/functions", None).await.status,
        StatusCode::OK
    );

    // logs (observed query)
    let logs = cli(
        &h,
        "GET",
        "/system/logs?follow=false&name=fn1&tail=-1",
        None,
    )
    .await;
    assert_eq!(
        (logs.status, logs.header("content-type")),
        (StatusCode::OK, "application/x-ndjson")
    );

    // version
    assert_eq!(
        cli(&h, "GET", "/system/info", None).await.json()["provider"],
        "locus"
    );

    // remove, then remove again: 404 → "No existing function to remove".
    let remove = r#"{"functionName":"fn1"}"#;
    assert_eq!(
        cli(&h, "DELETE", "/system/functions", Some(remove))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        cli(&h, "DELETE", "/system/functions", Some(remove))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(cli(&h, "GET", "/system/functions", None).await.body, "[]");

    // secret remove
    let remove = r#"{"name":"hf-token"}"#;
    assert_eq!(
        cli(&h, "DELETE", "/system/secrets", Some(remove))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(cli(&h, "GET", "/system/secrets", None).await.body, "[]");
}

#[tokio::test]
async fn namespace_commands_as_the_go_sdk_sends_them() {
    let h = Harness::new().await;
    let create = r#"{"name":"team-a","labels":{"openfaas":"1"},"annotations":{"openfaas":"1"}}"#;
    assert_eq!(
        cli(&h, "POST", "/system/namespace/", Some(create))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        cli(&h, "GET", "/system/namespaces", None).await.json(),
        json!(["openfaas-fn", "team-a"])
    );
    assert_eq!(
        cli(&h, "GET", "/system/namespace/team-a", None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        cli(&h, "PUT", "/system/namespace/team-a", Some(create))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let remove = r#"{"name":"team-a","labels":{"openfaas":"1"}}"#;
    assert_eq!(
        cli(&h, "DELETE", "/system/namespace/team-a", Some(remove))
            .await
            .status,
        StatusCode::ACCEPTED
    );

    // deploy -n team-b into a namespace that does not exist.
    let mut body: Value = serde_json::from_str(&locus_deploy()).unwrap();
    body["namespace"] = json!("team-b");
    body["secrets"] = json!([]);
    deploy(&h, &body.to_string())
        .await
        .assert_error(400, "team-b");
}

#[tokio::test]
async fn the_gateway_scale_from_zero_sequence_succeeds() {
    let h = Harness::new().await;
    deploy(
        &h,
        &locus_deploy().replace(r#""secrets":["hf-token"],"#, ""),
    )
    .await;
    cli(
        &h,
        "POST",
        "/system/scale-function/fn1",
        Some(r#"{"serviceName":"fn1","replicas":0}"#),
    )
    .await;
    // GET, GET, POST scale (namespace only in the query), GET: observed order.
    assert!(gateway_status(&h).await.get("replicas").is_none());
    assert!(gateway_status(&h).await.get("replicas").is_none());
    let scale = cli(
        &h,
        "POST",
        "/system/scale-function/fn1?namespace=openfaas-fn",
        Some(r#"{"serviceName":"fn1","replicas":1}"#),
    )
    .await;
    assert_eq!(scale.status, StatusCode::ACCEPTED);
    assert_eq!(gateway_status(&h).await["availableReplicas"], 1);
}

/// The gateway's status lookup during scale from zero.
async fn gateway_status(h: &Harness) -> Value {
    cli(
        h,
        "GET",
        "/system/function/fn1?namespace=openfaas-fn&usage=false",
        None,
    )
    .await
    .json()
}
