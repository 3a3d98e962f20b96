//! Numbers as Grafana shows them for a panel's unit: rates per second, seconds as ms
//! when small, bytes in MiB/GiB, ratios as percentages.

/// `v` formatted for `unit` (Grafana's unit ids: `reqps`, `ops`, `s`, `bytes`,
/// `percentunit`, `short`).
pub fn format(unit: &str, v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    match unit {
        "reqps" | "ops" => format!("{}/s", short(v)),
        "s" if v.abs() < 1.0 && v != 0.0 => format!("{} ms", trim(v * 1e3)),
        "s" => format!("{} s", trim(v)),
        "bytes" => bytes(v),
        "percentunit" => format!("{:.0}%", v * 100.0),
        _ => short(v),
    }
}

/// Bytes in the largest binary unit that keeps the number at least 1.
fn bytes(v: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = v;
    let mut i = 0;
    while v.abs() >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{} {}", trim(v), UNITS[i])
}

/// A plain number with k/M suffixes.
fn short(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if v.abs() >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

/// At most three significant digits, without trailing zeros.
fn trim(v: f64) -> String {
    let text = if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unit_reads_as_grafana_writes_it() {
        assert_eq!(format("reqps", 12.5), "12.5/s");
        assert_eq!(format("s", 0.0123), "12.3 ms");
        assert_eq!(format("s", 2.0), "2 s");
        assert_eq!(format("bytes", 160.0 * 1024.0 * 1024.0), "160 MiB");
        assert_eq!(format("percentunit", 0.875), "88%");
        assert_eq!(format("short", 3600.0), "3600");
        assert_eq!(format("short", 0.25), "0.25");
        assert_eq!(format("short", f64::NAN), "–");
    }
}
