//! Checks of the rendered objects that schemas cannot make: they point at each other
//! correctly, the env names real configuration keys, and bad values are refused.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value as Yaml;

use super::*;

#[test]
fn the_rendered_objects_point_at_each_other_consistently() {
    for (set, file) in VALUE_SETS {
        let objects = &renders()[set].1;
        let values = values_of(file);
        let names: BTreeSet<String> = objects.iter().map(kind_name).collect();
        let workloads: Vec<&Yaml> = of_kind(objects, "Deployment")
            .chain(of_kind(objects, "DaemonSet"))
            .collect();
        for object in objects {
            assert_eq!(
                text(object, "metadata.namespace"),
                NAMESPACE,
                "{set}: {}",
                kind_name(object)
            );
        }
        for workload in &workloads {
            let what = format!("{set}: {}", kind_name(workload));
            let pod = at(workload, "spec.template");
            assert!(
                selects(
                    at(workload, "spec.selector.matchLabels"),
                    at(pod, "metadata.labels")
                ),
                "{what}: selector"
            );
            check_pod(&what, at(pod, "spec"), objects, &values);
        }
        for service in of_kind(objects, "Service") {
            let what = format!("{set}: {}", kind_name(service));
            let targets: Vec<_> = workloads
                .iter()
                .filter(|w| {
                    selects(
                        at(service, "spec.selector"),
                        at(w, "spec.template.metadata.labels"),
                    )
                })
                .collect();
            assert_eq!(targets.len(), 1, "{what} must select exactly one workload");
            let container = &seq(targets[0], "spec.template.spec.containers")[0];
            let ports: BTreeSet<String> = seq(container, "ports")
                .iter()
                .map(|p| text(p, "name"))
                .collect();
            for port in seq(service, "spec.ports") {
                assert!(
                    ports.contains(&text(port, "targetPort")),
                    "{what}: targetPort {:?}",
                    at(port, "targetPort")
                );
            }
        }
        for binding in of_kind(objects, "RoleBinding") {
            assert!(
                names.contains(&format!("Role/{}", text(binding, "roleRef.name"))),
                "{set}: roleRef"
            );
            for subject in seq(binding, "subjects") {
                assert!(
                    names.contains(&format!("ServiceAccount/{}", text(subject, "name"))),
                    "{set}: subject"
                );
            }
        }
        for monitor in of_kind(objects, "ServiceMonitor") {
            let what = format!("{set}: {}", kind_name(monitor));
            let service = of_kind(objects, "Service")
                .find(|s| {
                    selects(
                        at(monitor, "spec.selector.matchLabels"),
                        at(s, "metadata.labels"),
                    )
                })
                .unwrap_or_else(|| panic!("{what} selects no Service"));
            let ports: Vec<String> = seq(service, "spec.ports")
                .iter()
                .map(|p| text(p, "name"))
                .collect();
            for endpoint in seq(monitor, "spec.endpoints") {
                assert!(
                    ports.contains(&text(endpoint, "port")),
                    "{what}: endpoint port"
                );
                assert_eq!(text(endpoint, "path"), "/metrics", "{what}");
            }
            assert_eq!(
                seq(monitor, "spec.namespaceSelector.matchNames")[0].as_str(),
                Some(NAMESPACE)
            );
        }
        for map in of_kind(objects, "ConfigMap") {
            let shipped = at(map, "data")
                .get("locus.json")
                .and_then(Yaml::as_str)
                .expect("locus.json in the ConfigMap");
            assert_eq!(
                shipped.trim_end(),
                read(&chart().join("dashboards/locus.json")).trim_end(),
                "{set}: dashboard"
            );
        }
        check_discovery(set, objects, &values);
    }
}

