//! What Grafana computes before it sends a panel's query: `$__interval` (range ÷ max data
//! points, rounded with Grafana's table, raised to the min interval), the Prometheus step and
//! `$__rate_interval`, `$__range`, and template variables formatted for a Prometheus/Loki
//! regex matcher.
//!
//! Sources (grafana/grafana, commit 0aff354e): `packages/grafana-data/src/datetime/rangeutil.ts`
//! (`roundInterval`, `calculateInterval`, `describeInterval`, `secondsToHms`) and the Prometheus
//! datasource's `getRateIntervalScopedVariable` (`max(interval + scrape, 4 × scrape)`, scrape
//! 15 s when unset) and `adjustInterval` (`max(interval, min interval, range / 11000)`: Prometheus
//! refuses more than 11,000 points).

/// Grafana's `roundInterval`: the step table a computed interval (ms) snaps to.
pub fn round_interval(ms: f64) -> u64 {
    const TABLE: [(f64, u64); 28] = [
        (10.0, 1),
        (15.0, 10),
        (35.0, 20),
        (75.0, 50),
        (150.0, 100),
        (350.0, 200),
        (750.0, 500),
        (1_500.0, 1_000),
        (3_500.0, 2_000),
        (7_500.0, 5_000),
        (12_500.0, 10_000),
        (17_500.0, 15_000),
        (25_000.0, 20_000),
        (45_000.0, 30_000),
        (90_000.0, 60_000),
        (210_000.0, 120_000),
        (450_000.0, 300_000),
        (750_000.0, 600_000),
        (1_050_000.0, 900_000),
        (1_500_000.0, 1_200_000),
        (2_700_000.0, 1_800_000),
        (5_400_000.0, 3_600_000),
        (9_000_000.0, 7_200_000),
        (16_200_000.0, 10_800_000),
        (32_400_000.0, 21_600_000),
        (86_400_000.0, 43_200_000),
        (604_800_000.0, 86_400_000),
        (1_814_400_000.0, 604_800_000),
    ];
    TABLE.iter().find(|(below, _)| ms < *below).map_or(
        if ms < 3_628_800_000.0 {
            2_592_000_000
        } else {
            31_536_000_000
        },
        |(_, v)| *v,
    )
}

/// Grafana's `calculateInterval`: `range / resolution` rounded, at least `low_limit_ms`.
pub fn calculate_interval(range_ms: u64, resolution: u32, low_limit_ms: Option<u64>) -> u64 {
    let ms = round_interval(range_ms as f64 / f64::from(resolution.max(1)));
    ms.max(low_limit_ms.unwrap_or(1))
}

/// Grafana's `describeInterval` in ms: `15s`, `1m`, `500ms`, `2h`; a bare number is seconds.
/// `None` for anything else (a `$variable`, garbage).
pub fn interval_to_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        return (n.is_finite() && n >= 0.0).then(|| (n.trunc() * 1000.0) as u64);
    }
    let digits = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map(|(i, _)| i)?;
    // Grafana takes parseInt of the number part.
    let count: u64 = s[..digits].split('.').next()?.parse().ok()?;
    let unit_ms: u64 = match &s[digits..] {
        u if u.starts_with("ms") => 1,
        u if u.starts_with('s') => 1_000,
        u if u.starts_with('m') => 60_000,
        u if u.starts_with('h') => 3_600_000,
        u if u.starts_with('d') => 86_400_000,
        u if u.starts_with('w') => 604_800_000,
        u if u.starts_with('M') => 2_592_000_000,
        u if u.starts_with('y') => 31_536_000_000,
        _ => return None,
    };
    count.checked_mul(unit_ms)
}

/// Grafana's `secondsToHms`: the largest whole unit, e.g. `15s`, `1m`, `2h`, `500ms`.
pub fn ms_to_hms(ms: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (31_536_000_000, "y"),
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    for (i, (unit, name)) in UNITS.iter().enumerate() {
        // Like Grafana: the remainder after the larger units, floored.
        let rest = if i == 0 { ms } else { ms % UNITS[i - 1].0 };
        if rest / unit > 0 {
            return format!("{}{name}", rest / unit);
        }
    }
    if ms > 0 {
        format!("{ms}ms")
    } else {
        "less than a millisecond".into()
    }
}

/// The Prometheus datasource's step (s): `max(interval, min interval, range / 11000)`, the
/// last rounded up when above 1 s.
pub fn prometheus_step_s(interval_ms: u64, min_interval_ms: u64, range_ms: u64) -> f64 {
    let mut safe = range_ms as f64 / 1000.0 / 11_000.0;
    if safe > 1.0 {
        safe = safe.ceil();
    }
    (interval_ms as f64 / 1000.0)
        .max(min_interval_ms as f64 / 1000.0)
        .max(safe)
}

/// The Prometheus datasource's `$__rate_interval` (s): `max(interval + scrape, 4 × scrape)`.
pub fn rate_interval_s(interval_s: f64, scrape_s: f64) -> f64 {
    let scrape = if scrape_s <= 0.0 { 15.0 } else { scrape_s };
    (interval_s + scrape).max(4.0 * scrape)
}

