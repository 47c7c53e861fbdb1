//! The TraceQL subset the embedded Tempo answers: one spanset filter whose conditions are joined
//! with `&&`.
//!
//! ```text
//! { }                                 every trace
//! { resource.service.name = "pos" }   resource attribute
//! { span.http.method = "GET" }        span attribute
//! { .http.status_code >= 500 }        span or resource attribute
//! { name = "checkout" && status = error && kind = server && duration > 100ms }
//! ```
//!
//! Fields: `span.*`, `resource.*`, `.*`, the intrinsics `name`, `status`, `statusMessage`,
//! `kind`, `duration` (also as `span:name`, ...), and the trace-level `rootName`,
//! `rootServiceName`, `traceDuration` (also `trace:rootName`, `trace:rootService`,
//! `trace:duration`). Literals: strings (`"..."`, with `\"` `\\` `\n` `\t` escapes), integers,
//! floats, `true`/`false`, durations (`1h30m`, `100ms`, `1.5s`), statuses (`error`, `ok`,
//! `unset`) and kinds (`server`, `client`, ...). Operators: `= != > >= < <= =~ !~` (regular
//! expressions are anchored, as in Tempo).
//!
//! A condition holds for a span when the field exists with a comparable type; a missing
//! attribute or a type mismatch never matches, not even with `!=` (Tempo's semantics). Valid
//! TraceQL outside the subset (`||`, pipelines, structural operators, aggregates, several
//! spansets, event/link/instrumentation fields, ...) is refused with an error that says it is not
//! supported by the embedded Tempo; a query Tempo would not parse either gets Tempo's
//! `invalid TraceQL query: parse error at line L, col C: ...` (the text after the position is
//! ours, not goyacc's).

use std::cmp::Ordering;

use regex::Regex;
use wire::otlp::proto::common::v1::{AnyValue, KeyValue, any_value};
use wire::otlp::proto::trace::v1::Span;

use super::store::{StoredTrace, attr};

/// A query the embedded Tempo cannot answer, with the byte offset where parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceQlError {
    pub reason: String,
    pub offset: usize,
    pub query: String,
    /// Valid TraceQL this subset leaves out (`true`), or not TraceQL at all (`false`).
    pub unsupported: bool,
}

impl TraceQlError {
    /// Go's `text/scanner` position of the offset: 1-based line and column (in characters).
    fn line_col(&self) -> (usize, usize) {
        let before = self.query.get(..self.offset).unwrap_or(&self.query);
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, col)
    }
}

impl std::fmt::Display for TraceQlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.unsupported {
            write!(
                f,
                "not supported by the embedded Tempo: {} (at offset {} of {:?})",
                self.reason, self.offset, self.query
            )
        } else {
            // Tempo's query frontend: "invalid TraceQL query: " + traceql.ParseError.
            let (line, col) = self.line_col();
            write!(
                f,
                "invalid TraceQL query: parse error at line {line}, col {col}: {}",
                self.reason
            )
        }
    }
}

impl std::error::Error for TraceQlError {}

/// Field names Tempo's TraceQL knows that this subset does not answer.
const KNOWN_UNSUPPORTED_FIELDS: [&str; 14] = [
    "event:name",
    "event:timeSinceStart",
    "link:spanID",
    "link:traceID",
    "instrumentation:name",
    "instrumentation:version",
    "trace:id",
    "span:id",
    "span:parentID",
    "span:childCount",
    "parent",
    "nestedSetLeft",
    "nestedSetRight",
    "nestedSetParent",
];

/// Where a field's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Span(String),
    Resource(String),
    /// `.name`: span attribute or resource attribute.
    Any(String),
    Name,
    Status,
    StatusMessage,
    Kind,
    Duration,
    RootName,
    RootServiceName,
    TraceDuration,
}

