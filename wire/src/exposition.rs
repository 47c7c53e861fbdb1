//! Prometheus text exposition format 0.0.4, and the OpenMetrics 1.0 text bits a scraper meets.
//!
//! - [`parse`] reads a scrape body into [`MetricFamily`]s; it detects OpenMetrics by the closing
//!   `# EOF` line. [`parse_as`] takes the [`Format`] from the `Content-Type` instead (use it when
//!   you have the header: it also notices a truncated OpenMetrics body).
//! - [`encode`] writes 0.0.4 text, [`encode_openmetrics`] OpenMetrics text.
//! - [`samples`] flattens families into what a scraper stores: metric name, labels sorted by name
//!   with `__name__`, value, timestamp.
//!
//! What is understood: `# HELP` (escapes `\\` and `\n`; OpenMetrics' `\"` too), `# TYPE`,
//! `# UNIT`, `# EOF`, other comments and blank lines (ignored), label values with `\\`, `\"`, `\n`
//! escapes, values `NaN`, `+Inf`, `-Inf`, `Inf`, integers, floats and exponent forms, timestamps
//! (integer milliseconds in 0.0.4, float seconds in OpenMetrics, both stored as milliseconds),
//! exemplars after ` # ` (kept when well formed, silently dropped when not: never an error).
//!
//! Samples are grouped into families the way Prometheus does: a sample belongs to the declared
//! family of its own name, or else to the declared family its name minus a suffix the family's type
//! allows (`_bucket`/`_sum`/`_count` for histograms, `_sum`/`_count` for summaries, `_total` for
//! counters, `_created` for all three, `_gsum`/`_gcount` for gauge histograms, `_info` for info
//! metrics); a sample of no declared family starts an untyped family of its own name.
//!
//! Not supported: the protobuf exposition format, native histograms, and the quoted UTF-8 metric
//! and label names of Prometheus 3 (sent only to scrapers that ask with `escaping=allow-utf-8`,
//! which [`Format::ACCEPT`] does not).
//!
//! Unknown escape sequences are kept literally (as Prometheus' own parser does), so the parser is
//! lenient there; structural errors (bad names, unterminated strings, unparsable values, duplicate
//! labels, a second `# TYPE` for a family) are [`WireError::Exposition`] with a 1-based line.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::WireError;
use crate::labels::{is_valid_label_name, is_valid_metric_name};

/// Which text format a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`
    PrometheusText,
    /// `application/openmetrics-text; version=1.0.0`
    OpenMetrics,
}

impl Format {
    /// From a `Content-Type` header value; `None` for a type that is not one of the two text
    /// formats (e.g. the protobuf exposition format).
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let media = ct.split(';').next()?.trim().to_ascii_lowercase();
        match media.as_str() {
            "application/openmetrics-text" => Some(Format::OpenMetrics),
            "text/plain" => Some(Format::PrometheusText),
            _ => None,
        }
    }

    /// The `Content-Type` a server sends for this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The `Accept` header a scraper that reads both formats sends (what Prometheus sends).
    pub const ACCEPT: &'static str =
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1";
}

/// The type of a metric family, as given by `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    /// 0.0.4 `untyped`, and the kind of a family without `# TYPE`.
    Untyped,
    Info,
    StateSet,
    GaugeHistogram,
    /// OpenMetrics `unknown`.
    Unknown,
}

impl MetricKind {
    /// The `# TYPE` keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::Summary => "summary",
            MetricKind::Untyped => "untyped",
            MetricKind::Info => "info",
            MetricKind::StateSet => "stateset",
            MetricKind::GaugeHistogram => "gaugehistogram",
            MetricKind::Unknown => "unknown",
        }
    }

    /// From a `# TYPE` keyword (either format's).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "counter" => MetricKind::Counter,
            "gauge" => MetricKind::Gauge,
            "histogram" => MetricKind::Histogram,
            "summary" => MetricKind::Summary,
            "untyped" => MetricKind::Untyped,
            "info" => MetricKind::Info,
            "stateset" => MetricKind::StateSet,
            "gaugehistogram" => MetricKind::GaugeHistogram,
            "unknown" => MetricKind::Unknown,
            _ => return None,
        })
    }

    /// The suffixes a sample name of a family of this kind may add to the family name.
    pub fn suffixes(self) -> &'static [&'static str] {
        match self {
            MetricKind::Counter => &["_total", "_created"],
            MetricKind::Histogram => &["_bucket", "_sum", "_count", "_created"],
            MetricKind::Summary => &["_sum", "_count", "_created"],
            MetricKind::GaugeHistogram => &["_bucket", "_gsum", "_gcount"],
            MetricKind::Info => &["_info"],
            _ => &[],
        }
    }

    /// Is this a type the 0.0.4 format can declare?
    pub fn in_prometheus_text(self) -> bool {
        matches!(
            self,
            MetricKind::Counter
                | MetricKind::Gauge
                | MetricKind::Histogram
                | MetricKind::Summary
                | MetricKind::Untyped
        )
    }
}

/// One metric family: its metadata and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily {
    pub name: String,
    pub help: Option<String>,
    pub kind: MetricKind,
    pub unit: Option<String>,
    pub samples: Vec<ExpoSample>,
}

