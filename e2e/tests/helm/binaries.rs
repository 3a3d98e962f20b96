//! The rendered provider container, run for real: the workspace's `faas-provider`
//! binary started with exactly the env, arguments and basic-auth files each value set
//! renders (only the port, bind address and the two mounted directories are moved to
//! loopback and a temporary directory), then probed the way Kubernetes and the gateway
//! would. The worker is not started here: its binary binds every interface and prints
//! no `listening on` line yet, and the default set asks for CUDA devices.

use std::collections::BTreeMap;
use std::process::Command;

use serde_yaml::Value as Yaml;

use super::*;

/// Standard base64 (a Secret's `data`), without a dependency for it.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut bits, mut count) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = ALPHABET
            .iter()
            .position(|a| *a == c)
            .expect("base64 character") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

/// The provider Deployment's container and, when rendered, the basic-auth Secret's data.
fn provider_of(objects: &[Yaml]) -> (&Yaml, Option<&Yaml>) {
    let deployment = of_kind(objects, "Deployment")
        .next()
        .expect("provider Deployment");
    let container = &seq(deployment, "spec.template.spec.containers")[0];
    let secret = of_kind(objects, "Secret").next().map(|s| at(s, "data"));
    (container, secret)
}

#[test]
fn base64_decoding_matches_known_values() {
    assert_eq!(base64_decode("YWRtaW4="), b"admin");
    assert_eq!(base64_decode("bG9jdXM="), b"locus");
    assert_eq!(base64_decode("YWI="), b"ab");
}

#[tokio::test]
async fn the_provider_starts_with_each_rendered_env_and_answers_its_probes_and_basic_auth() {
    let binary = e2e::binary("faas-provider");
    let http = reqwest::Client::new();
    for (set, _) in VALUE_SETS {
        let (container, secret) = provider_of(&renders()[set].1);
        let env = env_of(container);
        let dir = tempfile::tempdir().expect("temp dir");
        let (state, secrets) = (dir.path().join("state"), dir.path().join("secrets"));
        std::fs::create_dir_all(&secrets).unwrap();
        // The files the Secret volume would hold: the rendered Secret's, else (an
        // existing Secret such as OpenFaaS's basic-auth) ones of our own.
        let decode = |key: &str| -> String {
            let Some(data) = secret else {
                return format!("{key}-value");
            };
            let encoded = at(data, key).as_str().expect("Secret key");
            String::from_utf8(base64_decode(encoded)).expect("utf-8")
        };
        // Lay the files out as the Secret volume's items say (key -> file name).
        let deployment = of_kind(&renders()[set].1, "Deployment").next().unwrap();
        let volumes = seq(deployment, "spec.template.spec.volumes");
        let mut credentials: BTreeMap<String, String> = BTreeMap::new();
        if let Some(volume) = volumes.iter().find(|v| text(v, "name") == "basic-auth") {
            for item in seq(volume, "secret.items") {
                let (key, file) = (text(item, "key"), text(item, "path"));
                std::fs::write(secrets.join(&file), decode(&key)).unwrap();
                credentials.insert(key.clone(), decode(&key));
            }
        }
        credentials
            .entry("basic-auth-user".into())
            .or_insert_with(|| "nobody".into());
        credentials
            .entry("basic-auth-password".into())
            .or_insert_with(|| "nothing".into());

        let mut cmd = Command::new(&binary);
        cmd.env_clear().args(
            seq(container, "args")
                .iter()
                .map(|a| a.as_str().expect("arg")),
        );
        for (name, value) in &env {
            cmd.env(name, value);
        }
        cmd.env("port", "0")
            .env("bind_address", "127.0.0.1")
            .env("state_dir", &state);
        if env.contains_key("secret_mount_path") {
            cmd.env("secret_mount_path", &secrets);
        }
        let provider = e2e::Spawned::start(cmd);
        let url = provider.url();

        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            let path = text(container, &format!("{probe}.httpGet.path"));
            let status = http
                .get(format!("{url}{path}"))
                .send()
                .await
                .expect("probe")
                .status();
            assert_eq!(status, 200, "{set}: {probe} {path}\n{}", provider.output());
        }
        let info = format!("{url}/system/info");
        let anonymous = http.get(&info).send().await.expect("info").status();
        let user = &credentials["basic-auth-user"];
        let password = &credentials["basic-auth-password"];
        let authed = http
            .get(&info)
            .basic_auth(user, Some(password))
            .send()
            .await
            .expect("info")
            .status();
        if env["basic_auth"] == "true" {
            assert_eq!(
                anonymous, 401,
                "{set}: /system/info needs the Secret's credentials"
            );
            assert_eq!(
                authed,
                200,
                "{set}: the Secret's credentials are accepted\n{}",
                provider.output()
            );
        } else {
            assert_eq!(anonymous, 200, "{set}: basic auth is off");
        }
        let metrics = http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("provider_http_requests_total"),
            "{set}: /metrics\n{metrics}"
        );
        assert!(
            state.join("locus.redb").is_file(),
            "{set}: state_dir holds the database"
        );
    }
}
