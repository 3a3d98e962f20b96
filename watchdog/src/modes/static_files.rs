//! `mode=static`: serve the files under `static_path` (GET and HEAD), `index.html` for
//! directories, 404 for anything missing or outside the root.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use ::http::{Method, StatusCode, header};
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};

/// The root being served.
#[derive(Debug)]
pub struct StaticFiles {
    root: PathBuf,
}

impl StaticFiles {
    pub(super) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The file a URL path names, if it stays under the root.
    fn resolve(&self, url_path: &str) -> Option<PathBuf> {
        let decoded = percent_decode(url_path)?;
        let mut path = self.root.clone();
        for component in Path::new(&decoded).components() {
            match component {
                Component::Normal(part) => path.push(part),
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => return None,
            }
        }
        Some(path)
    }
}

pub(super) async fn handle(files: Arc<StaticFiles>, request: Request) -> Response {
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    let Some(mut path) = files.resolve(request.uri().path()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
        path.push("index.html");
    }
    match tokio::fs::read(&path).await {
        Ok(content) => {
            let content_type = content_type(&path);
            let length = content.len();
            let body = if method == Method::HEAD {
                Body::empty()
            } else {
                Body::from(content)
            };
            (
                [
                    (header::CONTENT_TYPE, content_type.to_string()),
                    (header::CONTENT_LENGTH, length.to_string()),
                ],
                body,
            )
                .into_response()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            (StatusCode::FORBIDDEN, "403 Forbidden\n").into_response()
        }
        Err(e) => {
            tracing::info!("Error reading {}: {e}", path.display());
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 Internal Server Error\n",
            )
                .into_response()
        }
    }
}

/// `%XX` decoding of a URL path; `None` if it does not decode to UTF-8.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "xml" => "text/xml; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_climb_out_of_the_root_are_refused() {
        let files = StaticFiles::new(PathBuf::from("/srv/site"));
        assert_eq!(
            files.resolve("/a/b.txt"),
            Some(PathBuf::from("/srv/site/a/b.txt"))
        );
        assert_eq!(
            files.resolve("/a%20b.txt"),
            Some(PathBuf::from("/srv/site/a b.txt"))
        );
        assert_eq!(files.resolve("/../etc/passwd"), None);
        assert_eq!(files.resolve("/%2e%2e/etc/passwd"), None);
    }
}
