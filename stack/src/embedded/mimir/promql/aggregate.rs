//! Aggregation operators with `by`/`without`, as Prometheus' `aggregation()` in `engine.go`:
//! `by` keeps only the listed labels, `without` drops them and `__name__`; `topk`/`bottomk`
//! keep whole input elements (NaN always loses).

use std::collections::BTreeMap;

use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::eval::{eval_scalar, eval_vector};
use super::functions::quantile;
use super::{Context, QueryError, Sample, Value};
use crate::embedded::mimir::store::Labels;

const SUPPORTED: &[&str] = &[
    "sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "quantile", "topk", "bottomk",
];

/// Refuses aggregations this server does not evaluate.
pub fn check_op(op: &str) -> Result<(), QueryError> {
    if SUPPORTED.contains(&op) {
        Ok(())
    } else {
        Err(QueryError::Unsupported(format!("aggregation {op}")))
    }
}

/// The group key of an element.
fn group_key(metric: &Labels, modifier: Option<&LabelModifier>) -> Labels {
    match modifier {
        None => Vec::new(),
        Some(LabelModifier::Include(names)) => metric
            .iter()
            .filter(|(k, _)| names.labels.iter().any(|n| n == k))
            .cloned()
            .collect(),
        Some(LabelModifier::Exclude(names)) => metric
            .iter()
            .filter(|(k, _)| k != "__name__" && !names.labels.iter().any(|n| n == k))
            .cloned()
            .collect(),
    }
}

/// Evaluates an aggregation at `t`.
pub fn aggregate(ctx: &Context<'_>, a: &AggregateExpr, t: i64) -> Result<Value, QueryError> {
    let op = a.op.to_string();
    let param = match &a.param {
        Some(p) if op != "count_values" => Some(eval_scalar(ctx, p, t)?),
        _ => None,
    };
    let input = eval_vector(ctx, &a.expr, t)?;
    // Groups in order of first appearance, like Prometheus.
    let mut order: Vec<Labels> = Vec::new();
    let mut groups: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    for s in input {
        let key = group_key(&s.metric, a.modifier.as_ref());
        groups
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(s);
    }
    let mut out = Vec::new();
    for key in order {
        let Some(members) = groups.remove(&key) else {
            continue;
        };
        match op.as_str() {
            "topk" | "bottomk" => {
                out.extend(select_k(members, param.unwrap_or(0.0), op == "topk"));
            }
            _ => {
                let vals: Vec<f64> = members.iter().map(|s| s.value).collect();
                out.push(Sample {
                    metric: key,
                    value: reduce(&op, &vals, param)?,
                });
            }
        }
    }
    Ok(Value::Vector(out))
}

fn reduce(op: &str, vals: &[f64], param: Option<f64>) -> Result<f64, QueryError> {
    let n = vals.len() as f64;
    Ok(match op {
        "sum" => super::functions::kahan_sum(vals.iter().copied()),
        "avg" => super::functions::kahan_sum(vals.iter().copied()) / n,
        "count" => n,
        "group" => 1.0,
        "min" => vals.iter().copied().fold(
            f64::NAN,
            |acc, v| if acc.is_nan() || v < acc { v } else { acc },
        ),
        "max" => vals.iter().copied().fold(
            f64::NAN,
            |acc, v| if acc.is_nan() || v > acc { v } else { acc },
        ),
        "stddev" | "stdvar" => {
            let (mut count, mut mean, mut value) = (0.0, 0.0, 0.0);
            for &v in vals {
                count += 1.0;
                let delta = v - mean;
                mean += delta / count;
                value += delta * (v - mean);
            }
            let var = value / count;
            if op == "stddev" { var.sqrt() } else { var }
        }
        "quantile" => quantile(param.unwrap_or(f64::NAN), &mut vals.to_vec()),
        other => return Err(QueryError::Unsupported(format!("aggregation {other}"))),
    })
}

/// `topk`/`bottomk` of one group: the `k` largest (smallest) values, NaN last.
fn select_k(mut members: Vec<Sample>, k: f64, top: bool) -> Vec<Sample> {
    if k.is_nan() || k < 1.0 {
        return Vec::new();
    }
    let k = if k >= members.len() as f64 {
        members.len()
    } else {
        k as usize
    };
    members.sort_by(|a, b| {
        use std::cmp::Ordering;
        match (a.value.is_nan(), b.value.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ if top => b.value.total_cmp(&a.value),
            _ => a.value.total_cmp(&b.value),
        }
    });
    members.truncate(k);
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_selection_puts_nan_last() {
        let s = |v: f64| Sample {
            metric: vec![("a".into(), v.to_string())],
            value: v,
        };
        let got = select_k(vec![s(f64::NAN), s(1.0), s(3.0), s(2.0)], 2.0, true);
        assert_eq!(
            got.iter().map(|x| x.value).collect::<Vec<_>>(),
            vec![3.0, 2.0]
        );
        let got = select_k(vec![s(f64::NAN), s(1.0), s(3.0)], 5.0, false);
        assert_eq!(got[0].value, 1.0);
        assert!(got[2].value.is_nan());
        assert!(select_k(vec![s(1.0)], 0.5, true).is_empty());
    }
}
