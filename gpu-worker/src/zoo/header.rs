//! Reads and checks a safetensors file's header without loading any tensor: the
//! model's footprint for cache admission, and a clear error for truncated or corrupt
//! files before anything is memory-mapped.
//!
//! Layout: 8 bytes little-endian header length `n`, `n` bytes of JSON mapping tensor
//! names to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the data
//! section), then the data section.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

/// Largest header we accept (the format's own limit is 100 MB).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Why a file is not a usable safetensors file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The file could not be opened or read.
    #[error("cannot read weights file {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// The file is not a well-formed safetensors file.
    #[error("weights file {path} is not valid safetensors: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// One tensor as the header describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Full tensor name.
    pub name: String,
    /// Safetensors dtype name (`F32`, `I64`, ...).
    pub dtype: String,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Bytes of its data.
    pub bytes: u64,
}

/// A checked header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Every tensor, sorted by name.
    pub tensors: Vec<TensorInfo>,
    /// Sum of all tensors' bytes: the weights' footprint once loaded.
    pub tensor_bytes: u64,
    /// Size of the whole file.
    pub file_bytes: u64,
}

impl Header {
    /// The tensor called `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

#[derive(Deserialize)]
struct RawInfo {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (u64, u64),
}

/// Bytes per element of a safetensors dtype, or `None` if unknown.
fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
        _ => return None,
    })
}

/// Reads and checks the header of the safetensors file at `path`.
pub fn read_header(path: &Path) -> Result<Header, HeaderError> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| HeaderError::Io { path: shown.clone(), reason: e.to_string() };
    let corrupt = |reason: String| HeaderError::Corrupt { path: shown.clone(), reason };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let file_bytes = file.metadata().map_err(io)?.len();
    if file_bytes < 8 {
        return Err(corrupt(format!("file is {file_bytes} bytes, too short for a header")));
    }
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(io)?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER_BYTES || 8 + n > file_bytes {
        return Err(corrupt(format!("header claims {n} bytes but the file has {file_bytes} (truncated?)")));
    }
    let mut json = vec![0u8; n as usize];
    file.read_exact(&mut json).map_err(io)?;
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&json).map_err(|e| corrupt(format!("header is not a JSON object: {e}")))?;
    let data_bytes = file_bytes - 8 - n;
    let mut tensors = Vec::with_capacity(raw.len());
    for (name, value) in raw {
        if name == "__metadata__" {
            continue;
        }
        let info: RawInfo =
            serde_json::from_value(value).map_err(|e| corrupt(format!("tensor {name}: {e}")))?;
        let size = dtype_size(&info.dtype).ok_or_else(|| corrupt(format!("tensor {name}: unknown dtype {}", info.dtype)))?;
        let elems = info.shape.iter().try_fold(1u64, |acc, d| acc.checked_mul(*d as u64));
        let bytes = elems
            .and_then(|e| e.checked_mul(size))
            .ok_or_else(|| corrupt(format!("tensor {name}: shape {:?} overflows", info.shape)))?;
        let (begin, end) = info.data_offsets;
        if end < begin || end - begin != bytes {
            return Err(corrupt(format!(
                "tensor {name}: offsets {begin}..{end} do not hold {bytes} bytes of {} {:?}",
                info.dtype, info.shape
            )));
        }
        if end > data_bytes {
            return Err(corrupt(format!(
                "tensor {name} ends at data byte {end} but the file holds only {data_bytes} (truncated)"
            )));
        }
        tensors.push(TensorInfo { name, dtype: info.dtype, shape: info.shape, bytes });
    }
    let tensor_bytes = tensors.iter().map(|t| t.bytes).sum();
    Ok(Header { tensors, tensor_bytes, file_bytes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};
    use std::collections::HashMap;

    fn write_small(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("w.safetensors");
        let mut map = HashMap::new();
        map.insert("a".to_string(), Tensor::zeros((3, 4), candle_core::DType::F32, &Device::Cpu).unwrap());
        map.insert("b".to_string(), Tensor::zeros(5, candle_core::DType::I64, &Device::Cpu).unwrap());
        candle_core::safetensors::save(&map, &path).unwrap();
        path
    }

    #[test]
    fn a_valid_file_reports_every_tensor_and_the_byte_sum() {
        let dir = tempfile::tempdir().unwrap();
        let h = read_header(&write_small(dir.path())).unwrap();
        assert_eq!(h.tensors.len(), 2);
        assert_eq!(h.tensor("a").map(|t| t.shape.clone()), Some(vec![3, 4]));
        assert_eq!(h.tensor_bytes, 3 * 4 * 4 + 5 * 8);
    }

    #[test]
    fn a_truncated_file_is_refused_naming_the_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_small(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        let err = read_header(&path).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn garbage_is_refused_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.safetensors");
        std::fs::write(&path, b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!").unwrap();
        assert!(matches!(read_header(&path), Err(HeaderError::Corrupt { .. })));
        std::fs::write(&path, b"abc").unwrap();
        assert!(matches!(read_header(&path), Err(HeaderError::Corrupt { .. })));
    }
}
