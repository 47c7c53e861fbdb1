//! Evaluation of the LogQL subset over one tenant's store.
//!
//! - Pipelines: line filters, `| json` (nested keys joined with `_`, names sanitised as Loki
//!   does, a clash with an existing label gets `_extracted`), `| logfmt`, label filters. A line
//!   a parser cannot read keeps going with `__error__` (`JSONParserErr`, `LogfmtParserErr`) and
//!   `__error_details__`; a numeric filter on a value that is not a number sets `LabelFilterErr`.
//! - Log queries: entries in `[start, end)`, the `limit` newest (backward) or oldest (forward),
//!   grouped by their final label set (stream labels, structured metadata, parsed labels).
//! - Metric queries: Loki's windows `(t - range - offset, t - offset]` at each step from start to
//!   end inclusive; a sample still carrying `__error__` fails the query as Loki's pipeline error.

use std::collections::BTreeMap;

use super::{
    AggOp, Grouping, LabelFilter, LogExpr, Matcher, MetricExpr, NumKind, RangeFn, Stage,
    parse_bytes, parse_duration,
};
use crate::embedded::loki::store::{Labels, Stream, Tenant};

/// Read order of a log query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// What a query looked at, for the `stats` block.
#[derive(Debug, Default, Clone, Copy)]
pub struct Processed {
    pub lines: u64,
    pub bytes: u64,
    pub post_filter_lines: u64,
}

/// A log query's result: streams sorted by label set, entries in the query's direction.
pub type LogResult = Vec<(Labels, Vec<(i64, String)>)>;

/// A metric query's series: label set and `(timestamp ns, value)` points.
pub type Matrix = Vec<(Labels, Vec<(i64, f64)>)>;

/// Why evaluation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// Loki's pipeline error: a metric sample kept a parser or filter error label.
    #[error(
        "pipeline error: '{kind}' for series: '{series}'.\nUse a label filter to intentionally skip this error. (e.g | __error__!=\"{kind}\").\nTo skip all potential errors you can match empty errors.(e.g __error__=\"\")\nThe label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n"
    )]
    Pipeline { kind: String, series: String },
}

const ERROR_LABEL: &str = "__error__";
const ERROR_DETAILS_LABEL: &str = "__error_details__";

/// Does a stream's label set satisfy every matcher?
pub fn selects(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| {
        let v = labels
            .iter()
            .find(|(k, _)| *k == m.name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        m.matches(v)
    })
}

fn selected<'a>(tenant: &'a Tenant, matchers: &'a [Matcher]) -> impl Iterator<Item = &'a Stream> {
    tenant
        .streams
        .values()
        .filter(move |s| selects(matchers, &s.labels))
}

/// Labels of one entry while its pipeline runs.
struct Builder {
    labels: Labels,
    /// How many leading names are the stream's and metadata's (clashes get `_extracted`).
    base: usize,
}

impl Builder {
    fn new(stream: &Labels, metadata: &Labels) -> Self {
        let mut labels = stream.clone();
        for (k, v) in metadata {
            match labels.iter_mut().find(|(n, _)| n == k) {
                Some(slot) => slot.1 = v.clone(),
                None => labels.push((k.clone(), v.clone())),
            }
        }
        let base = labels.len();
        Builder { labels, base }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, name: &str, value: String) {
        match self.labels.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.labels.push((name.to_string(), value)),
        }
    }

    /// Adds a label found by a parser.
    fn set_parsed(&mut self, name: String, value: String) {
        if name.is_empty() {
            return;
        }
        let name = if self.labels[..self.base].iter().any(|(k, _)| *k == name) {
            format!("{name}_extracted")
        } else {
            name
        };
        self.set(&name, value);
    }

    fn set_error(&mut self, kind: &str, details: String) {
        if self.get(ERROR_LABEL).is_none() {
            self.set(ERROR_LABEL, kind.to_string());
            self.set(ERROR_DETAILS_LABEL, details);
        }
    }

    fn finish(mut self) -> Labels {
        self.labels.retain(|(_, v)| !v.is_empty());
        self.labels.sort();
        self.labels
    }
}

