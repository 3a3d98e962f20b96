//! Where the workers are: a static list (`workers=http://a:8090,http://b:8090`) or a
//! DNS name resolved again on every health round (`workers=dns+http://name:8090`, a
//! Kubernetes headless Service: one A record per ready worker pod).

use std::collections::BTreeSet;
use std::net::IpAddr;

/// How the worker set is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerSource {
    /// Fixed base URLs (`http://host:port`, no trailing slash).
    Static(Vec<String>),
    /// Every address `host` resolves to, as `scheme://ip:port`.
    Dns {
        /// `http` or `https`.
        scheme: String,
        /// The name to resolve.
        host: String,
        /// The workers' port.
        port: u16,
    },
}

/// A `workers` setting that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("workers={value:?}: {why}")]
pub struct SourceError {
    value: String,
    why: String,
}

impl WorkerSource {
    /// Parses the `workers` setting; empty means no workers.
    pub fn parse(value: &str) -> Result<Self, SourceError> {
        let err = |why: &str| SourceError {
            value: value.to_string(),
            why: why.to_string(),
        };
        let value = value.trim();
        if let Some(rest) = value.strip_prefix("dns+") {
            let (scheme, hostport) = rest
                .split_once("://")
                .ok_or_else(|| err("expected dns+http://NAME:PORT"))?;
            if scheme != "http" && scheme != "https" {
                return Err(err("the scheme after dns+ must be http or https"));
            }
            let hostport = hostport.trim_end_matches('/');
            let (host, port) = hostport
                .rsplit_once(':')
                .ok_or_else(|| err("a port is required: dns+http://NAME:PORT"))?;
            let port = port.parse().map_err(|_| err("the port is not a number"))?;
            if host.is_empty() {
                return Err(err("the name is empty"));
            }
            return Ok(WorkerSource::Dns {
                scheme: scheme.to_string(),
                host: host.to_string(),
                port,
            });
        }
        let mut urls = Vec::new();
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let rest = item
                .strip_prefix("http://")
                .or_else(|| item.strip_prefix("https://"))
                .ok_or_else(|| err("each worker must be an http:// or https:// URL"))?;
            if rest.trim_end_matches('/').is_empty() || rest.contains(char::is_whitespace) {
                return Err(err("a worker URL needs a host"));
            }
            urls.push(item.trim_end_matches('/').to_string());
        }
        Ok(WorkerSource::Static(urls))
    }

    /// The workers' base URLs now. A DNS failure is an empty set: every worker is then
    /// treated as gone until the name resolves again.
    pub async fn resolve(&self) -> BTreeSet<String> {
        match self {
            WorkerSource::Static(urls) => urls.iter().cloned().collect(),
            WorkerSource::Dns { scheme, host, port } => {
                match tokio::net::lookup_host((host.as_str(), *port)).await {
                    Ok(addrs) => addrs.map(|a| url_of(scheme, a.ip(), *port)).collect(),
                    Err(e) => {
                        tracing::warn!(%host, error = %e, "worker DNS lookup failed");
                        BTreeSet::new()
                    }
                }
            }
        }
    }
}

fn url_of(scheme: &str, ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{scheme}://{v4}:{port}"),
        IpAddr::V6(v6) => format!("{scheme}://[{v6}]:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_static_list_keeps_its_urls_without_trailing_slashes() {
        let s = WorkerSource::parse("http://a:8090/, http://b:8090").unwrap();
        assert_eq!(
            s,
            WorkerSource::Static(vec!["http://a:8090".into(), "http://b:8090".into()])
        );
        assert_eq!(
            WorkerSource::parse("").unwrap(),
            WorkerSource::Static(vec![])
        );
    }

    #[test]
    fn a_dns_source_names_scheme_host_and_port() {
        let s = WorkerSource::parse("dns+http://gpu-worker.locus.svc:8090").unwrap();
        assert_eq!(
            s,
            WorkerSource::Dns {
                scheme: "http".into(),
                host: "gpu-worker.locus.svc".into(),
                port: 8090
            }
        );
        assert!(WorkerSource::parse("dns+http://gpu-worker").is_err());
        assert!(WorkerSource::parse("dns+ftp://x:1").is_err());
        assert!(WorkerSource::parse("a:8090").is_err());
    }

    #[tokio::test]
    async fn a_dns_source_resolves_to_one_url_per_address() {
        let s = WorkerSource::parse("dns+http://localhost:8090").unwrap();
        let urls = s.resolve().await;
        assert!(
            urls.iter()
                .any(|u| u == "http://127.0.0.1:8090" || u == "http://[::1]:8090"),
            "{urls:?}"
        );
    }
}
