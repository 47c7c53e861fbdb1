//! Number, unit and rate formatting shared by every section (and by the terminal summary):
//! milliseconds from histogram units, thousands separators, percentages, bytes, rates over the
//! part of each interval the schedule covered.

use super::*;

/// A histogram value converted to milliseconds (units "ns", "us"/"µs", "ms", "s").
pub fn to_ms(v: f64, unit: &str) -> f64 {
    match unit {
        "ns" => v / 1e6,
        "us" | "µs" => v / 1e3,
        "s" => v * 1e3,
        _ => v,
    }
}

/// `1.23 ms`.
pub fn fmt_ms(v: u64, unit: &str) -> String {
    let ms = to_ms(v as f64, unit);
    if ms < 1.0 {
        format!("{ms:.3} ms")
    } else if ms < 100.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// `1,234,567`.
pub fn fmt_int(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A float for a table: thousands separators above 1000, a few decimals below.
pub fn fmt_f(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    if v.abs() >= 1000.0 && v.abs() < 1e18 {
        let sign = if v < 0.0 { "-" } else { "" };
        format!("{sign}{}", fmt_int(v.abs().round() as u64))
    } else if v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// `0.012%`, or `–` when unknown.
pub fn fmt_pct(f: Option<f64>) -> String {
    f.filter(|f| f.is_finite())
        .map_or_else(|| "–".to_string(), |f| format!("{:.3}%", f * 100.0))
}

/// `1.5 KiB`, `12.0 MiB`.
pub fn fmt_bytes(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut i = 0;
    while v.abs() >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// The measured (post-warm-up) seconds that totals divide by; `None` when the results do not
/// give a usable one.
pub fn measured_s(r: &Results) -> Option<f64> {
    let s = r.run.duration_s - r.run.warmup_s;
    (s.is_finite() && s > 0.0).then_some(s)
}

/// The reporting interval's length: the smallest step between consecutive intervals (the
/// first interval's end when there is only one).
pub(super) fn interval_len(r: &Results) -> Option<f64> {
    let step = r
        .intervals
        .windows(2)
        .map(|w| w[1].t_s - w[0].t_s)
        .filter(|d| d.is_finite() && *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    let step = if step.is_finite() {
        step
    } else {
        r.intervals.first().map_or(0.0, |i| i.t_s)
    };
    (step.is_finite() && step > 0.0).then_some(step)
}

/// `(t, count per second)` of one count of each interval. The rate divides by the part of the
/// interval the schedule covered (it ends at `duration_s`): an interval straddling the end is
/// divided by its time up to the end, one covering less than half an interval of schedule is
/// left out (its few items would draw a collapse to zero, or a spike), and so are intervals
/// after the end (requests still completing). The items left out stay in every total; see
/// [`tail_items`].
pub fn rate_points(r: &Results, count: impl Fn(&Interval) -> Option<u64>) -> Vec<(f64, f64)> {
    drawn_intervals(r)
        .into_iter()
        .filter_map(|(i, covered)| {
            let iv = &r.intervals[i];
            Some((iv.t_s, count(iv)? as f64 / covered))
        })
        .collect()
}

/// The intervals rate charts draw (index, seconds of schedule covered); see [`rate_points`].
pub(super) fn drawn_intervals(r: &Results) -> Vec<(usize, f64)> {
    let Some(step) = interval_len(r) else {
        return Vec::new();
    };
    let end = if r.run.duration_s.is_finite() && r.run.duration_s > 0.0 {
        r.run.duration_s
    } else {
        f64::INFINITY
    };
    r.intervals
        .iter()
        .enumerate()
        .filter_map(|(i, iv)| {
            let covered = iv.t_s.min(end) - (iv.t_s - step).max(0.0);
            (covered >= step * 0.5).then_some((i, covered))
        })
        .collect()
}

/// Items of `pick` in the intervals [`rate_points`] leaves out (the run's ragged end).
pub(super) fn tail_items(r: &Results, pick: impl Fn(&Interval) -> u64) -> u64 {
    let drawn: BTreeSet<usize> = drawn_intervals(r).into_iter().map(|(i, _)| i).collect();
    r.intervals
        .iter()
        .enumerate()
        .filter(|(i, _)| !drawn.contains(i))
        .fold(0u64, |a, (_, iv)| a.saturating_add(pick(iv)))
}
