//! `/system/secrets`.

use axum::http::StatusCode;
use serde_json::json;

use crate::common::{Harness, model_fn};

#[tokio::test]
async fn secrets_are_created_listed_without_values_updated_and_deleted() {
    let h = Harness::new().await;
    assert_eq!(h.send("GET", "/system/secrets", "").await.body, "[]");
    let reply = h
        .send_json(
            "POST",
            "/system/secrets",
            &json!({"name": "s1", "value": "v1"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    h.send_json(
        "POST",
        "/system/secrets",
        &json!({"name": "s2", "rawValue": "AAEC", "value": "x"}),
    )
    .await;
    let list = h.send("GET", "/system/secrets", "").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        list.json(),
        json!([{"name": "s1", "namespace": "openfaas-fn"}, {"name": "s2", "namespace": "openfaas-fn"}])
    );
    let store = h.state.store.clone();
    assert_eq!(
        store.secret_value("openfaas-fn", "s2").unwrap(),
        vec![0, 1, 2]
    );

    let reply = h
        .send_json(
            "PUT",
            "/system/secrets",
            &json!({"name": "s1", "value": "v2"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(store.secret_value("openfaas-fn", "s1").unwrap(), b"v2");
    let reply = h
        .send_json("DELETE", "/system/secrets", &json!({"name": "s1"}))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(
        h.send("GET", "/system/secrets", "").await.json(),
        json!([{"name": "s2", "namespace": "openfaas-fn"}])
    );
}

#[tokio::test]
async fn secret_errors_follow_the_contract() {
    let h = Harness::new().await;
    h.send_json(
        "POST",
        "/system/secrets",
        &json!({"name": "s1", "value": "v1"}),
    )
    .await;
    h.send_json(
        "POST",
        "/system/secrets",
        &json!({"name": "s1", "value": "v9"}),
    )
    .await
    .assert_error(409, "already exists");
    assert_eq!(
        h.state.store.secret_value("openfaas-fn", "s1").unwrap(),
        b"v1"
    );
    h.send_json(
        "PUT",
        "/system/secrets",
        &json!({"name": "ghost", "value": "v"}),
    )
    .await
    .assert_error(404, "ghost");
    h.send_json("DELETE", "/system/secrets", &json!({"name": "ghost"}))
        .await
        .assert_error(404, "ghost");
    for name in ["", "a/b", "..", "../etc/passwd", "a b"] {
        h.send_json(
            "POST",
            "/system/secrets",
            &json!({"name": name, "value": "v"}),
        )
        .await
        .assert_error(400, "secret name");
    }
    h.send("POST", "/system/secrets", "[1,2]")
        .await
        .assert_error(400, "invalid request body");
    h.send_json(
        "POST",
        "/system/secrets",
        &json!({"name": "s", "rawValue": "***"}),
    )
    .await
    .assert_error(400, "base64");
    h.send_json(
        "POST",
        "/system/secrets",
        &json!({"name": "s", "namespace": "nowhere"}),
    )
    .await
    .assert_error(400, "nowhere");
    h.send("GET", "/system/secrets?namespace=nowhere", "")
        .await
        .assert_error(400, "nowhere");
}

#[tokio::test]
async fn secrets_live_in_their_namespace_and_functions_may_use_them() {
    let h = Harness::new().await;
    h.send_json(
        "POST",
        "/system/namespace/team-a",
        &json!({"labels": {"openfaas": "1"}}),
    )
    .await;
    h.send_json(
        "POST",
        "/system/secrets?namespace=team-a",
        &json!({"name": "tok", "value": "v"}),
    )
    .await;
    assert_eq!(h.send("GET", "/system/secrets", "").await.body, "[]");
    assert_eq!(
        h.send("GET", "/system/secrets?namespace=team-a", "")
            .await
            .json(),
        json!([{"name": "tok", "namespace": "team-a"}])
    );
    let mut f = model_fn("fn1");
    f["secrets"] = json!(["tok"]);
    h.send_json("POST", "/system/functions", &f)
        .await
        .assert_error(400, "secret tok not found");
    f["namespace"] = json!("team-a");
    assert_eq!(
        h.send_json("POST", "/system/functions", &f).await.status,
        StatusCode::ACCEPTED
    );
    let status = h
        .send("GET", "/system/function/fn1?namespace=team-a", "")
        .await
        .json();
    assert_eq!(status["secrets"], json!(["tok"]));
}
