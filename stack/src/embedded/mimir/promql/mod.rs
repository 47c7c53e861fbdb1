//! PromQL for the embedded Mimir: expressions parsed with `promql-parser`, evaluated with
//! Prometheus' semantics (lookback delta, staleness markers, range windows, extrapolated rates,
//! `__name__` dropping) over the embedded [`Store`](super::store::Store).
//!
//! A range query is evaluated as Prometheus defines it: the expression at every step, each step
//! on its own. Anything outside the supported subset is refused up front by [`check`] with a
//! `bad_data` error that says "not supported by the embedded Mimir: ...", never answered wrongly.
//!
//! | module | what |
//! |---|---|
//! | [`eval`] | the evaluator: selectors, literals, unary minus, dispatch |
//! | [`functions`] | `rate`, `*_over_time`, `histogram_quantile`, math functions |
//! | [`aggregate`] | `sum avg min max count group stddev stdvar quantile topk bottomk` |
//! | [`binary`] | arithmetic, comparisons and set operators with one-to-one matching |

pub mod aggregate;
pub mod binary;
pub mod eval;
pub mod functions;

use std::collections::BTreeMap;

use promql_parser::parser::{Expr, VectorMatchCardinality};

use super::store::{Labels, Tenant};

/// Which Prometheus version's evaluation rules to follow where they differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Semantics {
    /// Prometheus 2.x: range windows and the lookback window are closed, `[t - r, t]`; the
    /// counter zero point in `rate` is considered before the extrapolation threshold.
    Prometheus2,
    /// Prometheus 3.x (what current Mimir runs): windows are left-open, `(t - r, t]`; the zero
    /// point is considered after the threshold.
    #[default]
    Prometheus3,
}

/// Prometheus' default lookback delta.
pub const DEFAULT_LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// Why a query failed; maps to Prometheus' `errorType`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// Bad input (400 `bad_data`).
    #[error("{0}")]
    BadData(String),
    /// A feature of PromQL this server does not implement (400 `bad_data`).
    #[error("not supported by the embedded Mimir: {0}")]
    Unsupported(String),
    /// The query was valid but failed while running (422 `execution`).
    #[error("{0}")]
    Execution(String),
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: Labels,
    pub value: f64,
}

/// One series of a range vector (or of a range query's result).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub metric: Labels,
    pub points: Vec<(i64, f64)>,
}

/// A PromQL value at one evaluation time.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    String(String),
    Vector(Vec<Sample>),
    Matrix(Vec<RangeSeries>),
}

/// The answer of an instant or range query, as the HTTP API renders it.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    Scalar { t: i64, v: f64 },
    String { t: i64, v: String },
    Vector { t: i64, samples: Vec<Sample> },
    Matrix(Vec<RangeSeries>),
}

/// Everything an evaluation needs besides the expression.
pub struct Context<'a> {
    pub tenant: Option<&'a Tenant>,
    pub semantics: Semantics,
    pub lookback_ms: i64,
    /// Query start and end in ms (the same for an instant query); `@ start()` / `@ end()`.
    pub start: i64,
    pub end: i64,
}

/// Parses a query, mapping the parser's error to Prometheus' `bad_data` wording.
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    let expr = promql_parser::parser::parse(query)
        .map_err(|e| QueryError::BadData(format!("invalid parameter \"query\": {e}")))?;
    check(&expr)?;
    Ok(expr)
}

