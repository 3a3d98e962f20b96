//! Kubernetes resource quantities (`128Mi`, `1Gi`, `0.5`, `500m`, `1e3`), as used by
//! `limits`, `requests` and the `locus.io/memory` annotation.

/// Parses a quantity into its value in base units (bytes for memory, cores for CPU).
///
/// Accepts the Kubernetes grammar: an optionally signed decimal number followed by a
/// binary suffix (`Ki` … `Ei`), a decimal suffix (`n`, `u`, `m`, `k`, `M` … `E`), an
/// exponent (`e3`, `E-2`) or nothing. Returns a one-line reason on failure.
pub fn parse(text: &str) -> Result<f64, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let unsigned = number.strip_prefix(['+', '-']).unwrap_or(number);
    let digits_ok = !unsigned.is_empty()
        && unsigned != "."
        && unsigned.chars().filter(|&c| c == '.').count() <= 1
        && unsigned.chars().all(|c| c.is_ascii_digit() || c == '.');
    if !digits_ok {
        return Err(format!(
            "{text:?} is not a Kubernetes quantity (e.g. 128Mi, 1Gi, 500m)"
        ));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a Kubernetes quantity"))?;
    let multiplier = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        s if s.starts_with(['e', 'E']) => {
            let exp: i32 = s[1..]
                .parse()
                .map_err(|_| format!("{text:?} has a malformed exponent"))?;
            10f64.powi(exp)
        }
        _ => return Err(format!("{text:?} has an unknown unit suffix {suffix:?}")),
    };
    Ok(value * multiplier)
}

/// Parses a quantity that must be a positive number of bytes (rounded up).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let value = parse(text)?;
    if !value.is_finite() || value < 1.0 || value > u64::MAX as f64 {
        return Err(format!("{text:?} is not a positive number of bytes"));
    }
    Ok(value.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_decimal_milli_and_exponent_forms_parse() {
        assert_eq!(parse("128Mi").unwrap(), 128.0 * 1024.0 * 1024.0);
        assert_eq!(parse("1Gi").unwrap(), 1024f64.powi(3));
        assert_eq!(parse("0.5").unwrap(), 0.5);
        assert_eq!(parse("500m").unwrap(), 0.5);
        assert_eq!(parse("2k").unwrap(), 2000.0);
        assert_eq!(parse("1e3").unwrap(), 1000.0);
        assert_eq!(parse(".5").unwrap(), 0.5);
        assert_eq!(parse_bytes("1Ki").unwrap(), 1024);
    }

    #[test]
    fn malformed_quantities_are_refused_with_a_reason() {
        for bad in ["", "Mi", "1.2.3", "12Mb", "1 Gi", "abc", ".", "1e", "--1"] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("-1Gi").is_err());
        assert!(parse_bytes("100m").is_err());
    }
}
