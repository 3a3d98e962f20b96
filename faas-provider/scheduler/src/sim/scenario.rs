//! One simulation's settings: PAPER.md's default experiment, a JSON scenario file, and
//! the command-line flags that override either.

use serde::{Deserialize, Serialize};

use crate::policy::{PolicyConfig, PolicyKind};
use crate::sim::trace::Popularity;

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// Everything a simulation needs. Field names are the scenario file's keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Policies to report (`lb` always runs: it is the baseline of the reductions).
    pub policies: Vec<PolicyKind>,
    /// Working-set sizes (distinct models) to sweep.
    pub wss: Vec<u32>,
    /// Seeds per working-set size (0, 1, …).
    pub seeds: u32,
    /// Measured requests per run.
    pub requests: usize,
    /// Requests simulated before measuring.
    pub warmup: usize,
    /// GPU nodes.
    pub nodes: u32,
    /// GPUs per node.
    pub gpus_per_node: u32,
    /// Device memory per GPU, bytes.
    pub gpu_memory_bytes: u64,
    /// Bytes per GPU kept out of the model cache.
    pub reserve_bytes: u64,
    /// Host-to-GPU bandwidth, bytes per second.
    pub bandwidth_bytes_per_s: f64,
    /// Fixed cost of every load, ms.
    pub setup_ms: f64,
    /// Bytes every resident model costs beyond its weights: the CUDA context and
    /// workspace of the one GPU process per model the paper's design runs.
    pub model_overhead_bytes: u64,
    /// `zipf:S` or `uniform`.
    pub popularity: String,
    /// Target GPU busy share of `lb` at `load_wss`, which fixes the arrival rate.
    pub load: f64,
    /// Working-set size at which the rate is calibrated.
    pub load_wss: u32,
    /// Arrival rate, requests per second; when set, `load` is not used.
    pub rate_per_s: Option<f64>,
    /// Fixed time of every request outside the queue and the device (a live system's
    /// HTTP hops and dispatch), ms, added to its latency. 0 in the paper's experiment;
    /// `loadgen paper` measures the live system's and sets it.
    pub request_overhead_ms: f64,
    /// Of that overhead, the time from a GPU finishing a request to the scheduler
    /// hearing of it (the worker's answer on its way back to a live provider), ms. The
    /// scheduler counts the request on its GPU until then. 0 in the paper's experiment;
    /// `loadgen paper` measures it.
    pub view_lag_ms: f64,
    /// Policy knobs.
    pub knobs: PolicyConfig,
}

impl Default for Scenario {
    /// PAPER.md's default experiment (see `docs/scheduling.md` for the overhead).
    fn default() -> Self {
        Self {
            policies: PolicyKind::ALL.to_vec(),
            wss: vec![5, 10, 20, 35, 50, 75, 100],
            seeds: 5,
            requests: 100_000,
            warmup: 10_000,
            nodes: 4,
            gpus_per_node: 2,
            gpu_memory_bytes: 16 * GIB,
            reserve_bytes: 0,
            bandwidth_bytes_per_s: 12e9,
            setup_ms: 1_000.0,
            model_overhead_bytes: 1_536 * MIB,
            popularity: "zipf:0.9".into(),
            load: 0.7,
            load_wss: 35,
            rate_per_s: None,
            request_overhead_ms: 0.0,
            view_lag_ms: 0.0,
            knobs: PolicyConfig::default(),
        }
    }
}

impl Scenario {
    /// Checks the settings; the error says which one is wrong.
    pub fn validate(&self) -> Result<Popularity, String> {
        let popularity: Popularity = self.popularity.parse()?;
        let checks = [
            (self.policies.is_empty(), "policies: at least one"),
            (
                self.wss.is_empty() || self.wss.contains(&0),
                "wss: one or more sizes, each at least 1",
            ),
            (self.seeds == 0, "seeds: at least 1"),
            (self.requests == 0, "requests: at least 1"),
            (
                self.nodes == 0 || self.gpus_per_node == 0,
                "cluster: at least 1x1",
            ),
            (
                self.gpu_memory_bytes <= self.reserve_bytes,
                "gpu_memory: more than the reserve",
            ),
            (!positive(self.bandwidth_bytes_per_s), "bandwidth: positive"),
            (!non_negative(self.setup_ms), "setup_ms: zero or more"),
            (
                !(positive(self.load) && self.load < 10.0),
                "load: between 0 and 10",
            ),
            (self.load_wss == 0, "load_wss: at least 1"),
            (
                self.rate_per_s.is_some_and(|r| !positive(r)),
                "rate: positive",
            ),
            (
                !non_negative(self.request_overhead_ms),
                "request_overhead_ms: zero or more",
            ),
            (
                !(non_negative(self.view_lag_ms) && self.view_lag_ms <= self.request_overhead_ms),
                "view_lag_ms: zero or more, at most request_overhead_ms",
            ),
            (self.knobs.busy_threshold == 0, "busy_threshold: at least 1"),
            (self.knobs.o3_window == Some(0), "o3_window: at least 1"),
            (
                !non_negative(self.knobs.locus_load_weight),
                "locus_load_weight: zero or more",
            ),
        ];
        if let Some((_, msg)) = checks.iter().find(|(bad, _)| *bad) {
            return Err((*msg).to_owned());
        }
        let largest = locus_vram::ZOO
            .iter()
            .map(|p| p.weight_bytes)
            .max()
            .unwrap_or(0)
            + self.model_overhead_bytes;
        if largest > self.gpu_memory_bytes - self.reserve_bytes {
            return Err(format!(
                "gpu_memory: the largest model needs {largest} bytes with its overhead"
            ));
        }
        Ok(popularity)
    }
}