/// Runs a pipeline over one entry; `None` when the line is filtered out, else its label set.
pub fn run_pipeline(
    stages: &[Stage],
    line: &str,
    stream: &Labels,
    metadata: &Labels,
) -> Option<Labels> {
    let mut b: Option<Builder> = None;
    for stage in stages {
        match stage {
            Stage::LineFilter(f) => {
                if !f.keeps(line) {
                    return None;
                }
            }
            Stage::Json => {
                let b = b.get_or_insert_with(|| Builder::new(stream, metadata));
                parse_json(line, b);
            }
            Stage::Logfmt => {
                let b = b.get_or_insert_with(|| Builder::new(stream, metadata));
                parse_logfmt(line, b);
            }
            Stage::LabelFilter(f) => {
                let b = b.get_or_insert_with(|| Builder::new(stream, metadata));
                if !label_filter(f, b) {
                    return None;
                }
            }
        }
    }
    Some(match b {
        Some(b) => b.finish(),
        None if metadata.is_empty() => stream.clone(),
        None => Builder::new(stream, metadata).finish(),
    })
}

fn label_filter(f: &LabelFilter, b: &mut Builder) -> bool {
    match f {
        LabelFilter::Str(m) => m.matches(b.get(&m.name).unwrap_or("")),
        LabelFilter::And(l, r) => label_filter(l, b) && label_filter(r, b),
        LabelFilter::Or(l, r) => label_filter(l, b) || label_filter(r, b),
        LabelFilter::Num {
            name,
            op,
            value,
            kind,
        } => {
            let Some(raw) = b.get(name) else {
                return false;
            };
            let parsed = match kind {
                NumKind::Number => raw.trim().parse::<f64>().ok(),
                NumKind::Duration => parse_duration(raw).map(|ns| ns as f64 / 1e9),
                NumKind::Bytes => parse_bytes(raw),
            };
            match parsed {
                Some(v) => op.holds(v, *value),
                None => {
                    let details = format!("cannot convert {raw:?} for label filter on {name}");
                    b.set_error("LabelFilterErr", details);
                    true
                }
            }
        }
    }
}

/// Loki's label-name sanitising for parsed keys.
fn sanitize_key(key: &str, is_prefix: bool) -> String {
    let key = key.trim();
    let mut out = String::with_capacity(key.len() + 1);
    if is_prefix && key.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    out
}

fn parse_json(line: &str, b: &mut Builder) {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(map)) => flatten_json("", &map, b),
        Ok(_) => b.set_error(
            "JSONParserErr",
            "Value looks like a JSON value but not an object".into(),
        ),
        Err(e) => b.set_error("JSONParserErr", e.to_string()),
    }
}

fn flatten_json(prefix: &str, map: &serde_json::Map<String, serde_json::Value>, b: &mut Builder) {
    for (k, v) in map {
        let key = if prefix.is_empty() {
            sanitize_key(k, true)
        } else {
            format!("{prefix}_{}", sanitize_key(k, false))
        };
        match v {
            serde_json::Value::Object(inner) => flatten_json(&key, inner, b),
            serde_json::Value::String(s) => b.set_parsed(key, s.clone()),
            serde_json::Value::Number(n) => b.set_parsed(key, n.to_string()),
            serde_json::Value::Bool(t) => b.set_parsed(key, t.to_string()),
            serde_json::Value::Null | serde_json::Value::Array(_) => {}
        }
    }
}

fn parse_logfmt(line: &str, b: &mut Builder) {
    match logfmt_pairs(line) {
        Ok(pairs) => {
            for (k, v) in pairs {
                b.set_parsed(sanitize_key(&k, true), v);
            }
        }
        Err(details) => b.set_error("LogfmtParserErr", details),
    }
}

