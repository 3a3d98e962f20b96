//! The picture: one SVG with the dashboard's rows as headings and its panels three to
//! a line beneath them, each titled as in the dashboard. Time series are lines over
//! the seconds since the traffic started, with a legend below; a stat is its number;
//! a table is its rows as text, full width.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::panels::{Kind, Panel, Series};
use crate::units;

/// The width of the picture, pixels.
const WIDTH: u32 = 1500;
/// Panels per line.
const COLUMNS: u32 = 3;
/// Height of a time-series plot (title, axes and lines) without its legend.
const PLOT_HEIGHT: u32 = 250;
/// Height of one legend line.
const LEGEND_LINE: u32 = 15;
/// Legend entries side by side.
const LEGEND_COLUMNS: usize = 2;
/// Height of a row heading.
const HEADING: u32 = 34;
/// Height of one table line.
const TABLE_LINE: u32 = 17;

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A panel with the series its queries returned.
pub struct Drawn {
    /// The panel.
    pub panel: Panel,
    /// Its series, all targets together.
    pub series: Vec<Series>,
}

/// What the picture says around the panels.
pub struct Frame<'a> {
    /// Heading lines above everything (the first bold).
    pub caption: &'a [String],
    /// Seconds (from the window's start) where a vertical dashed marker goes, with
    /// its label: the traffic's start and phase change.
    pub marks: &'a [(f64, String)],
    /// Seconds the window spans.
    pub span: f64,
    /// Seconds between points (a larger gap breaks a line).
    pub step: f64,
}

/// One line of the layout.
enum Line<'a> {
    Heading(&'a str),
    Panels(Vec<&'a Drawn>),
}

fn err(e: impl std::fmt::Debug) -> anyhow::Error {
    anyhow::anyhow!("drawing: {e:?}")
}

fn layout(drawn: &[Drawn]) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut row: Option<&str> = None;
    let mut pending: Vec<&Drawn> = Vec::new();
    for d in drawn {
        if row != Some(d.panel.row.as_str()) || d.panel.kind == Kind::Table {
            if !pending.is_empty() {
                lines.push(Line::Panels(std::mem::take(&mut pending)));
            }
            if row != Some(d.panel.row.as_str()) {
                row = Some(d.panel.row.as_str());
                lines.push(Line::Heading(d.panel.row.as_str()));
            }
        }
        pending.push(d);
        if pending.len() == COLUMNS as usize || d.panel.kind == Kind::Table {
            lines.push(Line::Panels(std::mem::take(&mut pending)));
        }
    }
    if !pending.is_empty() {
        lines.push(Line::Panels(pending));
    }
    lines
}

fn height(line: &Line<'_>) -> u32 {
    match line {
        Line::Heading(_) => HEADING,
        Line::Panels(panels) => panels
            .iter()
            .map(|d| match d.panel.kind {
                Kind::Table => 40 + TABLE_LINE * (d.series.len().max(1) as u32 + 1),
                _ => {
                    let rows = d.series.len().div_ceil(LEGEND_COLUMNS) as u32;
                    PLOT_HEIGHT + 10 + LEGEND_LINE * rows
                }
            })
            .max()
            .unwrap_or(0),
    }
}

/// Renders every panel of `drawn` into one SVG document.
pub fn svg(drawn: &[Drawn], frame: &Frame<'_>) -> anyhow::Result<String> {
    let lines = layout(drawn);
    let top = 20 + 22 * frame.caption.len() as u32;
    let total = top + lines.iter().map(height).sum::<u32>() + 10;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, total)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        for (i, text) in frame.caption.iter().enumerate() {
            let font = if i == 0 {
                ("sans-serif", 20).into_font().style(FontStyle::Bold)
            } else {
                ("sans-serif", 14).into_font()
            };
            root.draw(&Text::new(
                text.clone(),
                (12, 12 + 22 * i as i32),
                font.color(&BLACK),
            ))
            .map_err(err)?;
        }
        let mut y = top;
        let column = WIDTH / COLUMNS;
        for line in &lines {
            let h = height(line);
            match line {
                Line::Heading(title) => {
                    let area = root.clone().shrink((0, y), (WIDTH, h));
                    area.fill(&RGBColor(236, 239, 244)).map_err(err)?;
                    let font = ("sans-serif", 17).into_font().style(FontStyle::Bold);
                    area.draw(&Text::new(title.to_string(), (12, 8), font.color(&BLACK)))
                        .map_err(err)?;
                }
                Line::Panels(panels) => {
                    for (i, d) in panels.iter().enumerate() {
                        let width = if d.panel.kind == Kind::Table {
                            WIDTH
                        } else {
                            column
                        };
                        let area = root.clone().shrink((column * i as u32, y), (width, h));
                        match d.panel.kind {
                            Kind::TimeSeries => timeseries(&area, d, frame)?,
                            Kind::Stat => stat(&area, d)?,
                            Kind::Table => table(&area, d)?,
                        }
                    }
                }
            }
            y += h;
        }
        root.present().map_err(err)?;
    }
    Ok(out)
}