impl MetricFamily {
    /// An empty family.
    pub fn new(name: impl Into<String>, kind: MetricKind) -> Self {
        MetricFamily {
            name: name.into(),
            help: None,
            kind,
            unit: None,
            samples: Vec::new(),
        }
    }

    /// The family with its `# HELP` text (what a server writing its own metrics starts from).
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a sample named as the family itself (a counter's or gauge's series).
    pub fn push(&mut self, labels: &[(&str, &str)], value: f64) {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .push(ExpoSample::new(self.name.clone(), labels, value));
    }

    /// The family with one sample named as itself.
    pub fn with_sample(mut self, labels: &[(&str, &str)], value: f64) -> Self {
        self.push(labels, value);
        self
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpoSample {
    /// The full name as written, suffix included (`_bucket`, `_sum`, `_count`, `_total`, ...).
    pub name: String,
    /// Labels in the order written.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// An OpenMetrics exemplar, when one was given and well formed.
    pub exemplar: Option<Exemplar>,
}

impl ExpoSample {
    /// A sample without timestamp or exemplar.
    pub fn new(name: impl Into<String>, labels: Vec<(String, String)>, value: f64) -> Self {
        ExpoSample {
            name: name.into(),
            labels,
            value,
            timestamp_ms: None,
            exemplar: None,
        }
    }

    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An OpenMetrics exemplar: `# {trace_id="..."} 0.5 1520879607.789`.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
}

/// One sample as a scraper stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatSample {
    /// The metric name (the sample's full name).
    pub name: String,
    /// Labels sorted by name, `__name__` included.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// Flattens families into samples with sorted labels including `__name__`.
pub fn samples(families: &[MetricFamily]) -> impl Iterator<Item = FlatSample> + '_ {
    families.iter().flat_map(|f| f.samples.iter()).map(|s| {
        let mut labels = Vec::with_capacity(s.labels.len() + 1);
        labels.push(("__name__".to_string(), s.name.clone()));
        labels.extend(s.labels.iter().cloned());
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        FlatSample {
            name: s.name.clone(),
            labels,
            value: s.value,
            timestamp_ms: s.timestamp_ms,
        }
    })
}

/// Turns a scrape into a remote-write request, as a scraper forwarding to Mimir does: one series
/// per sample (labels sorted, `__name__` included), `scrape_ts_ms` for samples without their own
/// timestamp, and one metadata entry per family that has samples.
pub fn to_remote_write(
    families: &[MetricFamily],
    scrape_ts_ms: i64,
) -> crate::remote_write::WriteRequest {
    use crate::remote_write::{
        Label, MetricMetadata, MetricType, Sample, TimeSeries, WriteRequest,
    };
    let timeseries = samples(families)
        .map(|s| TimeSeries {
            labels: s
                .labels
                .into_iter()
                .map(|(name, value)| Label { name, value })
                .collect(),
            samples: vec![Sample {
                value: s.value,
                timestamp: s.timestamp_ms.unwrap_or(scrape_ts_ms),
            }],
            exemplars: Vec::new(),
        })
        .collect();
    let metadata = families
        .iter()
        .filter(|f| !f.samples.is_empty())
        .map(|f| MetricMetadata {
            r#type: match f.kind {
                MetricKind::Counter => MetricType::Counter,
                MetricKind::Gauge => MetricType::Gauge,
                MetricKind::Histogram => MetricType::Histogram,
                MetricKind::Summary => MetricType::Summary,
                MetricKind::Info => MetricType::Info,
                MetricKind::StateSet => MetricType::Stateset,
                MetricKind::GaugeHistogram => MetricType::Gaugehistogram,
                MetricKind::Untyped | MetricKind::Unknown => MetricType::Unknown,
            } as i32,
            metric_family_name: f.name.clone(),
            help: f.help.clone().unwrap_or_default(),
            unit: f.unit.clone().unwrap_or_default(),
        })
        .collect();
    WriteRequest {
        timeseries,
        metadata,
    }
}

/// Parses a scrape body, in OpenMetrics when its last non-blank line is `# EOF`, else in 0.0.4.
pub fn parse(text: &str) -> Result<Vec<MetricFamily>, WireError> {
    let om = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim() == "# EOF");
    parse_as(
        text,
        if om {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        },
    )
}

/// Parses a scrape body in the given format. OpenMetrics requires the closing `# EOF` (so a
/// truncated body is an error) and reads timestamps as seconds; 0.0.4 reads them as milliseconds.
pub fn parse_as(text: &str, format: Format) -> Result<Vec<MetricFamily>, WireError> {
    let mut st = State {
        format,
        families: Vec::new(),
        index: HashMap::new(),
        typed: Vec::new(),
        helped: Vec::new(),
    };
    let mut eof_line = None;
    let mut line_no = 0;
    for raw in text.split('\n') {
        line_no += 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(eof) = eof_line {
            if !line.trim().is_empty() {
                return Err(err(
                    line_no,
                    format!("content after \"# EOF\" on line {eof}"),
                ));
            }
            continue;
        }
        let trimmed = line.trim_matches(|c| c == ' ' || c == '\t');
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            if comment.trim() == "EOF" {
                eof_line = Some(line_no);
                continue;
            }
            st.comment(comment, line_no)?;
        } else {
            st.sample(trimmed, line_no)?;
        }
    }
    if format == Format::OpenMetrics && eof_line.is_none() {
        return Err(err(line_no, "OpenMetrics body does not end with \"# EOF\""));
    }
    Ok(st.families)
}