/// Splits a logfmt line into key/value pairs (quoted values with Go escapes).
fn logfmt_pairs(line: &str) -> Result<Vec<(String, String)>, String> {
    let s: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |pos: usize, what: &str| format!("logfmt syntax error at pos {} : {what}", pos + 1);
    while i < s.len() {
        while i < s.len() && s[i].is_whitespace() {
            i += 1;
        }
        if i >= s.len() {
            break;
        }
        let start = i;
        while i < s.len() && !s[i].is_whitespace() && s[i] != '=' && s[i] != '"' {
            i += 1;
        }
        if i == start {
            return Err(err(i, &format!("unexpected '{}'", s[i])));
        }
        let key: String = s[start..i].iter().collect();
        if i >= s.len() || s[i].is_whitespace() {
            out.push((key, String::new()));
            continue;
        }
        if s[i] == '"' {
            return Err(err(i, "unexpected '\"'"));
        }
        i += 1; // '='
        let mut value = String::new();
        if i < s.len() && s[i] == '"' {
            i += 1;
            loop {
                let Some(&c) = s.get(i) else {
                    return Err(err(i, "unterminated quoted value"));
                };
                i += 1;
                match c {
                    '"' => break,
                    '\\' => {
                        let Some(&e) = s.get(i) else {
                            return Err(err(i, "unterminated quoted value"));
                        };
                        i += 1;
                        value.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => other,
                        });
                    }
                    c => value.push(c),
                }
            }
        } else {
            while i < s.len() && !s[i].is_whitespace() {
                if s[i] == '"' || s[i] == '=' {
                    return Err(err(i, &format!("unexpected '{}'", s[i])));
                }
                value.push(s[i]);
                i += 1;
            }
        }
        out.push((key, value));
    }
    Ok(out)
}

/// Runs a log query over `[start, end)`.
pub fn eval_log(
    tenant: &Tenant,
    expr: &LogExpr,
    start: i64,
    end: i64,
    limit: usize,
    direction: Direction,
    processed: &mut Processed,
) -> LogResult {
    let mut hits: Vec<(i64, Labels, &str)> = Vec::new();
    for stream in selected(tenant, &expr.matchers) {
        let range = stream.range(start, end);
        let iter: Box<dyn Iterator<Item = _>> = match direction {
            Direction::Forward => Box::new(range),
            Direction::Backward => Box::new(range.rev()),
        };
        let mut kept = 0;
        for e in iter {
            if kept >= limit {
                break;
            }
            processed.lines += 1;
            processed.bytes += e.line.len() as u64;
            if let Some(labels) = run_pipeline(&expr.stages, &e.line, &stream.labels, &e.metadata) {
                hits.push((e.ts, labels, e.line.as_str()));
                kept += 1;
            }
        }
    }
    match direction {
        Direction::Forward => hits.sort_by_key(|h| h.0),
        Direction::Backward => hits.sort_by_key(|h| std::cmp::Reverse(h.0)),
    }
    hits.truncate(limit);
    processed.post_filter_lines += hits.len() as u64;
    let mut grouped: BTreeMap<String, (Labels, Vec<(i64, String)>)> = BTreeMap::new();
    for (ts, labels, line) in hits {
        let key = wire::labels::format_label_set(&labels);
        grouped
            .entry(key)
            .or_insert_with(|| (labels, Vec::new()))
            .1
            .push((ts, line.to_string()));
    }
    grouped.into_values().collect()
}

/// Evaluates a metric query at each step `start, start+step, .. <= end` (one step when
/// `start == end`: an instant query).
pub fn eval_metric(
    tenant: Option<&Tenant>,
    expr: &MetricExpr,
    start: i64,
    end: i64,
    step: i64,
    processed: &mut Processed,
) -> Result<Matrix, EvalError> {
    let steps: Vec<i64> = {
        let step = step.max(1);
        let mut v = Vec::new();
        let mut t = start;
        while t <= end {
            v.push(t);
            match t.checked_add(step) {
                Some(n) => t = n,
                None => break,
            }
        }
        v
    };
    let per_step = eval_steps(tenant, expr, &steps, processed)?;
    let mut series: BTreeMap<String, (Labels, Vec<(i64, f64)>)> = BTreeMap::new();
    for (t, vector) in steps.iter().zip(per_step) {
        for (labels, v) in vector {
            let key = wire::labels::format_label_set(&labels);
            series
                .entry(key)
                .or_insert_with(|| (labels, Vec::new()))
                .1
                .push((*t, v));
        }
    }
    Ok(series.into_values().collect())
}