/// True for a finite number above zero (false for NaN).
fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// True for a finite number of zero or more (false for NaN).
fn non_negative(x: f64) -> bool {
    x.is_finite() && x >= 0.0
}

/// Parses a byte size: `16GiB`, `512MiB`, `12GB`, `500MB`, `1.5G`, or plain bytes.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let units: [(&str, f64); 9] = [
        ("GiB", GIB as f64),
        ("MiB", MIB as f64),
        ("KiB", 1024.0),
        ("GB", 1e9),
        ("MB", 1e6),
        ("KB", 1e3),
        ("G", GIB as f64),
        ("M", MIB as f64),
        ("B", 1.0),
    ];
    let (num, mult) = units
        .iter()
        .find_map(|(u, m)| t.strip_suffix(u).map(|n| (n.trim(), *m)))
        .unwrap_or((t, 1.0));
    match num.parse::<f64>() {
        Ok(x) if x >= 0.0 && x.is_finite() => Ok((x * mult).round() as u64),
        _ => Err(format!("`{s}` is not a size (e.g. 16GiB, 512MiB, 12GB)")),
    }
}

/// Parses a bandwidth: a size per second (`12GB/s`, `12GB`) or plain bytes per second.
pub fn parse_bandwidth(s: &str) -> Result<f64, String> {
    let t = s.trim().trim_end_matches("/s");
    parse_bytes(t).map(|b| b as f64).and_then(|b| {
        if b > 0.0 {
            Ok(b)
        } else {
            Err(format!("bandwidth `{s}` must be positive"))
        }
    })
}

/// Parses `NODESxGPUS`, e.g. `4x2`.
pub fn parse_cluster(s: &str) -> Result<(u32, u32), String> {
    let err = || format!("cluster `{s}`: expected NODESxGPUS, e.g. 4x2");
    let (n, g) = s.split_once(['x', 'X']).ok_or_else(err)?;
    Ok((
        n.trim().parse().map_err(|_| err())?,
        g.trim().parse().map_err(|_| err())?,
    ))
}

/// Parses `all` or a comma list of policy names.
pub fn parse_policies(s: &str) -> Result<Vec<PolicyKind>, String> {
    if s.trim() == "all" {
        return Ok(PolicyKind::ALL.to_vec());
    }
    s.split(',')
        .map(|p| p.trim().parse::<PolicyKind>().map_err(|e| e.to_string()))
        .collect()
}

/// Parses a comma list of working-set sizes.
pub fn parse_wss(s: &str) -> Result<Vec<u32>, String> {
    s.split(',')
        .map(|w| {
            w.trim()
                .parse::<u32>()
                .map_err(|_| format!("wss `{w}` is not a count"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_bandwidths_clusters_and_lists_parse_with_units() {
        assert_eq!(parse_bytes("16GiB"), Ok(16 * GIB));
        assert_eq!(parse_bytes("500MB"), Ok(500_000_000));
        assert_eq!(parse_bytes("1234"), Ok(1234));
        assert!(parse_bytes("lots").is_err());
        assert_eq!(parse_bandwidth("12GB/s"), Ok(12e9));
        assert_eq!(parse_cluster("125x8"), Ok((125, 8)));
        assert!(parse_cluster("8").is_err());
        assert_eq!(
            parse_policies("lb,locus"),
            Ok(vec![PolicyKind::Lb, PolicyKind::Locus])
        );
        assert!(parse_policies("lb,fifo").is_err());
        assert_eq!(parse_wss("5, 35"), Ok(vec![5, 35]));
    }

    #[test]
    fn the_default_scenario_is_valid_and_a_scenario_file_round_trips() {
        let s = Scenario::default();
        assert_eq!(s.validate(), Ok(Popularity::Zipf(0.9)));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Scenario>(&json).unwrap(), s);
        let partial: Scenario =
            serde_json::from_str(r#"{"wss":[35],"knobs":{"o3_max_bypass":8}}"#).unwrap();
        assert_eq!(
            (partial.wss, partial.knobs.o3_max_bypass, partial.seeds),
            (vec![35], 8, 5)
        );
        assert!(serde_json::from_str::<Scenario>(r#"{"typo":1}"#).is_err());
        let bad = Scenario {
            gpu_memory_bytes: 100,
            ..Scenario::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("gpu_memory"));
    }
}