fn err(line: usize, reason: impl Into<String>) -> WireError {
    WireError::Exposition {
        line,
        reason: reason.into(),
    }
}

struct State {
    format: Format,
    families: Vec<MetricFamily>,
    /// Family name -> index in `families`.
    index: HashMap<String, usize>,
    /// Per family: has it had a `# TYPE` line?
    typed: Vec<bool>,
    /// Per family: has it had a `# HELP` line?
    helped: Vec<bool>,
}

impl State {
    fn family(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.families.len();
        self.families
            .push(MetricFamily::new(name.to_string(), MetricKind::Untyped));
        self.typed.push(false);
        self.helped.push(false);
        self.index.insert(name.to_string(), i);
        i
    }

    /// A line starting with `#` (the `#` removed).
    fn comment(&mut self, rest: &str, line: usize) -> Result<(), WireError> {
        let rest = rest.trim_start_matches([' ', '\t']);
        let (keyword, rest) = split_token(rest);
        if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
            return Ok(()); // an ordinary comment
        }
        let (name, rest) = split_token(rest);
        if !is_valid_metric_name(name) {
            return Err(err(
                line,
                format!("invalid metric name {name:?} in {keyword}"),
            ));
        }
        match keyword {
            "HELP" => {
                let i = self.family(name);
                if self.helped.get(i).copied().unwrap_or(false) {
                    return Err(err(line, format!("second HELP line for metric {name:?}")));
                }
                if let Some(h) = self.helped.get_mut(i) {
                    *h = true;
                }
                let help = unescape_help(rest);
                if let Some(f) = self.families.get_mut(i) {
                    f.help = Some(help);
                }
            }
            "TYPE" => {
                let (kind, extra) = split_token(rest);
                let kind = MetricKind::parse(kind)
                    .ok_or_else(|| err(line, format!("invalid metric type {kind:?}")))?;
                if !extra.is_empty() {
                    return Err(err(line, "unexpected text after the metric type"));
                }
                let i = self.family(name);
                if self.typed.get(i).copied().unwrap_or(false) {
                    return Err(err(line, format!("second TYPE line for metric {name:?}")));
                }
                if let Some(t) = self.typed.get_mut(i) {
                    *t = true;
                }
                if let Some(f) = self.families.get_mut(i) {
                    if !f.samples.is_empty() {
                        return Err(err(
                            line,
                            format!("TYPE line for metric {name:?} after its samples"),
                        ));
                    }
                    f.kind = kind;
                }
            }
            _ => {
                let i = self.family(name);
                if let Some(f) = self.families.get_mut(i) {
                    f.unit = Some(rest.to_string());
                }
            }
        }
        Ok(())
    }

    /// Which family a sample of this name belongs to.
    fn family_of(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        for suffix in [
            "_bucket", "_sum", "_count", "_total", "_created", "_gsum", "_gcount", "_info",
        ] {
            if let Some(base) = name.strip_suffix(suffix)
                && let Some(&i) = self.index.get(base)
                && self
                    .families
                    .get(i)
                    .is_some_and(|f| f.kind.suffixes().contains(&suffix))
            {
                return i;
            }
        }
        self.family(name)
    }

    fn sample(&mut self, line_text: &str, line: usize) -> Result<(), WireError> {
        let mut c = Cursor {
            s: line_text.as_bytes(),
            pos: 0,
            line,
        };
        let name = c.metric_name()?;
        let mut gap = c.skip_ws();
        let labels = if c.peek() == Some(b'{') {
            let l = c.label_set()?;
            gap = c.skip_ws();
            l
        } else {
            Vec::new()
        };
        if gap == 0 {
            return Err(c.err("expected whitespace before the value"));
        }
        let value_tok = c.token();
        let value =
            parse_value(value_tok).ok_or_else(|| c.err(&format!("invalid value {value_tok:?}")))?;
        c.skip_ws();
        let mut timestamp_ms = None;
        if c.peek().is_some() && c.peek() != Some(b'#') {
            let tok = c.token();
            timestamp_ms = Some(
                parse_timestamp(tok, self.format)
                    .ok_or_else(|| c.err(&format!("invalid timestamp {tok:?}")))?,
            );
            c.skip_ws();
        }
        let mut exemplar = None;
        if c.peek() == Some(b'#') {
            // Exemplars never fail a scrape: a malformed one is dropped.
            c.pos += 1;
            exemplar = c.exemplar();
        } else if c.peek().is_some() {
            return Err(c.err("unexpected text after the sample"));
        }
        let i = self.family_of(&name);
        if let Some(f) = self.families.get_mut(i) {
            f.samples.push(ExpoSample {
                name,
                labels,
                value,
                timestamp_ms,
                exemplar,
            });
        }
        Ok(())
    }
}