/// Volumes, accounts, Secrets, claims and probes of one pod spec.
fn check_pod(what: &str, spec: &Yaml, objects: &[Yaml], values: &Yaml) {
    let account = text(spec, "serviceAccountName");
    let created = of_kind(objects, "ServiceAccount").count() > 0;
    assert!(
        !created || of_kind(objects, "ServiceAccount").any(|a| text(a, "metadata.name") == account),
        "{what}: account"
    );
    let volumes: BTreeMap<String, &Yaml> = seq(spec, "volumes")
        .iter()
        .map(|v| (text(v, "name"), v))
        .collect();
    let containers: Vec<&Yaml> = seq(spec, "containers")
        .iter()
        .chain(seq(spec, "initContainers"))
        .collect();
    let mut mounted = BTreeSet::new();
    for container in &containers {
        for mount in seq(container, "volumeMounts") {
            assert!(
                volumes.contains_key(&text(mount, "name")),
                "{what}: mount of unknown volume {:?}",
                mount
            );
            mounted.insert(text(mount, "name"));
        }
    }
    assert_eq!(
        mounted,
        volumes.keys().cloned().collect(),
        "{what}: every volume is mounted"
    );
    for volume in volumes.values() {
        if let Some(secret) = at(volume, "secret.secretName").as_str() {
            match of_kind(objects, "Secret").find(|s| text(s, "metadata.name") == secret) {
                Some(object) => {
                    for item in seq(volume, "secret.items") {
                        assert!(
                            !at(object, "data")
                                .get(text(item, "key"))
                                .unwrap_or(&Yaml::Null)
                                .is_null(),
                            "{what}: key"
                        );
                    }
                }
                None => assert_eq!(
                    text(values, "basicAuth.existingSecret"),
                    secret,
                    "{what}: Secret {secret}"
                ),
            }
        }
        if let Some(claim) = at(volume, "persistentVolumeClaim.claimName").as_str() {
            let rendered = of_kind(objects, "PersistentVolumeClaim")
                .any(|c| text(c, "metadata.name") == claim);
            assert!(
                rendered || text(values, "provider.persistence.existingClaim") == claim,
                "{what}: claim {claim}"
            );
        }
    }
    let main = containers[0];
    let ports: BTreeSet<String> = seq(main, "ports").iter().map(|p| text(p, "name")).collect();
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        if !at(main, probe).is_null() {
            assert!(
                ports.contains(&text(main, &format!("{probe}.httpGet.port"))),
                "{what}: {probe} port"
            );
        }
    }
    let env = env_of(main);
    if what.contains("Deployment/") {
        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            assert_eq!(
                text(main, &format!("{probe}.httpGet.path")),
                "/healthz",
                "{what}: {probe}"
            );
        }
        let mount_of = |volume: &str| {
            seq(main, "volumeMounts")
                .iter()
                .find(|m| text(m, "name") == volume)
                .map(|m| text(m, "mountPath"))
        };
        assert_eq!(
            mount_of("state"),
            env.get("state_dir").cloned(),
            "{what}: state_dir is the state volume"
        );
        assert_eq!(
            mount_of("basic-auth"),
            env.get("secret_mount_path").cloned(),
            "{what}: secret_mount_path"
        );
        assert_eq!(
            env["basic_auth"],
            text(values, "basicAuth.enabled"),
            "{what}: basic_auth"
        );
    } else {
        assert_eq!(
            text(main, "livenessProbe.httpGet.path"),
            "/healthz",
            "{what}"
        );
        assert_eq!(
            text(main, "readinessProbe.httpGet.path"),
            "/readyz",
            "{what}"
        );
        let probe_period: u64 = env["probe_period"]
            .parse()
            .expect("probe_period in seconds");
        let drain: u64 = env["drain_timeout"]
            .parse()
            .expect("drain_timeout in seconds");
        let grace = at(spec, "terminationGracePeriodSeconds")
            .as_u64()
            .expect("grace period");
        assert!(
            grace > probe_period + drain,
            "{what}: grace {grace} <= probe period {probe_period} + drain {drain}"
        );
        assert_eq!(
            probe_period,
            at(main, "readinessProbe.periodSeconds").as_u64().unwrap(),
            "{what}: probe_period"
        );
        let gpus = at(values, "worker.gpusPerNode")
            .as_u64()
            .expect("gpusPerNode");
        let limit = at(main, "resources.limits")
            .get("nvidia.com/gpu")
            .and_then(Yaml::as_u64);
        assert_eq!(
            limit,
            (gpus > 0).then_some(gpus),
            "{what}: nvidia.com/gpu limit"
        );
    }
}

/// The provider finds the workers through the headless Service that selects the DaemonSet.
fn check_discovery(set: &str, objects: &[Yaml], values: &Yaml) {
    let provider = of_kind(objects, "Deployment")
        .next()
        .expect("provider Deployment");
    let env = env_of(&seq(provider, "spec.template.spec.containers")[0]);
    let Some(daemonset) = of_kind(objects, "DaemonSet").next() else {
        assert!(
            !env.contains_key("workers"),
            "{set}: workers set without a worker DaemonSet"
        );
        return;
    };
    let headless = of_kind(objects, "Service")
        .find(|s| {
            selects(
                at(s, "spec.selector"),
                at(daemonset, "spec.template.metadata.labels"),
            )
        })
        .expect("a Service selects the workers");
    assert_eq!(
        text(headless, "spec.clusterIP"),
        "None",
        "{set}: the workers' Service is headless"
    );
    assert_eq!(
        at(headless, "spec.publishNotReadyAddresses").as_bool(),
        Some(false),
        "{set}: only ready workers in DNS"
    );
    let port = text(&seq(headless, "spec.ports")[0], "port");
    let expected = format!(
        "dns+http://{}.{NAMESPACE}.svc:{port}",
        text(headless, "metadata.name")
    );
    assert_eq!(
        env["workers"], expected,
        "{set}: provider's workers address"
    );
    assert_eq!(port, text(values, "worker.port"), "{set}: worker port");
    if set == "default" {
        let spec = at(daemonset, "spec.template.spec");
        let selector = at(spec, "nodeSelector")
            .get("nvidia.com/gpu.present")
            .and_then(Yaml::as_str);
        assert_eq!(selector, Some("true"), "default: GPU nodes only");
        assert!(
            seq(spec, "tolerations")
                .iter()
                .any(|t| text(t, "key") == "nvidia.com/gpu"),
            "default: GPU taint"
        );
    }
}

