//! The header rules every forward follows (contract §1.6), shared by the model plane's
//! worker calls and the container runtimes' proxy: hop-by-hop headers (and those a
//! `Connection` header names) never cross, and `X-Forwarded-Host` / `X-Forwarded-For`
//! are added when the caller sent none.

use std::net::SocketAddr;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// `headers` without the hop-by-hop ones and those their `Connection` header names.
pub fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len() + 2);
    for (name, value) in headers {
        let lower = name.as_str();
        if HOP_BY_HOP.contains(&lower) || named.iter().any(|n| n == lower) {
            continue;
        }
        out.append(HeaderName::clone(name), value.clone());
    }
    out
}

/// Adds `X-Forwarded-Host` (the caller's `Host`) and `X-Forwarded-For` (the caller's
/// address) to `headers`, each only when absent.
pub fn add_forwarded(headers: &mut HeaderMap, incoming: &HeaderMap, peer: Option<SocketAddr>) {
    if !headers.contains_key("x-forwarded-host")
        && let Some(host) = incoming.get(header::HOST)
    {
        headers.insert("x-forwarded-host", host.clone());
    }
    if !headers.contains_key("x-forwarded-for")
        && let Some(peer) = peer
        && let Ok(value) = HeaderValue::from_str(&peer.to_string())
    {
        headers.insert("x-forwarded-for", value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_dropped_and_the_rest_kept() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret-hop"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.append("x-kept", HeaderValue::from_static("a"));
        h.append("x-kept", HeaderValue::from_static("b"));
        let out = end_to_end(&h);
        assert!(out.get(header::CONNECTION).is_none());
        assert!(out.get("x-secret-hop").is_none());
        assert!(out.get(header::TRANSFER_ENCODING).is_none());
        assert_eq!(out.get_all("x-kept").iter().count(), 2);
    }

    #[test]
    fn forwarded_headers_are_added_only_when_the_caller_sent_none() {
        let mut incoming = HeaderMap::new();
        incoming.insert(header::HOST, HeaderValue::from_static("gw:8080"));
        let peer: SocketAddr = "10.0.0.1:555".parse().expect("addr");
        let mut out = HeaderMap::new();
        add_forwarded(&mut out, &incoming, Some(peer));
        assert_eq!(out["x-forwarded-host"], "gw:8080");
        assert_eq!(out["x-forwarded-for"], "10.0.0.1:555");
        let mut kept = HeaderMap::new();
        kept.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        add_forwarded(&mut kept, &incoming, Some(peer));
        assert_eq!(kept["x-forwarded-for"], "1.2.3.4");
    }
}
