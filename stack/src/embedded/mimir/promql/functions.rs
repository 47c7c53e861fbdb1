//! PromQL functions, each as Prometheus' `promql/functions.go` computes it: the extrapolated
//! `rate`/`increase`/`delta`, `irate`/`idelta`, the `*_over_time` family (Kahan sums as
//! Prometheus uses them), `histogram_quantile` over classic `le` buckets, and the cheap math and
//! conversion functions. Results drop `__name__` except `last_over_time`.

use std::collections::BTreeMap;

use promql_parser::parser::{Call, Expr};

use super::eval::{duration_ms, eval_scalar, eval_vector, ref_time, select_range};
use super::{Context, QueryError, Sample, Semantics, Value, check_unique, drop_name};
use crate::embedded::mimir::store::Labels;

/// Functions over a range vector and where their range-vector argument is.
const RANGE_FUNCTIONS: &[(&str, usize)] = &[
    ("rate", 0),
    ("increase", 0),
    ("delta", 0),
    ("irate", 0),
    ("idelta", 0),
    ("changes", 0),
    ("resets", 0),
    ("avg_over_time", 0),
    ("min_over_time", 0),
    ("max_over_time", 0),
    ("sum_over_time", 0),
    ("count_over_time", 0),
    ("last_over_time", 0),
    ("present_over_time", 0),
    ("stddev_over_time", 0),
    ("stdvar_over_time", 0),
    ("quantile_over_time", 1),
];

/// Functions of one instant vector element's value.
/// A function of one value.
type MathFn = fn(f64) -> f64;

const MATH_FUNCTIONS: &[(&str, MathFn)] = &[
    ("abs", f64::abs),
    ("ceil", f64::ceil),
    ("floor", f64::floor),
    ("exp", f64::exp),
    ("sqrt", f64::sqrt),
    ("ln", f64::ln),
    ("log2", f64::log2),
    ("log10", f64::log10),
    ("sgn", sgn),
];

const OTHER_FUNCTIONS: &[&str] = &[
    "round",
    "clamp",
    "clamp_min",
    "clamp_max",
    "time",
    "vector",
    "scalar",
    "histogram_quantile",
];

/// Refuses functions this server does not evaluate.
pub fn check_function(name: &str) -> Result<(), QueryError> {
    let known = RANGE_FUNCTIONS.iter().any(|(n, _)| *n == name)
        || MATH_FUNCTIONS.iter().any(|(n, _)| *n == name)
        || OTHER_FUNCTIONS.contains(&name);
    if known {
        Ok(())
    } else {
        Err(QueryError::Unsupported(format!("function {name}()")))
    }
}

fn sgn(v: f64) -> f64 {
    if v < 0.0 {
        -1.0
    } else if v > 0.0 {
        1.0
    } else {
        v
    }
}

fn arg(c: &Call, i: usize) -> Result<&Expr, QueryError> {
    c.args
        .args
        .get(i)
        .map(|b| b.as_ref())
        .ok_or_else(|| QueryError::BadData(format!("missing argument {i} of {}()", c.func.name)))
}

/// Evaluates a function call at `t`.
pub fn call(ctx: &Context<'_>, c: &Call, t: i64) -> Result<Value, QueryError> {
    let name = c.func.name;
    if let Some((_, idx)) = RANGE_FUNCTIONS.iter().find(|(n, _)| *n == name) {
        let out = range_function(ctx, c, *idx, t)?;
        check_unique(&out)?;
        return Ok(Value::Vector(out));
    }
    if let Some((_, f)) = MATH_FUNCTIONS.iter().find(|(n, _)| *n == name) {
        return map_values(eval_vector(ctx, arg(c, 0)?, t)?, |v| Some(f(v)));
    }
    match name {
        "time" => Ok(Value::Scalar(t as f64 / 1000.0)),
        "vector" => Ok(Value::Vector(vec![Sample {
            metric: Vec::new(),
            value: eval_scalar(ctx, arg(c, 0)?, t)?,
        }])),
        "scalar" => {
            let v = eval_vector(ctx, arg(c, 0)?, t)?;
            Ok(Value::Scalar(if v.len() == 1 {
                v[0].value
            } else {
                f64::NAN
            }))
        }
        "round" => {
            let v = eval_vector(ctx, arg(c, 0)?, t)?;
            let to_nearest = match c.args.args.get(1) {
                Some(e) => eval_scalar(ctx, e, t)?,
                None => 1.0,
            };
            // Prometheus: invert the nearest so that 1/0.1 rounds cleanly.
            let inv = 1.0 / to_nearest;
            map_values(v, |x| Some((x * inv + 0.5).floor() / inv))
        }
        "clamp_min" | "clamp_max" => {
            let v = eval_vector(ctx, arg(c, 0)?, t)?;
            let bound = eval_scalar(ctx, arg(c, 1)?, t)?;
            let is_min = name == "clamp_min";
            map_values(v, |x| {
                Some(if is_min {
                    go_max(bound, x)
                } else {
                    go_min(bound, x)
                })
            })
        }
        "clamp" => {
            let v = eval_vector(ctx, arg(c, 0)?, t)?;
            let lo = eval_scalar(ctx, arg(c, 1)?, t)?;
            let hi = eval_scalar(ctx, arg(c, 2)?, t)?;
            if hi < lo {
                return Ok(Value::Vector(Vec::new()));
            }
            map_values(v, |x| Some(go_max(lo, go_min(hi, x))))
        }
        "histogram_quantile" => {
            let q = eval_scalar(ctx, arg(c, 0)?, t)?;
            let v = eval_vector(ctx, arg(c, 1)?, t)?;
            Ok(Value::Vector(histogram_quantile(q, v)))
        }
        other => Err(QueryError::Unsupported(format!("function {other}()"))),
    }
}