fn title(area: &DrawingArea<SVGBackend<'_>, Shift>, text: &str) -> anyhow::Result<()> {
    let font = ("sans-serif", 15).into_font().style(FontStyle::Bold);
    area.draw(&Text::new(text.to_string(), (14, 8), font.color(&BLACK)))
        .map_err(err)
}

fn no_data(area: &DrawingArea<SVGBackend<'_>, Shift>, below: i32) -> anyhow::Result<()> {
    let (w, _) = area.dim_in_pixel();
    let font = ("sans-serif", 15).into_font().color(&RGBColor(180, 30, 30));
    area.draw(&Text::new("no data", (w as i32 / 2 - 28, below), font))
        .map_err(err)
}

/// Lines split where a value is not finite or points are more than 1.5 steps apart.
fn segments(points: &[(f64, f64)], step: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    let mut previous: Option<f64> = None;
    for &(t, v) in points {
        let gap = previous.is_some_and(|p| t - p > 1.5 * step);
        if !v.is_finite() || gap {
            out.push(Vec::new());
        }
        if v.is_finite() {
            out.last_mut().expect("one segment").push((t, v));
            previous = Some(t);
        } else {
            previous = None;
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn timeseries(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    d: &Drawn,
    frame: &Frame<'_>,
) -> anyhow::Result<()> {
    let (w, _) = area.dim_in_pixel();
    let (plot, legend) = area.split_vertically(PLOT_HEIGHT);
    title(&plot, &d.panel.title)?;
    // Bytes are plotted in MiB so that the axis ticks fall on round MiB.
    let scale = if d.panel.unit == "bytes" {
        1024.0 * 1024.0
    } else {
        1.0
    };
    let values = d
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1 / scale));
    let max = values.filter(|v| v.is_finite()).fold(0.0_f64, f64::max);
    let top = if d.panel.unit == "percentunit" {
        1.05
    } else if max > 0.0 {
        max * 1.12
    } else {
        1.0
    };
    let unit = d.panel.unit.clone();
    let mut chart = ChartBuilder::on(&plot.margin(30, 4, 6, 14))
        .x_label_area_size(24)
        .y_label_area_size(62)
        .build_cartesian_2d(0.0..frame.span, 0.0..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(7)
        .y_labels(5)
        .label_style(("sans-serif", 11))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_label_formatter(&|t| format!("{t:.0} s"))
        .y_label_formatter(&|v| units::format(&unit, *v * scale))
        .draw()
        .map_err(err)?;
    for (t, label) in frame.marks {
        let grey = RGBColor(150, 150, 150);
        for k in 0..20 {
            let (a, b) = (top * k as f64 / 20.0, top * (k as f64 + 0.5) / 20.0);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(*t, a), (*t, b)],
                    grey,
                )))
                .map_err(err)?;
        }
        let font = ("sans-serif", 10).into_font().color(&grey);
        // Right of the line, or left of it near the right edge (about 5.5 px a letter).
        let (w, _) = chart.plotting_area().dim_in_pixel();
        let width = 5.5 * label.len() as f64 * frame.span / f64::from(w.max(1));
        let x = if *t + width > frame.span {
            *t - width
        } else {
            *t
        };
        chart
            .draw_series(std::iter::once(Text::new(label.clone(), (x, top), font)))
            .map_err(err)?;
    }
    for (i, s) in d.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<(f64, f64)> = s.points.iter().map(|&(t, v)| (t, v / scale)).collect();
        for segment in segments(&points, frame.step) {
            if segment.len() == 1 {
                chart
                    .draw_series(std::iter::once(Circle::new(segment[0], 2, color.filled())))
                    .map_err(err)?;
            } else {
                chart
                    .draw_series(LineSeries::new(segment, color.stroke_width(2)))
                    .map_err(err)?;
            }
        }
    }
    if d.series.is_empty() {
        no_data(&plot, PLOT_HEIGHT as i32 / 2)?;
    }
    let cell = (w as i32 - 30) / LEGEND_COLUMNS as i32;
    let chars = (cell as usize - 24) / 6;
    for (i, s) in d.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let (x, y) = (
            20 + cell * (i % LEGEND_COLUMNS) as i32,
            4 + LEGEND_LINE as i32 * (i / LEGEND_COLUMNS) as i32,
        );
        legend
            .draw(&PathElement::new(
                vec![(x, y + 6), (x + 16, y + 6)],
                color.stroke_width(3),
            ))
            .map_err(err)?;
        let name: String = if s.name.chars().count() > chars {
            s.name
                .chars()
                .take(chars.saturating_sub(1))
                .chain(['…'])
                .collect()
        } else {
            s.name.clone()
        };
        let font = ("sans-serif", 11).into_font().color(&BLACK);
        legend
            .draw(&Text::new(name, (x + 20, y), font))
            .map_err(err)?;
    }
    Ok(())
}

