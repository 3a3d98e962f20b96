//! Pooling live-against-simulated runs: `loadgen paper --record FILE` appends one JSON
//! line per policy and trace, and `loadgen pool FILE...` adds those lines up per
//! (working-set size, policy), as if the traces had been one longer run.
//!
//! Why: one trace of a few thousand requests holds only a handful of misses for the
//! locality policies at W = 35, and the simulator's own answer for that trace moves by
//! tens of percent when its arrivals move by a millisecond (`band.rs`). A 10 % comparison
//! needs more requests than one run holds; independent runs (other seeds, possibly side
//! by side) are pooled here instead of one run of hours.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// One policy on one trace, live and simulated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Working-set size.
    pub wss: u32,
    /// Trace seed.
    pub seed: u64,
    /// Policy name.
    pub policy: String,
    /// Measured requests (the same live and simulated).
    pub requests: usize,
    /// Per-request overhead the simulator was told, ms.
    pub overhead_ms: f64,
    /// Of it, the time before the simulator's scheduler hears of a completion, ms
    /// (records older than that setting had none).
    #[serde(default)]
    pub view_lag_ms: f64,
    /// Simulated mean latency, ms.
    pub sim_mean_ms: f64,
    /// Simulated misses.
    pub sim_misses: usize,
    /// Average over the jittered replays of the simulator's mean latency, ms.
    pub band_mean_ms: Option<f64>,
    /// Average over the jittered replays of the simulator's miss ratio.
    pub band_miss_ratio: Option<f64>,
    /// Live mean latency, ms.
    pub live_mean_ms: f64,
    /// Live misses.
    pub live_misses: usize,
}

impl Record {
    /// Appends this record as one JSON line to `path`.
    pub fn append(&self, path: &Path) -> anyhow::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        // One write per line, so runs side by side can share a file (O_APPEND).
        let mut line = serde_json::to_string(self)?;
        line.push('\n');
        f.write_all(line.as_bytes())?;
        Ok(())
    }
}

#[derive(clap::Args)]
pub struct PoolArgs {
    /// Files written by `loadgen paper --record`.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Sums over the traces of one (working-set size, policy).
#[derive(Debug, Default, PartialEq)]
pub struct Pooled {
    /// Trace seeds pooled.
    pub seeds: Vec<u64>,
    /// Measured requests, all traces together.
    pub requests: usize,
    /// Sum of latencies, simulated, ms.
    pub sim_total_ms: f64,
    /// Misses, simulated.
    pub sim_misses: usize,
    /// Sum of latencies, live, ms.
    pub live_total_ms: f64,
    /// Misses, live.
    pub live_misses: usize,
    /// Sum of latencies implied by the jittered replays' average, ms (when every
    /// pooled record has a band).
    pub band_total_ms: Option<f64>,
    /// Misses implied by the jittered replays' average (when every record has a band).
    pub band_misses: Option<f64>,
}

impl Pooled {
    fn add(&mut self, r: &Record) {
        let n = r.requests as f64;
        // A band total stays known only while every pooled record has a band.
        let first = self.seeds.is_empty();
        let band = |total: Option<f64>, avg: Option<f64>| {
            Some(if first { 0.0 } else { total? } + avg? * n)
        };
        self.band_total_ms = band(self.band_total_ms, r.band_mean_ms);
        self.band_misses = band(self.band_misses, r.band_miss_ratio);
        self.seeds.push(r.seed);
        self.requests += r.requests;
        self.sim_total_ms += r.sim_mean_ms * n;
        self.sim_misses += r.sim_misses;
        self.live_total_ms += r.live_mean_ms * n;
        self.live_misses += r.live_misses;
    }

