use serde_json::{Value, json};
use time::macros::datetime;

use super::*;

fn status() -> FunctionStatus {
    FunctionStatus {
        name: "fn1".into(),
        image: "example/fn1".into(),
        namespace: "openfaas-fn".into(),
        env_process: String::new(),
        env_vars: StringMap::new(),
        constraints: vec![],
        secrets: vec![],
        labels: None,
        annotations: Some(StringMap::new()),
        limits: None,
        requests: None,
        read_only_root_filesystem: false,
        invocation_count: 0.0,
        replicas: 0,
        available_replicas: 0,
        created_at: datetime!(2026-01-02 03:04:05 UTC),
        usage: None,
        kind: String::new(),
        runtime: String::new(),
        gpu: None,
    }
}

#[test]
fn zero_fields_are_omitted_and_created_at_is_always_present() {
    let v = serde_json::to_value(status()).unwrap();
    assert_eq!(
        v,
        json!({"name": "fn1", "image": "example/fn1", "namespace": "openfaas-fn",
               "annotations": {}, "createdAt": "2026-01-02T03:04:05Z"})
    );
}

#[test]
fn replicas_appear_once_non_zero() {
    let mut s = status();
    s.replicas = 2;
    s.available_replicas = 1;
    let v = serde_json::to_value(s).unwrap();
    assert_eq!(
        (v["replicas"].clone(), v["availableReplicas"].clone()),
        (json!(2), json!(1))
    );
}

#[test]
fn a_deployment_decodes_with_unknown_fields_nulls_and_missing_optionals() {
    let d: FunctionDeployment = serde_json::from_value(json!({
        "service": "fn1", "image": "img", "network": "", "registryAuth": "x",
        "labels": null, "annotations": null, "limits": null, "requests": null,
        "envVars": null, "secrets": null, "constraints": null, "envProcess": null,
        "readOnlyRootFilesystem": null
    }))
    .unwrap();
    assert_eq!(
        d,
        FunctionDeployment {
            service: "fn1".into(),
            image: "img".into(),
            ..Default::default()
        }
    );
}

#[test]
fn the_observed_faas_cli_body_round_trips_exactly() {
    let body = r#"{"service":"fn1","image":"example/fn1:latest","envVars":{"MODEL":"llama"},"constraints":["gpu=a100"],"secrets":["hf-token"],"labels":{"com.openfaas.scale.min":"1"},"annotations":{"gpu":"1"},"limits":{"memory":"1Gi"}}"#;
    let d: FunctionDeployment = serde_json::from_str(body).unwrap();
    assert_eq!(d.limits.as_ref().unwrap().memory, "1Gi");
    let back: Value = serde_json::to_value(&d).unwrap();
    assert_eq!(back, serde_json::from_str::<Value>(body).unwrap());
}

#[test]
fn empty_label_and_annotation_objects_are_kept_but_null_ones_dropped() {
    let d: FunctionDeployment = serde_json::from_value(
        json!({"service": "a", "image": "b", "labels": {}, "annotations": null}),
    )
    .unwrap();
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["labels"], json!({}));
    assert!(v.get("annotations").is_none());
}

#[test]
fn gpu_resource_keys_use_their_kubernetes_spelling() {
    let r: FunctionResources = serde_json::from_value(
        json!({"nvidia.com/gpu": "1", "amd.com/gpu": "2", "intel.com/gpu": "3"}),
    )
    .unwrap();
    assert_eq!(
        (
            r.nvidia_gpu.as_str(),
            r.amd_gpu.as_str(),
            r.intel_gpu.as_str()
        ),
        ("1", "2", "3")
    );
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        json!({"nvidia.com/gpu": "1", "amd.com/gpu": "2", "intel.com/gpu": "3"})
    );
    assert!(FunctionResources::default().is_empty());
}

#[test]
fn wrong_types_are_decode_errors() {
    assert!(serde_json::from_value::<FunctionDeployment>(json!({"service": 5})).is_err());
    assert!(serde_json::from_value::<FunctionDeployment>(json!({"labels": ["a"]})).is_err());
    assert!(serde_json::from_value::<ScaleServiceRequest>(json!({"replicas": -1})).is_err());
    assert!(serde_json::from_value::<ScaleServiceRequest>(json!({"replicas": "2"})).is_err());
}

#[test]
fn raw_value_is_base64_and_wins_over_value() {
    let s: Secret =
        serde_json::from_value(json!({"name": "s", "value": "text", "rawValue": "AAEC"})).unwrap();
    assert_eq!(s.bytes(), vec![0, 1, 2]);
    let s: Secret =
        serde_json::from_value(json!({"name": "s", "value": "text", "rawValue": null})).unwrap();
    assert_eq!(s.bytes(), b"text".to_vec());
    assert!(serde_json::from_value::<Secret>(json!({"name": "s", "rawValue": "%%%"})).is_err());
    let listed = serde_json::to_value(Secret {
        name: "s".into(),
        namespace: "n".into(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(listed, json!({"name": "s", "namespace": "n"}));
}

#[test]
fn namespaces_are_enabled_by_openfaas_1_or_true() {
    let mut ns = FunctionNamespace {
        name: "a".into(),
        ..Default::default()
    };
    assert!(!ns.is_openfaas_enabled());
    for v in ["1", "true"] {
        ns.labels.insert("openfaas".into(), v.into());
        assert!(ns.is_openfaas_enabled());
    }
    ns.labels.insert("openfaas".into(), "0".into());
    assert!(!ns.is_openfaas_enabled());
}

#[test]
fn log_messages_carry_nanosecond_rfc3339_timestamps() {
    let m = LogMessage {
        name: "fn1".into(),
        namespace: "openfaas-fn".into(),
        instance: "fn1-0".into(),
        timestamp: datetime!(2026-01-02 03:04:05.123456789 UTC),
        text: "hi".into(),
    };
    let v = serde_json::to_value(&m).unwrap();
    assert_eq!(v["timestamp"], json!("2026-01-02T03:04:05.123456789Z"));
}
