//! The evaluator: one expression at one time. Vector selectors pick each series' newest sample
//! within the lookback delta (none if it is a staleness marker); matrix selectors pick the
//! samples in the range window (staleness markers left out). Both honour `offset` and `@`.

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};

use super::{Context, QueryError, RangeSeries, Sample, Semantics, Value, drop_name};

/// Evaluates `expr` at `t` (ms).
pub fn eval(ctx: &Context<'_>, expr: &Expr, t: i64) -> Result<Value, QueryError> {
    match expr {
        Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
        Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
        Expr::Paren(p) => eval(ctx, &p.expr, t),
        Expr::Unary(u) => match eval(ctx, &u.expr, t)? {
            Value::Scalar(v) => Ok(Value::Scalar(-v)),
            Value::Vector(v) => Ok(Value::Vector(
                v.into_iter()
                    .map(|s| Sample {
                        metric: drop_name(s.metric),
                        value: -s.value,
                    })
                    .collect(),
            )),
            _ => Err(QueryError::BadData(
                "unary expression only allowed on expressions of type scalar or instant vector"
                    .to_string(),
            )),
        },
        Expr::VectorSelector(vs) => Ok(Value::Vector(select_instant(ctx, vs, t))),
        Expr::MatrixSelector(ms) => Ok(Value::Matrix(select_range(
            ctx,
            &ms.vs,
            duration_ms(&ms.range),
            t,
        ))),
        Expr::Call(c) => super::functions::call(ctx, c, t),
        Expr::Aggregate(a) => super::aggregate::aggregate(ctx, a, t),
        Expr::Binary(b) => super::binary::binary(ctx, b, t),
        Expr::Subquery(_) => Err(QueryError::Unsupported("subqueries".to_string())),
        Expr::Extension(_) => Err(QueryError::Unsupported("extension expressions".to_string())),
    }
}

/// Evaluates `expr` and insists on an instant vector.
pub fn eval_vector(ctx: &Context<'_>, expr: &Expr, t: i64) -> Result<Vec<Sample>, QueryError> {
    match eval(ctx, expr, t)? {
        Value::Vector(v) => Ok(v),
        _ => Err(QueryError::BadData(format!(
            "expected an instant vector, got {expr}"
        ))),
    }
}

/// Evaluates `expr` and insists on a scalar.
pub fn eval_scalar(ctx: &Context<'_>, expr: &Expr, t: i64) -> Result<f64, QueryError> {
    match eval(ctx, expr, t)? {
        Value::Scalar(v) => Ok(v),
        _ => Err(QueryError::BadData(format!(
            "expected a scalar, got {expr}"
        ))),
    }
}

/// A duration in milliseconds (saturating).
pub fn duration_ms(d: &std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The selector's matchers with the metric name as an `__name__` matcher.
pub fn matchers(vs: &VectorSelector) -> Vec<Matcher> {
    let mut out = vs.matchers.matchers.clone();
    if let Some(name) = &vs.name {
        out.push(Matcher::new(MatchOp::Equal, "__name__", name));
    }
    out
}

/// The time the selector reads at: `@` (or the evaluation time) minus `offset`.
pub fn ref_time(ctx: &Context<'_>, vs: &VectorSelector, t: i64) -> i64 {
    let base = match &vs.at {
        None => t,
        Some(AtModifier::Start) => ctx.start,
        Some(AtModifier::End) => ctx.end,
        Some(AtModifier::At(st)) => match st.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => duration_ms(&d),
            Err(e) => -duration_ms(&e.duration()),
        },
    };
    match &vs.offset {
        None => base,
        Some(Offset::Pos(d)) => base.saturating_sub(duration_ms(d)),
        Some(Offset::Neg(d)) => base.saturating_add(duration_ms(d)),
    }
}

/// The oldest timestamp a window ending at `end` of length `len` includes.
pub fn window_start(sem: Semantics, end: i64, len: i64) -> i64 {
    match sem {
        Semantics::Prometheus2 => end.saturating_sub(len),
        Semantics::Prometheus3 => end.saturating_sub(len).saturating_add(1),
    }
}

fn select_instant(ctx: &Context<'_>, vs: &VectorSelector, t: i64) -> Vec<Sample> {
    let Some(tenant) = ctx.tenant else {
        return Vec::new();
    };
    let rt = ref_time(ctx, vs, t);
    let mint = window_start(ctx.semantics, rt, ctx.lookback_ms);
    let mut out = Vec::new();
    for id in tenant.select_ids(&matchers(vs)) {
        let Some(s) = tenant.series(id) else { continue };
        if let Some(&(_, v)) = s.range(mint, rt).last()
            && !wire::remote_write::is_stale_nan(v)
        {
            out.push(Sample {
                metric: (*s.labels).clone(),
                value: v,
            });
        }
    }
    out
}

/// The samples of every matching series in the window of `range_ms` ending at the reference
/// time, without staleness markers; series with none are left out.
pub fn select_range(
    ctx: &Context<'_>,
    vs: &VectorSelector,
    range_ms: i64,
    t: i64,
) -> Vec<RangeSeries> {
    let Some(tenant) = ctx.tenant else {
        return Vec::new();
    };
    let rt = ref_time(ctx, vs, t);
    let mint = window_start(ctx.semantics, rt, range_ms);
    let mut out = Vec::new();
    for id in tenant.select_ids(&matchers(vs)) {
        let Some(s) = tenant.series(id) else { continue };
        let points: Vec<(i64, f64)> = s
            .range(mint, rt)
            .iter()
            .copied()
            .filter(|(_, v)| !wire::remote_write::is_stale_nan(*v))
            .collect();
        if !points.is_empty() {
            out.push(RangeSeries {
                metric: (*s.labels).clone(),
                points,
            });
        }
    }
    out
}