/// Go's `math.Max`: NaN wins.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn map_values(v: Vec<Sample>, f: impl Fn(f64) -> Option<f64>) -> Result<Value, QueryError> {
    let out: Vec<Sample> = v
        .into_iter()
        .filter_map(|s| {
            f(s.value).map(|value| Sample {
                metric: drop_name(s.metric),
                value,
            })
        })
        .collect();
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

fn range_function(
    ctx: &Context<'_>,
    c: &Call,
    idx: usize,
    t: i64,
) -> Result<Vec<Sample>, QueryError> {
    let name = c.func.name;
    let Expr::MatrixSelector(ms) = unwrap_parens(arg(c, idx)?) else {
        return Err(QueryError::Unsupported(format!(
            "{name}() over anything but a range selector"
        )));
    };
    let q = if name == "quantile_over_time" {
        Some(eval_scalar(ctx, arg(c, 0)?, t)?)
    } else {
        None
    };
    let range = duration_ms(&ms.range);
    let end = ref_time(ctx, &ms.vs, t);
    let mut out = Vec::new();
    for s in select_range(ctx, &ms.vs, range, t) {
        let p = &s.points;
        let value = match name {
            "rate" => extrapolated_rate(ctx.semantics, p, end - range, end, true, true),
            "increase" => extrapolated_rate(ctx.semantics, p, end - range, end, true, false),
            "delta" => extrapolated_rate(ctx.semantics, p, end - range, end, false, false),
            "irate" => instant_value(p, true),
            "idelta" => instant_value(p, false),
            "changes" => Some(changes(p)),
            "resets" => Some(p.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64),
            "avg_over_time" => Some(kahan_sum(p.iter().map(|x| x.1)) / p.len() as f64),
            "min_over_time" => Some(fold_first(p, |acc, v| v < acc || acc.is_nan())),
            "max_over_time" => Some(fold_first(p, |acc, v| v > acc || acc.is_nan())),
            "sum_over_time" => Some(kahan_sum(p.iter().map(|x| x.1))),
            "count_over_time" => Some(p.len() as f64),
            "last_over_time" => p.last().map(|x| x.1),
            "present_over_time" => Some(1.0),
            "stddev_over_time" => Some(variance(p.iter().map(|x| x.1)).sqrt()),
            "stdvar_over_time" => Some(variance(p.iter().map(|x| x.1))),
            "quantile_over_time" => {
                let mut vals: Vec<f64> = p.iter().map(|x| x.1).collect();
                Some(quantile(q.unwrap_or(f64::NAN), &mut vals))
            }
            other => return Err(QueryError::Unsupported(format!("function {other}()"))),
        };
        if let Some(value) = value {
            let metric = if name == "last_over_time" {
                s.metric
            } else {
                drop_name(s.metric)
            };
            out.push(Sample { metric, value });
        }
    }
    Ok(out)
}

/// The first value, replaced by every later one for which `better(acc, v)` holds.
fn fold_first(p: &[(i64, f64)], better: impl Fn(f64, f64) -> bool) -> f64 {
    let mut acc = p.first().map(|x| x.1).unwrap_or(f64::NAN);
    for &(_, v) in p.iter().skip(1) {
        if better(acc, v) {
            acc = v;
        }
    }
    acc
}

