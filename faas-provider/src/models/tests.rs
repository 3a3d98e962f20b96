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
fn a_deployment_without_annotations_is_refused_naming_the_model_annotation() {
    let mut d = deployment(&[]);
    d.annotations = None;
    let msg = classify(&d).unwrap_err().to_string();
    assert!(
        msg.contains("locus.io/model") && msg.contains("required"),
        "{msg}"
    );
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