/// One vector per step.
fn eval_steps(
    tenant: Option<&Tenant>,
    expr: &MetricExpr,
    steps: &[i64],
    processed: &mut Processed,
) -> Result<Vec<Vec<(Labels, f64)>>, EvalError> {
    match expr {
        MetricExpr::Range {
            func,
            log,
            range,
            offset,
        } => {
            let (Some(tenant), Some(&first), Some(&last)) = (tenant, steps.first(), steps.last())
            else {
                return Ok(vec![Vec::new(); steps.len()]);
            };
            let from = first.saturating_sub(*offset).saturating_sub(*range);
            let to = last.saturating_sub(*offset);
            let samples = collect_samples(tenant, log, *func, from, to, processed)?;
            let secs = *range as f64 / 1e9;
            let mut out = vec![Vec::new(); steps.len()];
            for (labels, points) in samples {
                let (mut lo, mut hi, mut sum) = (0usize, 0usize, 0f64);
                for (i, t) in steps.iter().enumerate() {
                    let wend = t.saturating_sub(*offset);
                    let wstart = wend.saturating_sub(*range);
                    while hi < points.len() && points[hi].0 <= wend {
                        sum += points[hi].1;
                        hi += 1;
                    }
                    while lo < hi && points[lo].0 <= wstart {
                        sum -= points[lo].1;
                        lo += 1;
                    }
                    if lo == hi {
                        continue;
                    }
                    let value = match func {
                        RangeFn::CountOverTime => (hi - lo) as f64,
                        RangeFn::Rate => (hi - lo) as f64 / secs,
                        RangeFn::BytesOverTime => sum,
                        RangeFn::BytesRate => sum / secs,
                    };
                    out[i].push((labels.clone(), value));
                }
            }
            Ok(out)
        }
        MetricExpr::Agg {
            op,
            grouping,
            inner,
        } => {
            let vectors = eval_steps(tenant, inner, steps, processed)?;
            Ok(vectors
                .into_iter()
                .map(|v| aggregate(*op, grouping.as_ref(), v))
                .collect())
        }
    }
}

/// Samples of every series in `(from, to]`, points in time order. Count functions get 1 per
/// entry, byte functions the line's length.
fn collect_samples(
    tenant: &Tenant,
    log: &LogExpr,
    func: RangeFn,
    from: i64,
    to: i64,
    processed: &mut Processed,
) -> Result<BTreeMap<Labels, Vec<(i64, f64)>>, EvalError> {
    let mut out: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    for stream in selected(tenant, &log.matchers) {
        for e in stream.range(from.saturating_add(1), to.saturating_add(1)) {
            processed.lines += 1;
            processed.bytes += e.line.len() as u64;
            let Some(labels) = run_pipeline(&log.stages, &e.line, &stream.labels, &e.metadata)
            else {
                continue;
            };
            if let Some((_, kind)) = labels.iter().find(|(k, _)| k == ERROR_LABEL) {
                return Err(EvalError::Pipeline {
                    kind: kind.clone(),
                    series: wire::labels::format_label_set(&labels),
                });
            }
            processed.post_filter_lines += 1;
            let v = match func {
                RangeFn::CountOverTime | RangeFn::Rate => 1.0,
                RangeFn::BytesOverTime | RangeFn::BytesRate => e.line.len() as f64,
            };
            out.entry(labels).or_default().push((e.ts, v));
        }
    }
    for points in out.values_mut() {
        points.sort_by_key(|p| p.0);
    }
    Ok(out)
}

