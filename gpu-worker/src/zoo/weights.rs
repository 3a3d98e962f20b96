//! Where weights come from: `file://` under configured allowed roots, `http(s)://`
//! (downloaded once into the node-local model cache, checksummed, never fetched again
//! while cached) and `zoo://ARCH?seed=N` (deterministic generated weights, written
//! once into the model cache). Every source ends as a checked safetensors file on
//! local disk that the backend memory-maps.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::header::{Header, HeaderError, read_header};
use super::{Arch, ModelConfig, ZooError};

/// Why weights cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightsError {
    /// The URI is malformed.
    #[error("invalid weights URI `{uri}`: {reason}")]
    BadUri {
        /// The URI.
        uri: String,
        /// What is wrong.
        reason: String,
    },
    /// The scheme is not enabled on this worker.
    #[error("weights URI scheme `{scheme}` is not allowed (allowed: {allowed})")]
    Scheme {
        /// The scheme.
        scheme: String,
        /// The allowed schemes, comma-separated.
        allowed: String,
    },
    /// A `file://` path outside every allowed root.
    #[error("weights path {path} is outside the allowed roots ({roots})")]
    OutsideRoots {
        /// The path.
        path: String,
        /// The allowed roots, comma-separated.
        roots: String,
    },
    /// The file does not exist.
    #[error("weights file {0} does not exist")]
    NotFound(String),
    /// The file is not valid safetensors.
    #[error("{0}")]
    Corrupt(String),
    /// The tensors do not fit the architecture, or zoo parameters are wrong.
    #[error("{0}")]
    Zoo(#[from] ZooError),
    /// The download failed.
    #[error("downloading {url} failed: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The downloaded bytes do not have the expected sha256.
    #[error("checksum mismatch for {url}: expected sha256 {expected}, got {actual}")]
    Checksum {
        /// The URL.
        url: String,
        /// Expected hex digest.
        expected: String,
        /// Actual hex digest.
        actual: String,
    },
    /// Local I/O failed.
    #[error("model cache I/O failed: {0}")]
    Io(String),
}

impl From<HeaderError> for WeightsError {
    fn from(e: HeaderError) -> Self {
        match e {
            HeaderError::Io { .. } => WeightsError::Io(e.to_string()),
            HeaderError::Corrupt { .. } => WeightsError::Corrupt(e.to_string()),
        }
    }
}

/// A parsed weights URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightsUri {
    /// An absolute local path.
    File(PathBuf),
    /// A remote file; `sha256` is the expected digest from a `#sha256=HEX` fragment.
    Http {
        /// The URL without its fragment.
        url: String,
        /// Expected lowercase hex digest, if given.
        sha256: Option<String>,
    },
    /// Generated weights.
    Zoo {
        /// Architecture named by the URI.
        arch: String,
        /// Generator seed.
        seed: u64,
        /// Other parameters (shapes), sorted.
        params: BTreeMap<String, String>,
    },
}

impl WeightsUri {
    /// Parses `uri`.
    pub fn parse(uri: &str) -> Result<Self, WeightsError> {
        let bad = |reason: &str| WeightsError::BadUri { uri: uri.to_string(), reason: reason.to_string() };
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| bad("expected SCHEME://..."))?;
        match scheme {
            "file" => {
                let path = rest.strip_prefix("localhost").unwrap_or(rest);
                if !path.starts_with('/') {
                    return Err(bad("file URIs need an absolute path: file:///dir/model.safetensors"));
                }
                Ok(WeightsUri::File(PathBuf::from(percent_decode(path).ok_or_else(|| bad("bad percent-encoding"))?)))
            }
            "http" | "https" => {
                let (url, fragment) = uri.split_once('#').map_or((uri, None), |(u, f)| (u, Some(f)));
                let sha256 = match fragment {
                    None => None,
                    Some(f) => {
                        let hex = f.strip_prefix("sha256=").ok_or_else(|| bad("the only fragment allowed is #sha256=HEX"))?;
                        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                            return Err(bad("sha256 must be 64 hex digits"));
                        }
                        Some(hex.to_ascii_lowercase())
                    }
                };
                if rest.split('/').next().is_none_or(str::is_empty) {
                    return Err(bad("missing host"));
                }
                Ok(WeightsUri::Http { url: url.to_string(), sha256 })
            }
            "zoo" => {
                let (arch, query) = rest.split_once('?').unwrap_or((rest, ""));
                let mut params = BTreeMap::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').ok_or_else(|| bad("zoo parameters are KEY=VALUE"))?;
                    params.insert(k.to_string(), v.to_string());
                }
                let seed = match params.get("seed") {
                    None => 0,
                    Some(s) => s.parse().map_err(|_| bad("seed must be an unsigned integer"))?,
                };
                Ok(WeightsUri::Zoo { arch: arch.to_string(), seed, params })
            }
            _ => Err(WeightsError::Scheme { scheme: scheme.to_string(), allowed: String::new() }),
        }
    }

    /// The scheme.
    pub fn scheme(&self) -> &'static str {
        match self {
            WeightsUri::File(_) => "file",
            WeightsUri::Http { url, .. } if url.starts_with("https") => "https",
            WeightsUri::Http { .. } => "http",
            WeightsUri::Zoo { .. } => "zoo",
        }
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Where weights may come from and where downloads and generated weights are kept.
#[derive(Debug, Clone)]
pub struct WeightsConfig {
    /// Directories `file://` weights must lie under (after resolving symlinks).
    pub allowed_roots: Vec<PathBuf>,
    /// Enabled schemes (`file`, `zoo`, `http`, `https`).
    pub allowed_schemes: Vec<String>,
    /// The node-local model cache directory.
    pub cache_dir: PathBuf,
    /// Whole-download time limit.
    pub download_timeout: Duration,
    /// Largest download accepted, bytes.
    pub max_download_bytes: u64,
}