impl Field {
    /// The attribute key Tempo reports in a span set for this field.
    pub fn key(&self) -> &str {
        match self {
            Field::Span(k) | Field::Resource(k) | Field::Any(k) => k,
            Field::Name => "name",
            Field::Status => "status",
            Field::StatusMessage => "statusMessage",
            Field::Kind => "kind",
            Field::Duration => "duration",
            Field::RootName => "rootName",
            Field::RootServiceName => "rootServiceName",
            Field::TraceDuration => "traceDuration",
        }
    }

    fn intrinsic(name: &str) -> Option<Field> {
        Some(match name {
            "name" | "span:name" => Field::Name,
            "status" | "span:status" => Field::Status,
            "statusMessage" | "span:statusMessage" => Field::StatusMessage,
            "kind" | "span:kind" => Field::Kind,
            "duration" | "span:duration" => Field::Duration,
            "rootName" | "trace:rootName" => Field::RootName,
            "rootServiceName" | "trace:rootService" => Field::RootServiceName,
            "traceDuration" | "trace:duration" => Field::TraceDuration,
            _ => return None,
        })
    }

    /// Parses a scoped attribute (`span.x`, `resource.x`, `.x`) or an intrinsic name.
    pub fn parse(s: &str) -> Option<Field> {
        let non_empty = |k: &str| (!k.is_empty()).then(|| k.to_string());
        if let Some(k) = s.strip_prefix("span.") {
            non_empty(k).map(Field::Span)
        } else if let Some(k) = s.strip_prefix("resource.") {
            non_empty(k).map(Field::Resource)
        } else if let Some(k) = s.strip_prefix('.') {
            non_empty(k).map(Field::Any)
        } else {
            Field::intrinsic(s)
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Re,
    NotRe,
}

impl Op {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            Op::Eq => ord == Ordering::Equal,
            Op::Ne => ord != Ordering::Equal,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Re | Op::NotRe => false,
        }
    }

    fn is_equality(self) -> bool {
        matches!(self, Op::Eq | Op::Ne)
    }
}

/// A literal, or a value read from a span.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Nanoseconds.
    Duration(u64),
    /// OTLP status code: 0 unset, 1 ok, 2 error.
    Status(i32),
    /// OTLP span kind: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    Kind(i32),
}

const STATUSES: [&str; 3] = ["unset", "ok", "error"];
const KINDS: [&str; 6] = [
    "unspecified",
    "internal",
    "server",
    "client",
    "producer",
    "consumer",
];

impl Value {
    /// From an OTLP attribute value; arrays, maps and bytes have no TraceQL counterpart here.
    pub fn from_any(v: &AnyValue) -> Option<Value> {
        Some(match v.value.as_ref()? {
            any_value::Value::StringValue(s) => Value::Str(s.clone()),
            any_value::Value::IntValue(i) => Value::Int(*i),
            any_value::Value::DoubleValue(f) => Value::Float(*f),
            any_value::Value::BoolValue(b) => Value::Bool(*b),
            _ => return None,
        })
    }

