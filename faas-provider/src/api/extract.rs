//! Request extractors that answer bad input in the contract's terms: a JSON body parsed
//! leniently (any content type, chunked or not, unknown fields ignored) with 400 for bad
//! JSON and 413 past `max_body_bytes`, and query parameters where the last value wins.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ProviderError;
use crate::state::AppState;

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + Default> JsonBody<T> {
    /// Parses `bytes`, treating an empty body as `T::default()` (for DELETE routes whose
    /// clients may send no body and name the target elsewhere).
    pub fn lenient(bytes: &[u8]) -> Result<T, ProviderError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        parse(bytes)
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProviderError> {
    serde_json::from_slice(bytes).map_err(|e| ProviderError::InvalidJson(e.to_string()))
}

/// Reads the whole body within `max_body_bytes`.
pub async fn read_body(request: Request, state: &AppState) -> Result<Bytes, ProviderError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ProviderError::PayloadTooLarge {
                    limit: state.config.max_body_bytes,
                }
            } else {
                ProviderError::BadRequest(format!("cannot read the request body: {rejection}"))
            }
        })
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ProviderError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(request, state).await?;
        if bytes.is_empty() {
            return Err(ProviderError::InvalidJson("the body is empty".into()));
        }
        parse(&bytes).map(JsonBody)
    }
}

/// Query parameters; for a repeated key the last value wins (contract §1.7).
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ProviderError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| ProviderError::BadRequest(format!("malformed query string: {e}")))?;
        Ok(Params(pairs.into_iter().collect()))
    }
}