/// How the local file was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// Already on local disk (a `file://` path or a cache hit).
    Local,
    /// Downloaded now.
    Downloaded,
    /// Generated now.
    Generated,
}

/// Weights ready to memory-map.
#[derive(Debug, Clone)]
pub struct LocalWeights {
    /// The safetensors file.
    pub path: PathBuf,
    /// Its checked header.
    pub header: Header,
    /// Directory of companion files (`config.json`, `tokenizer.json`, `labels.txt`).
    pub dir: Option<PathBuf>,
    /// The architecture configuration the weights imply.
    pub config: ModelConfig,
    /// How the file was obtained.
    pub fetch: Fetch,
}

/// Resolves weights URIs to checked local files. One per worker, shared by devices.
pub struct WeightsStore {
    config: WeightsConfig,
    /// Canonical allowed roots (roots that do not exist are dropped).
    roots: Vec<PathBuf>,
    client: reqwest::Client,
    /// One lock per cache file, so a download or generation happens once however many
    /// requests ask for it at the same moment.
    fills: tokio::sync::Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
}

impl WeightsStore {
    /// A store for `config`.
    pub fn new(config: WeightsConfig) -> Self {
        let roots = config.allowed_roots.iter().filter_map(|r| r.canonicalize().ok()).collect();
        let client = reqwest::Client::builder().timeout(config.download_timeout).build().unwrap_or_default();
        WeightsStore { config, roots, client, fills: Default::default() }
    }

    /// Its configuration.
    pub fn config(&self) -> &WeightsConfig {
        &self.config
    }

    /// Parses `uri` and checks it against the allowed schemes, the allowed roots and
    /// the architecture, without fetching anything.
    pub fn check(&self, arch: Arch, uri: &str) -> Result<WeightsUri, WeightsError> {
        let parsed = WeightsUri::parse(uri).map_err(|e| match e {
            WeightsError::Scheme { scheme, .. } => WeightsError::Scheme { scheme, allowed: self.config.allowed_schemes.join(",") },
            other => other,
        })?;
        if !self.config.allowed_schemes.iter().any(|s| s == parsed.scheme()) {
            return Err(WeightsError::Scheme {
                scheme: parsed.scheme().to_string(),
                allowed: self.config.allowed_schemes.join(","),
            });
        }
        match &parsed {
            WeightsUri::File(path) => {
                self.check_path(path)?;
            }
            WeightsUri::Zoo { arch: named, params, .. } => {
                if named != arch.name() {
                    return Err(WeightsError::BadUri {
                        uri: uri.to_string(),
                        reason: format!("generated weights for `{named}` cannot serve model `{}`", arch.name()),
                    });
                }
                ModelConfig::from_params(arch, params)?;
            }
            WeightsUri::Http { .. } => {}
        }
        Ok(parsed)
    }

