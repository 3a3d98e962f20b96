//! The route table, the router and `/openapi.json` agree.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use super::*;
use crate::config::Config;
use crate::types::*;

fn document() -> Value {
    serde_json::from_str(OPENAPI_JSON).expect("openapi.json is valid JSON")
}

/// `{*rest}` in axum is `{rest}` in OpenAPI.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

async fn test_app() -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        state_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let state = crate::server::prepare(config, prometheus::Registry::new())
        .await
        .unwrap();
    (app(state), dir)
}

#[test]
fn every_route_is_documented_with_its_methods_and_nothing_else_is() {
    let doc = document();
    let documented: BTreeMap<String, BTreeSet<String>> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, ops)| {
            (
                path.clone(),
                ops.as_object().unwrap().keys().cloned().collect(),
            )
        })
        .collect();
    let served: BTreeMap<String, BTreeSet<String>> = routes()
        .iter()
        .map(|r| {
            let methods = r
                .methods
                .iter()
                .map(|m| m.as_str().to_lowercase())
                .collect();
            (openapi_path(r.path), methods)
        })
        .collect();
    assert_eq!(served, documented);
}

#[test]
fn authenticated_routes_are_documented_as_such() {
    let doc = document();
    for r in routes() {
        for m in r.methods {
            let op = &doc["paths"][openapi_path(r.path)][m.as_str().to_lowercase()];
            assert_eq!(op.get("security").is_some(), r.auth, "{m} {}", r.path);
        }
    }
}

#[tokio::test]
async fn the_router_answers_exactly_the_methods_of_the_table() {
    let (app, _dir) = test_app().await;
    let all = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::HEAD,
    ];
    for r in routes() {
        let uri = r.path.replace("{name}", "fn1").replace("{*rest}", "a/b");
        for method in &all {
            let allowed = r.methods.contains(method)
                || (*method == Method::HEAD && r.methods.contains(&Method::GET));
            let request = Request::builder()
                .method(method.clone())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let status = app.clone().oneshot(request).await.unwrap().status();
            if allowed {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
                let response = app
                    .clone()
                    .oneshot(
                        Request::builder()
                            .method(method.clone())
                            .uri(&uri)
                            .body(Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                let fallback = response
                    .headers()
                    .get("x-locus-error")
                    .is_some_and(|v| v == "route_not_found");
                assert!(!fallback, "{method} {uri} fell through to the fallback");
            } else {
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            }
        }
    }
}

/// Deserializes `example` into the wire type named by `schema`.
fn check_example(schema: &str, example: &Value) {
    let v = example.clone();
    let result = match schema {
        "FunctionDeployment" => serde_json::from_value::<FunctionDeployment>(v).map(drop),
        "FunctionStatus" => serde_json::from_value::<FunctionStatus>(v).map(drop),
        "FunctionStatusList" => serde_json::from_value::<Vec<FunctionStatus>>(v).map(drop),
        "DeleteFunctionRequest" => serde_json::from_value::<DeleteFunctionRequest>(v).map(drop),
        "ScaleServiceRequest" => serde_json::from_value::<ScaleServiceRequest>(v).map(drop),
        "Secret" => serde_json::from_value::<Secret>(v).map(drop),
        "SecretList" => serde_json::from_value::<Vec<Secret>>(v).map(drop),
        "ProviderInfo" => serde_json::from_value::<ProviderInfo>(v).map(drop),
        "FunctionNamespace" => serde_json::from_value::<FunctionNamespace>(v).map(drop),
        "NamespaceList" => serde_json::from_value::<Vec<String>>(v).map(drop),
        "LogMessage" => serde_json::from_value::<LogMessage>(v).map(drop),
        other => panic!("example for unknown schema {other}"),
    };
    result.unwrap_or_else(|e| panic!("example of {schema} does not decode: {e}"));
}

#[test]
fn every_example_body_decodes_into_its_wire_type() {
    let doc = document();
    let mut checked = 0;
    for ops in doc["paths"].as_object().unwrap().values() {
        for op in ops.as_object().unwrap().values() {
            let mut contents: Vec<&Value> = vec![&op["requestBody"]["content"]];
            if let Some(responses) = op["responses"].as_object() {
                contents.extend(responses.values().map(|r| &r["content"]));
            }
            for content in contents.into_iter().filter_map(Value::as_object) {
                for media in content.values() {
                    let (Some(schema), Some(example)) =
                        (media["schema"]["$ref"].as_str(), media.get("example"))
                    else {
                        continue;
                    };
                    check_example(schema.trim_start_matches("#/components/schemas/"), example);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 15, "only {checked} examples checked");
}

#[test]
fn the_deploy_example_is_a_deployment_the_provider_accepts() {
    let doc = document();
    let example = doc["paths"]["/system/functions"]["post"]["requestBody"]["content"]["application/json"]["example"].clone();
    let d: FunctionDeployment = serde_json::from_value(example).unwrap();
    crate::deploy::validate(d, None).expect("the documented example validates");
}

#[tokio::test]
async fn a_handler_slower_than_write_timeout_gets_a_plain_503() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        state_dir: dir.path().to_path_buf(),
        write_timeout: std::time::Duration::from_millis(100),
        ..Config::default()
    };
    let state = crate::server::prepare(config, prometheus::Registry::new())
        .await
        .unwrap();
    let slow = || async {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        "late"
    };
    let router: Router = Router::new()
        .route("/slow", axum::routing::get(slow))
        .layer(from_fn_with_state(state.clone(), write_deadline))
        .with_state(state);
    let request = Request::get("/slow").body(Body::empty()).unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["x-locus-error"], "timeout");
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .unwrap();
    assert_eq!(&body[..], b"the provider did not answer within 100ms\n");
}