/// A number of seconds as Grafana writes it into a query: `60`, `0.5`.
pub fn fmt_secs(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s}")
    }
}

/// Grafana's regex escape for Prometheus/Loki matcher values of multi-value variables
/// (`prometheusSpecialRegexEscape`): backslash, then regex metacharacters.
pub fn regex_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(
            c,
            '\\' | '$' | '^' | '*' | '+' | '?' | '.' | '(' | ')' | '|' | '[' | ']' | '{' | '}'
        ) {
            // Inside a double-quoted PromQL/LogQL string a regex backslash is written twice.
            out.push_str("\\\\");
        }
        out.push(c);
    }
    out
}

/// A variable's selected values as Grafana puts them into a Prometheus or Loki query: one value
/// as is; several as `(a|b)`, each regex-escaped; `format` `pipe`/`csv`/`raw`/`regex` as asked.
pub fn format_values(values: &[String], multi_or_all: bool, format: Option<&str>) -> String {
    match format {
        Some("csv") => values.join(","),
        Some("pipe") => values.join("|"),
        Some("raw") => values.join(","),
        Some("regex") | None if values.len() > 1 || (multi_or_all && format == Some("regex")) => {
            let escaped: Vec<String> = values.iter().map(|v| regex_escape(v)).collect();
            if escaped.len() == 1 {
                escaped[0].clone()
            } else {
                format!("({})", escaped.join("|"))
            }
        }
        _ if multi_or_all && values.len() == 1 => regex_escape(&values[0]),
        _ => values.first().cloned().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Grafana's own examples: a 1 h range over 1,000 px is `5s`; with the Mimir datasource's
    /// `timeInterval: 15s` it is raised to `15s`, and `$__rate_interval` is then
    /// `max(15 + 15, 60) = 60s`; 24 h over 1,000 px is `1m` (86.4 s < 90 s).
    #[test]
    fn intervals_as_grafana_computes_them() {
        assert_eq!(calculate_interval(3_600_000, 1000, None), 5_000);
        assert_eq!(calculate_interval(3_600_000, 1000, Some(15_000)), 15_000);
        assert_eq!(calculate_interval(86_400_000, 1000, None), 60_000);
        assert_eq!(calculate_interval(6 * 3_600_000, 640, None), 30_000);
        assert_eq!(rate_interval_s(15.0, 15.0), 60.0);
        assert_eq!(rate_interval_s(120.0, 15.0), 135.0);
        assert_eq!(rate_interval_s(5.0, 0.0), 60.0);
        // The table's edges (rangeutil.ts): below 10 ms → 1 ms, 7.5 s → 10 s, 1.5 min → 2 min.
        assert_eq!(round_interval(9.9), 1);
        assert_eq!(round_interval(7_499.0), 5_000);
        assert_eq!(round_interval(7_500.0), 10_000);
        assert_eq!(round_interval(90_000.0), 120_000);
        assert_eq!(round_interval(4e9), 31_536_000_000);
    }

    #[test]
    fn steps_respect_prometheus_point_limit() {
        // 30 days over 1,000 px: roundInterval(2,592 s) = 1 h, above range / 11000 = 236 s.
        assert_eq!(
            prometheus_step_s(3_600_000, 15_000, 30 * 86_400_000),
            3600.0
        );
        // A 1 s interval over 7 days: range / 11000 = 54.98 s, rounded up to 55 s.
        assert_eq!(prometheus_step_s(1_000, 0, 7 * 86_400_000), 55.0);
    }

    #[test]
    fn parses_and_prints_intervals() {
        assert_eq!(interval_to_ms("15s"), Some(15_000));
        assert_eq!(interval_to_ms("1m"), Some(60_000));
        assert_eq!(interval_to_ms("500ms"), Some(500));
        assert_eq!(interval_to_ms("30"), Some(30_000));
        assert_eq!(interval_to_ms("1.5h"), Some(3_600_000));
        assert_eq!(interval_to_ms("$x"), None);
        assert_eq!(ms_to_hms(15_000), "15s");
        assert_eq!(ms_to_hms(60_000), "1m");
        assert_eq!(ms_to_hms(90_000), "1m");
        assert_eq!(ms_to_hms(3_600_000), "1h");
        assert_eq!(ms_to_hms(500), "500ms");
    }

    #[test]
    fn formats_variables_for_regex_matchers() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(format_values(&v(&["eu"]), false, None), "eu");
        assert_eq!(format_values(&v(&["eu", "us"]), true, None), "(eu|us)");
        assert_eq!(format_values(&v(&["a.b", "c"]), true, None), r"(a\\.b|c)");
        assert_eq!(format_values(&v(&["a", "b"]), true, Some("pipe")), "a|b");
        assert_eq!(format_values(&v(&["a", "b"]), true, Some("csv")), "a,b");
    }
}