/// Splits off the first whitespace-separated token; the rest has its leading whitespace removed.
fn split_token(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => {
            let (tok, rest) = s.split_at(i);
            (tok, rest.trim_start_matches([' ', '\t']))
        }
        None => (s, ""),
    }
}

fn unescape_help(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A sample value: a float in any form Go's `ParseFloat` takes for these, `NaN`, `[+-]Inf`.
fn parse_value(tok: &str) -> Option<f64> {
    match tok {
        "NaN" => return Some(f64::NAN),
        "+Inf" | "Inf" => return Some(f64::INFINITY),
        "-Inf" => return Some(f64::NEG_INFINITY),
        "" => return None,
        _ => {}
    }
    // Rust's float syntax is a superset of what exposition writers print ("1", "1.5", "1e+06",
    // "-0.25", ".5", "inf", "nan"); it refuses hex floats and underscores, which they do not use.
    tok.parse::<f64>().ok()
}

/// A timestamp: integer milliseconds in 0.0.4, (possibly fractional) seconds in OpenMetrics.
fn parse_timestamp(tok: &str, format: Format) -> Option<i64> {
    match format {
        Format::PrometheusText => tok.parse::<i64>().ok(),
        Format::OpenMetrics => seconds_to_ms(tok),
    }
}

/// Decimal seconds to milliseconds, exactly for plain decimals (sub-millisecond digits dropped,
/// rounding towards negative infinity); exponent forms go through `f64`.
fn seconds_to_ms(tok: &str) -> Option<i64> {
    let (neg, digits) = match tok.as_bytes().first()? {
        b'-' => (true, tok.get(1..)?),
        b'+' => (false, tok.get(1..)?),
        _ => (false, tok),
    };
    if digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return None;
        }
        // i128 so that i64::MIN milliseconds (whose magnitude is not an i64) still parses.
        let int: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let mut ms_part: i128 = 0;
        let mut exact = true;
        for (k, b) in frac.bytes().enumerate() {
            let d = i128::from(b - b'0');
            if k < 3 {
                ms_part = ms_part * 10 + d;
            } else if d != 0 {
                exact = false;
            }
        }
        for _ in frac.len()..3 {
            ms_part *= 10;
        }
        let mut ms = int.checked_mul(1000)?.checked_add(ms_part)?;
        if neg {
            ms = -ms - i128::from(!exact);
        }
        return i64::try_from(ms).ok();
    }
    let secs: f64 = tok.parse().ok()?;
    let ms = (secs * 1000.0).floor();
    // `as` saturates; refuse what does not fit instead.
    (ms.is_finite() && ms >= i64::MIN as f64 && ms < i64::MAX as f64).then_some(ms as i64)
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Cursor<'a> {
    fn err(&self, reason: &str) -> WireError {
        err(self.line, format!("column {}: {reason}", self.pos + 1))
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    /// Skips spaces and tabs; returns how many.
    fn skip_ws(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }
    /// Everything up to the next space or tab.
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c != b' ' && c != b'\t') {
            self.pos += 1;
        }
        self.slice(start)
    }
    fn slice(&self, start: usize) -> &'a str {
        let s: &'a [u8] = self.s;
        s.get(start..self.pos)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
    fn metric_name(&mut self) -> Result<String, WireError> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b':')
        {
            self.pos += 1;
        }
        let name = self.slice(start);
        if !is_valid_metric_name(name) {
            return Err(self.err("expected a metric name"));
        }
        Ok(name.to_string())
    }
    fn label_name(&mut self) -> Result<String, WireError> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
            self.pos += 1;
        }
        let name = self.slice(start);
        if !is_valid_label_name(name) {
            return Err(self.err("expected a label name"));
        }
        Ok(name.to_string())
    }
    /// `{a="b",c="d"}` (optional trailing comma, whitespace around tokens), at `{`.
    fn label_set(&mut self) -> Result<Vec<(String, String)>, WireError> {
        self.pos += 1; // '{'
        let mut labels: Vec<(String, String)> = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return self.no_duplicates(labels);
            }
            let name = self.label_name()?;
            self.skip_ws();
            if self.peek() != Some(b'=') {
                return Err(self.err("expected \"=\" after a label name"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.quoted()?;
            // Linear for the usual handful of labels; a hostile line with thousands of labels
            // gets checked by sorting instead (below), not quadratically.
            if labels.len() < 16 && labels.iter().any(|(k, _)| *k == name) {
                return Err(self.err(&format!("duplicate label name {name:?}")));
            }
            labels.push((name, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return self.no_duplicates(labels);
                }
                _ => return Err(self.err("expected \",\" or \"}\" in the label set")),
            }
        }
    }
    fn no_duplicates(
        &self,
        labels: Vec<(String, String)>,
    ) -> Result<Vec<(String, String)>, WireError> {
        if labels.len() > 16 {
            let mut names: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
            names.sort_unstable();
            if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
                return Err(self.err(&format!("duplicate label name {:?}", w[0])));
            }
        }
        Ok(labels)
    }
    /// A double-quoted label value with `\\`, `\"`, `\n` escapes (others kept literally).
    fn quoted(&mut self) -> Result<String, WireError> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a quoted label value"));
        }
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated label value")),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    self.pos += 2;
                }
                Some(_) => self.pos += 1,
            }
        }
        let raw = self
            .s
            .get(start..self.pos)
            .ok_or_else(|| self.err("unterminated label value"))?;
        self.pos += 1; // closing quote
        let raw = std::str::from_utf8(raw).map_err(|_| self.err("label value is not UTF-8"))?;
        if !escaped {
            return Ok(raw.to_string());
        }
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        }
        Ok(out)
    }
    /// After the `#` of ` # {labels} value [timestamp]`; `None` when malformed. Exemplar
    /// timestamps are seconds (exemplars exist only in OpenMetrics).
    fn exemplar(&mut self) -> Option<Exemplar> {
        self.skip_ws();
        if self.peek() != Some(b'{') {
            return None;
        }
        let labels = self.label_set().ok()?;
        self.skip_ws();
        let value = parse_value(self.token())?;
        self.skip_ws();
        let timestamp_ms = match self.peek() {
            None => None,
            Some(_) => Some(seconds_to_ms(self.token())?),
        };
        self.skip_ws();
        if self.peek().is_some() {
            return None;
        }
        Some(Exemplar {
            labels,
            value,
            timestamp_ms,
        })
    }
}