    fn check_path(&self, path: &Path) -> Result<PathBuf, WeightsError> {
        let roots = || self.config.allowed_roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(",");
        let outside = || WeightsError::OutsideRoots { path: path.display().to_string(), roots: roots() };
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(outside());
        }
        if !self.roots.iter().any(|r| path.starts_with(r)) && !self.config.allowed_roots.iter().any(|r| path.starts_with(r)) {
            return Err(outside());
        }
        let canonical = path.canonicalize().map_err(|_| WeightsError::NotFound(path.display().to_string()))?;
        if !self.roots.iter().any(|r| canonical.starts_with(r)) {
            return Err(outside());
        }
        Ok(canonical)
    }

    /// Brings the weights to local disk (downloading or generating them if needed) and
    /// checks them against `arch`.
    pub async fn materialise(&self, arch: Arch, uri: &WeightsUri) -> Result<LocalWeights, WeightsError> {
        let (path, dir, fetch) = match uri {
            WeightsUri::File(p) => {
                let canonical = self.check_path(p)?;
                let dir = canonical.parent().map(Path::to_path_buf);
                (canonical, dir, Fetch::Local)
            }
            WeightsUri::Zoo { params, seed, .. } => {
                let config = ModelConfig::from_params(arch, params)?;
                let path = self.zoo_path(arch, *seed, params);
                let seed = *seed;
                let fetch = self
                    .fill(&path, |tmp| async move {
                        tokio::task::spawn_blocking(move || super::write_generated(&config, seed, &tmp).map(|_| ()))
                            .await
                            .map_err(|e| WeightsError::Io(e.to_string()))?
                            .map_err(WeightsError::from)
                    })
                    .await?;
                (path, None, if fetch { Fetch::Generated } else { Fetch::Local })
            }
            WeightsUri::Http { url, sha256 } => {
                let dir = self.http_dir(url, sha256.as_deref());
                let path = dir.join("model.safetensors");
                let fetched = self.fill(&path, |tmp| self.download(url, sha256.clone(), tmp, arch)).await?;
                (path, Some(dir), if fetched { Fetch::Downloaded } else { Fetch::Local })
            }
        };
        let checked = {
            let path = path.clone();
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || -> Result<(Header, ModelConfig), WeightsError> {
                let header = read_header(&path)?;
                let config = ModelConfig::from_weights(arch, &header, dir.as_deref())?;
                Ok((header, config))
            })
            .await
            .map_err(|e| WeightsError::Io(e.to_string()))??
        };
        Ok(LocalWeights { path, header: checked.0, dir, config: checked.1, fetch })
    }

    fn zoo_path(&self, arch: Arch, seed: u64, params: &BTreeMap<String, String>) -> PathBuf {
        let mut name = format!("{}-seed{seed}", arch.name());
        for (k, v) in params.iter().filter(|(k, _)| *k != "seed") {
            name.push_str(&format!("-{k}{v}"));
        }
        let safe: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        self.config.cache_dir.join("zoo").join(format!("{safe}.safetensors"))
    }

    fn http_dir(&self, url: &str, sha256: Option<&str>) -> PathBuf {
        let id = hex::encode(Sha256::digest(format!("{url}#{}", sha256.unwrap_or_default())));
        self.config.cache_dir.join("http").join(&id[..32])
    }

    /// Runs `make(tmp)` to create `path` unless it exists, once at a time per path;
    /// the result is renamed into place, so a half-written file is never used.
    /// Returns whether it had to be made.
    async fn fill<F, Fut>(&self, path: &Path, make: F) -> Result<bool, WeightsError>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: std::future::Future<Output = Result<(), WeightsError>>,
    {
        let lock = self.fills.lock().await.entry(path.to_path_buf()).or_default().clone();
        let _held = lock.lock().await;
        if path.is_file() {
            return Ok(false);
        }
        let parent = path.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(parent).await.map_err(|e| WeightsError::Io(format!("{}: {e}", parent.display())))?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let made = make(tmp.clone()).await;
        if let Err(e) = made {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        tokio::fs::rename(&tmp, path).await.map_err(|e| WeightsError::Io(e.to_string()))?;
        Ok(true)
    }

    /// Downloads `url` to `tmp`, hashing as it goes; text models also get the
    /// `config.json` and `tokenizer.json` that sit beside the weights, if any.
    async fn download(&self, url: &str, sha256: Option<String>, tmp: PathBuf, arch: Arch) -> Result<(), WeightsError> {
        let digest = self.fetch_to(url, &tmp).await?;
        if let Some(expected) = sha256.filter(|e| *e != digest) {
            return Err(WeightsError::Checksum { url: url.to_string(), expected, actual: digest });
        }
        let dir = tmp.parent().map(Path::to_path_buf).unwrap_or_default();
        tokio::fs::write(dir.join("model.sha256"), format!("{digest}  {url}\n")).await.map_err(|e| WeightsError::Io(e.to_string()))?;
        let base = url.rsplit_once('/').map(|(base, _)| base);
        if let Some(base) = base.filter(|_| arch.task() == locus_vram::profile::Task::TextEmbedding) {
            for companion in ["config.json", "tokenizer.json"] {
                // Best effort: a model without these gets the zoo defaults.
                let _ = self.fetch_to(&format!("{base}/{companion}"), &dir.join(companion)).await;
            }
        }
        Ok(())
    }

    async fn fetch_to(&self, url: &str, out: &Path) -> Result<String, WeightsError> {
        use tokio::io::AsyncWriteExt;
        let fail = |reason: String| WeightsError::Download { url: url.to_string(), reason };
        let mut resp = self.client.get(url).send().await.map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status())));
        }
        let mut file = tokio::fs::File::create(out).await.map_err(|e| WeightsError::Io(e.to_string()))?;
        let mut hasher = Sha256::new();
        let mut total = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
            total += chunk.len() as u64;
            if total > self.config.max_download_bytes {
                return Err(fail(format!("larger than the {} byte limit", self.config.max_download_bytes)));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(|e| WeightsError::Io(e.to_string()))?;
        }
        file.flush().await.map_err(|e| WeightsError::Io(e.to_string()))?;
        Ok(hex::encode(hasher.finalize()))
    }
}

#[cfg(test)]
mod tests;
