//! `/system/info`: the provider's name, orchestration and version.

use axum::Json;

use crate::types::{ProviderInfo, VersionInfo};

/// The provider's info; the one place it is built (a gateway-faced `up` wraps it).
pub fn provider_info() -> ProviderInfo {
    ProviderInfo {
        provider: "locus".to_string(),
        orchestration: "locus".to_string(),
        version: VersionInfo {
            commit_message: String::new(),
            sha: option_env!("LOCUS_GIT_SHA")
                .unwrap_or("unknown")
                .to_string(),
            release: env!("CARGO_PKG_VERSION").to_string(),
        },
    }
}

pub(super) async fn info() -> Json<ProviderInfo> {
    Json(provider_info())
}