    fn mean(&self, total_ms: f64) -> f64 {
        total_ms / self.requests.max(1) as f64
    }
}

/// Pools `records` per (working-set size, policy), in that order. A trace recorded
/// twice for one policy is an error: it would count twice.
pub fn pool(records: &[Record]) -> anyhow::Result<BTreeMap<(u32, String), Pooled>> {
    let mut out: BTreeMap<(u32, String), Pooled> = BTreeMap::new();
    for r in records {
        let p = out.entry((r.wss, r.policy.clone())).or_default();
        anyhow::ensure!(
            !p.seeds.contains(&r.seed),
            "seed {} of {} at W = {} is recorded twice",
            r.seed,
            r.policy,
            r.wss
        );
        p.add(r);
    }
    Ok(out)
}

/// `live / reference − 1`, in percent; `None` when the reference is zero.
fn delta(live: f64, reference: f64) -> Option<f64> {
    (reference > 0.0).then(|| 100.0 * (live / reference - 1.0))
}

fn pct(d: Option<f64>) -> String {
    d.map_or_else(|| "n/a".to_string(), |d| format!("{d:+.1} %"))
}

/// Reads every record of `files` (a missing or malformed line is an error: a pooled
/// figure must not silently leave a run out).
pub fn read(files: &[PathBuf]) -> anyhow::Result<Vec<Record>> {
    let mut records = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            records.push(
                serde_json::from_str(line)
                    .with_context(|| format!("{}:{}: not a loadgen record", f.display(), i + 1))?,
            );
        }
    }
    Ok(records)
}

/// Writes the pooled table, and each working-set size's ranking, to `out`.
pub fn write(pooled: &BTreeMap<(u32, String), Pooled>, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "| W | policy | traces | requests | sim mean | band mean | live mean | Δ mean (sim / band) | sim misses | band misses | live misses | Δ miss ratio (sim / band) |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    for ((wss, policy), p) in pooled {
        let (sim, live) = (p.mean(p.sim_total_ms), p.mean(p.live_total_ms));
        let band = p.band_total_ms.map(|t| p.mean(t));
        writeln!(
            out,
            "| {wss} | {policy} | {} | {} | {sim:.2} | {} | {live:.2} | {} / {} | {} | {} | {} | {} / {} |",
            p.seeds.len(),
            p.requests,
            band.map_or_else(|| "n/a".to_string(), |b| format!("{b:.2}")),
            pct(delta(live, sim)),
            pct(band.and_then(|b| delta(live, b))),
            p.sim_misses,
            p.band_misses
                .map_or_else(|| "n/a".to_string(), |b| format!("{b:.1}")),
            p.live_misses,
            pct(delta(p.live_misses as f64, p.sim_misses as f64)),
            pct(p.band_misses.and_then(|b| delta(p.live_misses as f64, b))),
        )?;
    }
    let mut sizes: Vec<u32> = pooled.keys().map(|(w, _)| *w).collect();
    sizes.dedup();
    for wss in sizes {
        let rank = |total: fn(&Pooled) -> f64| {
            ranking(
                pooled
                    .iter()
                    .filter(|((w, _), _)| *w == wss)
                    .map(|((_, policy), p)| (policy.as_str(), p.mean(total(p)))),
            )
        };
        writeln!(
            out,
            "\nW = {wss}: ranking by pooled mean latency: simulated {}; live {}",
            rank(|p| p.sim_total_ms),
            rank(|p| p.live_total_ms)
        )?;
    }
    Ok(())
}

/// Policies by ascending mean latency, `a < b < c`.
pub fn ranking<'a>(means: impl IntoIterator<Item = (&'a str, f64)>) -> String {
    let mut v: Vec<(&str, f64)> = means.into_iter().collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1));
    v.into_iter()
        .map(|(p, _)| p)
        .collect::<Vec<_>>()
        .join(" < ")
}

