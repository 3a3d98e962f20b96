//! `/system/namespaces` and `/system/namespace/{name}`.

use axum::http::StatusCode;
use serde_json::json;

use crate::common::{Harness, model_fn};

#[tokio::test]
async fn the_default_namespace_always_exists_and_is_listed() {
    let h = Harness::new().await;
    let reply = h.send("GET", "/system/namespaces", "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!(["openfaas-fn"]));
    let ns = h.send("GET", "/system/namespace/openfaas-fn", "").await;
    assert_eq!(
        ns.json(),
        json!({"name": "openfaas-fn", "labels": {"openfaas": "1"}})
    );
    h.send("DELETE", "/system/namespace/openfaas-fn", "")
        .await
        .assert_error(400, "default");
}

#[tokio::test]
async fn namespace_crud_answers_201_200_202_202() {
    let h = Harness::new().await;
    // go-sdk's create: POST to the bare path, openfaas=1 in labels and annotations.
    let body =
        json!({"name": "team-a", "labels": {"openfaas": "1"}, "annotations": {"openfaas": "1"}});
    assert_eq!(
        h.send_json("POST", "/system/namespace/", &body)
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        h.send("GET", "/system/namespaces", "").await.json(),
        json!(["openfaas-fn", "team-a"])
    );
    assert_eq!(
        h.send("GET", "/system/namespace/team-a", "").await.json(),
        body
    );
    let updated = json!({"name": "team-a", "labels": {"openfaas": "true", "tier": "gold"}});
    assert_eq!(
        h.send_json("PUT", "/system/namespace/team-a", &updated)
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        h.send("GET", "/system/namespace/team-a", "").await.json()["labels"]["tier"],
        "gold"
    );
    let delete = json!({"name": "team-a", "labels": {"openfaas": "1"}});
    assert_eq!(
        h.send_json("DELETE", "/system/namespace/team-a", &delete)
            .await
            .status,
        StatusCode::ACCEPTED
    );
    h.send("GET", "/system/namespace/team-a", "")
        .await
        .assert_error(404, "team-a");
    assert_eq!(
        h.send("GET", "/system/namespaces", "").await.json(),
        json!(["openfaas-fn"])
    );
}

#[tokio::test]
async fn namespace_errors_follow_the_contract() {
    let h = Harness::new().await;
    let enabled = json!({"labels": {"openfaas": "1"}});
    h.send_json("POST", "/system/namespace/a", &json!({"labels": {}}))
        .await
        .assert_error(400, "openfaas=1");
    h.send_json(
        "POST",
        "/system/namespace/a",
        &json!({"name": "b", "labels": {"openfaas": "1"}}),
    )
    .await
    .assert_error(400, "does not match");
    h.send_json("POST", "/system/namespace/", &enabled)
        .await
        .assert_error(400, "required");
    h.send_json("POST", "/system/namespace/a.b", &enabled)
        .await
        .assert_error(400, "must match");
    h.send("POST", "/system/namespace/a", "{")
        .await
        .assert_error(400, "invalid request body");
    assert_eq!(
        h.send_json("POST", "/system/namespace/a", &enabled)
            .await
            .status,
        StatusCode::CREATED
    );
    h.send_json("POST", "/system/namespace/a", &enabled)
        .await
        .assert_error(409, "already exists");
    h.send_json("PUT", "/system/namespace/ghost", &enabled)
        .await
        .assert_error(404, "ghost");
    h.send_json(
        "PUT",
        "/system/namespace/a",
        &json!({"labels": {"openfaas": "0"}}),
    )
    .await
    .assert_error(400, "openfaas=1");
    h.send("DELETE", "/system/namespace/ghost", "")
        .await
        .assert_error(404, "ghost");
    h.send("GET", "/system/namespace/", "")
        .await
        .assert_error(400, "required");
    h.send("GET", "/system/namespace/ghost", "")
        .await
        .assert_error(404, "ghost");
    // A namespace holding a function cannot go.
    let mut f = model_fn("fn1");
    f["namespace"] = json!("a");
    h.send_json("POST", "/system/functions", &f).await;
    h.send("DELETE", "/system/namespace/a", "")
        .await
        .assert_error(409, "1 function");
    assert_eq!(h.listed(Some("a")).await, ["fn1"]);
}
