//! `/system/functions`, `/system/function/{name}`, `/system/scale-function/{name}`.

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use serde_json::json;

use crate::common::{Harness, model_fn};

#[tokio::test]
async fn an_empty_provider_lists_an_empty_json_array() {
    let h = Harness::new().await;
    let reply = h.send("GET", "/system/functions", "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.body, "[]");
}

#[tokio::test]
async fn a_deployed_function_is_listed_exactly_as_deployed_plus_faas_function() {
    let h = Harness::new().await;
    let mut body = model_fn("fn1");
    body["envProcess"] = json!("python index.py");
    body["envVars"] = json!({"A": "1"});
    body["labels"] = json!({"team": "ml"});
    body["limits"] = json!({"memory": "5Mi", "cpu": "100m"});
    body["requests"] = json!({});
    body["constraints"] = json!(["gpu=a100"]);
    let reply = h.send_json("POST", "/system/functions", &body).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.body, "");

    let list = h.send("GET", "/system/functions", "").await.json();
    let f = &list[0];
    assert_eq!(f["name"], "fn1");
    assert_eq!(f["image"], "example/fn1:latest");
    assert_eq!(f["namespace"], "openfaas-fn");
    assert_eq!(f["envProcess"], "python index.py");
    assert_eq!(f["envVars"], json!({"A": "1"}));
    assert_eq!(f["labels"], json!({"team": "ml", "faas_function": "fn1"}));
    assert_eq!(f["annotations"], body["annotations"]);
    assert_eq!(f["limits"], json!({"memory": "5Mi", "cpu": "100m"}));
    assert!(
        f.get("requests").is_none(),
        "an empty requests block is absent"
    );
    assert_eq!(f["constraints"], json!(["gpu=a100"]));
    assert_eq!(
        (f["replicas"].clone(), f["availableReplicas"].clone()),
        (json!(1), json!(1))
    );
    let created = f["createdAt"].as_str().unwrap();
    time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(f.get("invocationCount").is_none() && f.get("secrets").is_none());
}

#[tokio::test]
async fn a_function_without_env_vars_has_no_env_vars_field() {
    let h = Harness::new().await;
    h.deploy("fn1").await;
    let f = h
        .send("GET", "/system/function/fn1?usage=1", "")
        .await
        .json();
    assert!(f.get("envVars").is_none());
    assert_eq!(f["labels"], json!({"faas_function": "fn1"}));
    assert!(f["annotations"].is_object());
}

#[tokio::test]
async fn one_function_status_answers_200_and_404() {
    let h = Harness::new().await;
    h.deploy("fn1").await;
    let ok = h.send("GET", "/system/function/fn1", "").await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.json()["name"], "fn1");
    let dotted = h.send("GET", "/system/function/fn1.openfaas-fn", "").await;
    assert_eq!(dotted.json()["name"], "fn1");
    let query = h
        .send(
            "GET",
            "/system/function/fn1?namespace=openfaas-fn&usage=false",
            "",
        )
        .await;
    assert_eq!(query.status, StatusCode::OK);
    h.send("GET", "/system/function/ghost", "")
        .await
        .assert_error(404, "ghost");
    h.send("GET", "/system/function/fn1?namespace=nowhere", "")
        .await
        .assert_error(400, "nowhere");
    h.send("GET", "/system/function/fn1?namespace=a..b", "")
        .await
        .assert_error(400, "..");
}

#[tokio::test]
async fn deploy_refuses_duplicates_with_409_and_keeps_the_original() {
    let h = Harness::new().await;
    h.deploy("fn1").await;
    let mut again = model_fn("fn1");
    again["image"] = json!("other");
    h.send_json("POST", "/system/functions", &again)
        .await
        .assert_error(409, "already exists");
    assert_eq!(
        h.send("GET", "/system/function/fn1", "").await.json()["image"],
        "example/fn1:latest"
    );
}