fn aggregate(op: AggOp, grouping: Option<&Grouping>, v: Vec<(Labels, f64)>) -> Vec<(Labels, f64)> {
    // (value, count) per group.
    let mut groups: BTreeMap<Labels, (f64, f64)> = BTreeMap::new();
    for (labels, value) in v {
        let key: Labels = match grouping {
            None => Vec::new(),
            Some(g) if g.without => labels
                .into_iter()
                .filter(|(k, _)| !g.labels.contains(k))
                .collect(),
            Some(g) => labels
                .into_iter()
                .filter(|(k, _)| g.labels.contains(k))
                .collect(),
        };
        match groups.get_mut(&key) {
            None => {
                groups.insert(key, (value, 1.0));
            }
            Some(slot) => {
                slot.1 += 1.0;
                slot.0 = match op {
                    AggOp::Sum | AggOp::Avg => slot.0 + value,
                    AggOp::Min => slot.0.min(value),
                    AggOp::Max => slot.0.max(value),
                    AggOp::Count => slot.0,
                };
            }
        }
    }
    groups
        .into_iter()
        .map(|(k, (v, n))| {
            let value = match op {
                AggOp::Count => n,
                AggOp::Avg => v / n,
                _ => v,
            };
            (k, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::loki::logql::{Expr, parse};
    use crate::embedded::loki::store::StoredEntry;

    const S: i64 = 1_000_000_000;

    type Fixture<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, &'a str)]);

    fn tenant(streams: &[Fixture]) -> Tenant {
        let mut t = Tenant::default();
        for (labels, entries) in streams {
            let labels: Labels = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let mut s = Stream::new(labels.clone());
            for (ts, line) in *entries {
                s.push(StoredEntry {
                    ts: *ts,
                    line: line.to_string(),
                    metadata: Vec::new(),
                });
            }
            t.streams.insert(wire::labels::format_label_set(&labels), s);
        }
        t
    }

    fn log(q: &str) -> LogExpr {
        match parse(q).unwrap() {
            Expr::Log(l) => l,
            Expr::Metric(_) => panic!(),
        }
    }

    fn metric(q: &str) -> MetricExpr {
        match parse(q).unwrap() {
            Expr::Metric(m) => m,
            Expr::Log(_) => panic!(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn json_flattens_and_sanitizes() {
        let l = log(r#"{a="b"} | json"#);
        let out = run_pipeline(
            &l.stages,
            r#"{"a":"clash","req":{"method":"GET","dur.ms":12},"ok":true,"n":null,"list":[1],"1st":"x"}"#,
            &labels(&[("a", "b")]),
            &Vec::new(),
        )
        .unwrap();
        assert_eq!(
            out,
            labels(&[
                ("_1st", "x"),
                ("a", "b"),
                ("a_extracted", "clash"),
                ("ok", "true"),
                ("req_dur_ms", "12"),
                ("req_method", "GET")
            ])
        );
        let bad = run_pipeline(&l.stages, "not json", &labels(&[("a", "b")]), &Vec::new()).unwrap();
        assert!(
            bad.iter()
                .any(|(k, v)| k == "__error__" && v == "JSONParserErr")
        );
        let l = log(r#"{a="b"} | json | __error__="""#);
        assert!(run_pipeline(&l.stages, "not json", &labels(&[("a", "b")]), &Vec::new()).is_none());
    }

    #[test]
    fn logfmt_and_label_filters() {
        let l = log(r#"{a="b"} | logfmt | level="error" and status >= 500 and took > 1s"#);
        let keep = |line: &str| run_pipeline(&l.stages, line, &labels(&[("a", "b")]), &Vec::new());
        assert!(keep(r#"level=error status=503 took=1.5s msg="a \"b\"""#).is_some());
        assert!(keep("level=error status=404 took=2s").is_none());
        assert!(keep("level=info status=503 took=2s").is_none());
        assert!(keep("level=error status=503 took=20ms").is_none());
        let e = keep("level=error status=oops took=2s").unwrap();
        assert!(
            e.iter()
                .any(|(k, v)| k == "__error__" && v == "LabelFilterErr")
        );
        assert_eq!(logfmt_pairs("a=1 b=\"x y\" c").unwrap().len(), 3);
        assert!(logfmt_pairs("a=\"open").is_err());
        assert!(logfmt_pairs("=x").is_err());
    }

    #[test]
    fn log_query_limit_and_direction() {
        let t = tenant(&[
            (&[("app", "x")], &[(1, "a1"), (3, "a3"), (5, "a5")]),
            (&[("app", "y")], &[(2, "b2"), (4, "b4")]),
        ]);
        let mut p = Processed::default();
        let r = eval_log(
            &t,
            &log(r#"{app=~"x|y"}"#),
            0,
            5,
            3,
            Direction::Backward,
            &mut p,
        );
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].1, vec![(3, "a3".to_string())]);
        assert_eq!(r[1].1, vec![(4, "b4".to_string()), (2, "b2".to_string())]);
        let r = eval_log(
            &t,
            &log(r#"{app="x"} != "a3""#),
            0,
            10,
            10,
            Direction::Forward,
            &mut p,
        );
        assert_eq!(r[0].1.iter().map(|e| e.0).collect::<Vec<_>>(), vec![1, 5]);
    }

    #[test]
    fn windows_are_left_open_right_closed() {
        let t = tenant(&[(
            &[("app", "x")],
            &[(10 * S, "a"), (20 * S, "bb"), (30 * S, "ccc")],
        )]);
        let mut p = Processed::default();
        let m = eval_metric(
            Some(&t),
            &metric(r#"count_over_time({app="x"}[10s])"#),
            10 * S,
            40 * S,
            10 * S,
            &mut p,
        )
        .unwrap();
        assert_eq!(m[0].1, vec![(10 * S, 1.0), (20 * S, 1.0), (30 * S, 1.0)]);
        let m = eval_metric(
            Some(&t),
            &metric(r#"sum(bytes_over_time({app="x"}[20s]))"#),
            30 * S,
            30 * S,
            S,
            &mut p,
        )
        .unwrap();
        assert_eq!(m, vec![(Vec::new(), vec![(30 * S, 5.0)])]);
        let m = eval_metric(
            Some(&t),
            &metric(r#"rate({app="x"}[20s] offset 10s)"#),
            30 * S,
            30 * S,
            S,
            &mut p,
        )
        .unwrap();
        assert_eq!(m[0].1, vec![(30 * S, 0.1)]);
    }

    #[test]
    fn aggregations() {
        let t = tenant(&[
            (&[("app", "x"), ("env", "p")], &[(S, "a"), (2 * S, "b")]),
            (&[("app", "y"), ("env", "p")], &[(S, "c")]),
            (&[("app", "z"), ("env", "d")], &[(S, "d")]),
        ]);
        let mut p = Processed::default();
        let run = |q: &str, p: &mut Processed| {
            eval_metric(Some(&t), &metric(q), 5 * S, 5 * S, S, p).unwrap()
        };
        let m = run(r#"sum by (env) (count_over_time({app=~".+"}[1m]))"#, &mut p);
        assert_eq!(
            m,
            vec![
                (labels(&[("env", "d")]), vec![(5 * S, 1.0)]),
                (labels(&[("env", "p")]), vec![(5 * S, 3.0)])
            ]
        );
        let m = run(
            r#"count without (app) (count_over_time({app=~".+"}[1m]))"#,
            &mut p,
        );
        assert_eq!(m[1], (labels(&[("env", "p")]), vec![(5 * S, 2.0)]));
        let m = run(r#"max(count_over_time({app=~".+"}[1m]))"#, &mut p);
        assert_eq!(m, vec![(Vec::new(), vec![(5 * S, 2.0)])]);
    }

    #[test]
    fn pipeline_errors_fail_metric_queries() {
        let t = tenant(&[(&[("app", "x")], &[(S, "not json")])]);
        let mut p = Processed::default();
        let e = eval_metric(
            Some(&t),
            &metric(r#"count_over_time({app="x"} | json [1m])"#),
            5 * S,
            5 * S,
            S,
            &mut p,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("pipeline error: 'JSONParserErr' for series: ")
        );
        let ok = eval_metric(
            Some(&t),
            &metric(r#"count_over_time({app="x"} | json | __error__="" [1m])"#),
            5 * S,
            5 * S,
            S,
            &mut p,
        )
        .unwrap();
        assert!(ok.is_empty());
    }
}
