//! Checks of the Grafana dashboard (`helm/locus/dashboards/locus.json`): its shape, the
//! stock OpenFaaS queries, the metric names against the binaries' sources, and its
//! PromQL through Prometheus's own `promtool`.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value as Json;

use super::*;

/// Metric names the dashboard uses before the provider's data plane exports them.
fn dashboard() -> Json {
    serde_json::from_str(&read(&chart().join("dashboards/locus.json")))
        .expect("dashboard JSON parses")
}

/// Every (panel title, query) of the dashboard.
fn dashboard_queries() -> Vec<(String, String)> {
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().expect("panels");
    panels
        .iter()
        .flat_map(|p| {
            let targets = p["targets"].as_array().cloned().unwrap_or_default();
            targets.into_iter().map(move |t| {
                (
                    p["title"].as_str().unwrap_or_default().to_string(),
                    t["expr"].as_str().expect("expr").to_string(),
                )
            })
        })
        .collect()
}

/// A query with the dashboard's variables replaced as Grafana would with "All".
fn as_promql(query: &str) -> String {
    query.replace("$function", ".*")
}

#[test]
fn the_dashboard_is_well_formed_and_keeps_the_openfaas_dashboard_queries() {
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for panel in panels {
        assert!(
            ids.insert(panel["id"].as_u64().expect("panel id")),
            "duplicate panel id {}",
            panel["id"]
        );
        let grid = &panel["gridPos"];
        assert!(
            grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24,
            "{} is wider than the grid",
            panel["title"]
        );
        if panel["type"] != "row" {
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{}",
                panel["title"]
            );
            assert!(
                !panel["targets"].as_array().expect("targets").is_empty(),
                "{} has no query",
                panel["title"]
            );
        }
    }
    let variables: Vec<_> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].clone())
        .collect();
    assert_eq!(variables, ["datasource", "function"]);
    let queries: Vec<String> = dashboard_queries().into_iter().map(|(_, q)| q).collect();
    for stock in [
        "rate(gateway_function_invocation_total[20s])",
        "rate(gateway_functions_seconds_sum[20s]) / rate(gateway_functions_seconds_count[20s])",
        "gateway_service_count",
    ] {
        assert!(
            queries.iter().any(|q| q == stock),
            "the stock OpenFaaS query {stock} is missing"
        );
    }
}

#[test]
fn the_dashboard_names_only_metrics_the_binaries_export() {
    let worker = read(&repo().join("gpu-worker/src/metrics.rs"));
    // The provider registers its gateway-compatible series and its data plane's.
    let provider = read(&repo().join("faas-provider/src/metrics.rs"))
        + &read(&repo().join("faas-provider/src/dispatch/metrics.rs"));
    assert!(
        worker.contains("format!(\"locus_worker_{name}\")"),
        "the worker's metric prefix changed"
    );
    for (title, query) in dashboard_queries() {
        for (i, _) in query.match_indices(|c: char| c.is_ascii_lowercase()) {
            if i > 0
                && (query.as_bytes()[i - 1].is_ascii_alphanumeric()
                    || query.as_bytes()[i - 1] == b'_')
            {
                continue;
            }
            let name = value_path(&query[i..]);
            if !(name.starts_with("gateway_")
                || name.starts_with("locus_")
                || name.starts_with("provider_"))
            {
                continue;
            }
            let exports = |metric: &str| match metric.strip_prefix("locus_worker_") {
                Some(short) => worker.contains(&format!("\"{short}\"")),
                None => provider.contains(&format!("\"{metric}\"")),
            };
            // A histogram's series carry a suffix its registered name lacks.
            let histogram = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|b| exports(b));
            let base = histogram.unwrap_or(&name);
            assert!(
                exports(base),
                "{title}: {base} is exported by neither binary"
            );
        }
    }
}

#[test]
fn every_dashboard_query_parses_as_promql_and_the_main_ones_compute_the_right_numbers() {
    let promtool = tool("promtool");
    let dir = tempfile::tempdir().expect("temp dir");
    let rules: Vec<Json> = dashboard_queries()
        .iter()
        .enumerate()
        .map(|(i, (_, q))| serde_json::json!({"record": format!("dashboard:query_{i}"), "expr": as_promql(q)}))
        .collect();
    let rules_file = dir.path().join("rules.json");
    let groups = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    std::fs::write(&rules_file, groups.to_string()).unwrap();
    run(Command::new(&promtool)
        .arg("check")
        .arg("rules")
        .arg(&rules_file))
    .expect("promtool check rules");

    // Synthetic series, 5 s apart, shaped like the binaries' output; every value is exact.
    let query = |title: &str| -> String {
        let found = dashboard_queries()
            .into_iter()
            .find(|(t, _)| t == title)
            .unwrap_or_else(|| panic!("no panel {title}"));
        as_promql(&found.1)
    };
    let f = r#"function_name="resnet.openfaas-fn""#;
    let d = r#"device="cuda:0",instance="10.0.0.7:8090""#;
    let series = [
        (
            format!("gateway_function_invocation_total{{{f},code=\"200\"}}"),
            "0+25x40",
        ),
        (
            format!("gateway_functions_seconds_sum{{{f},code=\"200\"}}"),
            "0+10x40",
        ),
        (
            format!("gateway_functions_seconds_count{{{f},code=\"200\"}}"),
            "0+25x40",
        ),
        (format!("locus_provider_cache_hits_total{{{f}}}"), "0+15x40"),
        (
            format!("locus_provider_cache_misses_total{{{f}}}"),
            "0+5x40",
        ),
        (
            format!("locus_worker_device_memory_used_bytes{{{d}}}"),
            "6442450944x40",
        ),
        (
            format!("locus_worker_device_memory_capacity_bytes{{{d}}}"),
            "8589934592x40",
        ),
    ];
    let expectations = [
        ("Invocation rate", format!("{{{f},code=\"200\"}}"), 5.0),
        ("Average latency", format!("{{{f},code=\"200\"}}"), 0.4),
        ("Cache hit ratio", format!("{{{f}}}"), 0.75),
        ("Memory utilisation", format!("{{{d}}}"), 0.75),
    ];
    let test = serde_json::json!({
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "5s",
            "input_series": series.iter().map(|(s, v)| serde_json::json!({"series": s, "values": v})).collect::<Vec<_>>(),
            "promql_expr_test": expectations.iter().map(|(title, labels, value)| serde_json::json!({
                "expr": query(title), "eval_time": "3m", "exp_samples": [{"labels": labels, "value": value}]
            })).collect::<Vec<_>>(),
        }],
    });
    let test_file = dir.path().join("dashboard_test.json");
    std::fs::write(&test_file, test.to_string()).unwrap();
    run(Command::new(&promtool)
        .arg("test")
        .arg("rules")
        .arg(&test_file))
    .expect("promtool test rules");
}