#[tokio::test]
async fn bad_deploy_bodies_get_400_and_store_nothing() {
    let h = Harness::new().await;
    let cases = [
        ("{not json", "invalid request body"),
        ("", "empty"),
        (r#"{"service": 5, "image": "x"}"#, "invalid request body"),
        (
            r#"{"service": "fn1", "image": "x", "labels": ["a"]}"#,
            "invalid request body",
        ),
        (r#"{"image": "x"}"#, "service"),
        (r#"{"service": "fn1"}"#, "image"),
        (r#"{"service": "a/b", "image": "x"}"#, "must not contain"),
        (r#"{"service": "..", "image": "x"}"#, "must not contain"),
        (r#"{"service": "fn 1", "image": "x"}"#, "must match"),
        (r#"{"service": "fn.x", "image": "x"}"#, "must match"),
    ];
    for (body, fragment) in cases {
        h.send("POST", "/system/functions", body)
            .await
            .assert_error(400, fragment);
    }
    let mut no_model = model_fn("fn1");
    no_model["annotations"] = json!(null);
    h.send_json("POST", "/system/functions", &no_model)
        .await
        .assert_error(400, "locus.io/model");
    let mut bad_weights = model_fn("fn1");
    bad_weights["annotations"]["locus.io/weights"] = json!("ftp://x");
    h.send_json("POST", "/system/functions", &bad_weights)
        .await
        .assert_error(400, "locus.io/weights");
    let mut bad_memory = model_fn("fn1");
    bad_memory["annotations"]["locus.io/memory"] = json!("big");
    h.send_json("POST", "/system/functions", &bad_memory)
        .await
        .assert_error(400, "locus.io/memory");
    let mut bad_quantity = model_fn("fn1");
    bad_quantity["limits"] = json!({"memory": "1 Gi"});
    h.send_json("POST", "/system/functions", &bad_quantity)
        .await
        .assert_error(400, "limits.memory");
    let mut bad_scale = model_fn("fn1");
    bad_scale["labels"] = json!({"com.openfaas.scale.min": "zero"});
    h.send_json("POST", "/system/functions", &bad_scale)
        .await
        .assert_error(400, "com.openfaas.scale.min");
    let mut missing_secret = model_fn("fn1");
    missing_secret["secrets"] = json!(["nope"]);
    h.send_json("POST", "/system/functions", &missing_secret)
        .await
        .assert_error(400, "secret nope");
    let mut unknown_ns = model_fn("fn1");
    unknown_ns["namespace"] = json!("nowhere");
    h.send_json("POST", "/system/functions", &unknown_ns)
        .await
        .assert_error(400, "namespace not valid");
    assert!(h.listed(None).await.is_empty());
}

#[tokio::test]
async fn an_oversized_body_gets_413() {
    let h = Harness::with(&[("max_body_bytes", "1024")]).await;
    let mut body = model_fn("fn1");
    body["envVars"] = json!({"BIG": "x".repeat(4096)});
    h.send_json("POST", "/system/functions", &body)
        .await
        .assert_error(413, "1024");
    h.send_json(
        "PUT",
        "/system/secrets",
        &json!({"name": "s", "value": "x".repeat(4096)}),
    )
    .await
    .assert_error(413, "larger");
    assert!(h.listed(None).await.is_empty());
}

#[tokio::test]
async fn a_chunked_body_without_content_length_is_accepted() {
    let h = Harness::new().await;
    let text = model_fn("fn1").to_string();
    let (a, b) = text.split_at(text.len() / 2);
    let chunks = vec![
        Ok::<_, std::io::Error>(Bytes::from(a.to_string())),
        Ok(Bytes::from(b.to_string())),
    ];
    let request = Request::post("/system/functions")
        .header("transfer-encoding", "chunked")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    assert_eq!(h.call(request).await.status, StatusCode::ACCEPTED);
    assert_eq!(h.listed(None).await, ["fn1"]);
}

#[tokio::test]
async fn namespace_comes_from_the_body_then_the_query_then_the_default() {
    let h = Harness::new().await;
    let ns = json!({"name": "team-a", "labels": {"openfaas": "1"}});
    assert_eq!(
        h.send_json("POST", "/system/namespace/", &ns).await.status,
        StatusCode::CREATED
    );
    let mut in_body = model_fn("a");
    in_body["namespace"] = json!("team-a");
    h.send_json("POST", "/system/functions?namespace=openfaas-fn", &in_body)
        .await;
    h.send_json("POST", "/system/functions?namespace=team-a", &model_fn("b"))
        .await;
    h.send_json("POST", "/system/functions", &model_fn("c"))
        .await;
    assert_eq!(h.listed(Some("team-a")).await, ["a", "b"]);
    assert_eq!(h.listed(None).await, ["c"]);
    assert_eq!(h.listed(Some("openfaas-fn")).await, ["c"]);
    h.send("GET", "/system/functions?namespace=nowhere", "")
        .await
        .assert_error(400, "nowhere");
}

#[tokio::test]
async fn update_of_a_missing_function_is_404_and_of_an_existing_one_202() {
    let h = Harness::new().await;
    h.send_json("PUT", "/system/functions", &model_fn("fn1"))
        .await
        .assert_error(404, "fn1");
    h.deploy("fn1").await;
    let created = h.send("GET", "/system/function/fn1", "").await.json()["createdAt"].clone();
    let mut changed = model_fn("fn1");
    changed["image"] = json!("example/fn1:v2");
    changed["labels"] = json!({"com.openfaas.scale.min": "3"});
    assert_eq!(
        h.send_json("PUT", "/system/functions", &changed)
            .await
            .status,
        StatusCode::ACCEPTED
    );
    let f = h.send("GET", "/system/function/fn1", "").await.json();
    assert_eq!(
        (f["image"].clone(), f["replicas"].clone()),
        (json!("example/fn1:v2"), json!(3))
    );
    assert_eq!(f["createdAt"], created);
    let mut bad = model_fn("fn1");
    bad["annotations"]["locus.io/model"] = json!("nope");
    h.send_json("PUT", "/system/functions", &bad)
        .await
        .assert_error(400, "locus.io/model");
    assert_eq!(
        h.send("GET", "/system/function/fn1", "").await.json()["image"],
        "example/fn1:v2"
    );
}

#[tokio::test]
async fn scale_min_sets_replicas_on_deploy() {
    let h = Harness::new().await;
    let mut body = model_fn("fn1");
    body["labels"] = json!({"com.openfaas.scale.min": "2"});
    h.send_json("POST", "/system/functions", &body).await;
    let f = h.send("GET", "/system/function/fn1", "").await.json();
    assert_eq!(
        (f["replicas"].clone(), f["availableReplicas"].clone()),
        (json!(2), json!(2))
    );
}

#[tokio::test]
async fn scale_is_accepted_with_202_and_reflected_at_once() {
    let h = Harness::new().await;
    h.deploy("fn1").await;
    let reply = h
        .send_json(
            "POST",
            "/system/scale-function/fn1",
            &json!({"serviceName": "fn1", "replicas": 0}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let f = h.send("GET", "/system/function/fn1", "").await.json();
    assert!(
        f.get("replicas").is_none() && f.get("availableReplicas").is_none(),
        "zero is omitted: {f}"
    );
    // The gateway's scale-from-zero call: namespace only in the query, none in the body.
    let reply = h
        .send_json(
            "POST",
            "/system/scale-function/fn1?namespace=openfaas-fn",
            &json!({"serviceName": "fn1", "replicas": 1}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(
        h.send("GET", "/system/function/fn1", "").await.json()["replicas"],
        1
    );
    h.send_json(
        "POST",
        "/system/scale-function/ghost",
        &json!({"replicas": 1}),
    )
    .await
    .assert_error(404, "ghost");
    h.send("POST", "/system/scale-function/fn1", "{")
        .await
        .assert_error(400, "invalid request body");
    h.send_json(
        "POST",
        "/system/scale-function/fn1",
        &json!({"replicas": -1}),
    )
    .await
    .assert_error(400, "invalid");
}

#[tokio::test]
async fn delete_answers_202_then_404_and_400_for_bad_bodies() {
    let h = Harness::new().await;
    h.deploy("fn1").await;
    h.send_json(
        "DELETE",
        "/system/functions",
        &json!({"functionName": "ghost"}),
    )
    .await
    .assert_error(404, "ghost");
    h.send_json("DELETE", "/system/functions", &json!({"functionName": ""}))
        .await
        .assert_error(400, "functionName");
    h.send("DELETE", "/system/functions", "nope")
        .await
        .assert_error(400, "invalid request body");
    h.send_json(
        "DELETE",
        "/system/functions",
        &json!({"functionName": "fn1", "namespace": "x"}),
    )
    .await
    .assert_error(400, "namespace not valid");
    assert_eq!(h.listed(None).await, ["fn1"]);
    // The gateway UI's form: namespace only in the query.
    let reply = h
        .send_json(
            "DELETE",
            "/system/functions?namespace=openfaas-fn",
            &json!({"functionName": "fn1"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert!(h.listed(None).await.is_empty());
    h.send_json(
        "DELETE",
        "/system/functions",
        &json!({"functionName": "fn1"}),
    )
    .await
    .assert_error(404, "fn1");
}

#[tokio::test]
async fn null_labels_annotations_limits_and_requests_are_accepted() {
    let h = Harness::new().await;
    let body = r#"{"service":"fn1","image":"img","labels":null,"limits":null,"requests":null,"network":"",
        "annotations":{"locus.io/model":"mlp","locus.io/weights":"zoo://mlp?seed=3"}}"#;
    assert_eq!(
        h.send("POST", "/system/functions", body).await.status,
        StatusCode::ACCEPTED
    );
    let f = h.send("GET", "/system/function/fn1", "").await.json();
    assert_eq!(f["labels"], json!({"faas_function": "fn1"}));
}

#[tokio::test]
async fn committed_changes_are_broadcast_and_refused_ones_are_not() {
    use faas_provider::events::FunctionEvent;
    let h = Harness::new().await;
    let mut events = h.state.events.subscribe();
    h.deploy("fn1").await;
    h.send_json("POST", "/system/functions", &model_fn("fn1"))
        .await; // 409: no event
    h.send_json("PUT", "/system/functions", &model_fn("fn1"))
        .await;
    h.send_json(
        "POST",
        "/system/scale-function/fn1",
        &json!({"replicas": 4}),
    )
    .await;
    h.send_json(
        "DELETE",
        "/system/functions",
        &json!({"functionName": "fn1"}),
    )
    .await;
    let mut kinds = Vec::new();
    while let Ok(event) = events.try_recv() {
        assert_eq!(event.record().name(), "fn1");
        kinds.push(event.kind());
        if let FunctionEvent::Scaled(r) = event {
            assert_eq!(r.replicas, 4);
        }
    }
    assert_eq!(kinds, ["deployed", "updated", "scaled", "deleted"]);
}
