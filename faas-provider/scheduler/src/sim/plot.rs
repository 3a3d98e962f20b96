//! The sweep at a glance: mean latency (log scale) and miss ratio against working-set
//! size, one line per policy, Belady's reference dashed. Rendered to an SVG string; the
//! simulator's front writes it to the file named by `--plot`.

use plotters::prelude::*;

use crate::sim::report::Row;

const COLORS: [RGBColor; 4] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
];

fn err(e: impl std::fmt::Debug) -> String {
    format!("plot: {e:?}")
}

/// Draws `rows` (any order) for the policies in `policies` order. `subtitle` names the
/// scenario.
pub fn svg(rows: &[Row], policies: &[String], subtitle: &str) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (1200, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(subtitle, ("sans-serif", 16)).map_err(err)?;
        let (left, right) = root.split_horizontally(600);
        let max_w = rows.iter().map(|r| r.wss).max().unwrap_or(1);
        let lat: Vec<f64> = rows
            .iter()
            .map(|r| r.mean_latency_ms)
            .filter(|x| *x > 0.0)
            .collect();
        let (lo, hi) = (
            lat.iter().copied().fold(f64::MAX, f64::min),
            lat.iter().copied().fold(0.0, f64::max),
        );
        let (lo, hi) = if lat.is_empty() {
            (0.1, 10.0)
        } else {
            (lo / 1.5, hi * 1.5)
        };
        let series = |p: &str| {
            let mut v: Vec<&Row> = rows.iter().filter(|r| r.policy == p).collect();
            v.sort_by_key(|r| r.wss);
            v
        };

        let mut chart = ChartBuilder::on(&left)
            .caption("mean latency (ms, log scale)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0u32..max_w + 5, (lo..hi).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("working-set size (models)")
            .y_desc("ms")
            .draw()
            .map_err(err)?;
        for (i, p) in policies.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            let pts: Vec<(u32, f64)> = series(p)
                .iter()
                .map(|r| (r.wss, r.mean_latency_ms.max(lo)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(err)?
                .label(p.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&pt| Circle::new(pt, 3, c.filled())))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;

        let max_miss = rows
            .iter()
            .map(|r| r.miss_ratio.max(r.belady_miss_ratio))
            .fold(0.0, f64::max)
            .max(0.01)
            * 1.1;
        let mut chart = ChartBuilder::on(&right)
            .caption("cache miss ratio", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0u32..max_w + 5, 0.0..max_miss)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("working-set size (models)")
            .y_desc("misses / requests")
            .draw()
            .map_err(err)?;
        for (i, p) in policies.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            let pts: Vec<(u32, f64)> = series(p).iter().map(|r| (r.wss, r.miss_ratio)).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(err)?
                .label(p.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&pt| Circle::new(pt, 3, c.filled())))
                .map_err(err)?;
        }
        if let Some(first) = policies.first() {
            let belady: Vec<(u32, f64)> = series(first)
                .iter()
                .map(|r| (r.wss, r.belady_miss_ratio))
                .collect();
            for w in belady.windows(2) {
                // Dashed by drawing every other tenth of each segment.
                let (a, b) = (w[0], w[1]);
                for k in (0..10).step_by(2) {
                    let at =
                        |t: f64| (a.0 + ((b.0 - a.0) as f64 * t) as u32, a.1 + (b.1 - a.1) * t);
                    let seg = vec![at(k as f64 / 10.0), at((k + 1) as f64 / 10.0)];
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            seg,
                            BLACK.stroke_width(1),
                        )))
                        .map_err(err)?;
                }
            }
            chart
                .draw_series(std::iter::empty::<PathElement<(u32, f64)>>())
                .map_err(err)?
                .label("belady (offline, one cache)")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 8, y), (x + 12, y), (x + 20, y)], BLACK)
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}
