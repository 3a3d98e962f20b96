//! Text embedding pre-processing: the request's texts and their tokenisation.
//!
//! A model that ships `tokenizer.json` beside its weights is tokenised by the Hugging
//! Face `tokenizers` crate, exactly as in Python. Zoo models (generated weights) have
//! no vocabulary, so they use a documented fallback: BERT-style basic tokenisation
//! (lower-case; words are runs of letters and digits; every other non-space character
//! is a token of its own), each token mapped to `1000 + fnv1a(token) mod (vocab −
//! 1000)` (ids below 1000 are BERT's special and unused ids), wrapped in `[CLS]` (101)
//! and `[SEP]` (102). It is deterministic and gives equal texts equal ids, which is all
//! a model with random weights can use.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::TaskError;
use crate::zoo::generator::fnv1a;

/// Longest sequence we run, tokens (also capped by the model's positions).
pub const MAX_TOKENS: usize = 256;
const CLS: u32 = 101;
const SEP: u32 = 102;

/// How a model's text becomes token ids.
pub enum TextTokenizer {
    /// The model's own `tokenizer.json`.
    HuggingFace(Box<tokenizers::Tokenizer>),
    /// The documented fallback for zoo models.
    Fallback {
        /// Vocabulary size of the model.
        vocab: usize,
    },
}

/// Token ids and attention masks of a batch, padded to one length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// `[batch][len]` ids.
    pub ids: Vec<Vec<u32>>,
    /// `[batch][len]` masks: 1 for tokens, 0 for padding.
    pub mask: Vec<Vec<u32>>,
}

impl TextTokenizer {
    /// `dir/tokenizer.json` if it exists, otherwise the fallback for `vocab`.
    pub fn for_dir(dir: Option<&Path>, vocab: usize) -> Result<Self, TaskError> {
        match dir.map(|d| d.join("tokenizer.json")).filter(|p| p.is_file()) {
            Some(path) => {
                let mut t = tokenizers::Tokenizer::from_file(&path)
                    .map_err(|e| TaskError::Model(format!("cannot read {}: {e}", path.display())))?;
                // Shipped tokenizers often pad every text to a fixed length (all-MiniLM:
                // 128); we pad a batch ourselves, with a mask, so padding never reaches
                // the mean pooling.
                t.with_padding(None);
                Ok(TextTokenizer::HuggingFace(Box::new(t)))
            }
            None => Ok(TextTokenizer::Fallback { vocab }),
        }
    }

    /// Which tokenizer this is, for logs and status.
    pub fn kind(&self) -> &'static str {
        match self {
            TextTokenizer::HuggingFace(_) => "tokenizer.json",
            TextTokenizer::Fallback { .. } => "fallback",
        }
    }

    /// Tokenises `texts`, truncating each to `max_len` tokens, and pads the batch.
    pub fn encode(&self, texts: &[String], max_len: usize) -> Result<Batch, TaskError> {
        let mut ids: Vec<Vec<u32>> = Vec::with_capacity(texts.len());
        for text in texts {
            let mut seq = match self {
                TextTokenizer::HuggingFace(t) => t
                    .encode(text.as_str(), true)
                    .map_err(|e| TaskError::InvalidInput(format!("cannot tokenise text: {e}")))?
                    .get_ids()
                    .to_vec(),
                TextTokenizer::Fallback { vocab } => fallback_ids(text, *vocab),
            };
            if seq.len() > max_len {
                let last = seq[seq.len() - 1];
                seq.truncate(max_len);
                if let Some(end) = seq.last_mut() {
                    *end = last;
                }
            }
            ids.push(seq);
        }
        let len = ids.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mask = ids.iter().map(|s| (0..len).map(|i| u32::from(i < s.len())).collect()).collect();
        for s in &mut ids {
            s.resize(len, 0);
        }
        Ok(Batch { ids, mask })
    }
}

fn fallback_ids(text: &str, vocab: usize) -> Vec<u32> {
    let lower = text.to_lowercase();
    let mut tokens: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in lower.chars() {
        if c.is_alphanumeric() {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        if !c.is_whitespace() {
            tokens.push(c.to_string());
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    let (base, span) = if vocab > 2000 { (1000, vocab as u64 - 1000) } else { (0, vocab.max(1) as u64) };
    let special = vocab > SEP as usize;
    let mut ids = Vec::with_capacity(tokens.len() + 2);
    if special {
        ids.push(CLS);
    }
    ids.extend(tokens.iter().map(|t| base + (fnv1a(t.as_bytes()) % span) as u32));
    if special {
        ids.push(SEP);
    }
    ids
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct TextRequest {
    #[serde(alias = "text", alias = "texts", alias = "input")]
    inputs: OneOrMany,
}

/// The texts of a request: a JSON body `{"inputs": "..."}` or `{"inputs": ["...", ...]}`
/// (`text`, `texts` and `input` are accepted too), otherwise the whole body as UTF-8.
pub fn parse_texts(body: &[u8], json: bool) -> Result<Vec<String>, TaskError> {
    let texts = if json {
        let req: TextRequest = serde_json::from_slice(body)
            .map_err(|e| TaskError::InvalidInput(format!("expected {{\"inputs\": \"text\" | [\"text\", ...]}}: {e}")))?;
        match req.inputs {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(ts) => ts,
        }
    } else {
        vec![String::from_utf8(body.to_vec()).map_err(|_| TaskError::InvalidInput("text body is not UTF-8".to_string()))?]
    };
    if texts.is_empty() || texts.iter().all(|t| t.trim().is_empty()) {
        return Err(TaskError::InvalidInput("no text to embed".to_string()));
    }
    Ok(texts)
}

/// The response of a text embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embeddings {
    /// One L2-normalised vector per input text.
    pub embeddings: Vec<Vec<f32>>,
    /// Vector length.
    pub dim: usize,
    /// Which tokenizer was used: `tokenizer.json` or `fallback`.
    pub tokenizer: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_is_deterministic_and_wraps_in_cls_and_sep() {
        let t = TextTokenizer::Fallback { vocab: 30522 };
        let a = t.encode(&["Hello, world!".to_string()], 64).unwrap();
        let b = t.encode(&["hello , WORLD !".to_string()], 64).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.ids[0].len(), 6);
        assert_eq!(a.ids[0][0], CLS);
        assert_eq!(a.ids[0][5], SEP);
        assert!(a.ids[0][1..5].iter().all(|id| (1000..30522).contains(id)));
    }

    #[test]
    fn a_batch_is_padded_with_a_zero_mask_and_long_texts_keep_their_sep() {
        let t = TextTokenizer::Fallback { vocab: 30522 };
        let long = "word ".repeat(50);
        let b = t.encode(&["short".to_string(), long], 8).unwrap();
        assert_eq!(b.ids[0].len(), 8);
        assert_eq!(b.mask[0], vec![1, 1, 1, 0, 0, 0, 0, 0]);
        assert_eq!(b.ids[1][7], SEP);
    }

    #[test]
    fn texts_come_from_json_or_the_raw_body() {
        assert_eq!(parse_texts(br#"{"inputs": ["a", "b"]}"#, true).unwrap(), vec!["a", "b"]);
        assert_eq!(parse_texts(br#"{"text": "a"}"#, true).unwrap(), vec!["a"]);
        assert_eq!(parse_texts(b"plain words", false).unwrap(), vec!["plain words"]);
        assert!(parse_texts(b"{}", true).is_err());
        assert!(parse_texts(b"  ", false).is_err());
        assert!(parse_texts(&[0xff, 0xfe], false).is_err());
    }
}
