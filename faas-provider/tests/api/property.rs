//! A seeded random sequence of function creates, updates, scales and deletes, and of
//! secret creates and deletes (valid and not; deployments may name secrets) against an
//! in-memory model: after every step the status code is the one the model
//! predicts, and the list endpoint and the store agree with the model; after a reopen
//! of the same state directory they still do.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::common::{Harness, model_fn};

const NAMES: &[&str] = &["a", "b", "c", "d"];
const NAMESPACES: &[&str] = &["openfaas-fn", "team"];
const SECRETS: &[&str] = &["s1", "s2"];
const STEPS: usize = 400;

/// (namespace, name) → (image, replicas)
type Model = BTreeMap<(String, String), (String, u64)>;

/// Secrets that exist, as (namespace, name).
type Secrets = BTreeSet<(String, String)>;

fn deployment(
    name: &str,
    ns: &str,
    image: &str,
    scale_min: Option<u64>,
    valid: bool,
    secret: Option<&str>,
) -> Value {
    let mut body = model_fn(name);
    if let Some(secret) = secret {
        body["secrets"] = json!([secret]);
    }
    body["namespace"] = json!(ns);
    body["image"] = json!(image);
    if let Some(n) = scale_min {
        body["labels"] = json!({"com.openfaas.scale.min": n.to_string()});
    }
    if !valid {
        body["annotations"]["locus.io/model"] = json!("not-a-model");
    }
    body
}

async fn check(h: &Harness, model: &Model, secrets: &Secrets, step: usize) {
    for ns in NAMESPACES {
        let list = h
            .send("GET", &format!("/system/secrets?namespace={ns}"), "")
            .await
            .json();
        let listed: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = secrets
            .iter()
            .filter(|(n, _)| n == ns)
            .map(|(_, s)| s.as_str())
            .collect();
        assert_eq!(listed, expected, "step {step}: secrets of {ns}");
    }
    for ns in NAMESPACES {
        let list = h
            .send("GET", &format!("/system/functions?namespace={ns}"), "")
            .await
            .json();
        let listed: Vec<(String, String, u64)> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["image"].as_str().unwrap().to_string(),
                    f["replicas"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        let expected: Vec<(String, String, u64)> = model
            .iter()
            .filter(|((n, _), _)| n == ns)
            .map(|((_, name), (image, replicas))| (name.clone(), image.clone(), *replicas))
            .collect();
        assert_eq!(listed, expected, "step {step}, namespace {ns}");
    }
    let stored = h.state.store.all_functions().unwrap().len();
    assert_eq!(stored, model.len(), "step {step}: store and model disagree");
}

#[tokio::test]
async fn random_operation_sequences_keep_list_store_and_model_in_agreement() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x10c05);
    let mut h = Harness::new().await;
    let ns = json!({"name": "team", "labels": {"openfaas": "1"}});
    assert_eq!(
        h.send_json("POST", "/system/namespace/", &ns).await.status,
        StatusCode::CREATED
    );
    let mut model = Model::new();
    let mut secrets = Secrets::new();
    for step in 0..STEPS {
        let name = NAMES[rng.gen_range(0..NAMES.len())];
        let ns = NAMESPACES[rng.gen_range(0..NAMESPACES.len())];
        let key = (ns.to_string(), name.to_string());
        let exists = model.contains_key(&key);
        let model_ok = rng.gen_bool(0.85);
        let image = format!("img:{step}");
        let scale_min = rng.gen_bool(0.3).then(|| rng.gen_range(1..4));
        let secret = SECRETS[rng.gen_range(0..SECRETS.len())];
        let secret_key = (ns.to_string(), secret.to_string());
        let uses_secret = rng.gen_bool(0.3);
        // A deployment is acceptable when its annotations are valid and every secret it
        // names exists; either failure is a 400 before any existence check.
        let valid = model_ok && (!uses_secret || secrets.contains(&secret_key));
        let secret_ref = uses_secret.then_some(secret);
        let (reply, expected) = match rng.gen_range(0..6) {
            0 => {
                let body = deployment(name, ns, &image, scale_min, model_ok, secret_ref);
                let reply = h.send_json("POST", "/system/functions", &body).await;
                let expected = match (valid, exists) {
                    (false, _) => 400,
                    (true, true) => 409,
                    (true, false) => {
                        model.insert(key, (image, scale_min.unwrap_or(1)));
                        202
                    }
                };
                (reply, expected)
            }
            1 => {
                let body = deployment(name, ns, &image, scale_min, model_ok, secret_ref);
                let reply = h.send_json("PUT", "/system/functions", &body).await;
                let expected = match (valid, exists) {
                    (false, _) => 400,
                    (true, false) => 404,
                    (true, true) => {
                        let entry = model.get_mut(&key).unwrap();
                        *entry = (image, scale_min.unwrap_or(entry.1));
                        202
                    }
                };
                (reply, expected)
            }
            2 => {
                let replicas = rng.gen_range(0..5);
                let body = json!({"serviceName": name, "replicas": replicas, "namespace": ns});
                let reply = h
                    .send_json("POST", &format!("/system/scale-function/{name}"), &body)
                    .await;
                let expected = if exists {
                    model.get_mut(&key).unwrap().1 = replicas;
                    202
                } else {
                    404
                };
                (reply, expected)
            }
            4 => {
                let body = json!({"name": secret, "namespace": ns, "value": format!("v{step}")});
                let reply = h.send_json("POST", "/system/secrets", &body).await;
                let expected = if secrets.insert(secret_key) { 202 } else { 409 };
                (reply, expected)
            }
            5 => {
                let body = json!({"name": secret, "namespace": ns});
                let reply = h.send_json("DELETE", "/system/secrets", &body).await;
                let expected = if secrets.remove(&secret_key) {
                    202
                } else {
                    404
                };
                (reply, expected)
            }
            _ => {
                let body = json!({"functionName": name, "namespace": ns});
                let reply = h.send_json("DELETE", "/system/functions", &body).await;
                let expected = if model.remove(&key).is_some() {
                    202
                } else {
                    404
                };
                (reply, expected)
            }
        };
        assert_eq!(
            reply.status.as_u16(),
            expected,
            "step {step}: {}",
            reply.body
        );
        check(&h, &model, &secrets, step).await;
    }
    let dir = h.into_dir();
    h = Harness::over(dir, &[]).await;
    check(&h, &model, &secrets, STEPS).await;
}