/// The `pub NAME:` fields of a `Config` struct in a source file: the env names it reads.
fn config_fields(source_file: &str, struct_name: &str) -> BTreeSet<String> {
    let source = read(&repo().join(source_file));
    let start = source
        .find(&format!("pub struct {struct_name} "))
        .unwrap_or_else(|| panic!("{source_file}: no {struct_name} struct"));
    let body = &source[start..start + source[start..].find("\n}").expect("end of Config")];
    body.lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("pub ")?
                .split_once(':')
                .map(|(name, _)| name.trim().to_string())
        })
        .collect()
}

#[test]
fn the_env_the_chart_sets_names_only_configuration_keys_the_binaries_read() {
    // The provider reads its control-plane settings and its data plane's from two files.
    let mut provider_keys = config_fields("faas-provider/src/config.rs", "Config");
    provider_keys.extend(config_fields(
        "faas-provider/src/dispatch/config.rs",
        "DispatchConfig",
    ));
    let worker_keys = config_fields("gpu-worker/src/config.rs", "Config");
    assert!(
        provider_keys.contains("state_dir") && worker_keys.contains("device_memory"),
        "Config scan is broken"
    );
    for (set, file) in VALUE_SETS {
        let values = values_of(file);
        let extra = |component: &str| -> BTreeSet<String> {
            seq(&values, &format!("{component}.extraEnv"))
                .iter()
                .map(|e| text(e, "name"))
                .collect()
        };
        for workload in
            of_kind(&renders()[set].1, "Deployment").chain(of_kind(&renders()[set].1, "DaemonSet"))
        {
            let provider = text(workload, "kind") == "Deployment";
            let (keys, component) = if provider {
                (&provider_keys, "provider")
            } else {
                (&worker_keys, "worker")
            };
            for name in env_of(&seq(workload, "spec.template.spec.containers")[0]).keys() {
                let known =
                    keys.contains(name) || name == "RUST_LOG" || extra(component).contains(name);
                assert!(
                    known,
                    "{set}: the {component} reads no `{name}` (see its config.rs)"
                );
            }
        }
    }
}

#[test]
fn bad_values_are_refused_with_a_message_that_names_the_value() {
    // values.schema.json answers first; the templates' own checks stay as a second line
    // for installs that skip the schema.
    for (setting, schema_says, template_says) in [
        (
            "provider.policy=fastest",
            "at '/provider/policy': value must be one of 'lb', 'lalb', 'lalb-o3', 'locus'",
            "provider.policy must be one of lb, lalb, lalb-o3, locus",
        ),
        (
            "worker.backend=tpu",
            "at '/worker/backend'",
            "worker.backend must be candle or emulated",
        ),
        (
            "worker.modelCache.type=nfs",
            "at '/worker/modelCache/type'",
            "worker.modelCache.type must be hostPath or emptyDir",
        ),
    ] {
        let err = helm_template(None, KUBE_VERSIONS[1], &["--set", setting]).expect_err(setting);
        assert!(
            err.contains(schema_says),
            "--set {setting}: expected {schema_says:?} in\n{err}"
        );
        let args = ["--set", setting, "--skip-schema-validation"];
        let err = helm_template(None, KUBE_VERSIONS[1], &args).expect_err(setting);
        assert!(
            err.contains(template_says),
            "--set {setting}: expected {template_says:?} in\n{err}"
        );
    }
    for (setting, message) in [
        (
            "worker.gpuPerNode=2",
            "additional properties 'gpuPerNode' not allowed",
        ),
        ("worker.port=0", "at '/worker/port'"),
        (
            "provider.image.repository=",
            "an image repository is required",
        ),
    ] {
        let err = helm_template(None, KUBE_VERSIONS[1], &["--set", setting]).expect_err(setting);
        assert!(
            err.contains(message),
            "--set {setting}: expected {message:?} in\n{err}"
        );
    }
    let with_secret = helm_template(
        None,
        KUBE_VERSIONS[1],
        &["--set", "basicAuth.existingSecret=basic-auth"],
    )
    .unwrap();
    assert!(
        !with_secret.contains("kind: Secret"),
        "an existing Secret must not be created again"
    );
    assert!(with_secret.contains("secretName: basic-auth"));
}