    /// Tempo's type name (as in the v2 tag values API).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
            Value::Duration(_) => "duration",
            Value::Status(_) | Value::Kind(_) => "keyword",
        }
    }

    /// The value as Tempo prints it.
    pub fn render(&self) -> String {
        let name = |names: &[&str], i: i32| {
            usize::try_from(i)
                .ok()
                .and_then(|i| names.get(i))
                .map_or_else(|| i.to_string(), |s| s.to_string())
        };
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Duration(ns) => format!("{ns}ns"),
            Value::Status(s) => name(&STATUSES, *s),
            Value::Kind(k) => name(&KINDS, *k),
        }
    }

    /// As an OTLP attribute value, for span sets.
    pub fn to_any(&self) -> AnyValue {
        let v = match self {
            Value::Str(s) => any_value::Value::StringValue(s.clone()),
            Value::Int(i) => any_value::Value::IntValue(*i),
            Value::Float(f) => any_value::Value::DoubleValue(*f),
            Value::Bool(b) => any_value::Value::BoolValue(*b),
            Value::Duration(ns) => {
                any_value::Value::IntValue(i64::try_from(*ns).unwrap_or(i64::MAX))
            }
            Value::Status(_) | Value::Kind(_) => any_value::Value::StringValue(self.render()),
        };
        AnyValue { value: Some(v) }
    }

    fn compare(&self, op: Op, lit: &Value, re: Option<&Regex>) -> bool {
        use Value::*;
        match (self, lit) {
            (Str(a), Str(_)) if matches!(op, Op::Re | Op::NotRe) => {
                re.is_some_and(|re| re.is_match(a) == (op == Op::Re))
            }
            (Str(a), Str(b)) => op.holds(a.as_str().cmp(b.as_str())),
            (Int(a), Int(b)) => op.holds(a.cmp(b)),
            (Int(_) | Float(_), Int(_) | Float(_)) => self
                .as_f64()
                .partial_cmp(&lit.as_f64())
                .is_some_and(|o| op.holds(o)),
            (Duration(a), Duration(b)) => op.holds(a.cmp(b)),
            (Bool(a), Bool(b)) if op.is_equality() => op.holds(a.cmp(b)),
            (Status(a), Status(b)) | (Kind(a), Kind(b)) if op.is_equality() => op.holds(a.cmp(b)),
            _ => false,
        }
    }

    fn as_f64(&self) -> f64 {
        match self {
            Value::Int(i) => *i as f64,
            Value::Float(f) => *f,
            _ => f64::NAN,
        }
    }
}

/// One `field op literal`.
#[derive(Debug, Clone)]
pub struct Condition {
    pub field: Field,
    pub op: Op,
    pub value: Value,
    regex: Option<Regex>,
}

/// A span with what its conditions may look at.
#[derive(Clone, Copy)]
pub struct SpanRef<'a> {
    pub span: &'a Span,
    pub resource: &'a [KeyValue],
    pub trace: &'a StoredTrace,
}

impl SpanRef<'_> {
    /// The value of a field on this span, if it has one.
    pub fn get(&self, field: &Field) -> Option<Value> {
        let s = self.span;
        Some(match field {
            Field::Span(k) => attr_value(&s.attributes, k)?,
            Field::Resource(k) => attr_value(self.resource, k)?,
            Field::Any(k) => {
                attr_value(&s.attributes, k).or_else(|| attr_value(self.resource, k))?
            }
            Field::Name => Value::Str(s.name.clone()),
            Field::Status => Value::Status(s.status.as_ref().map_or(0, |st| st.code)),
            Field::StatusMessage => Value::Str(
                s.status
                    .as_ref()
                    .map(|st| st.message.clone())
                    .unwrap_or_default(),
            ),
            Field::Kind => Value::Kind(s.kind),
            Field::Duration => {
                Value::Duration(s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano))
            }
            Field::RootName => Value::Str(self.trace.root.as_ref()?.name.clone()),
            Field::RootServiceName => Value::Str(self.trace.root.as_ref()?.service.clone()),
            Field::TraceDuration => Value::Duration(self.trace.duration_ns()),
        })
    }
}

impl Condition {
    /// Does the condition hold for this span?
    pub fn matches(&self, span: &SpanRef<'_>) -> bool {
        match &self.field {
            // `.x` holds when either the span's or the resource's x does, as in Tempo.
            Field::Any(k) => {
                self.holds(attr_value(&span.span.attributes, k))
                    || self.holds(attr_value(span.resource, k))
            }
            f => self.holds(span.get(f)),
        }
    }

    fn holds(&self, v: Option<Value>) -> bool {
        v.is_some_and(|v| v.compare(self.op, &self.value, self.regex.as_ref()))
    }
}

/// A parsed spanset filter; no conditions means every span.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub conditions: Vec<Condition>,
}

impl Query {
    /// Does a span satisfy every condition?
    pub fn matches(&self, span: &SpanRef<'_>) -> bool {
        self.conditions.iter().all(|c| c.matches(span))
    }