/// Writes families as 0.0.4 text. OpenMetrics-only types (info, stateset, gaugehistogram,
/// unknown) are declared `untyped`, which is all 0.0.4 can say; `# UNIT` lines are written (0.0.4
/// readers take them for comments). Exemplars are not part of 0.0.4 and are left out.
pub fn encode(families: &[MetricFamily]) -> String {
    encode_with(families, Format::PrometheusText)
}

/// Writes families as OpenMetrics text, with float-second timestamps, exemplars and the closing
/// `# EOF`.
pub fn encode_openmetrics(families: &[MetricFamily]) -> String {
    encode_with(families, Format::OpenMetrics)
}

fn encode_with(families: &[MetricFamily], format: Format) -> String {
    let mut out = String::with_capacity(families.iter().map(|f| 64 + f.samples.len() * 64).sum());
    for f in families {
        if let Some(help) = &f.help {
            out.push_str("# HELP ");
            out.push_str(&f.name);
            out.push(' ');
            for c in help.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '"' if format == Format::OpenMetrics => out.push_str("\\\""),
                    c => out.push(c),
                }
            }
            out.push('\n');
        }
        let kind = match format {
            Format::PrometheusText if !f.kind.in_prometheus_text() => MetricKind::Untyped,
            _ => f.kind,
        };
        let _ = writeln!(out, "# TYPE {} {}", f.name, kind.as_str());
        if let Some(unit) = &f.unit {
            let _ = writeln!(out, "# UNIT {} {}", f.name, unit);
        }
        for s in &f.samples {
            out.push_str(&s.name);
            write_labels(&mut out, &s.labels);
            out.push(' ');
            write_value(&mut out, s.value);
            if let Some(ts) = s.timestamp_ms {
                out.push(' ');
                match format {
                    Format::PrometheusText => {
                        let _ = write!(out, "{ts}");
                    }
                    Format::OpenMetrics => write_seconds(&mut out, ts),
                }
            }
            if format == Format::OpenMetrics
                && let Some(e) = &s.exemplar
            {
                out.push_str(" # ");
                write_labels_always(&mut out, &e.labels);
                out.push(' ');
                write_value(&mut out, e.value);
                if let Some(ts) = e.timestamp_ms {
                    out.push(' ');
                    write_seconds(&mut out, ts);
                }
            }
            out.push('\n');
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn write_labels(out: &mut String, labels: &[(String, String)]) {
    if !labels.is_empty() {
        write_labels_always(out, labels);
    }
}

fn write_labels_always(out: &mut String, labels: &[(String, String)]) {
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

/// Shortest text that reads back to the same `f64`; `NaN`, `+Inf`, `-Inf` for the specials.
fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v == 0.0 || (1e-5..1e15).contains(&v.abs()) {
        let _ = write!(out, "{v}");
    } else {
        let _ = write!(out, "{v:e}");
    }
}

/// Milliseconds as decimal seconds: `1520879607.789`.
fn write_seconds(out: &mut String, ms: i64) {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    if frac == 0 {
        let _ = write!(out, "{secs}");
    } else if secs < 0 {
        // -1.250 s is secs = -2, frac = 750: write it as a negative decimal.
        let total = -(i128::from(secs) * 1000 + i128::from(frac));
        let _ = write!(out, "-{}.{:03}", total / 1000, total % 1000);
    } else {
        let _ = write!(out, "{secs}.{frac:03}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page in the shape node_exporter serves: Go runtime summary, counters with and without
    /// labels, gauges in exponent form, a histogram, HELP texts with escapes.
    const NODE: &str = r#"# HELP go_gc_duration_seconds A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.8e-05
go_gc_duration_seconds{quantile="0.25"} 4.1e-05
go_gc_duration_seconds{quantile="0.5"} 5.2e-05
go_gc_duration_seconds{quantile="0.75"} 7.3e-05
go_gc_duration_seconds{quantile="1"} 0.000611
go_gc_duration_seconds_sum 0.012345
go_gc_duration_seconds_count 181
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 8
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 86423.17
node_cpu_seconds_total{cpu="0",mode="user"} 1203.5
node_cpu_seconds_total{cpu="1",mode="idle"} 86501.02
# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"} 1.2345678848e+10
# HELP node_textfile_help_escapes Help with a backslash \\ and a newline \n in it.
# TYPE node_textfile_help_escapes gauge
node_textfile_help_escapes{path="C:\\temp",quote="say \"hi\"",nl="a\nb"} -Inf
# HELP prometheus_http_request_duration_seconds Histogram of latencies for HTTP requests.
# TYPE prometheus_http_request_duration_seconds histogram
prometheus_http_request_duration_seconds_bucket{handler="/metrics",le="0.1"} 5
prometheus_http_request_duration_seconds_bucket{handler="/metrics",le="1"} 6
prometheus_http_request_duration_seconds_bucket{handler="/metrics",le="+Inf"} 6
prometheus_http_request_duration_seconds_sum{handler="/metrics"} 0.5
prometheus_http_request_duration_seconds_count{handler="/metrics"} 6
# A plain comment.

process_start_time_seconds 1.70000000012e+09 1700000000123
untyped_no_help NaN
"#;

    #[test]
    fn families_built_by_a_server_read_back() {
        let mut requests = MetricFamily::new("x_requests_total", MetricKind::Counter)
            .with_help("Requests, by route.");
        requests.push(&[("route", "push"), ("note", "a \"b\"\n")], 3.0);
        requests.push(&[("route", "query")], 0.0);
        let up = MetricFamily::new("x_up", MetricKind::Gauge)
            .with_help("Always 1.")
            .with_sample(&[], 1.0);
        let text = encode(&[requests.clone(), up.clone()]);
        assert!(text.starts_with(
            "# HELP x_requests_total Requests, by route.\n# TYPE x_requests_total counter\n"
        ));
        assert!(text.contains("x_up 1\n"), "{text}");
        assert_eq!(parse(&text).unwrap(), vec![requests, up]);
    }

    #[test]
    fn parses_a_node_exporter_page() {
        let fams = parse(NODE).unwrap();
        let names: Vec<_> = fams.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "go_gc_duration_seconds",
                "go_goroutines",
                "node_cpu_seconds_total",
                "node_filesystem_avail_bytes",
                "node_textfile_help_escapes",
                "prometheus_http_request_duration_seconds",
                "process_start_time_seconds",
                "untyped_no_help",
            ]
        );
        let gc = &fams[0];
        assert_eq!(gc.kind, MetricKind::Summary);
        assert_eq!(gc.samples.len(), 7);
        assert_eq!(gc.samples[4].label("quantile"), Some("1"));
        assert_eq!(gc.samples[4].value, 0.000611);
        assert_eq!(gc.samples[6].name, "go_gc_duration_seconds_count");
        assert_eq!(gc.samples[6].value, 181.0);
        assert_eq!(fams[2].kind, MetricKind::Counter);
        assert_eq!(fams[2].samples[1].value, 1203.5);
        assert_eq!(fams[3].samples[0].value, 12_345_678_848.0);
        let esc = &fams[4];
        assert_eq!(
            esc.help.as_deref(),
            Some("Help with a backslash \\ and a newline \n in it.")
        );
        assert_eq!(esc.samples[0].label("path"), Some("C:\\temp"));
        assert_eq!(esc.samples[0].label("quote"), Some("say \"hi\""));
        assert_eq!(esc.samples[0].label("nl"), Some("a\nb"));
        assert_eq!(esc.samples[0].value, f64::NEG_INFINITY);
        let h = &fams[5];
        assert_eq!(h.kind, MetricKind::Histogram);
        assert_eq!(h.samples.len(), 5);
        assert_eq!(h.samples[2].label("le"), Some("+Inf"));
        let p = &fams[6];
        assert_eq!(p.kind, MetricKind::Untyped);
        assert_eq!(p.help, None);
        assert_eq!(p.samples[0].timestamp_ms, Some(1_700_000_000_123));
        assert_eq!(p.samples[0].value, 1_700_000_000.12);
        assert!(fams[7].samples[0].value.is_nan());
    }

    #[test]
    fn values_in_every_form() {
        let text = "a 1\nb -2\nc 1.5e3\nd 1E-3\ne +Inf\nf -Inf\ng Inf\nh NaN\ni .5\nj 7.\nk +3\n";
        let fams = parse(text).unwrap();
        let v: Vec<f64> = fams.iter().map(|f| f.samples[0].value).collect();
        assert_eq!(
            &v[..7],
            &[
                1.0,
                -2.0,
                1500.0,
                0.001,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::INFINITY
            ]
        );
        assert!(v[7].is_nan());
        assert_eq!(&v[8..], &[0.5, 7.0, 3.0]);
    }

    #[test]
    fn whitespace_and_crlf_are_tolerated() {
        let text = "  # TYPE a gauge\r\n\t a { x = \"1\" , y=\"2\", }   3   -5 \r\n\n";
        let fams = parse(text).unwrap();
        assert_eq!(fams[0].kind, MetricKind::Gauge);
        let s = &fams[0].samples[0];
        assert_eq!(
            s.labels,
            vec![("x".into(), "1".into()), ("y".into(), "2".into())]
        );
        assert_eq!((s.value, s.timestamp_ms), (3.0, Some(-5)));
    }

    #[test]
    fn errors_carry_the_line() {
        let many_labels = format!(
            "ok 1\nm{{{}l7=\"again\"}} 1\n",
            (0..40).map(|i| format!("l{i}=\"v\",")).collect::<String>()
        );
        for (text, line) in [
            ("a 1\nb{x=\"1\"} zzz\n", 2),
            ("a 1\n\nb{x=1} 2\n", 3),
            ("1a 2\n", 1),
            ("a{x=\"1\",x=\"2\"} 1\n", 1),
            (&many_labels, 2),
            ("a{x=\"1} 1\n", 1),
            ("a 1 12.5\n", 1),
            ("a 1 2 3\n", 1),
            ("a\n", 1),
            ("a{} 1\n# TYPE b lollipop\n", 2),
            ("# TYPE a gauge\n# TYPE a counter\n", 2),
            ("a 1\n# TYPE a gauge\n", 2),
            ("# HELP a x\n# HELP a y\n", 2),
            ("a 1\n# EOF\nb 2\n", 3),
        ] {
            match parse(text) {
                Err(WireError::Exposition { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: expected an error, got {other:?}"),
            }
        }
    }

    #[test]
    fn families_group_their_suffixes() {
        let text = "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\ns_created 4\n\
                    # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n\
                    # TYPE g gauge\ng_sum 5\n";
        let fams = parse(text).unwrap();
        assert_eq!(fams.len(), 4);
        assert_eq!(fams[0].samples.len(), 4);
        assert_eq!(fams[1].samples.len(), 3);
        assert!(fams[2].samples.is_empty());
        assert_eq!(fams[3].name, "g_sum");
        assert_eq!(fams[3].kind, MetricKind::Untyped);
    }

    const OM: &str = r#"# TYPE acme_http_router_request counter
# HELP acme_http_router_request Total number of "requests".
# UNIT acme_http_router_request requests
acme_http_router_request_total{path="/api/v1",method="GET"} 1366 1520879607.789
acme_http_router_request_created{path="/api/v1",method="GET"} 1520430000.123
# TYPE foo histogram
foo_bucket{le="0.01"} 0
foo_bucket{le="0.1"} 8 # {} 0.054
foo_bucket{le="1"} 11 # {trace_id="KOO5S4vxi0o"} 0.67
foo_bucket{le="10"} 17 # {trace_id="oHg5SJYRHA0"} 9.8 1520879607.789
foo_bucket{le="+Inf"} 17 # this is { not an exemplar
foo_count 17
foo_sum 324789.3
foo_created 1520430000.123
# TYPE build info
build_info{version="1.2"} 1
# TYPE door stateset
door{door="open"} 1
door{door="closed"} 0
# TYPE q gaugehistogram
q_bucket{le="+Inf"} 3
q_gcount 3
q_gsum 7
# EOF
"#;

    #[test]
    fn parses_openmetrics() {
        let fams = parse(OM).unwrap();
        assert_eq!(fams.len(), 5);
        let c = &fams[0];
        assert_eq!(c.kind, MetricKind::Counter);
        assert_eq!(c.unit.as_deref(), Some("requests"));
        assert_eq!(c.help.as_deref(), Some("Total number of \"requests\"."));
        assert_eq!(c.samples.len(), 2);
        assert_eq!(c.samples[0].name, "acme_http_router_request_total");
        assert_eq!(c.samples[0].timestamp_ms, Some(1_520_879_607_789));
        assert_eq!(c.samples[1].name, "acme_http_router_request_created");
        assert_eq!(c.samples[1].value, 1_520_430_000.123);
        let h = &fams[1];
        assert_eq!(h.samples.len(), 8);
        assert_eq!(h.samples[0].exemplar, None);
        assert_eq!(
            h.samples[1].exemplar,
            Some(Exemplar {
                labels: vec![],
                value: 0.054,
                timestamp_ms: None
            })
        );
        let e = h.samples[3].exemplar.as_ref().unwrap();
        assert_eq!(e.labels, vec![("trace_id".into(), "oHg5SJYRHA0".into())]);
        assert_eq!((e.value, e.timestamp_ms), (9.8, Some(1_520_879_607_789)));
        assert_eq!(h.samples[4].exemplar, None, "malformed exemplar is dropped");
        assert_eq!(h.samples[4].value, 17.0);
        assert_eq!(fams[2].kind, MetricKind::Info);
        assert_eq!(fams[2].samples[0].name, "build_info");
        assert_eq!(fams[3].kind, MetricKind::StateSet);
        assert_eq!(fams[3].samples.len(), 2);
        assert_eq!(fams[4].kind, MetricKind::GaugeHistogram);
        assert_eq!(fams[4].samples.len(), 3);
    }

    #[test]
    fn openmetrics_needs_eof_when_asked_for() {
        let truncated = OM.replace("# EOF\n", "");
        assert!(parse_as(&truncated, Format::OpenMetrics).is_err());
        // Without the header, a body without `# EOF` is 0.0.4, where that timestamp is invalid.
        assert!(parse(&truncated).is_err());
    }

    #[test]
    fn openmetrics_timestamps() {
        for (tok, ms) in [
            ("1520879607", 1_520_879_607_000),
            ("1520879607.7", 1_520_879_607_700),
            ("1520879607.789", 1_520_879_607_789),
            ("1520879607.7899", 1_520_879_607_789),
            ("-1.25", -1250),
            ("-1.2505", -1251),
            ("1.5e3", 1_500_000),
            (".5", 500),
        ] {
            assert_eq!(seconds_to_ms(tok), Some(ms), "{tok}");
        }
        for bad in ["", ".", "1.2.3", "abc", "1e400", "NaN", "-"] {
            assert_eq!(seconds_to_ms(bad), None, "{bad}");
        }
        for ms in [
            0i64,
            1,
            -1,
            999,
            -999,
            -1000,
            -1001,
            1_520_879_607_789,
            i64::MIN,
            i64::MAX,
        ] {
            let mut s = String::new();
            write_seconds(&mut s, ms);
            assert_eq!(seconds_to_ms(&s), Some(ms), "{ms} -> {s}");
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Format::from_content_type("text/plain; version=0.0.4; charset=utf-8"),
            Some(Format::PrometheusText)
        );
        assert_eq!(
            Format::from_content_type("application/openmetrics-text; version=1.0.0"),
            Some(Format::OpenMetrics)
        );
        assert_eq!(
            Format::from_content_type("application/vnd.google.protobuf"),
            None
        );
        for f in [Format::PrometheusText, Format::OpenMetrics] {
            assert_eq!(Format::from_content_type(f.content_type()), Some(f));
        }
    }

    #[test]
    fn encode_round_trips_and_flattens() {
        let fams = parse(NODE).unwrap();
        let text = encode(&fams);
        let again = parse(&text).unwrap();
        assert_eq!(again.len(), fams.len());
        for (a, b) in fams.iter().zip(&again) {
            assert_eq!((&a.name, &a.help, a.kind), (&b.name, &b.help, b.kind));
            assert_eq!(a.samples.len(), b.samples.len());
            for (x, y) in a.samples.iter().zip(&b.samples) {
                assert_eq!(
                    (&x.name, &x.labels, x.timestamp_ms),
                    (&y.name, &y.labels, y.timestamp_ms)
                );
                assert_eq!(x.value.to_bits(), y.value.to_bits());
            }
        }
        let om = parse(OM).unwrap();
        assert_eq!(parse(&encode_openmetrics(&om)).unwrap(), om);

        let flat: Vec<FlatSample> = samples(&fams).collect();
        assert_eq!(
            flat.len(),
            fams.iter().map(|f| f.samples.len()).sum::<usize>()
        );
        let fs = flat
            .iter()
            .find(|s| s.name == "node_filesystem_avail_bytes")
            .unwrap();
        let keys: Vec<&str> = fs.labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["__name__", "device", "fstype", "mountpoint"]);
        assert_eq!(fs.labels[0].1, "node_filesystem_avail_bytes");
    }

    #[test]
    fn scrape_to_remote_write() {
        let req = to_remote_write(&parse(NODE).unwrap(), 1_700_000_099_000);
        assert_eq!(req.timeseries.len(), 20);
        for ts in &req.timeseries {
            assert_eq!(
                crate::remote_write::check_series(&ts.labels),
                Ok(()),
                "{ts:?}"
            );
        }
        let cpu = &req.timeseries[8];
        assert_eq!(cpu.metric_name(), Some("node_cpu_seconds_total"));
        let names: Vec<&str> = cpu.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "cpu", "mode"]);
        assert_eq!(cpu.samples[0].timestamp, 1_700_000_099_000);
        let proc = req
            .timeseries
            .iter()
            .find(|t| t.metric_name() == Some("process_start_time_seconds"))
            .unwrap();
        assert_eq!(proc.samples[0].timestamp, 1_700_000_000_123);
        assert_eq!(req.metadata.len(), 8);
        assert_eq!(
            req.metadata[0].r#type,
            crate::remote_write::MetricType::Summary as i32
        );
        assert_eq!(req.metadata[0].metric_family_name, "go_gc_duration_seconds");
        assert_eq!(
            req.metadata[7].r#type,
            crate::remote_write::MetricType::Unknown as i32
        );
    }

    #[test]
    fn encode_writes_what_prometheus_reads() {
        let mut f = MetricFamily::new("x_total", MetricKind::Counter);
        f.help = Some("a \\ b\nc".into());
        f.samples.push(ExpoSample {
            timestamp_ms: Some(1_700_000_000_000),
            ..ExpoSample::new("x_total", vec![("l".into(), "q\"\\\n".into())], 1e20)
        });
        f.samples.push(ExpoSample::new("x_total", vec![], f64::NAN));
        let mut i = MetricFamily::new("b", MetricKind::Info);
        i.samples.push(ExpoSample::new("b_info", vec![], 1.0));
        assert_eq!(
            encode(&[f, i]),
            "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\n\
             x_total{l=\"q\\\"\\\\\\n\"} 1e20 1700000000000\nx_total NaN\n\
             # TYPE b untyped\nb_info 1\n"
        );
    }
}
