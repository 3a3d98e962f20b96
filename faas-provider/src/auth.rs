//! HTTP basic auth as faas-provider does it (contract §1.2): credentials read once at
//! start from `basic-auth-user` and `basic-auth-password` in `secret_mount_path`
//! (surrounding whitespace trimmed), compared in constant time, and a 401 with
//! `WWW-Authenticate: Basic realm="Restricted"` otherwise. Which routes it guards is
//! decided in `api::app`.

use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::error::ProviderError;
use crate::state::AppState;

/// File holding the user name, inside `secret_mount_path`.
pub const USER_FILE: &str = "basic-auth-user";
/// File holding the password, inside `secret_mount_path`.
pub const PASSWORD_FILE: &str = "basic-auth-password";

/// The provider's basic-auth credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Credentials that could not be read at start.
#[derive(Debug, thiserror::Error)]
#[error("basic_auth is enabled but {} cannot be read: {source}", path.display())]
pub struct CredentialsError {
    /// The file that failed.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl Credentials {
    /// Credentials from literal values (trimmed as the files are).
    pub fn new(user: &str, password: &str) -> Self {
        Credentials {
            user: user.trim().to_string(),
            password: password.trim().to_string(),
        }
    }

    /// Reads the two files from `dir`; either missing is an error.
    pub fn load(dir: &Path) -> Result<Self, CredentialsError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| CredentialsError { path, source })
        };
        Ok(Credentials::new(&read(USER_FILE)?, &read(PASSWORD_FILE)?))
    }

    /// Whether an `Authorization` header value carries these credentials.
    pub fn accepts(&self, header: Option<&str>) -> bool {
        let Some((user, password)) = header.and_then(parse_basic) else {
            return false;
        };
        let user_ok = user.as_bytes().ct_eq(self.user.as_bytes());
        let password_ok = password.as_bytes().ct_eq(self.password.as_bytes());
        bool::from(user_ok & password_ok)
    }
}

/// Decodes `Basic base64(user:password)` as Go's `Request.BasicAuth` does.
fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Middleware: passes the request on when auth is off or the credentials match.
pub async fn require(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(credentials) = &state.credentials {
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !credentials.accepts(header) {
            return axum::response::IntoResponse::into_response(ProviderError::Unauthorized);
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        let raw = format!("{user}:{password}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    #[test]
    fn matching_credentials_are_accepted_and_anything_else_refused() {
        let c = Credentials::new("admin", "s3cret");
        assert!(c.accepts(Some(&basic("admin", "s3cret"))));
        assert!(c.accepts(Some(&basic("admin", "s3cret").replace("Basic", "basic"))));
        assert!(!c.accepts(Some(&basic("admin", "wrong"))));
        assert!(!c.accepts(Some(&basic("root", "s3cret"))));
        assert!(!c.accepts(Some("Bearer ")));
        assert!(!c.accepts(Some("Basic !!!")));
        assert!(!c.accepts(None));
    }

    #[test]
    fn files_are_read_and_trimmed_and_a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Credentials::load(dir.path()).is_err());
        std::fs::write(dir.path().join(USER_FILE), "admin\n").unwrap();
        std::fs::write(dir.path().join(PASSWORD_FILE), "  pw \n").unwrap();
        assert_eq!(
            Credentials::load(dir.path()).unwrap(),
            Credentials::new("admin", "pw")
        );
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let shown = format!("{:?}", Credentials::new("admin", "hunter2"));
        assert!(!shown.contains("hunter2") && shown.contains("redacted"));
    }
}
