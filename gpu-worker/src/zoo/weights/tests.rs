//! Tests of weight sources: URI parsing, allowed roots, the zoo cache, and http(s)
//! downloads (served from a loopback server) that happen once and are checksummed.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;

use super::*;

fn store(dir: &Path, schemes: &str) -> WeightsStore {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    WeightsStore::new(WeightsConfig {
        allowed_roots: vec![root],
        allowed_schemes: schemes.split(',').map(str::to_string).collect(),
        cache_dir: dir.join("cache"),
        download_timeout: Duration::from_secs(30),
        max_download_bytes: 1 << 30,
    })
}

const TINY: &str = "zoo://mlp?seed=5&input=3&width=4&depth=1&output=2";

fn tiny_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.safetensors");
    let params = match WeightsUri::parse(TINY).unwrap() {
        WeightsUri::Zoo { params, .. } => params,
        other => panic!("{other:?}"),
    };
    super::super::write_generated(&ModelConfig::from_params(Arch::Mlp, &params).unwrap(), 5, &path).unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn uris_parse_into_their_kinds_and_malformed_ones_are_refused() {
    assert_eq!(WeightsUri::parse("file:///m/w.safetensors").unwrap(), WeightsUri::File("/m/w.safetensors".into()));
    assert_eq!(WeightsUri::parse("file:///a%20b").unwrap(), WeightsUri::File("/a b".into()));
    let zoo = WeightsUri::parse("zoo://resnet18?seed=9&classes=10").unwrap();
    assert!(matches!(zoo, WeightsUri::Zoo { ref arch, seed: 9, ref params } if arch == "resnet18" && params.len() == 2));
    let hex = "ab".repeat(32);
    let http = WeightsUri::parse(&format!("https://h/m.safetensors#sha256={hex}")).unwrap();
    assert_eq!(http, WeightsUri::Http { url: "https://h/m.safetensors".into(), sha256: Some(hex) });
    for bad in ["file://relative/path", "zoo://mlp?seed=-1", "https://h/m#md5=00", "no-scheme", "https:///nohost"] {
        assert!(WeightsUri::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn files_must_lie_under_an_allowed_root_even_through_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "file,zoo");
    let inside = dir.path().join("root/w.safetensors");
    std::fs::write(&inside, tiny_bytes()).unwrap();
    assert!(s.check(Arch::Mlp, &format!("file://{}", inside.display())).is_ok());
    let secret = dir.path().join("secret.safetensors");
    std::fs::write(&secret, tiny_bytes()).unwrap();
    let link = dir.path().join("root/link.safetensors");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    for uri in [format!("file://{}", secret.display()), format!("file://{}", link.display())] {
        assert!(matches!(s.check(Arch::Mlp, &uri), Err(WeightsError::OutsideRoots { .. })), "{uri}");
    }
    assert!(matches!(s.check(Arch::Mlp, "https://h/w.safetensors"), Err(WeightsError::Scheme { .. })));
}

#[tokio::test]
async fn zoo_weights_are_generated_once_then_served_from_the_model_cache() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "zoo");
    let uri = s.check(Arch::Mlp, TINY).unwrap();
    let first = s.materialise(Arch::Mlp, &uri).await.unwrap();
    assert_eq!(first.fetch, Fetch::Generated);
    let second = s.materialise(Arch::Mlp, &uri).await.unwrap();
    assert_eq!(second.fetch, Fetch::Local);
    assert_eq!(first.path, second.path);
    assert_eq!(std::fs::read(&first.path).unwrap(), tiny_bytes(), "same seed, same bytes");
    assert_eq!(first.header.tensor_bytes, (3 * 4 + 4 + 4 * 2 + 2) * 4);
}

async fn serve(files: Vec<(&'static str, Vec<u8>)>) -> (String, std::sync::Arc<AtomicUsize>) {
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let mut app = Router::new();
    for (path, body) in files {
        let hits = hits.clone();
        app = app.route(
            path,
            get(move || {
                hits.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                async move { body }
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), hits)
}

#[tokio::test]
async fn http_weights_are_downloaded_once_checked_and_kept_with_their_companions() {
    let bytes = tiny_bytes();
    let digest = hex::encode(Sha256::digest(&bytes));
    let (base, hits) = serve(vec![("/m/model.safetensors", bytes.clone()), ("/m/config.json", b"{}".to_vec())]).await;
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "http");
    let uri = s.check(Arch::Mlp, &format!("{base}/m/model.safetensors#sha256={digest}")).unwrap();
    let (a, b) = tokio::join!(s.materialise(Arch::Mlp, &uri), s.materialise(Arch::Mlp, &uri));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(hits.load(Ordering::SeqCst), 1, "two concurrent requests, one download");
    assert_eq!([a.fetch, b.fetch].iter().filter(|f| **f == Fetch::Downloaded).count(), 1);
    assert_eq!(std::fs::read(&a.path).unwrap(), bytes);
    let again = s.materialise(Arch::Mlp, &uri).await.unwrap();
    assert_eq!(again.fetch, Fetch::Local);
    assert_eq!(hits.load(Ordering::SeqCst), 1, "never re-downloaded while cached");
    let sidecar = std::fs::read_to_string(a.dir.unwrap().join("model.sha256")).unwrap();
    assert!(sidecar.starts_with(&digest));
}

#[tokio::test]
async fn a_download_with_the_wrong_checksum_is_refused_and_not_cached() {
    let (base, hits) = serve(vec![("/w.safetensors", tiny_bytes())]).await;
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), "http");
    let uri = s.check(Arch::Mlp, &format!("{base}/w.safetensors#sha256={}", "0".repeat(64))).unwrap();
    for _ in 0..2 {
        let err = s.materialise(Arch::Mlp, &uri).await.unwrap_err();
        assert!(matches!(err, WeightsError::Checksum { .. }), "{err}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    let missing = s.check(Arch::Mlp, &format!("{base}/nothing.safetensors")).unwrap();
    assert!(matches!(s.materialise(Arch::Mlp, &missing).await, Err(WeightsError::Download { .. })));
}
