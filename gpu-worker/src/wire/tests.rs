//! Tests of the wire types: keys, byte sizes, and the header round trip.

use super::*;

#[test]
fn zoo_keys_ignore_parameter_order_and_other_uris_are_kept_as_written() {
    assert_eq!(model_key("mlp", "zoo://mlp?width=8&seed=1"), model_key("mlp", " zoo://mlp?seed=1&width=8 "));
    assert_eq!(model_key("mlp", "zoo://mlp?seed=1&width=8"), "mlp@zoo://mlp?seed=1&width=8");
    assert_eq!(model_key("resnet18", "zoo://resnet18"), "resnet18@zoo://resnet18");
    assert_eq!(model_key("minilm", "file:///m/model.safetensors"), "minilm@file:///m/model.safetensors");
    assert_ne!(model_key("resnet18", "zoo://resnet18?seed=1"), model_key("resnet18", "zoo://resnet18?seed=2"));
}

#[test]
fn byte_sizes_accept_plain_binary_kubernetes_and_decimal_units() {
    assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
    assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
    assert_eq!(parse_bytes("512Mi"), Ok(512 << 20));
    assert_eq!(parse_bytes("4GiB"), Ok(4 << 30));
    assert_eq!(parse_bytes("100MB"), Ok(100_000_000));
    assert_eq!(parse_bytes("1.5G"), Ok(1_500_000_000));
    assert!(parse_bytes("12 parsecs").is_err());
    assert!(parse_bytes("").is_err());
}

#[test]
fn an_infer_report_survives_the_header_round_trip() {
    let report = InferReport {
        cache: CacheReport {
            device: "cpu:1".into(),
            model_key: "resnet18@zoo://resnet18?seed=1".into(),
            outcome: CacheOutcome::Miss,
            model_bytes: 46_827_520,
            evicted: vec!["minilm@zoo://minilm".into(), "mlp@zoo://mlp?seed=2,3".into()],
            fetch_ms: 1.5,
            load_ms: 20.25,
            wait_ms: 0.0,
        },
        compute_ms: 117.125,
    };
    let mut headers = HeaderMap::new();
    report.to_headers(&mut headers);
    assert_eq!(InferReport::from_headers(&headers), Ok(report));
    headers.remove(CACHE);
    assert!(InferReport::from_headers(&headers).is_err());
}
