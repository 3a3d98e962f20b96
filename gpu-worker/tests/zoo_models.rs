//! Model tests (run in `--release`): every zoo architecture builds from `zoo://`
//! weights, gives identical output twice, gives bit-identical output after a
//! safetensors save/load round trip through the memory-mapped loader, and its measured
//! footprint equals the file header's byte count.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use gpu_worker::tasks::text::TextTokenizer;
use gpu_worker::zoo::counting::{CountingMmap, total};
use gpu_worker::zoo::header::read_header;
use gpu_worker::zoo::{Arch, Model, ModelConfig, build, generate, write_generated};

/// Runs `model` on a small fixed input and returns the flattened output.
fn forward(model: &Model) -> Vec<f32> {
    let dev = Device::Cpu;
    let out = match model {
        Model::Mlp(m) => {
            let n = m.config.input;
            let x = Tensor::from_vec((0..2 * n).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(), (2, n), &dev).unwrap();
            m.forward(&x).unwrap()
        }
        Model::ResNet(r) => {
            // 64×64 keeps the test quick; the network is size-agnostic.
            let x = Tensor::from_vec((0..3 * 64 * 64).map(|i| (i as f32 * 0.011).cos()).collect::<Vec<_>>(), (1, 3, 64, 64), &dev).unwrap();
            r.forward(&x).unwrap()
        }
        Model::Bert(e) => {
            let tok = TextTokenizer::Fallback { vocab: e.config.vocab_size };
            let batch = tok.encode(&["the weights are generated".to_string(), "twice".to_string()], 32).unwrap();
            let (n, len) = (batch.ids.len(), batch.ids[0].len());
            let ids = Tensor::from_vec(batch.ids.concat(), (n, len), &dev).unwrap();
            let mask = Tensor::from_vec(batch.mask.concat(), (n, len), &dev).unwrap();
            e.embed(&ids, &mask, None).unwrap()
        }
    };
    out.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn check(arch: Arch, params: &[(&str, &str)], expect_len: usize) {
    let params: BTreeMap<String, String> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let config = ModelConfig::from_params(arch, &params).unwrap();
    let tensors = generate(&config, 11).unwrap();
    let in_memory = build(&config, VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu)).unwrap();
    let a = forward(&in_memory);
    assert_eq!(a.len(), expect_len, "{arch:?} output size");
    assert!(a.iter().all(|x| x.is_finite()), "{arch:?} output is finite");
    assert_eq!(a, forward(&in_memory), "{arch:?}: same input twice, same output");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let written = write_generated(&config, 11, &path).unwrap();
    let header = read_header(&path).unwrap();
    assert_eq!(header.tensor_bytes, written);
    let from_file = ModelConfig::from_weights(arch, &header, None).unwrap();
    let (source, taken) = CountingMmap::open(&path).unwrap();
    let loaded = build(&from_file, VarBuilder::from_backend(Box::new(source), DType::F32, Device::Cpu)).unwrap();
    assert_eq!(forward(&loaded), a, "{arch:?}: bit-identical after a save/load round trip");
    assert_eq!(total(&taken), header.tensor_bytes, "{arch:?}: every tensor in the file is used and counted");

    let other = generate(&config, 12).unwrap();
    let other = build(&config, VarBuilder::from_tensors(other, DType::F32, &Device::Cpu)).unwrap();
    assert_ne!(forward(&other), a, "{arch:?}: another seed gives another model");
}

#[test]
fn mlp_of_a_configured_shape_is_deterministic_and_round_trips() {
    check(Arch::Mlp, &[("input", "16"), ("width", "32"), ("depth", "3"), ("output", "5")], 2 * 5);
}

#[test]
fn mlp_default_shape_matches_its_documented_size() {
    let config = ModelConfig::from_params(Arch::Mlp, &BTreeMap::new()).unwrap();
    let bytes: usize = generate(&config, 0).unwrap().values().map(|t| t.elem_count() * 4).sum();
    assert_eq!(bytes, 16_793_600);
}

#[test]
fn resnet18_is_deterministic_and_round_trips() {
    check(Arch::ResNet18, &[], 1000);
}

#[test]
fn resnet34_with_a_small_head_is_deterministic_and_round_trips() {
    check(Arch::ResNet34, &[("classes", "10")], 10);
}

#[test]
fn resnet50_is_deterministic_and_round_trips() {
    check(Arch::ResNet50, &[], 1000);
}

#[test]
fn minilm_is_deterministic_and_round_trips() {
    check(Arch::MiniLm, &[], 2 * 384);
}

#[test]
fn bert_base_is_deterministic_and_round_trips() {
    check(Arch::Bert, &[], 2 * 768);
}
