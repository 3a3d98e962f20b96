//! The simulator end to end on small runs.

use super::*;

fn small() -> SimArgs {
    SimArgs {
        wss: Some("5,20".into()),
        seeds: Some(2),
        requests: Some(2_000),
        warmup: Some(200),
        format: "json".into(),
        threads: Some(2),
        ..SimArgs::default()
    }
}

#[test]
fn identical_seeds_give_identical_output() {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    run(&small(), &mut a).unwrap();
    run(
        &SimArgs {
            threads: Some(1),
            ..small()
        },
        &mut b,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(a.clone()).unwrap(),
        String::from_utf8(b).unwrap()
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(a)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2 * 4, "one line per (policy, wss)");
    for l in &lines {
        for key in [
            "policy",
            "wss",
            "requests",
            "mean_latency_ms",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "miss_ratio",
            "gpu_busy",
            "belady_miss_ratio",
        ] {
            assert!(l.get(key).is_some(), "{key} missing in {l}");
        }
        let is_lb = l["policy"] == "lb";
        assert_eq!(l.get("latency_reduction").is_none(), is_lb);
        assert_eq!(l.get("miss_reduction").is_none(), is_lb);
        assert!(l["p50_ms"].as_f64() <= l["p99_ms"].as_f64());
    }
}

#[test]
fn bad_flags_are_refused_with_a_clear_message() {
    let mut out = Vec::new();
    let err = run(
        &SimArgs {
            policy: Some("fifo".into()),
            ..small()
        },
        &mut out,
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown policy `fifo`"), "{err}");
    let err = run(
        &SimArgs {
            format: "xml".into(),
            ..small()
        },
        &mut out,
    )
    .unwrap_err();
    assert!(err.to_string().contains("format"), "{err}");
    let err = run(
        &SimArgs {
            gpu_memory: Some("100MB".into()),
            ..small()
        },
        &mut out,
    )
    .unwrap_err();
    assert!(err.to_string().contains("gpu_memory"), "{err}");
}

#[test]
fn the_table_and_the_plot_are_written() {
    let dir = std::env::temp_dir().join(format!("locus-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plot = dir.join("sweep.svg");
    let mut out = Vec::new();
    run(
        &SimArgs {
            format: "table".into(),
            plot: Some(plot.clone()),
            policy: Some("lb,lalb-o3".into()),
            ..small()
        },
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.lines().any(|l| l.starts_with("lalb-o3")), "{text}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("lalb-o3"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_scenario_file_sets_what_the_flags_do_not() {
    let dir = std::env::temp_dir().join(format!("locus-scn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("s.json");
    std::fs::write(
        &file,
        r#"{"wss":[7],"seeds":1,"nodes":2,"gpus_per_node":1,"knobs":{"o3_max_bypass":3}}"#,
    )
    .unwrap();
    let s = scenario(&SimArgs {
        scenario: Some(file),
        seeds: Some(4),
        ..SimArgs::default()
    })
    .unwrap();
    assert_eq!(
        (s.wss, s.seeds, s.nodes, s.knobs.o3_max_bypass),
        (vec![7], 4, 2, 3)
    );
    std::fs::remove_dir_all(&dir).ok();
}
