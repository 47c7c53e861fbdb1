//! The LogQL subset the embedded Loki understands: the syntax tree, parse errors worded like
//! Loki's, and the duration and byte-size literals LogQL shares with Loki's HTTP parameters.
//!
//! | module | role |
//! |---|---|
//! | [`lexer`] | tokens with line/column |
//! | [`parser`] | recursive descent into [`Expr`]; anything outside the subset is refused |
//! | [`eval`] | log pipelines, log queries and metric queries over the store |

pub mod eval;
pub mod lexer;
pub mod parser;

use regex::Regex;

pub use parser::parse;

/// Why a query does not parse, or is outside what the embedded Loki evaluates.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// Loki's `parse error at line L, col C: msg` (or `parse error : msg` without a position).
    #[error("{}", render_parse_error(*.line, *.col, .msg))]
    Syntax {
        line: usize,
        col: usize,
        msg: String,
    },
    /// Valid LogQL the embedded Loki does not evaluate.
    #[error("not supported by the embedded Loki: {0}")]
    Unsupported(String),
}

fn render_parse_error(line: usize, col: usize, msg: &str) -> String {
    if line == 0 && col == 0 {
        format!("parse error : {msg}")
    } else {
        format!("parse error at line {line}, col {col}: {msg}")
    }
}

impl ParseError {
    pub fn at(line: usize, col: usize, msg: String) -> Self {
        ParseError::Syntax { line, col, msg }
    }
}

/// The text of Loki's error for a selector whose every matcher matches the empty string.
pub const EMPTY_MATCHERS_MSG: &str = "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will";

/// A parsed query.
#[derive(Debug, Clone)]
pub enum Expr {
    Log(LogExpr),
    Metric(MetricExpr),
}

/// A stream selector and its pipeline.
#[derive(Debug, Clone)]
pub struct LogExpr {
    pub matchers: Vec<Matcher>,
    pub stages: Vec<Stage>,
}

/// `name op "value"`; regexes are anchored at both ends, as Prometheus and Loki do.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    pub re: Option<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    Neq,
    Re,
    Nre,
}

impl Matcher {
    pub fn new(name: String, op: MatchOp, value: String) -> Result<Self, String> {
        let re = match op {
            MatchOp::Re | MatchOp::Nre => Some(
                Regex::new(&format!("^(?s:{value})$"))
                    .map_err(|e| format!("error parsing regexp: {e}"))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name,
            op,
            value,
            re,
        })
    }

    /// Does `value` (the empty string for an absent label) satisfy the matcher?
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Eq, _) => value == self.value,
            (MatchOp::Neq, _) => value != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(value),
            (MatchOp::Nre, Some(re)) => !re.is_match(value),
            _ => false,
        }
    }
}

/// One pipeline stage.
#[derive(Debug, Clone)]
pub enum Stage {
    LineFilter(LineFilter),
    Json,
    Logfmt,
    LabelFilter(LabelFilter),
}

/// `|= "x"`, `!= "x"`, `|~ "re"`, `!~ "re"` (regexes unanchored, as in Loki).
#[derive(Debug, Clone)]
pub struct LineFilter {
    pub negate: bool,
    pub needle: String,
    pub re: Option<Regex>,
}

impl LineFilter {
    pub fn keeps(&self, line: &str) -> bool {
        let hit = match &self.re {
            Some(re) => re.is_match(line),
            None => line.contains(self.needle.as_str()),
        };
        hit != self.negate
    }
}

/// A label filter expression after `|`.
#[derive(Debug, Clone)]
pub enum LabelFilter {
    /// `name = "v"`, `!=`, `=~`, `!~` on the label's string value.
    Str(Matcher),
    /// `name > 5`, with the label's value read as a number, duration or byte size.
    Num {
        name: String,
        op: CmpOp,
        value: f64,
        kind: NumKind,
    },
    And(Box<LabelFilter>, Box<LabelFilter>),
    Or(Box<LabelFilter>, Box<LabelFilter>),
}

/// How a numeric label filter reads the label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumKind {
    Number,
    /// Seconds, from a Go duration like `250ms`.
    Duration,
    /// Bytes, from a size like `10KB`.
    Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Neq,
}