/// `loadgen pool`.
pub fn run(args: PoolArgs) -> anyhow::Result<()> {
    let records = read(&args.files)?;
    anyhow::ensure!(!records.is_empty(), "no records in {:?}", args.files);
    write(&pool(&records)?, &mut std::io::stdout())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        seed: u64,
        policy: &str,
        sim: (f64, usize),
        live: (f64, usize),
        band: Option<(f64, f64)>,
    ) -> Record {
        Record {
            wss: 35,
            seed,
            policy: policy.to_string(),
            requests: 100,
            overhead_ms: 1.5,
            view_lag_ms: 1.0,
            sim_mean_ms: sim.0,
            sim_misses: sim.1,
            band_mean_ms: band.map(|b| b.0),
            band_miss_ratio: band.map(|b| b.1),
            live_mean_ms: live.0,
            live_misses: live.1,
        }
    }

    #[test]
    fn pooling_adds_traces_up_as_one_longer_run() {
        let records = [
            record(0, "lalb", (10.0, 4), (8.0, 2), Some((12.0, 0.05))),
            record(1, "lalb", (20.0, 6), (24.0, 9), Some((18.0, 0.07))),
            record(0, "lb", (600.0, 50), (590.0, 49), None),
        ];
        let pooled = pool(&records).unwrap();
        let lalb = &pooled[&(35, "lalb".to_string())];
        assert_eq!(lalb.seeds, vec![0, 1]);
        assert_eq!(lalb.requests, 200);
        assert_eq!((lalb.sim_misses, lalb.live_misses), (10, 11));
        assert!((lalb.mean(lalb.sim_total_ms) - 15.0).abs() < 1e-9);
        assert!((lalb.mean(lalb.live_total_ms) - 16.0).abs() < 1e-9);
        assert!((lalb.mean(lalb.band_total_ms.unwrap()) - 15.0).abs() < 1e-9);
        assert!((lalb.band_misses.unwrap() - 12.0).abs() < 1e-9);
        assert_eq!(pooled[&(35, "lb".to_string())].band_total_ms, None);
    }

    #[test]
    fn a_trace_recorded_twice_is_refused() {
        let a = record(4, "lalb", (10.0, 4), (8.0, 2), None);
        let err = pool(&[a.clone(), a]).unwrap_err().to_string();
        assert_eq!(err, "seed 4 of lalb at W = 35 is recorded twice");
    }

    #[test]
    fn a_record_without_a_band_leaves_the_pooled_band_out() {
        let records = [
            record(0, "lalb", (10.0, 4), (8.0, 2), Some((12.0, 0.05))),
            record(1, "lalb", (20.0, 6), (24.0, 9), None),
        ];
        let pooled = pool(&records).unwrap();
        assert_eq!(pooled[&(35, "lalb".to_string())].band_total_ms, None);
        assert_eq!(pooled[&(35, "lalb".to_string())].band_misses, None);
    }

    #[test]
    fn the_table_states_deltas_and_each_sizes_ranking() {
        let records = [
            record(0, "lalb", (10.0, 10), (11.0, 9), Some((10.0, 0.1))),
            record(0, "locus", (4.0, 0), (4.2, 0), Some((4.0, 0.0))),
        ];
        let mut out = Vec::new();
        write(&pool(&records).unwrap(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("| 35 | lalb | 1 | 100 | 10.00 | 10.00 | 11.00 | +10.0 % / +10.0 % | 10 | 10.0 | 9 | -10.0 % / -10.0 % |"), "{text}");
        assert!(text.contains("| 35 | locus | 1 | 100 | 4.00 | 4.00 | 4.20 | +5.0 % / +5.0 % | 0 | 0.0 | 0 | n/a / n/a |"), "{text}");
        assert!(
            text.contains(
                "W = 35: ranking by pooled mean latency: simulated locus < lalb; live locus < lalb"
            ),
            "{text}"
        );
    }

    #[test]
    fn records_round_trip_through_a_file_and_bad_lines_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.jsonl");
        let a = record(3, "lb", (600.0, 50), (590.0, 49), None);
        a.append(&path).unwrap();
        a.append(&path).unwrap();
        assert_eq!(
            read(std::slice::from_ref(&path)).unwrap(),
            vec![a.clone(), a]
        );
        std::fs::write(&path, "{\"wss\": 35}\n").unwrap();
        let err = read(&[path]).unwrap_err().to_string();
        assert!(err.contains("runs.jsonl:1: not a loadgen record"), "{err}");
    }
}