    /// Parses the supported subset.
    pub fn parse(q: &str) -> Result<Query, TraceQlError> {
        Parser { q, pos: 0 }.query()
    }
}

struct Parser<'a> {
    q: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error<T>(&self, reason: impl Into<String>, unsupported: bool) -> Result<T, TraceQlError> {
        Err(TraceQlError {
            reason: reason.into(),
            offset: self.pos,
            query: self.q.to_string(),
            unsupported,
        })
    }

    /// Not TraceQL: what Tempo refuses as a parse error too.
    fn err<T>(&self, reason: impl Into<String>) -> Result<T, TraceQlError> {
        self.error(reason, false)
    }

    /// Valid TraceQL outside the subset.
    fn unsupported<T>(&self, reason: impl Into<String>) -> Result<T, TraceQlError> {
        self.error(reason, true)
    }

    fn rest(&self) -> &str {
        self.q.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.q.len() - trimmed.len();
    }

    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn unsupported_here<T>(&self) -> Result<T, TraceQlError> {
        let rest = self.rest();
        let what = if rest.starts_with("||") {
            "`||` (only `&&` is)"
        } else if rest.starts_with('|') {
            "pipelines (`|`)"
        } else if [">>", "<<", "~", "!>", "!<", "&>", "&<", "&~"]
            .iter()
            .any(|p| rest.starts_with(p))
        {
            "structural operators"
        } else if rest.starts_with('(') || rest.starts_with(')') {
            "parentheses"
        } else {
            return match rest.chars().next() {
                Some(c) => self.err(format!("syntax error: unexpected {c:?}")),
                None => self.err("syntax error: unexpected end of query"),
            };
        };
        self.unsupported(what)
    }

    fn query(mut self) -> Result<Query, TraceQlError> {
        if !self.eat("{") {
            return self.unsupported_here();
        }
        let mut conditions = Vec::new();
        if !self.eat("}") {
            if self.eat_word("true") {
                if !self.eat("}") {
                    return self.unsupported_here();
                }
            } else {
                loop {
                    conditions.push(self.condition()?);
                    if self.eat("}") {
                        break;
                    }
                    if !self.eat("&&") {
                        return self.unsupported_here();
                    }
                }
            }
        }
        self.skip_ws();
        if self.pos < self.q.len() {
            let rest = self.rest();
            return if rest.starts_with('{') || rest.starts_with("&&") || rest.starts_with("||") {
                self.unsupported("more than one spanset")
            } else {
                self.unsupported_here()
            };
        }
        Ok(Query { conditions })
    }

    fn eat_word(&mut self, w: &str) -> bool {
        self.skip_ws();
        let rest = self.rest();
        let after = rest.get(w.len()..).and_then(|r| r.chars().next());
        if rest.starts_with(w) && !after.is_some_and(is_ident_char) {
            self.pos += w.len();
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> &str {
        self.skip_ws();
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !is_ident_char(c))
            .unwrap_or(self.rest().len());
        self.pos += len;
        self.q.get(start..self.pos).unwrap_or_default()
    }

    fn condition(&mut self) -> Result<Condition, TraceQlError> {
        let start = self.pos;
        let name = self.ident().to_string();
        if name.is_empty() {
            return self.unsupported_here();
        }
        let Some(field) = Field::parse(&name) else {
            self.pos = start;
            self.skip_ws();
            let known = KNOWN_UNSUPPORTED_FIELDS.contains(&name.as_str())
                || ["event.", "link.", "instrumentation.", "span:", "trace:"]
                    .iter()
                    .any(|p| name.starts_with(p));
            return if known {
                self.unsupported(format!("field `{name}`"))
            } else {
                self.err(format!("syntax error: unexpected identifier `{name}`"))
            };
        };
        let op = self.op()?;
        let value = self.literal()?;
        self.check(&field, op, &value)?;
        let regex = match (&value, op) {
            (Value::Str(s), Op::Re | Op::NotRe) => match Regex::new(&format!("^(?:{s})$")) {
                Ok(re) => Some(re),
                Err(e) => return self.err(format!("invalid regular expression: {e}")),
            },
            _ => None,
        };
        Ok(Condition {
            field,
            op,
            value,
            regex,
        })
    }

    fn op(&mut self) -> Result<Op, TraceQlError> {
        const OPS: [(&str, Op); 8] = [
            ("!=", Op::Ne),
            ("!~", Op::NotRe),
            ("=~", Op::Re),
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("=", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
        ];
        for (s, op) in OPS {
            if self.eat(s) {
                return Ok(op);
            }
        }
        self.err(format!(
            "expected a comparison operator, found {:?}",
            self.rest().chars().take(8).collect::<String>()
        ))
    }

    fn literal(&mut self) -> Result<Value, TraceQlError> {
        self.skip_ws();
        match self.peek() {
            Some('"') => self.string(),
            Some(c) if c.is_ascii_digit() || c == '-' || c == '.' => self.number(),
            Some(_) => {
                let start = self.pos;
                let word = self.ident().to_string();
                let pos = |names: &[&str]| names.iter().position(|n| *n == word);
                match word.as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    _ => {
                        if let Some(i) = pos(&STATUSES) {
                            Ok(Value::Status(i as i32))
                        } else if let Some(i) = pos(&KINDS) {
                            Ok(Value::Kind(i as i32))
                        } else {
                            self.pos = start;
                            if word.is_empty() {
                                self.unsupported_here()
                            } else {
                                self.err(format!("literal `{word}`"))
                            }
                        }
                    }
                }
            }
            None => self.unsupported_here(),
        }
    }

    fn string(&mut self) -> Result<Value, TraceQlError> {
        let start = self.pos;
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = start + i + 1;
                    return Ok(Value::Str(out));
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(c @ ('"' | '\\')) => out.push(c),
                    Some(c) => out.extend(['\\', c]),
                    None => break,
                },
                c => out.push(c),
            }
        }
        self.err("unterminated string")
    }

    fn number(&mut self) -> Result<Value, TraceQlError> {
        let start = self.pos;
        let len = self
            .rest()
            .char_indices()
            .find(|&(i, c)| !(c.is_alphanumeric() || c == '.' || c == 'µ' || (i == 0 && c == '-')))
            .map_or(self.rest().len(), |(i, _)| i);
        let text = self.rest().get(..len).unwrap_or_default().to_string();
        self.pos += len;
        if text.ends_with(|c: char| c.is_alphabetic()) {
            return match parse_duration(&text) {
                Ok(ns) => Ok(Value::Duration(ns)),
                Err(e) => {
                    self.pos = start;
                    self.err(e)
                }
            };
        }
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::Int(i));
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => {
                self.pos = start;
                self.err(format!("number {text:?}"))
            }
        }
    }

    /// Refuses comparisons Tempo refuses as type errors.
    fn check(&self, field: &Field, op: Op, v: &Value) -> Result<(), TraceQlError> {
        let ok = match field {
            Field::Status => matches!(v, Value::Status(_)) && op.is_equality(),
            Field::Kind => matches!(v, Value::Kind(_)) && op.is_equality(),
            Field::Duration | Field::TraceDuration => {
                matches!(v, Value::Duration(_)) && !matches!(op, Op::Re | Op::NotRe)
            }
            Field::Name | Field::StatusMessage | Field::RootName | Field::RootServiceName => {
                matches!(v, Value::Str(_))
            }
            Field::Span(_) | Field::Resource(_) | Field::Any(_) => match v {
                Value::Str(_) => true,
                Value::Status(_) | Value::Kind(_) => false,
                _ => !matches!(op, Op::Re | Op::NotRe),
            },
        };
        if ok {
            Ok(())
        } else {
            self.err(format!(
                "comparing {} with {} using {op:?}",
                field.key(),
                v.type_name()
            ))
        }
    }
}

