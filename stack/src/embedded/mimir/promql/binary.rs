//! Binary operators as Prometheus' `engine.go` evaluates them: scalar/scalar, vector/scalar
//! (comparisons filter and keep the vector's value; arithmetic drops `__name__`) and
//! vector/vector with one-to-one matching on the labels `on(...)` names or all but
//! `ignoring(...)` and `__name__`; set operators `and`, `or`, `unless`.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier};

use super::eval::eval;
use super::{Context, QueryError, Sample, Value, check_unique, drop_name, format_labels};
use crate::embedded::mimir::store::Labels;

const ARITHMETIC: &[&str] = &["+", "-", "*", "/", "%", "^"];
const COMPARISON: &[&str] = &["==", "!=", ">", "<", ">=", "<="];
const SET: &[&str] = &["and", "or", "unless"];

/// Refuses operators this server does not evaluate.
pub fn check_op(op: &str) -> Result<(), QueryError> {
    if ARITHMETIC.contains(&op) || COMPARISON.contains(&op) || SET.contains(&op) {
        Ok(())
    } else {
        Err(QueryError::Unsupported(format!("binary operator {op}")))
    }
}

/// Prometheus' `vectorElemBinop`/`scalarBinop`: the value and whether a comparison held.
fn apply(op: &str, l: f64, r: f64) -> (f64, bool) {
    match op {
        "+" => (l + r, true),
        "-" => (l - r, true),
        "*" => (l * r, true),
        "/" => (l / r, true),
        "%" => (l % r, true),
        "^" => (l.powf(r), true),
        "==" => (l, l == r),
        "!=" => (l, l != r),
        ">" => (l, l > r),
        "<" => (l, l < r),
        ">=" => (l, l >= r),
        "<=" => (l, l <= r),
        _ => (f64::NAN, false),
    }
}

fn bool_value(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Evaluates a binary expression at `t`.
pub fn binary(ctx: &Context<'_>, b: &BinaryExpr, t: i64) -> Result<Value, QueryError> {
    let op = b.op.to_string();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = eval(ctx, &b.lhs, t)?;
    let rhs = eval(ctx, &b.rhs, t)?;
    let is_cmp = COMPARISON.contains(&op.as_str());
    match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            let (v, keep) = apply(&op, l, r);
            Ok(Value::Scalar(if is_cmp { bool_value(keep) } else { v }))
        }
        (Value::Vector(v), Value::Scalar(s)) => {
            vector_scalar(&op, v, s, false, return_bool).map(Value::Vector)
        }
        (Value::Scalar(s), Value::Vector(v)) => {
            vector_scalar(&op, v, s, true, return_bool).map(Value::Vector)
        }
        (Value::Vector(l), Value::Vector(r)) => {
            let m = b.modifier.as_ref();
            let out = if SET.contains(&op.as_str()) {
                set_op(&op, l, r, m)
            } else {
                vector_vector(&op, l, r, m, return_bool)?
            };
            Ok(Value::Vector(out))
        }
        _ => Err(QueryError::BadData(format!(
            "binary operator {op} needs scalar or instant vector operands"
        ))),
    }
}

fn vector_scalar(
    op: &str,
    v: Vec<Sample>,
    s: f64,
    swap: bool,
    return_bool: bool,
) -> Result<Vec<Sample>, QueryError> {
    let is_cmp = COMPARISON.contains(&op);
    let mut out = Vec::with_capacity(v.len());
    for e in v {
        let (l, r) = if swap { (s, e.value) } else { (e.value, s) };
        let (mut value, mut keep) = apply(op, l, r);
        if is_cmp && swap {
            value = r;
        }
        if return_bool {
            value = bool_value(keep);
            keep = true;
        }
        if keep {
            let metric = if !is_cmp || return_bool {
                drop_name(e.metric)
            } else {
                e.metric
            };
            out.push(Sample { metric, value });
        }
    }
    check_unique(&out)?;
    Ok(out)
}

/// The labels two elements are matched on.
fn signature(metric: &Labels, m: Option<&BinModifier>) -> Labels {
    match m.and_then(|m| m.matching.as_ref()) {
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
        None => drop_name(metric.clone()),
    }
}

fn vector_vector(
    op: &str,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    m: Option<&BinModifier>,
    return_bool: bool,
) -> Result<Vec<Sample>, QueryError> {
    let is_cmp = COMPARISON.contains(&op);
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    let mut right: HashMap<Labels, Sample> = HashMap::with_capacity(rhs.len());
    for s in rhs {
        let sig = signature(&s.metric, m);
        if let Some(dup) = right.get(&sig) {
            return Err(QueryError::Execution(format!(
                "found duplicate series for the match group {} on the right hand-side of the \
                 operation: [{}, {}];many-to-many matching not allowed: matching labels must be \
                 unique on one side",
                format_labels(&sig),
                format_labels(&s.metric),
                format_labels(&dup.metric)
            )));
        }
        right.insert(sig, s);
    }
    let mut matched: HashSet<Labels> = HashSet::new();
    let mut out = Vec::new();
    for l in lhs {
        let sig = signature(&l.metric, m);
        let Some(r) = right.get(&sig) else { continue };
        let (mut value, mut keep) = apply(op, l.value, r.value);
        if return_bool {
            value = bool_value(keep);
            keep = true;
        }
        if !keep {
            continue;
        }
        if !matched.insert(sig) {
            return Err(QueryError::Execution(
                "multiple matches for labels: many-to-one matching must be explicit \
                 (group_left/group_right)"
                    .to_string(),
            ));
        }
        let mut metric = if !is_cmp || return_bool {
            drop_name(l.metric)
        } else {
            l.metric
        };
        match m.and_then(|m| m.matching.as_ref()) {
            Some(LabelModifier::Include(names)) => {
                metric.retain(|(k, _)| names.labels.iter().any(|n| n == k))
            }
            Some(LabelModifier::Exclude(names)) => {
                metric.retain(|(k, _)| !names.labels.iter().any(|n| n == k))
            }
            None => {}
        }
        out.push(Sample { metric, value });
    }
    check_unique(&out)?;
    Ok(out)
}

fn set_op(op: &str, lhs: Vec<Sample>, rhs: Vec<Sample>, m: Option<&BinModifier>) -> Vec<Sample> {
    let rsigs: HashSet<Labels> = rhs.iter().map(|s| signature(&s.metric, m)).collect();
    match op {
        "and" => lhs
            .into_iter()
            .filter(|s| rsigs.contains(&signature(&s.metric, m)))
            .collect(),
        "unless" => lhs
            .into_iter()
            .filter(|s| !rsigs.contains(&signature(&s.metric, m)))
            .collect(),
        _ => {
            let lsigs: HashSet<Labels> = lhs.iter().map(|s| signature(&s.metric, m)).collect();
            let mut out = lhs;
            out.extend(
                rhs.into_iter()
                    .filter(|s| !lsigs.contains(&signature(&s.metric, m))),
            );
            out
        }
    }
}
