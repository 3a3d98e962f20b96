use super::*;
use crate::types::StringMap;

fn deployment(pairs: &[(&str, &str)]) -> FunctionDeployment {
    FunctionDeployment {
        service: "fn1".into(),
        image: "example/fn1".into(),
        annotations: Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<StringMap>(),
        ),
        ..Default::default()
    }
}

fn refused(pairs: &[(&str, &str)]) -> String {
    classify(&deployment(pairs)).unwrap_err().to_string()
}

#[test]
fn a_zoo_model_with_memory_is_accepted_and_parsed() {
    let kind = classify(&deployment(&[
        (MODEL, "resnet18"),
        (WEIGHTS, "zoo://resnet18?seed=7"),
        (MEMORY, "512Mi"),
    ]))
    .unwrap();
    assert_eq!(
        kind,
        FunctionKind::Model(ModelSpec {
            arch: "resnet18".into(),
            weights: WeightsUri::Zoo {
                arch: "resnet18".into(),
                seed: 7
            },
            memory_bytes: Some(512 * 1024 * 1024),
        })
    );
}

#[test]
fn file_and_http_weights_are_accepted() {
    for uri in [
        "file:///models/r.safetensors",
        "https://h.example/r.safetensors",
        "http://h:8000/x",
    ] {
        assert!(
            classify(&deployment(&[(MODEL, "mlp"), (WEIGHTS, uri)])).is_ok(),
            "{uri}"
        );
    }
}

#[test]
fn a_deployment_without_a_model_is_a_container_function() {
    let mut d = deployment(&[("com.example/team", "a")]);
    assert_eq!(classify(&d).unwrap(), FunctionKind::Container);
    d.annotations = None;
    assert_eq!(classify(&d).unwrap(), FunctionKind::Container);
    assert_eq!(
        classify(&deployment(&[(MODEL, "  ")])).unwrap(),
        FunctionKind::Container
    );
    assert_eq!(FunctionKind::Container.name(), "container");
}

#[test]
fn weights_or_memory_without_a_model_are_refused_naming_the_model_annotation() {
    for key in [WEIGHTS, MEMORY] {
        let msg = refused(&[(key, "zoo://mlp?seed=1")]);
        assert!(msg.contains(MODEL) && msg.contains(key), "{msg}");
    }
}

#[test]
fn an_unknown_locus_annotation_is_refused_whatever_the_kind() {
    let msg = refused(&[("locus.io/modle", "mlp")]);
    assert!(
        msg.contains("locus.io/modle") && msg.contains(MODEL),
        "{msg}"
    );
    let msg = refused(&[
        (MODEL, "mlp"),
        (WEIGHTS, "zoo://mlp?seed=1"),
        ("locus.io/gpu", "1"),
    ]);
    assert!(msg.contains("locus.io/gpu"), "{msg}");
}

#[test]
fn container_functions_are_admitted_only_where_something_runs_them() {
    let model = classify(&deployment(&[
        (MODEL, "mlp"),
        (WEIGHTS, "zoo://mlp?seed=1"),
    ]))
    .unwrap();
    for runtime in [
        FunctionRuntime::None,
        FunctionRuntime::Process,
        FunctionRuntime::Fallback,
    ] {
        assert!(admit(&model, runtime).is_ok());
    }
    assert!(admit(&FunctionKind::Container, FunctionRuntime::Process).is_ok());
    assert!(admit(&FunctionKind::Container, FunctionRuntime::Fallback).is_ok());
    let msg = admit(&FunctionKind::Container, FunctionRuntime::None)
        .unwrap_err()
        .to_string();
    for needle in [
        MODEL,
        "function_runtime=process",
        "function_runtime=fallback",
        "fallback_provider_url",
    ] {
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
}

/// Annotations sent, the annotation the message must name, and a fragment of the reason.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);

#[test]
fn each_malformed_annotation_is_named_with_its_reason() {
    let cases: &[Case] = &[
        (
            &[(MODEL, "gpt9"), (WEIGHTS, "zoo://gpt9?seed=1")],
            MODEL,
            "unknown architecture",
        ),
        (&[(MODEL, "mlp")], WEIGHTS, "required"),
        (
            &[(MODEL, "mlp"), (WEIGHTS, "zoo://bert?seed=1")],
            WEIGHTS,
            "model is",
        ),
        (
            &[(MODEL, "mlp"), (WEIGHTS, "zoo://mlp?seed=x")],
            WEIGHTS,
            "seed=N",
        ),
        (
            &[(MODEL, "mlp"), (WEIGHTS, "zoo://mlp")],
            WEIGHTS,
            "expected",
        ),
        (
            &[(MODEL, "mlp"), (WEIGHTS, "file://rel/path")],
            WEIGHTS,
            "absolute",
        ),
        (
            &[(MODEL, "mlp"), (WEIGHTS, "file:///a/../b")],
            WEIGHTS,
            "..",
        ),
        (
            &[(MODEL, "mlp"), (WEIGHTS, "https:///nohost")],
            WEIGHTS,
            "host",
        ),
        (
            &[(MODEL, "mlp"), (WEIGHTS, "s3://bucket/x")],
            WEIGHTS,
            "must be",
        ),
        (
            &[
                (MODEL, "mlp"),
                (WEIGHTS, "zoo://mlp?seed=1"),
                (MEMORY, "lots"),
            ],
            MEMORY,
            "quantity",
        ),
        (
            &[(MODEL, "mlp"), (WEIGHTS, "zoo://mlp?seed=1"), (MEMORY, "0")],
            MEMORY,
            "positive",
        ),
    ];
    for (pairs, annotation, why) in cases {
        let msg = refused(pairs);
        assert!(
            msg.contains(annotation) && msg.contains(why),
            "{pairs:?}: {msg}"
        );
    }
}