/// An attribute's value, when it has a TraceQL type.
pub fn attr_value(attrs: &[KeyValue], key: &str) -> Option<Value> {
    attr(attrs, key).and_then(Value::from_any)
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-')
}

/// Parses a Go duration (`300ms`, `1.5h`, `2h45m`, `1µs`) into nanoseconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("invalid duration {s:?}: {why}");
    if s == "0" {
        return Ok(0);
    }
    let mut rest = s;
    let mut total: f64 = 0.0;
    if rest.is_empty() {
        return Err(bad("empty"));
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let n: f64 = num.parse().map_err(|_| bad("expected a number"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(bad("missing unit")),
            _ => return Err(bad("unknown unit")),
        };
        total += n * scale;
        rest = tail;
    }
    if total.is_finite() && total < u64::MAX as f64 {
        Ok(total.round() as u64)
    } else {
        Err(bad("out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::store::tests::{export, kv, span};
    use super::super::store::{Store, split_by_trace};
    use super::*;
    use any_value::Value as V;
    use proptest::prelude::*;
    use wire::otlp::proto::trace::v1::Status;

    fn spans_matching(q: &str) -> Vec<String> {
        let mut s1 = span(1, 1, None, "checkout");
        s1.attributes = vec![
            kv("http.method", V::StringValue("GET".into())),
            kv("http.status_code", V::IntValue(500)),
            kv("retry", V::BoolValue(true)),
        ];
        s1.status = Some(Status {
            code: 2,
            message: "boom".into(),
        });
        s1.kind = 2;
        let mut s2 = span(1, 2, Some(1), "db");
        s2.end_time_unix_nano = s2.start_time_unix_nano + 200_000_000;
        s2.attributes = vec![kv("http.status_code", V::DoubleValue(200.0))];
        let mut store = Store::new(1 << 20);
        store.write("t", split_by_trace(export("pos", vec![s1, s2])));
        let query = Query::parse(q).unwrap();
        let (_, trace) = store.traces("t").next().unwrap();
        let mut out = Vec::new();
        for rs in &trace.batches {
            let resource = rs
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or(&[]);
            for s in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                if query.matches(&SpanRef {
                    span: s,
                    resource,
                    trace,
                }) {
                    out.push(s.name.clone());
                }
            }
        }
        out
    }

    #[test]
    fn subset_matches_like_tempo() {
        let both = vec!["checkout".to_string(), "db".to_string()];
        let one = vec!["checkout".to_string()];
        let db = vec!["db".to_string()];
        let none: Vec<String> = vec![];
        assert_eq!(spans_matching("{ }"), both);
        assert_eq!(spans_matching("{}"), both);
        assert_eq!(spans_matching("{ true }"), both);
        assert_eq!(spans_matching(r#"{ resource.service.name = "pos" }"#), both);
        assert_eq!(
            spans_matching(r#"{ resource.service.name = "nope" }"#),
            none
        );
        assert_eq!(spans_matching(r#"{ span.http.method = "GET" }"#), one);
        assert_eq!(spans_matching(r#"{ .service.name = "pos" }"#), both);
        assert_eq!(spans_matching(r#"{ .http.method != "POST" }"#), one);
        assert_eq!(spans_matching(r#"{ name = "checkout" }"#), one);
        assert_eq!(spans_matching("{ status = error }"), one);
        assert_eq!(spans_matching("{ status != error }"), db);
        assert_eq!(spans_matching("{ kind = server }"), one);
        assert_eq!(spans_matching("{ duration > 100ms }"), db);
        assert_eq!(spans_matching("{ duration <= 5ms }"), one);
        assert_eq!(spans_matching("{ span.http.status_code >= 500 }"), one);
        assert_eq!(spans_matching("{ .http.status_code = 200 }"), db);
        assert_eq!(spans_matching("{ .http.status_code < 300.5 }"), db);
        assert_eq!(spans_matching("{ span.retry = true }"), one);
        assert_eq!(spans_matching(r#"{ name =~ "check.*" }"#), one);
        assert_eq!(spans_matching(r#"{ name =~ "check" }"#), none);
        assert_eq!(spans_matching(r#"{ name !~ "check.*" }"#), db);
        assert_eq!(spans_matching(r#"{ statusMessage = "boom" }"#), one);
        assert_eq!(
            spans_matching(r#"{ rootName = "checkout" && name = "db" }"#),
            db
        );
        assert_eq!(spans_matching("{ traceDuration > 100ms }"), both);
        assert_eq!(
            spans_matching(
                r#"{ resource.service.name = "pos" && status = error && duration < 1s }"#
            ),
            one
        );
        // a missing attribute never matches, not even with !=
        assert_eq!(spans_matching(r#"{ span.missing != "x" }"#), none);
        // type mismatch never matches
        assert_eq!(spans_matching(r#"{ span.http.status_code = "500" }"#), none);
    }

    #[test]
    fn unsupported_is_refused_with_a_reason() {
        for (q, why) in [
            ("{ .a = 1 || .b = 2 }", "`||`"),
            ("{ .a = 1 } | count() > 1", "pipelines"),
            ("{ .a = 1 } >> { .b = 2 }", "structural"),
            ("{ .a = 1 } && { .b = 2 }", "more than one spanset"),
            ("{ (.a = 1) }", "parentheses"),
            ("{ event:name = \"x\" }", "field `event:name`"),
            ("{ span:id = \"x\" }", "field `span:id`"),
        ] {
            let e = Query::parse(q).unwrap_err().to_string();
            assert!(
                e.starts_with("not supported by the embedded Tempo: "),
                "{e}"
            );
            assert!(e.contains(why), "{q}: {e}");
        }
    }

    #[test]
    fn syntax_errors_are_worded_as_tempo_words_them() {
        for (q, at) in [
            (
                "{ foo = 1 }",
                "line 1, col 3: syntax error: unexpected identifier `foo`",
            ),
            ("{ status = 200 }", "comparing status"),
            ("{ duration > 5 }", "comparing duration"),
            ("{ .a = nil }", "literal `nil`"),
            (r#"{ .a = "x }"#, "unterminated"),
            ("{ .a = 5parsecs }", "unknown unit"),
            ("", "line 1, col 1: syntax error: unexpected end of query"),
            ("{ .a }", "comparison operator"),
            ("rate()", "col 1: syntax error: unexpected 'r'"),
            (
                "{ .a = 1 &&\n  .b = }",
                "line 2, col 8: syntax error: unexpected '}'",
            ),
        ] {
            let e = Query::parse(q).unwrap_err().to_string();
            assert!(
                e.starts_with("invalid TraceQL query: parse error at line "),
                "{e}"
            );
            assert!(e.contains(at), "{q}: {e}");
        }
    }

    #[test]
    fn literals_parse() {
        let one = |q: &str| Query::parse(q).unwrap().conditions.remove(0).value;
        assert_eq!(one("{ .a = -3 }"), Value::Int(-3));
        assert_eq!(one("{ .a = 2.5 }"), Value::Float(2.5));
        assert_eq!(one(r#"{ .a = "q\"\\n" }"#), Value::Str("q\"\\n".into()));
        assert_eq!(
            one("{ duration > 1h30m }"),
            Value::Duration(5_400_000_000_000)
        );
        assert_eq!(one("{ duration > 1.5s }"), Value::Duration(1_500_000_000));
        assert_eq!(one("{ duration > 10µs }"), Value::Duration(10_000));
        assert_eq!(one("{ kind = client }"), Value::Kind(3));
        assert_eq!(one("{ status = ok }"), Value::Status(1));
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("100ms"), Ok(100_000_000));
        assert_eq!(parse_duration("2h45m"), Ok(9_900_000_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("ms").is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in "\\PC*") {
            let _ = Query::parse(&s);
            let _ = parse_duration(&s);
        }

        #[test]
        fn query_like_strings_never_panic(s in r#"[{}\s.a-z0-9"=!<>~&|:µ\\-]{0,40}"#) {
            let _ = Query::parse(&s);
        }
    }
}
