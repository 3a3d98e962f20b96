//! The Helm chart check (`helm/locus/`), as far as it can go without a cluster.
//!
//! What runs for real: the official Helm binary (4.1.4) lints the chart in strict mode
//! and renders every template with the default values and with two non-default sets
//! (`helm/locus/ci/*-values.yaml`) for the oldest and newest Kubernetes versions the
//! chart claims; `kubernetes-validate` checks every rendered object against its
//! Kubernetes schema (strict: unknown fields are errors); Prometheus's `promtool`
//! parses every dashboard query and evaluates the main ones on synthetic series. This
//! file adds what those tools cannot see: every `.Values` reference exists in
//! values.yaml and every value there is documented, the rendered objects point at each
//! other correctly (selectors, ports, volumes, Secrets, accounts, the provider's worker
//! discovery address), the env the chart sets names real configuration keys of the
//! binaries, and the dashboard names only metrics the binaries export.
//!
//! Not checked: nothing is applied to a cluster (no API server admission, no scheduling,
//! no GPU device plugin, no image pulls), the ServiceMonitor has no schema here (its
//! CRD is not bundled; it gets the structural checks below), and the dashboard is not
//! loaded into Grafana.
//!
//! This file holds the tools, the renders and the chart-wide checks; `helm/objects.rs`
//! checks the rendered objects, `helm/binaries.rs` starts the real provider binary with
//! each rendered env and Secret files, `helm/dashboard.rs` checks the dashboard and
//! `helm/openfaas.rs` the patch that points the official OpenFaaS chart's gateway at
//! Locus.
//!
//! The tools are installed by `bash helm/ci/install-tools.sh` (CI runs it); a missing
//! tool fails the test with that hint rather than skipping it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_yaml::Value as Yaml;

#[path = "helm/binaries.rs"]
mod binaries;
#[path = "helm/dashboard.rs"]
mod dashboard;
#[path = "helm/objects.rs"]
mod objects;
#[path = "helm/openfaas.rs"]
mod openfaas;

const INSTALL_HINT: &str =
    "install the chart-check tools with `bash helm/ci/install-tools.sh` (CI does)";
const RELEASE: &str = "locus";
const NAMESPACE: &str = "openfaas";
/// The oldest Kubernetes the chart claims (Chart.yaml `kubeVersion`) and the newest schema set.
const KUBE_VERSIONS: [&str; 2] = ["1.25.0", "1.37.0"];
/// The value sets every check runs on: name and values file (none = the defaults).
const VALUE_SETS: [(&str, Option<&str>); 3] = [
    ("default", None),
    ("full", Some("ci/full-values.yaml")),
    ("minimal", Some("ci/minimal-values.yaml")),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn chart() -> PathBuf {
    repo().join("helm/locus")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A tool on PATH (helm may also be named by `LOCUS_HELM`), or a failure that says how to install it.
fn tool(name: &str) -> PathBuf {
    if name == "helm"
        && let Some(path) = std::env::var_os("LOCUS_HELM")
    {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed, so the Helm chart cannot be checked: {INSTALL_HINT}")
        })
}

/// Runs a command; Ok(stdout) on success, Err(stdout + stderr) otherwise.
fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{cmd:?} exited with {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `helm template` of the chart with a values file and extra arguments.
fn helm_template(
    values: Option<&str>,
    kube_version: &str,
    extra: &[&str],
) -> Result<String, String> {
    let mut cmd = Command::new(tool("helm"));
    cmd.current_dir(chart()).args([
        "template",
        RELEASE,
        ".",
        "--namespace",
        NAMESPACE,
        "--kube-version",
        kube_version,
    ]);
    if let Some(file) = values {
        cmd.args(["--values", file]);
    }
    run(cmd.args(extra))
}

/// The rendered text and objects of each value set (newest Kubernetes), rendered once.
fn renders() -> &'static BTreeMap<&'static str, (String, Vec<Yaml>)> {
    static RENDERS: OnceLock<BTreeMap<&'static str, (String, Vec<Yaml>)>> = OnceLock::new();
    RENDERS.get_or_init(|| {
        VALUE_SETS
            .iter()
            .map(|(name, file)| {
                let text = helm_template(*file, KUBE_VERSIONS[1], &[])
                    .unwrap_or_else(|e| panic!("{name} values: {e}"));
                let objects = serde_yaml::Deserializer::from_str(&text)
                    .map(|doc| {
                        Yaml::deserialize(doc)
                            .unwrap_or_else(|e| panic!("{name}: rendered YAML: {e}"))
                    })
                    .filter(|doc| !doc.is_null())
                    .collect();
                (*name, (text, objects))
            })
            .collect()
    })
}

/// `value` at a dotted path of map keys.
fn at<'a>(value: &'a Yaml, path: &str) -> &'a Yaml {
    path.split('.')
        .fold(value, |v, key| v.get(key).unwrap_or(&Yaml::Null))
}

