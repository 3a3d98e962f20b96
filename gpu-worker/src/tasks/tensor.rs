//! Raw tensors in and out as JSON, in the KServe v2 / Open Inference Protocol shape, so
//! Triton-style clients work: `{"id"?, "inputs": [{"name", "shape", "datatype",
//! "data"}]}` in, `{"model_name", "id"?, "outputs": [{"name", "shape", "datatype",
//! "data"}]}` out. `data` may be flat (row-major) or nested.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::TaskError;

/// An inference request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferRequest {
    /// Request id, echoed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Input tensors.
    pub inputs: Vec<InputTensor>,
}

/// One input tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputTensor {
    /// Input name (`input`, `input_ids`, `attention_mask`, `token_type_ids`, ...).
    pub name: String,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// KServe datatype: `FP32`, `FP64`, `FP16`, `INT64`, `INT32`, `INT16`, `INT8`,
    /// `UINT64`, `UINT32`, `UINT16`, `UINT8`, `BOOL`.
    pub datatype: String,
    /// Values, flat row-major or nested.
    pub data: Value,
}

/// An inference response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferResponse {
    /// The model key that answered.
    pub model_name: String,
    /// The request id, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Output tensors.
    pub outputs: Vec<OutputTensor>,
}

/// One output tensor (always `FP32` here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputTensor {
    /// Output name.
    pub name: String,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// `FP32`.
    pub datatype: String,
    /// Values, flat row-major.
    pub data: Vec<f32>,
}

impl OutputTensor {
    /// An FP32 output.
    pub fn fp32(name: &str, shape: Vec<usize>, data: Vec<f32>) -> Self {
        OutputTensor { name: name.to_string(), shape, datatype: "FP32".to_string(), data }
    }
}

/// Whether `body` is a KServe v2 request (an object whose `inputs` is a list of
/// tensor objects) rather than a task body such as `{"inputs": "text"}`.
pub fn looks_like_kserve(body: &[u8]) -> bool {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else { return false };
    matches!(map.get("inputs"), Some(Value::Array(items)) if !items.is_empty() && items.iter().all(|i| i.get("datatype").is_some()))
}

/// Parses a KServe v2 request.
pub fn parse(body: &[u8]) -> Result<InferRequest, TaskError> {
    let req: InferRequest = serde_json::from_slice(body)
        .map_err(|e| TaskError::InvalidInput(format!("not a KServe v2 inference request: {e}")))?;
    if req.inputs.is_empty() {
        return Err(TaskError::InvalidInput("request has no inputs".to_string()));
    }
    Ok(req)
}

impl InferRequest {
    /// The input called `name`, or the only input when there is exactly one and
    /// `name` is `None`.
    pub fn input(&self, name: Option<&str>) -> Option<&InputTensor> {
        match name {
            Some(n) => self.inputs.iter().find(|i| i.name == n),
            None if self.inputs.len() == 1 => self.inputs.first(),
            None => None,
        }
    }
}

fn flatten(value: &Value, out: &mut Vec<f64>) -> Result<(), TaskError> {
    match value {
        Value::Array(items) => items.iter().try_for_each(|v| flatten(v, out)),
        Value::Number(n) => {
            out.push(n.as_f64().ok_or_else(|| TaskError::InvalidInput(format!("{n} is not a number")))?);
            Ok(())
        }
        Value::Bool(b) => {
            out.push(f64::from(u8::from(*b)));
            Ok(())
        }
        other => Err(TaskError::InvalidInput(format!("tensor data must be numbers, found {other}"))),
    }
}

impl InputTensor {
    /// Its values as f64, checked against shape and datatype.
    pub fn values(&self) -> Result<Vec<f64>, TaskError> {
        const NUMERIC: [&str; 12] =
            ["FP32", "FP64", "FP16", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8", "BOOL"];
        if !NUMERIC.contains(&self.datatype.as_str()) {
            return Err(TaskError::InvalidInput(format!(
                "input {}: datatype {} is not supported (numeric types only)",
                self.name, self.datatype
            )));
        }
        let mut out = Vec::new();
        flatten(&self.data, &mut out)?;
        let expected: usize = self.shape.iter().product();
        if out.len() != expected {
            return Err(TaskError::InvalidInput(format!(
                "input {}: shape {:?} needs {expected} values, data has {}",
                self.name,
                self.shape,
                out.len()
            )));
        }
        if !self.datatype.starts_with("FP") && out.iter().any(|v| v.fract() != 0.0) {
            return Err(TaskError::InvalidInput(format!("input {}: {} data must be integers", self.name, self.datatype)));
        }
        Ok(out)
    }

    /// Its values as f32.
    pub fn to_f32(&self) -> Result<Vec<f32>, TaskError> {
        Ok(self.values()?.into_iter().map(|v| v as f32).collect())
    }

    /// Its values as u32 token ids (non-negative integers).
    pub fn to_u32(&self) -> Result<Vec<u32>, TaskError> {
        self.values()?
            .into_iter()
            .map(|v| {
                if (0.0..=f64::from(u32::MAX)).contains(&v) && v.fract() == 0.0 {
                    Ok(v as u32)
                } else {
                    Err(TaskError::InvalidInput(format!("input {}: {v} is not a valid id", self.name)))
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_flat_data_give_the_same_values() {
        let flat = parse(br#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}"#).unwrap();
        let nested = parse(br#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}]}"#).unwrap();
        assert_eq!(flat.inputs[0].to_f32().unwrap(), nested.inputs[0].to_f32().unwrap());
    }

    #[test]
    fn a_shape_that_disagrees_with_the_data_is_refused_naming_both() {
        let r = parse(br#"{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1,2]}]}"#).unwrap();
        let err = r.inputs[0].to_f32().unwrap_err().to_string();
        assert!(err.contains("[3]") && err.contains("data has 2"), "{err}");
        let bytes = parse(br#"{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":["a"]}]}"#).unwrap();
        assert!(bytes.inputs[0].to_f32().is_err());
    }

    #[test]
    fn kserve_requests_are_told_apart_from_text_task_bodies() {
        assert!(looks_like_kserve(br#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}"#));
        assert!(!looks_like_kserve(br#"{"inputs":["a sentence"]}"#));
        assert!(!looks_like_kserve(br#"{"inputs":"a sentence"}"#));
        assert!(!looks_like_kserve(b"\x89PNG"));
    }
}
