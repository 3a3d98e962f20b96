//! The `make-model` subcommand writes the same deterministic weights as `zoo://`.

use std::process::Command;

use gpu_worker::zoo::header::read_header;

#[test]
fn make_model_writes_deterministic_safetensors_and_refuses_unknown_architectures() {
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name);
    let make = |file: &str, seed: &str| {
        Command::new(env!("CARGO_BIN_EXE_gpu-worker"))
            .args(["make-model", "--arch", "mlp", "--seed", seed, "--param", "width=32", "--param", "depth=2", "--out"])
            .arg(out(file))
            .output()
            .unwrap()
    };
    for (file, seed) in [("a.safetensors", "4"), ("b.safetensors", "4"), ("c.safetensors", "5")] {
        let run = make(file, seed);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    }
    let bytes = |f: &str| std::fs::read(out(f)).unwrap();
    assert_eq!(bytes("a.safetensors"), bytes("b.safetensors"));
    assert_ne!(bytes("a.safetensors"), bytes("c.safetensors"));
    let header = read_header(&out("a.safetensors")).unwrap();
    assert_eq!(header.tensor("layers.1.weight").map(|t| t.shape.clone()), Some(vec![32, 32]));

    let bad = Command::new(env!("CARGO_BIN_EXE_gpu-worker"))
        .args(["make-model", "--arch", "gpt9", "--out"])
        .arg(out("x.safetensors"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown architecture"));
}