fn stat(area: &DrawingArea<SVGBackend<'_>, Shift>, d: &Drawn) -> anyhow::Result<()> {
    title(area, &d.panel.title)?;
    let lasts: Vec<f64> = d.series.iter().filter_map(Series::last).collect();
    if lasts.is_empty() {
        return no_data(area, PLOT_HEIGHT as i32 / 2);
    }
    let value = units::format(&d.panel.unit, lasts.iter().sum());
    let (w, _) = area.dim_in_pixel();
    let font = ("sans-serif", 56).into_font().style(FontStyle::Bold);
    let x = w as i32 / 2 - (value.chars().count() as i32 * 17);
    area.draw(&Text::new(value, (x, 90), font.color(&COLORS[2])))
        .map_err(err)?;
    let note = ("sans-serif", 12).into_font().color(&RGBColor(90, 90, 90));
    area.draw(&Text::new(
        "at the end of the window",
        (w as i32 / 2 - 68, 160),
        note,
    ))
    .map_err(err)
}

fn table(area: &DrawingArea<SVGBackend<'_>, Shift>, d: &Drawn) -> anyhow::Result<()> {
    title(area, &d.panel.title)?;
    if d.series.is_empty() {
        return no_data(area, 60);
    }
    let hidden = ["__name__", "job"];
    let mut keys: Vec<&str> = d
        .series
        .iter()
        .flat_map(|s| s.labels.keys().map(String::as_str))
        .filter(|k| !hidden.contains(k))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let mut rows: Vec<Vec<String>> = vec![keys.iter().map(|k| k.to_string()).collect()];
    rows[0].push("Value (last)".to_string());
    for s in &d.series {
        let mut row: Vec<String> = keys
            .iter()
            .map(|k| s.labels.get(*k).cloned().unwrap_or_default())
            .collect();
        row.push(
            s.last()
                .map_or("–".to_string(), |v| units::format(&d.panel.unit, v)),
        );
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    // SVG collapses runs of spaces, so each cell goes at its own column offset.
    let mut offsets = vec![20];
    for w in &widths {
        offsets.push(offsets.last().copied().unwrap_or(0) + 8 * *w as i32 + 24);
    }
    for (i, row) in rows.iter().enumerate() {
        let y = 34 + TABLE_LINE as i32 * i as i32;
        for (cell, x) in row.iter().zip(&offsets) {
            let mut font = ("monospace", 12).into_font();
            if i == 0 {
                font = font.style(FontStyle::Bold);
            }
            area.draw(&Text::new(cell.clone(), (*x, y), font.color(&BLACK)))
                .map_err(err)?;
        }
    }
    Ok(())
}