/// Refuses the parts of PromQL this server does not evaluate.
pub fn check(expr: &Expr) -> Result<(), QueryError> {
    let unsupported = |what: &str| Err(QueryError::Unsupported(what.to_string()));
    match expr {
        Expr::Aggregate(a) => {
            aggregate::check_op(&a.op.to_string())?;
            if let Some(p) = &a.param {
                check(p)?;
            }
            check(&a.expr)
        }
        Expr::Unary(u) => check(&u.expr),
        Expr::Binary(b) => {
            binary::check_op(&b.op.to_string())?;
            if let Some(m) = &b.modifier {
                match m.card {
                    VectorMatchCardinality::ManyToOne(_) => return unsupported("group_left"),
                    VectorMatchCardinality::OneToMany(_) => return unsupported("group_right"),
                    _ => {}
                }
                if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
                    return unsupported("fill modifiers");
                }
            }
            check(&b.lhs)?;
            check(&b.rhs)
        }
        Expr::Paren(p) => check(&p.expr),
        Expr::Subquery(_) => unsupported("subqueries"),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::VectorSelector(vs) => {
            if !vs.matchers.or_matchers.is_empty() {
                return unsupported("\"or\" inside a vector selector");
            }
            Ok(())
        }
        Expr::MatrixSelector(ms) => check(&Expr::VectorSelector(ms.vs.clone())),
        Expr::Call(c) => {
            functions::check_function(c.func.name)?;
            for a in &c.args.args {
                check(a)?;
            }
            Ok(())
        }
        Expr::Extension(_) => unsupported("extension expressions"),
    }
}

/// Evaluates `expr` at `t` (ms) as an instant query.
pub fn instant_query(ctx: &Context<'_>, expr: &Expr, t: i64) -> Result<QueryResult, QueryError> {
    Ok(match eval::eval(ctx, expr, t)? {
        Value::Scalar(v) => QueryResult::Scalar { t, v },
        Value::String(v) => QueryResult::String { t, v },
        Value::Vector(samples) => QueryResult::Vector { t, samples },
        Value::Matrix(m) => QueryResult::Matrix(m),
    })
}

/// Evaluates `expr` at every step from `start` to `end` (ms, inclusive) as a range query.
pub fn range_query(
    ctx: &Context<'_>,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
) -> Result<QueryResult, QueryError> {
    use promql_parser::parser::value::ValueType;
    match expr.value_type() {
        ValueType::Vector | ValueType::Scalar => {}
        other => {
            let name = match other {
                ValueType::Matrix => "range vector",
                ValueType::String => "string",
                _ => "unknown",
            };
            return Err(QueryError::BadData(format!(
                "invalid expression type \"{name}\" for range query, must be Scalar or instant Vector"
            )));
        }
    }
    let mut out: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    let mut t = start;
    while t <= end {
        match eval::eval(ctx, expr, t)? {
            Value::Scalar(v) => out.entry(Vec::new()).or_default().push((t, v)),
            Value::Vector(samples) => {
                for s in samples {
                    out.entry(s.metric).or_default().push((t, s.value));
                }
            }
            Value::String(_) | Value::Matrix(_) => {
                return Err(QueryError::Execution(
                    "unexpected value type in range query".to_string(),
                ));
            }
        }
        t = match t.checked_add(step) {
            Some(n) => n,
            None => break,
        };
    }
    Ok(QueryResult::Matrix(
        out.into_iter()
            .map(|(metric, points)| RangeSeries { metric, points })
            .collect(),
    ))
}

/// The label set without `__name__`.
pub fn drop_name(mut l: Labels) -> Labels {
    l.retain(|(k, _)| k != "__name__");
    l
}

/// Prometheus' "vector cannot contain metrics with the same labelset" check.
pub fn check_unique(v: &[Sample]) -> Result<(), QueryError> {
    let mut seen: Vec<&Labels> = v.iter().map(|s| &s.metric).collect();
    seen.sort();
    if seen.windows(2).any(|w| w[0] == w[1]) {
        return Err(QueryError::Execution(
            "vector cannot contain metrics with the same labelset".to_string(),
        ));
    }
    Ok(())
}

/// Prometheus' `labels.String()`: `{a="b", c="d"}`.
pub fn format_labels(l: &Labels) -> String {
    wire::labels::format_label_set(l)
}

#[cfg(test)]
mod tests;