impl CmpOp {
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Gt => a > b,
            CmpOp::Gte => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Lte => a <= b,
            CmpOp::Eq => a == b,
            CmpOp::Neq => a != b,
        }
    }
}

/// A metric query.
#[derive(Debug, Clone)]
pub enum MetricExpr {
    Range {
        func: RangeFn,
        log: LogExpr,
        /// Window length in nanoseconds.
        range: i64,
        /// `offset` in nanoseconds.
        offset: i64,
    },
    Agg {
        op: AggOp,
        grouping: Option<Grouping>,
        inner: Box<MetricExpr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeFn {
    CountOverTime,
    Rate,
    BytesOverTime,
    BytesRate,
}

impl RangeFn {
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "count_over_time" => RangeFn::CountOverTime,
            "rate" => RangeFn::Rate,
            "bytes_over_time" => RangeFn::BytesOverTime,
            "bytes_rate" => RangeFn::BytesRate,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    Sum,
    Count,
    Min,
    Max,
    Avg,
}

impl AggOp {
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "sum" => AggOp::Sum,
            "count" => AggOp::Count,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "avg" => AggOp::Avg,
            _ => return None,
        })
    }
}

/// `by (a, b)` or `without (a, b)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
}

/// Names LogQL knows but the embedded Loki does not evaluate; a query using them is refused.
pub const UNSUPPORTED_FUNCTIONS: &[&str] = &[
    "avg_over_time",
    "sum_over_time",
    "max_over_time",
    "min_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "quantile_over_time",
    "first_over_time",
    "last_over_time",
    "absent_over_time",
    "rate_counter",
    "topk",
    "bottomk",
    "stddev",
    "stdvar",
    "sort",
    "sort_desc",
    "label_replace",
    "vector",
    "approx_topk",
];

/// Pipeline stages LogQL knows but the embedded Loki does not evaluate.
pub const UNSUPPORTED_STAGES: &[&str] = &[
    "regexp",
    "pattern",
    "unpack",
    "line_format",
    "label_format",
    "unwrap",
    "drop",
    "keep",
    "decolorize",
    "distinct",
];

/// Parses a duration as Loki does: Go's `1h30m`, `1.5s`, `250ms`, `10us` plus Prometheus' `d`,
/// `w` and `y`. Nanoseconds; `None` when it is not a duration.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            "w" => 7.0 * 86400e9,
            "y" => 365.0 * 86400e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * unit;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let ns = total.round() as i64;
    Some(if neg { -ns } else { ns })
}

/// Parses a byte size like `10KB` (1000-based), `5MiB` (1024-based), `42` or `1.5 GB`.
pub fn parse_bytes(s: &str) -> Option<f64> {
    let s = s.trim();
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let n: f64 = s[..num_len].parse().ok()?;
    let unit = s[num_len..].trim().to_ascii_lowercase();
    let mult = match unit.as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "pb" | "p" => 1e15,
        "kib" | "ki" => 1024.0,
        "mib" | "mi" => 1024.0 * 1024.0,
        "gib" | "gi" => 1024.0 * 1024.0 * 1024.0,
        "tib" | "ti" => 1024f64.powi(4),
        "pib" | "pi" => 1024f64.powi(5),
        _ => return None,
    };
    Some(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Some(300_000_000_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("250ms"), Some(250_000_000));
        assert_eq!(parse_duration("1d"), Some(86_400_000_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("10KB"), Some(10_000.0));
        assert_eq!(parse_bytes("1KiB"), Some(1024.0));
        assert_eq!(parse_bytes("42"), Some(42.0));
        assert_eq!(parse_bytes("3 MB"), Some(3e6));
        assert_eq!(parse_bytes("3 XB"), None);
    }

    #[test]
    fn error_rendering() {
        assert_eq!(
            ParseError::at(1, 5, "x".into()).to_string(),
            "parse error at line 1, col 5: x"
        );
        assert_eq!(
            ParseError::at(0, 0, "y".into()).to_string(),
            "parse error : y"
        );
    }
}
