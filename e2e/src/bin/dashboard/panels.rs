//! The dashboard as data: its rows and panels read from Grafana's JSON model, each
//! target's PromQL with the Grafana variables substituted, and the series Prometheus
//! returns for it over a time window, named by the target's `legendFormat`.

use std::collections::BTreeMap;

use anyhow::Context;
use serde_json::Value;

/// How a panel is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Lines over time.
    TimeSeries,
    /// One number: the last value of the sum of its series.
    Stat,
    /// Rows of label sets and last values.
    Table,
}

/// One query of a panel.
#[derive(Debug, Clone)]
pub struct Target {
    /// PromQL, variables substituted.
    pub expr: String,
    /// `legendFormat` (`{{label}}` placeholders), empty when unset.
    pub legend: String,
}

/// One panel under its row.
#[derive(Debug, Clone)]
pub struct Panel {
    /// The title of the row above it.
    pub row: String,
    /// Its title.
    pub title: String,
    /// Its kind.
    pub kind: Kind,
    /// `fieldConfig.defaults.unit` (`reqps`, `s`, `bytes`, `percentunit`, …).
    pub unit: String,
    /// Its queries.
    pub targets: Vec<Target>,
}

/// One named series: `(seconds since the window's start, value)`; NaN values kept.
#[derive(Debug, Clone)]
pub struct Series {
    /// The legend name.
    pub name: String,
    /// Its labels, for tables.
    pub labels: BTreeMap<String, String>,
    /// Its points.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// The last finite value.
    pub fn last(&self) -> Option<f64> {
        self.points
            .iter()
            .rev()
            .map(|p| p.1)
            .find(|v| v.is_finite())
    }

    /// The value at `t` (seconds from the window's start; the last point of the step
    /// that ends at `t`), as an instant query at `t` would answer it: none when the
    /// series had ended by then.
    pub fn at(&self, t: f64, step: f64) -> Option<f64> {
        self.points
            .iter()
            .rev()
            .find(|p| p.0 > t - step && p.0 <= t + 1e-6)
            .map(|p| p.1)
            .filter(|v| v.is_finite())
    }
}

/// Reads the dashboard's panels in order (rows expanded, also collapsed rows' nested
/// `panels`); any other panel type than timeseries, stat and table is an error.
pub fn read(dashboard: &Value) -> anyhow::Result<Vec<Panel>> {
    let vars = variables(dashboard);
    let mut out = Vec::new();
    let mut row = String::new();
    let mut add = |p: &Value, row: &str| -> anyhow::Result<()> {
        let kind = match p["type"].as_str().unwrap_or_default() {
            "timeseries" | "graph" => Kind::TimeSeries,
            "stat" | "gauge" => Kind::Stat,
            "table" => Kind::Table,
            other => anyhow::bail!(
                "panel {:?} has a type this tool cannot draw: {other}",
                p["title"]
            ),
        };
        let targets = p["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|t| {
                Some(Target {
                    expr: substitute(t["expr"].as_str()?, &vars),
                    legend: t["legendFormat"].as_str().unwrap_or_default().to_string(),
                })
            })
            .collect();
        out.push(Panel {
            row: row.to_string(),
            title: p["title"].as_str().unwrap_or_default().to_string(),
            kind,
            unit: p["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .unwrap_or("short")
                .to_string(),
            targets,
        });
        Ok(())
    };
    for p in dashboard["panels"]
        .as_array()
        .context("no `panels` array")?
    {
        if p["type"] == "row" {
            row = p["title"].as_str().unwrap_or_default().to_string();
            for nested in p["panels"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                add(nested, &row)?;
            }
        } else {
            add(p, &row)?;
        }
    }
    Ok(out)
}

/// The template variables and the value "All" stands for (`allValue`, else `.*`).
fn variables(dashboard: &Value) -> Vec<(String, String)> {
    dashboard["templating"]["list"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|v| v["type"] == "query" || v["type"] == "custom")
        .filter_map(|v| {
            let all = v["allValue"].as_str().unwrap_or(".*");
            Some((v["name"].as_str()?.to_string(), all.to_string()))
        })
        .collect()
}

/// `expr` with `$var`/`${var}` replaced by the "All" values and Grafana's interval
/// variables by fixed ranges suited to a 1 s scrape interval.
fn substitute(expr: &str, vars: &[(String, String)]) -> String {
    let mut out = expr.to_string();
    let builtins = [
        ("__rate_interval", "20s"),
        ("__interval", "1s"),
        ("__range", "2m"),
    ];
    for (name, value) in builtins
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .chain(vars.iter().cloned())
    {
        out = out.replace(&format!("${{{name}}}"), &value);
        out = out.replace(&format!("${name}"), &value);
    }
    out
}

/// `legend` with every `{{label}}` filled from `labels`; the label set when empty.
pub fn legend_name(legend: &str, labels: &BTreeMap<String, String>) -> String {
    if legend.is_empty() {
        let inner: Vec<String> = labels
            .iter()
            .filter(|(k, _)| *k != "__name__")
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        return format!("{{{}}}", inner.join(", "));
    }
    let mut out = String::new();
    let mut rest = legend;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let label = after[..close].trim();
        out.push_str(labels.get(label).map(String::as_str).unwrap_or_default());
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    if out.trim().is_empty() {
        // Every label the legend names is missing: say so rather than draw a blank.
        return legend_name("", labels);
    }
    out
}

/// The time window queried: Unix seconds, and the step.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// First instant.
    pub start: f64,
    /// Last instant.
    pub end: f64,
    /// Seconds between points.
    pub step: f64,
}

/// Runs `target` against Prometheus's `/api/v1/query_range` over `window`.
pub async fn query(
    client: &reqwest::Client,
    prom: &str,
    target: &Target,
    window: Window,
) -> anyhow::Result<Vec<Series>> {
    let answer: Value = client
        .get(format!("{prom}/api/v1/query_range"))
        .query(&[
            ("query", target.expr.clone()),
            ("start", format!("{:.3}", window.start)),
            ("end", format!("{:.3}", window.end)),
            ("step", format!("{}", window.step)),
        ])
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(
        answer["status"] == "success",
        "{}: {}",
        target.expr,
        answer["error"]
    );
    let results = answer["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(results
        .iter()
        .map(|r| {
            let labels: BTreeMap<String, String> = r["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let points = r["values"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|pair| {
                    let t = pair[0].as_f64()?;
                    let v = pair[1].as_str()?.parse::<f64>().ok()?;
                    Some((t - window.start, v))
                })
                .collect();
            Series {
                name: legend_name(&target.legend, &labels),
                labels,
                points,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legends_fill_labels_and_variables_become_their_all_value() {
        let labels: BTreeMap<String, String> = [("model", "m"), ("reason", "capacity")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        assert_eq!(
            legend_name("{{model}} ({{ reason }})", &labels),
            "m (capacity)"
        );
        assert_eq!(legend_name("{{missing}}!", &labels), "!");
        assert_eq!(legend_name("{{missing}}", &BTreeMap::new()), "{}");
        assert_eq!(
            legend_name("", &labels),
            "{model=\"m\", reason=\"capacity\"}"
        );
        let vars = vec![("function".to_string(), ".*".to_string())];
        assert_eq!(
            substitute(
                "rate(x{f=~\"$function\"}[$__rate_interval]) + y{f=~\"${function}\"}",
                &vars
            ),
            "rate(x{f=~\".*\"}[20s]) + y{f=~\".*\"}"
        );
    }
}
