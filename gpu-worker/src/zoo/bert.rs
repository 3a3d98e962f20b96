//! The `minilm` and `bert` architectures: Candle's BERT encoder turned into a sentence
//! embedder the way sentence-transformers does it (mean pooling over the attention
//! mask, then L2 normalisation), as all-MiniLM-L6-v2 is served.

use std::path::Path;

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, HiddenAct, PositionEmbeddingType};

use super::ZooError;
use super::header::Header;

/// The all-MiniLM-L6-v2 configuration (6 layers, hidden 384).
pub fn minilm_config() -> Config {
    Config { hidden_size: 384, num_hidden_layers: 6, intermediate_size: 1536, ..bert_base_config() }
}

/// The bert-base-uncased configuration (12 layers, hidden 768).
pub fn bert_base_config() -> Config {
    Config {
        vocab_size: 30522,
        hidden_size: 768,
        num_hidden_layers: 12,
        num_attention_heads: 12,
        intermediate_size: 3072,
        hidden_act: HiddenAct::Gelu,
        hidden_dropout_prob: 0.1,
        max_position_embeddings: 512,
        type_vocab_size: 2,
        initializer_range: 0.02,
        layer_norm_eps: 1e-12,
        pad_token_id: 0,
        position_embedding_type: PositionEmbeddingType::Absolute,
        use_cache: true,
        classifier_dropout: None,
        model_type: Some("bert".to_string()),
    }
}

/// The configuration for weights in `dir`: its `config.json` when present, otherwise
/// the architecture's default with the vocabulary size read from the weights.
pub fn config_for(default: Config, header: Option<&Header>, dir: Option<&Path>) -> std::result::Result<Config, ZooError> {
    if let Some(path) = dir.map(|d| d.join("config.json")).filter(|p| p.is_file()) {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ZooError::Mismatch(format!("cannot read {}: {e}", path.display())))?;
        return serde_json::from_str(&text)
            .map_err(|e| ZooError::Mismatch(format!("{} is not a BERT config: {e}", path.display())));
    }
    let mut config = default;
    if let Some(h) = header {
        let vocab = ["embeddings.word_embeddings.weight", "bert.embeddings.word_embeddings.weight"]
            .iter()
            .find_map(|n| h.tensor(n))
            .and_then(|t| t.shape.first().copied());
        if let Some(v) = vocab {
            config.vocab_size = v;
        }
    }
    Ok(config)
}

/// A sentence embedder.
pub struct Embedder {
    model: BertModel,
    /// Its configuration.
    pub config: Config,
}

impl Embedder {
    /// Builds the encoder from `vb` (root or `bert.`-prefixed names).
    pub fn load(config: Config, vb: VarBuilder) -> Result<Self> {
        Ok(Embedder { model: BertModel::load(vb, &config)?, config })
    }

    /// Embeddings `[batch, hidden]` of token ids `[batch, len]` (u32) with their
    /// attention mask (u32, 1 for real tokens, 0 for padding).
    pub fn embed(&self, ids: &Tensor, mask: &Tensor, token_types: Option<&Tensor>) -> Result<Tensor> {
        let zeros;
        let token_types = match token_types {
            Some(t) => t,
            None => {
                zeros = ids.zeros_like()?;
                &zeros
            }
        };
        let hidden = self.model.forward(ids, token_types, Some(mask))?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        mean.broadcast_div(&norm)
    }
}
