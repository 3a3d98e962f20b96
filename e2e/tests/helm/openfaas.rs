//! Checks of `helm/openfaas/`: the patch that points the official OpenFaaS chart's
//! gateway at the Locus provider, run through the real `kubectl kustomize`.

use std::collections::BTreeMap;
use std::process::Command;

use serde_yaml::Value as Yaml;

use super::*;

/// A stand-in for the official OpenFaaS chart's gateway Deployment: the gateway
/// container with the provider URL the chart hard-codes, and the faas-netes sidecar.
const STAND_IN_GATEWAY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: gateway, namespace: openfaas, labels: {app: openfaas, component: gateway}}
spec:
  replicas: 1
  selector: {matchLabels: {app: gateway}}
  template:
    metadata: {labels: {app: gateway}}
    spec:
      containers:
        - name: gateway
          image: ghcr.io/openfaas/gateway:0.27.13
          env:
            - {name: read_timeout, value: "60s"}
            - {name: functions_provider_url, value: "http://127.0.0.1:8081/"}
            - {name: function_namespace, value: openfaas-fn}
            - {name: basic_auth, value: "true"}
            - {name: secret_mount_path, value: /var/secrets}
        - name: faas-netes
          image: ghcr.io/openfaas/faas-netes:0.18.17
          env:
            - {name: port, value: "8081"}
"#;

#[test]
fn the_openfaas_gateway_patch_points_the_gateway_at_the_provider_and_keeps_the_rest() {
    let kubectl = tool("kubectl");
    let default = &renders()["default"].1;
    let service = of_kind(default, "Service")
        .find(|s| at(s, "spec.clusterIP").is_null())
        .expect("provider Service");
    let port = text(&seq(service, "spec.ports")[0], "port");
    let expected = format!(
        "http://{}.{NAMESPACE}.svc:{port}/",
        text(service, "metadata.name")
    );
    let folder = repo().join("helm/openfaas");
    let dir = tempfile::tempdir().expect("temp dir");
    for file in ["kustomization.yaml", "gateway-patch.yaml"] {
        std::fs::copy(folder.join(file), dir.path().join(file)).expect("copy");
    }
    std::fs::write(dir.path().join("openfaas.yaml"), STAND_IN_GATEWAY).unwrap();
    let kustomized =
        run(Command::new(&kubectl).arg("kustomize").arg(dir.path())).expect("kubectl kustomize");
    let mut piped = Command::new(folder.join("post-render.sh"));
    piped
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = piped.spawn().expect("post-render.sh");
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        STAND_IN_GATEWAY.as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "post-render.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        kustomized,
        "the post-renderer and the kustomization agree"
    );

    let patched: Yaml = serde_yaml::from_str(&kustomized).expect("one Deployment");
    let original: Yaml = serde_yaml::from_str(STAND_IN_GATEWAY).unwrap();
    let containers = |d: &Yaml| -> Vec<BTreeMap<String, String>> {
        seq(d, "spec.template.spec.containers")
            .iter()
            .map(env_of)
            .collect()
    };
    let (after, before) = (containers(&patched), containers(&original));
    assert_eq!(
        after[0]["functions_provider_url"], expected,
        "the gateway must call the provider's Service"
    );
    assert!(
        expected.ends_with('/'),
        "functions_provider_url must end with /"
    );
    let unchanged = |env: &BTreeMap<String, String>| {
        env.iter()
            .filter(|(k, _)| *k != "functions_provider_url")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        unchanged(&after[0]),
        unchanged(&before[0]),
        "the gateway's other settings are kept"
    );
    assert_eq!(after[1], before[1], "the faas-netes sidecar is untouched");
    let validator = tool("kubernetes-validate");
    run(Command::new(validator)
        .args(["--strict", "-k", KUBE_VERSIONS[0], "-k", KUBE_VERSIONS[1]])
        .arg(folder.join("faas-netes-service.yaml")))
    .expect("faas-netes-service.yaml validates");
}