fn text(value: &Yaml, path: &str) -> String {
    match at(value, path) {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        other => panic!("{path} is not a scalar: {other:?}"),
    }
}

fn seq<'a>(value: &'a Yaml, path: &str) -> &'a [Yaml] {
    at(value, path)
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn kind_name(object: &Yaml) -> String {
    format!("{}/{}", text(object, "kind"), text(object, "metadata.name"))
}

fn of_kind<'a>(objects: &'a [Yaml], kind: &'a str) -> impl Iterator<Item = &'a Yaml> + 'a {
    objects
        .iter()
        .filter(move |o| at(o, "kind").as_str() == Some(kind))
}

/// A container's env as name → value (valueFrom entries map to "").
fn env_of(container: &Yaml) -> BTreeMap<String, String> {
    seq(container, "env")
        .iter()
        .map(|e| {
            (
                text(e, "name"),
                at(e, "value").as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Whether every label of `selector` is set to the same value in `labels`.
fn selects(selector: &Yaml, labels: &Yaml) -> bool {
    let selector = selector.as_mapping().expect("selector is a map");
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The values file of a value set merged over values.yaml (maps merge, the rest replaces).
fn values_of(set: Option<&str>) -> Yaml {
    fn merge(base: &mut Yaml, over: &Yaml) {
        match (base, over) {
            (Yaml::Mapping(b), Yaml::Mapping(o)) => {
                for (k, v) in o {
                    match b.get_mut(k) {
                        Some(slot) => merge(slot, v),
                        None => {
                            b.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            (slot, v) => *slot = v.clone(),
        }
    }
    let mut values: Yaml =
        serde_yaml::from_str(&read(&chart().join("values.yaml"))).expect("values.yaml parses");
    if let Some(file) = set {
        merge(
            &mut values,
            &serde_yaml::from_str(&read(&chart().join(file))).expect("values file parses"),
        );
    }
    values
}

#[test]
fn every_template_lints_strictly_and_renders_with_default_and_non_default_values_on_every_claimed_kubernetes()
 {
    for (name, file) in VALUE_SETS {
        let mut lint = Command::new(tool("helm"));
        lint.current_dir(chart())
            .args(["lint", "--strict", ".", "--namespace", NAMESPACE]);
        if let Some(file) = file {
            lint.args(["--values", file]);
        }
        run(&mut lint).unwrap_or_else(|e| panic!("helm lint --strict with {name} values: {e}"));
        for kube in KUBE_VERSIONS {
            let text = helm_template(file, kube, &[])
                .unwrap_or_else(|e| panic!("{name} values on {kube}: {e}"));
            assert!(
                text.contains("kind: Deployment"),
                "{name} on {kube}: no provider Deployment rendered"
            );
        }
    }
    // A client-side dry-run install renders NOTES.txt too; no kubeconfig, so no cluster.
    for (name, file) in VALUE_SETS {
        let mut install = Command::new(tool("helm"));
        install
            .current_dir(chart())
            .env("KUBECONFIG", "/nonexistent/kubeconfig");
        install.args([
            "install",
            RELEASE,
            ".",
            "--namespace",
            NAMESPACE,
            "--dry-run=client",
        ]);
        if let Some(file) = file {
            install.args(["--values", file]);
        }
        let out =
            run(&mut install).unwrap_or_else(|e| panic!("dry-run install with {name} values: {e}"));
        let notes = out
            .split("NOTES:")
            .nth(1)
            .unwrap_or_else(|| panic!("{name}: no NOTES in\n{out}"));
        assert!(
            notes.contains(&format!(".{NAMESPACE}.svc:8081/")),
            "{name}: NOTES give the provider URL\n{notes}"
        );
    }
    assert!(
        helm_template(None, "1.24.0", &[]).is_err(),
        "Chart.yaml's kubeVersion must refuse Kubernetes 1.24"
    );
    let out = tempfile::tempdir().expect("temp dir");
    run(Command::new(tool("helm"))
        .args(["package", "--destination"])
        .arg(out.path())
        .arg(chart()))
    .expect("helm package");
}

#[test]
fn every_rendered_object_passes_kubernetes_validate_against_its_schema() {
    let validator = tool("kubernetes-validate");
    for (name, (text, objects)) in renders() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), text).expect("write render");
        let mut cmd = Command::new(&validator);
        cmd.arg("--strict");
        for kube in KUBE_VERSIONS {
            cmd.args(["-k", kube]);
        }
        let report = run(cmd.arg(file.path())).unwrap_or_else(|e| panic!("{name} values: {e}"));
        let custom: Vec<_> = objects
            .iter()
            .filter(|o| text_has_group(o, "monitoring.coreos.com"))
            .collect();
        let builtin = objects.len() - custom.len();
        for kube in KUBE_VERSIONS {
            let minor = &kube[..kube.rfind('.').expect("x.y.z")];
            let passed = report
                .lines()
                .filter(|l| {
                    l.starts_with("INFO") && l.ends_with(&format!("against version {minor}"))
                })
                .count();
            assert_eq!(
                passed, builtin,
                "{name} values, Kubernetes {kube}: every built-in object must pass\n{report}"
            );
        }
        let warnings = report.lines().filter(|l| l.starts_with("WARN")).count();
        assert_eq!(
            warnings,
            custom.len() * KUBE_VERSIONS.len(),
            "{name}: only ServiceMonitors may lack a schema\n{report}"
        );
        assert!(!report.contains("ERROR"), "{name}: {report}");
    }
}

fn text_has_group(object: &Yaml, group: &str) -> bool {
    text(object, "apiVersion").starts_with(&format!("{group}/"))
}

#[test]
fn every_values_reference_in_the_templates_exists_in_values_yaml() {
    let values = values_of(None);
    let mut checked = 0;
    for entry in std::fs::read_dir(chart().join("templates")).expect("templates dir") {
        let path = entry.expect("dir entry").path();
        let source = read(&path);
        // `$p := .Values.provider` makes `$p.x` mean `.Values.provider.x`.
        let mut aliases = BTreeMap::new();
        for line in source.lines() {
            if let Some((var, rest)) = line.split_once(":= .Values.") {
                let var = var
                    .trim_end()
                    .rsplit(|c: char| c.is_whitespace() || c == '{')
                    .next()
                    .unwrap_or("");
                assert!(
                    var.starts_with('$') && var.len() > 1,
                    "{}: cannot read the variable in {line}",
                    path.display()
                );
                aliases.insert(var.to_string(), value_path(rest));
            }
        }
        let mut refs = Vec::new();
        for (i, _) in source.match_indices(".Values.") {
            refs.push(value_path(&source[i + ".Values.".len()..]));
        }
        for (var, prefix) in &aliases {
            for (i, _) in source.match_indices(&format!("{var}.")) {
                let rest = value_path(&source[i + var.len() + 1..]);
                if !rest.is_empty() {
                    refs.push(format!("{prefix}.{rest}"));
                }
            }
        }
        for reference in refs {
            let mut node = &values;
            for key in reference.split('.') {
                node = node.get(key).unwrap_or_else(|| {
                    panic!(
                        "{}: .Values.{reference} is not in values.yaml",
                        path.display()
                    )
                });
            }
            checked += 1;
        }
    }
    assert!(
        checked > 100,
        "the scan found only {checked} references: it is broken"
    );
}

/// The dotted path at the start of `rest` (letters, digits, `_`, `.`), without a trailing dot.
fn value_path(rest: &str) -> String {
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].trim_end_matches('.').to_string()
}

#[test]
fn values_schema_json_describes_exactly_the_keys_of_values_yaml() {
    // Unknown keys are refused by the schema (helm lint --strict of the defaults proves
    // values.yaml fits it); this checks the other way: no stale schema entries.
    fn walk(schema: &serde_json::Value, values: &Yaml, path: &str) {
        let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) else {
            return;
        };
        assert_eq!(
            schema["additionalProperties"], false,
            "{path}: closed object"
        );
        for (key, sub) in properties {
            let value = values.get(key.as_str()).unwrap_or_else(|| {
                panic!("values.schema.json has {path}.{key}, values.yaml does not")
            });
            walk(sub, value, &format!("{path}.{key}"));
        }
    }
    let schema: serde_json::Value =
        serde_json::from_str(&read(&chart().join("values.schema.json"))).expect("schema JSON");
    walk(&schema, &values_of(None), "");
}

#[test]
fn every_value_in_values_yaml_has_a_comment_above_it() {
    let source = read(&chart().join("values.yaml"));
    let mut previous_is_comment = false;
    let mut list_indent: Option<usize> = None;
    let mut keys = 0;
    for (number, line) in source.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            previous_is_comment = trimmed.starts_with('#');
            continue;
        }
        // Keys inside list items belong to the documented list value.
        if let Some(li) = list_indent {
            if indent > li || (indent == li && trimmed.starts_with("- ")) {
                previous_is_comment = false;
                continue;
            }
            list_indent = None;
        }
        if trimmed.starts_with("- ") {
            list_indent = Some(indent);
        } else {
            assert!(
                trimmed.contains(':'),
                "values.yaml:{}: not a key: {line}",
                number + 1
            );
            assert!(
                previous_is_comment,
                "values.yaml:{}: `{trimmed}` has no comment above it",
                number + 1
            );
            keys += 1;
        }
        previous_is_comment = false;
    }
    assert!(keys > 100, "only {keys} keys found: the scan is broken");
}