fn changes(p: &[(i64, f64)]) -> f64 {
    p.windows(2)
        .filter(|w| w[1].1 != w[0].1 && !(w[1].1.is_nan() && w[0].1.is_nan()))
        .count() as f64
}

/// Prometheus' `kahanSumInc` (Neumaier's variant).
pub fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// A compensated sum, as Prometheus' `sum_over_time`.
pub fn kahan_sum(vals: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for v in vals {
        (sum, c) = kahan_inc(v, sum, c);
    }
    if sum.is_infinite() { sum } else { sum + c }
}

/// Population variance as Prometheus' `stdvar_over_time` computes it (Welford with Kahan).
fn variance(vals: impl Iterator<Item = f64>) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for v in vals {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Prometheus' `quantile`: linear interpolation between closest ranks, NaN sorted first.
pub fn quantile(q: f64, vals: &mut [f64]) -> f64 {
    if vals.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    vals.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    });
    let n = vals.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    vals[lower as usize] * (1.0 - weight) + vals[upper as usize] * weight
}

/// `rate`, `increase` and `delta`: Prometheus' `extrapolatedRate`. The window is
/// `(range_start, range_end]`; `None` for fewer than two samples.
pub fn extrapolated_rate(
    sem: Semantics,
    p: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if p.len() < 2 {
        return None;
    }
    let (first, last) = (p[0], p[p.len() - 1]);
    let mut result = last.1 - first.1;
    if is_counter {
        for w in p.windows(2) {
            if w[1].1 < w[0].1 {
                result += w[0].1;
            }
        }
    }
    let mut to_start = (first.0 - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    if sampled == 0.0 {
        return None;
    }
    let avg = sampled / (p.len() - 1) as f64;
    let threshold = avg * 1.1;
    let zero_point = |to_start: f64| -> f64 {
        if is_counter && result > 0.0 && first.1 >= 0.0 {
            to_start.min(sampled * (first.1 / result))
        } else {
            to_start
        }
    };
    match sem {
        Semantics::Prometheus2 => {
            to_start = zero_point(to_start);
            if to_start >= threshold {
                to_start = avg / 2.0;
            }
        }
        Semantics::Prometheus3 => {
            if to_start >= threshold {
                to_start = avg / 2.0;
            }
            to_start = zero_point(to_start);
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= (range_end - range_start) as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` and `idelta`: the last two samples.
fn instant_value(p: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    if p.len() < 2 {
        return None;
    }
    let (prev, last) = (p[p.len() - 2], p[p.len() - 1]);
    let mut result = if is_rate && last.1 < prev.1 {
        last.1
    } else {
        last.1 - prev.1
    };
    let interval = last.0 - prev.0;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// `histogram_quantile` over classic buckets: groups by the labels other than `le` and
/// `__name__`, skips elements without a parsable `le`.
fn histogram_quantile(q: f64, v: Vec<Sample>) -> Vec<Sample> {
    let mut groups: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
    for s in v {
        let Some(le) = s
            .metric
            .iter()
            .find(|(k, _)| k == "le")
            .and_then(|(_, v)| parse_go_float(v))
        else {
            continue;
        };
        let mut key = drop_name(s.metric);
        key.retain(|(k, _)| k != "le");
        groups.entry(key).or_default().push((le, s.value));
    }
    groups
        .into_iter()
        .map(|(metric, mut buckets)| Sample {
            metric,
            value: bucket_quantile(q, &mut buckets),
        })
        .collect()
}

/// Go's `strconv.ParseFloat` for the values `le` takes (numbers, `+Inf`, `-Inf`, `NaN`).
pub fn parse_go_float(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => s.parse::<f64>().ok().filter(|v| v.is_finite()),
    }
}

/// Prometheus' `bucketQuantile` for (upper bound, cumulative count) pairs.
pub fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Coalesce buckets with the same upper bound.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    // Make the counts monotonic.
    let mut max = f64::NEG_INFINITY;
    for b in merged.iter_mut() {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let n = merged.len() - 1;
    let b = merged[..n].partition_point(|x| x.1 < rank);
    if b == n {
        return merged[n - 1].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let mut start = 0.0;
    let end = merged[b].0;
    let mut count = merged[b].1;
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    start + (end - start) * (rank / count)
}
