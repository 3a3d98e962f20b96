//! Image classification pre- and post-processing: JPEG or PNG bytes are decoded,
//! resized and centre-cropped to 224×224, normalised with the ImageNet mean and
//! standard deviation into a `[1, 3, 224, 224]` tensor; logits become the top-k
//! classes with softmax scores.

use std::io::Cursor;

use candle_core::{Device, Tensor};
use image::imageops::FilterType;
use serde::{Deserialize, Serialize};

use super::TaskError;

/// Side of the square input the ResNets take.
pub const SIDE: u32 = 224;
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Largest accepted image side, pixels (decompression-bomb guard).
const MAX_SIDE: u32 = 8192;

/// Decodes `bytes` (JPEG or PNG) into a normalised `[1, 3, 224, 224]` f32 tensor.
pub fn preprocess(bytes: &[u8], device: &Device) -> Result<Tensor, TaskError> {
    let bad = |e: String| TaskError::InvalidInput(format!("cannot decode image: {e}"));
    let mut reader = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| bad(e.to_string()))?;
    if reader.format().is_none() {
        return Err(TaskError::InvalidInput("body is not a JPEG or PNG image".to_string()));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| bad(e.to_string()))?;
    let rgb = img.resize_to_fill(SIDE, SIDE, FilterType::Triangle).to_rgb8();
    let plane = (SIDE * SIDE) as usize;
    let mut chw = vec![0f32; 3 * plane];
    for (i, px) in rgb.pixels().enumerate() {
        for c in 0..3 {
            chw[c * plane + i] = (f32::from(px[c]) / 255.0 - MEAN[c]) / STD[c];
        }
    }
    Tensor::from_vec(chw, (1, 3, SIDE as usize, SIDE as usize), device).map_err(|e| TaskError::Compute(e.to_string()))
}

/// Checks that `bytes` start like a JPEG or PNG of acceptable size, without decoding.
pub fn precheck(bytes: &[u8]) -> Result<(), TaskError> {
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| TaskError::InvalidInput(format!("cannot read image: {e}")))?;
    if reader.format().is_none() {
        return Err(TaskError::InvalidInput("body is not a JPEG or PNG image".to_string()));
    }
    let (w, h) = reader.into_dimensions().map_err(|e| TaskError::InvalidInput(format!("cannot decode image: {e}")))?;
    if w > MAX_SIDE || h > MAX_SIDE || w == 0 || h == 0 {
        return Err(TaskError::InvalidInput(format!("image is {w}×{h}; sides must be 1..={MAX_SIDE} pixels")));
    }
    Ok(())
}

/// One predicted class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Class {
    /// Class index in the model's head.
    pub index: usize,
    /// Softmax probability.
    pub score: f32,
    /// Class name, when the model ships a `labels.txt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// The response of an image classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// The best `k` classes, best first.
    pub classes: Vec<Class>,
}

/// The `k` best classes of one row of `logits`, with softmax scores.
pub fn top_k(logits: &[f32], k: usize, labels: Option<&[String]>) -> Classification {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|a, b| exps[*b].total_cmp(&exps[*a]).then(a.cmp(b)));
    let classes = order
        .into_iter()
        .take(k)
        .map(|index| Class {
            index,
            score: if sum > 0.0 && sum.is_finite() { exps[index] / sum } else { 0.0 },
            label: labels.and_then(|l| l.get(index).cloned()),
        })
        .collect();
    Classification { classes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn a_png_of_any_size_becomes_a_normalised_224_square_tensor() {
        let t = preprocess(&png(300, 150), &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[1, 3, 224, 224]);
        let max = t.flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(max < 3.0 && max > 0.0, "{max}");
    }

    #[test]
    fn bytes_that_are_not_an_image_are_invalid_input() {
        let err = preprocess(b"definitely not a picture", &Device::Cpu).unwrap_err();
        assert!(matches!(err, TaskError::InvalidInput(_)), "{err}");
        let mut truncated = png(64, 64);
        truncated.truncate(60);
        assert!(matches!(preprocess(&truncated, &Device::Cpu), Err(TaskError::InvalidInput(_))));
    }

    #[test]
    fn top_k_orders_by_score_and_scores_sum_to_one_over_all_classes() {
        let c = top_k(&[0.0, 3.0, 1.0, 2.0], 4, None);
        let idx: Vec<usize> = c.classes.iter().map(|c| c.index).collect();
        assert_eq!(idx, vec![1, 3, 2, 0]);
        let total: f32 = c.classes.iter().map(|c| c.score).sum();
        assert!((total - 1.0).abs() < 1e-5);
        let labels = vec!["a".to_string(), "b".to_string()];
        assert_eq!(top_k(&[0.0, 1.0], 1, Some(&labels)).classes[0].label.as_deref(), Some("b"));
    }
}
