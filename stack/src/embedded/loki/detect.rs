//! What Loki 3 adds to a push before storing it: the `service_name` stream label
//! (`discover_service_name`) and the `detected_level` structured metadata (`discover_log_levels`),
//! following Loki 3.7's `pkg/loghttp/push/push.go` and `pkg/distributor/field_detection.go`.
//!
//! - `service_name`: when a stream has none, the value of the first label of
//!   [`DEFAULT_SERVICE_NAME_LABELS`] it carries, else `unknown_service`.
//! - `detected_level`: when an entry has none, the level from the stream's labels, else from its
//!   structured metadata (fields of [`LEVEL_FIELDS`]), else from its OTLP `severity_number`, else
//!   from the line (a JSON or logfmt level field, else the first level word in the line), else
//!   `unknown`. A `detected_level` that is already there is normalised (`ERR` -> `error`).

use super::store::Labels;

/// The label Loki fills in.
pub const SERVICE_NAME: &str = "service_name";
/// Its value when no label of the list is present.
pub const UNKNOWN_SERVICE: &str = "unknown_service";
/// The structured metadata Loki fills in.
pub const DETECTED_LEVEL: &str = "detected_level";

/// Loki's default `discover_service_name` (pkg/validation/limits.go), in priority order.
pub const DEFAULT_SERVICE_NAME_LABELS: &[&str] = &[
    "service",
    "app",
    "application",
    "app_name",
    "name",
    "app_kubernetes_io_name",
    "container",
    "container_name",
    "k8s_container_name",
    "component",
    "workload",
    "job",
    "k8s_job_name",
];

/// Loki's `DefaultAllowedLevelFields`: names a level is read from, in priority order
/// (case-sensitive for labels, metadata and JSON keys; case-insensitive for logfmt keys).
pub const LEVEL_FIELDS: &[&str] = &[
    "level",
    "LEVEL",
    "Level",
    "log.level",
    "severity",
    "SEVERITY",
    "Severity",
    "SeverityText",
    "lvl",
    "LVL",
    "Lvl",
    "severity_text",
    "Severity_Text",
    "SEVERITY_TEXT",
];

/// Loki's `log_level_from_json_max_depth` default: top-level keys and one level of nesting.
const JSON_MAX_DEPTH: usize = 2;

/// Adds `service_name` to sorted `labels` when missing, as Loki's push parser does.
pub fn add_service_name(labels: &mut Labels, discover: &[String]) {
    if discover.is_empty() || labels.iter().any(|(k, _)| k == SERVICE_NAME) {
        return;
    }
    let value = discover
        .iter()
        .find_map(|name| {
            labels
                .iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| UNKNOWN_SERVICE.to_string());
    let at = labels
        .iter()
        .position(|(k, _)| k.as_str() > SERVICE_NAME)
        .unwrap_or(labels.len());
    labels.insert(at, (SERVICE_NAME.to_string(), value));
}

/// Adds or normalises `detected_level` in an entry's structured metadata.
pub fn add_detected_level(stream: &Labels, metadata: &mut Labels, line: &str) {
    if let Some((_, v)) = metadata.iter_mut().find(|(k, _)| k == DETECTED_LEVEL) {
        *v = normalize(v).to_string();
        return;
    }
    let level = field(stream)
        .or_else(|| field(metadata))
        .map(|v| normalize(v).to_string())
        .unwrap_or_else(|| {
            match metadata
                .iter()
                .find(|(k, _)| k == "severity_number")
                .map(|(_, v)| v.as_str())
            {
                Some(n) if !n.is_empty() => from_severity_number(n).to_string(),
                _ => from_line(line).to_string(),
            }
        });
    metadata.push((DETECTED_LEVEL.to_string(), level));
}

/// The value of the first [`LEVEL_FIELDS`] name present.
fn field(labels: &Labels) -> Option<&str> {
    LEVEL_FIELDS.iter().find_map(|name| {
        labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    })
}

/// A known level word (any case, or its abbreviation) as Loki's lower-case level, or `None`.
fn known(v: &str) -> Option<&'static str> {
    const WORDS: &[(&str, &str)] = &[
        ("trace", "trace"),
        ("trc", "trace"),
        ("debug", "debug"),
        ("dbg", "debug"),
        ("info", "info"),
        ("inf", "info"),
        ("information", "info"),
        ("warn", "warn"),
        ("wrn", "warn"),
        ("warning", "warn"),
        ("error", "error"),
        ("err", "error"),
        ("critical", "critical"),
        ("fatal", "fatal"),
    ];
    WORDS
        .iter()
        .find(|(w, _)| v.eq_ignore_ascii_case(w))
        .map(|(_, l)| *l)
}

/// Loki's `normalizeLogLevel`: a known level word in Loki's spelling, anything else unchanged.
fn normalize(v: &str) -> &str {
    known(v).unwrap_or(v)
}

/// The level of an OTLP severity number (the OTel log data model's ranges).
fn from_severity_number(n: &str) -> &'static str {
    match n.parse::<i64>() {
        Err(_) => "info",
        Ok(0) => "unknown",
        Ok(1..=4) => "trace",
        Ok(5..=8) => "debug",
        Ok(9..=12) => "info",
        Ok(13..=16) => "warn",
        Ok(17..=20) => "error",
        Ok(21..=24) => "fatal",
        Ok(_) => "unknown",
    }
}

/// Loki's `extractLogLevelFromLogLine`.
fn from_line(line: &str) -> &'static str {
    let trimmed = line.trim();
    let value = if trimmed.starts_with('{') && trimmed.ends_with('}') {
        json_level(trimmed)
    } else if line.contains('=') {
        logfmt_level(line)
    } else {
        None
    };
    value
        .and_then(|v| known(&v))
        .unwrap_or_else(|| word_level(line))
}

/// The first string value under a [`LEVEL_FIELDS`] key, in document order, searching nested
/// objects down to [`JSON_MAX_DEPTH`]; `None` for invalid JSON.
fn json_level(line: &str) -> Option<String> {
    let doc: Json = serde_json::from_str(line).ok()?;
    fn walk(j: &Json, depth: usize) -> Option<String> {
        let Json::Object(fields) = j else {
            return None;
        };
        if depth >= JSON_MAX_DEPTH {
            return None;
        }
        fields.iter().find_map(|(k, v)| match v {
            Json::String(s) if LEVEL_FIELDS.contains(&k.as_str()) => Some(s.clone()),
            Json::Object(_) => walk(v, depth + 1),
            _ => None,
        })
    }
    walk(&doc, 0)
}

/// The value of the highest-priority [`LEVEL_FIELDS`] key (case-insensitive) of a logfmt line.
fn logfmt_level(line: &str) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for (k, v) in logfmt_pairs(line) {
        if let Some(rank) = LEVEL_FIELDS.iter().position(|f| f.eq_ignore_ascii_case(&k))
            && best.as_ref().is_none_or(|(b, _)| rank < *b)
        {
            best = Some((rank, v));
        }
    }
    best.map(|(_, v)| v)
}

/// Key/value pairs of a logfmt line (a bare key has an empty value; a bad quote ends the scan,
/// as go-logfmt's decoder stops at its first error).
fn logfmt_pairs(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return out;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        let mut value = String::new();
        if chars.next_if_eq(&'=').is_some() {
            if chars.next_if_eq(&'"').is_some() {
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => value.extend(chars.next()),
                        c => value.push(c),
                    }
                }
                if !closed {
                    return out;
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    value.push(c);
                }
            }
        }
        if !key.is_empty() {
            out.push((key, value));
        }
    }
}

/// Loki's `detectLevelFromLogLine`: the level word found earliest in the line (standing alone:
/// bounded by spaces, brackets, quotes, `=`, or followed by `:`/`,`/`!`), else `unknown`.
fn word_level(line: &str) -> &'static str {
    const PATTERNS: &[(&str, &str)] = &[
        ("trace", "trace"),
        ("debug", "debug"),
        ("fatal", "fatal"),
        ("critical", "critical"),
        ("error", "error"),
        ("err", "error"),
        ("warning", "warn"),
        ("warn", "warn"),
        ("info", "info"),
    ];
    let lower = line.to_lowercase();
    let bytes = lower.as_bytes();
    let left = |pos: usize| pos == 0 || b" \t\n[({\"=".contains(&bytes[pos - 1]);
    let right = |pos: usize| pos >= bytes.len() || b" \t\n[](){}:,!\"=".contains(&bytes[pos]);
    let mut best = (lower.len(), "unknown");
    for (word, level) in PATTERNS {
        let found = lower
            .match_indices(word)
            .map(|(i, _)| i)
            .find(|&i| left(i) && right(i + word.len()));
        if let Some(pos) = found
            && pos < best.0
        {
            best = (pos, level);
            if pos == 0 {
                break;
            }
        }
    }
    best.1
}

/// A JSON value keeping object keys in document order (Loki walks them in that order).
enum Json {
    String(String),
    Object(Vec<(String, Json)>),
    Other,
}

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::String(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Json, E> {
                Ok(Json::String(v))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Json, E> {
                Ok(Json::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Json, E> {
                Ok(Json::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Json, E> {
                Ok(Json::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Json, E> {
                Ok(Json::Other)
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                while a.next_element::<Json>()?.is_some() {}
                Ok(Json::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Json>()? {
                    fields.push((k, v));
                }
                Ok(Json::Object(fields))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn defaults() -> Vec<String> {
        DEFAULT_SERVICE_NAME_LABELS
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn service_name_from_the_first_listed_label_else_unknown() {
        let mut l = labels(&[("app", "shop"), ("job", "pos")]);
        add_service_name(&mut l, &defaults());
        assert_eq!(
            l,
            labels(&[("app", "shop"), ("job", "pos"), ("service_name", "shop")])
        );
        let mut l = labels(&[("job", "pos"), ("zone", "eu")]);
        add_service_name(&mut l, &defaults());
        assert_eq!(
            l,
            labels(&[("job", "pos"), ("service_name", "pos"), ("zone", "eu")])
        );
        let mut l = labels(&[("device", "d1")]);
        add_service_name(&mut l, &defaults());
        assert_eq!(l[1], ("service_name".into(), "unknown_service".into()));
        let mut l = Labels::new();
        add_service_name(&mut l, &defaults());
        assert_eq!(l, labels(&[("service_name", "unknown_service")]));
        // kept when present; nothing added when discovery is off
        let mut l = labels(&[("app", "a"), ("service_name", "mine")]);
        add_service_name(&mut l, &defaults());
        assert_eq!(l, labels(&[("app", "a"), ("service_name", "mine")]));
        let mut l = labels(&[("app", "a")]);
        add_service_name(&mut l, &[]);
        assert_eq!(l, labels(&[("app", "a")]));
    }

    fn level(stream: &[(&str, &str)], md: &[(&str, &str)], line: &str) -> String {
        let mut md = labels(md);
        add_detected_level(&labels(stream), &mut md, line);
        md.iter()
            .find(|(k, _)| k == DETECTED_LEVEL)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    #[test]
    fn detected_level_sources_in_loki_order() {
        // an existing value is normalised, not replaced
        assert_eq!(level(&[], &[("detected_level", "ERR")], "debug"), "error");
        assert_eq!(level(&[], &[("detected_level", "odd")], "debug"), "odd");
        // stream label, then metadata, then severity_number, then the line
        assert_eq!(
            level(&[("level", "WARN")], &[("lvl", "debug")], "x"),
            "warn"
        );
        assert_eq!(level(&[], &[("severity", "Information")], "x"), "info");
        assert_eq!(level(&[], &[("level", "notice")], "x"), "notice");
        assert_eq!(level(&[], &[("severity_number", "17")], "debug"), "error");
        assert_eq!(level(&[], &[("severity_number", "0")], "x"), "unknown");
        assert_eq!(level(&[], &[("severity_number", "x")], "x"), "info");
    }

    #[test]
    fn detected_level_from_the_line() {
        assert_eq!(from_line(r#"{"msg":"a","level":"DEBUG"}"#), "debug");
        assert_eq!(from_line(r#"{"log":{"lvl":"wrn"}}"#), "warn");
        // deeper than two levels is not searched; the words of the line decide
        assert_eq!(from_line(r#"{"a":{"b":{"level":"wrn"}}}"#), "unknown");
        assert_eq!(from_line(r#"{"a":{"b":{"level":"error"}}}"#), "error");
        assert_eq!(from_line(r#"{"level":5,"msg":"fatal: x"}"#), "fatal");
        assert_eq!(from_line("ts=1 LEVEL=err msg=x"), "error");
        assert_eq!(
            from_line(r#"msg="info here" severity=warning level=debug"#),
            "debug"
        );
        assert_eq!(from_line("ts=1 msg=nothing"), "unknown");
        assert_eq!(
            from_line("2024-01-01 [ERROR] disk full, warn later"),
            "error"
        );
        assert_eq!(from_line("WARNING: low memory"), "warn");
        assert_eq!(from_line("misc:error and terrors"), "unknown");
        assert_eq!(from_line("checkout ok"), "unknown");
        assert_eq!(from_line("sale info=1"), "info");
        assert_eq!(from_line("sale device=7 info"), "info");
    }

    proptest::proptest! {
        /// Any line, however broken its JSON or logfmt, gets a level and never a panic.
        #[test]
        fn any_line_gets_a_level(line in ".{0,64}", json_ish in r#"\{("[a-zA-Z.]{0,6}":("[a-zA-Z]{0,8}"|\{|[0-9]),?){0,4}\}?"#) {
            for l in [line.as_str(), json_ish.as_str()] {
                let got = level(&[], &[], l);
                proptest::prop_assert!(!got.is_empty());
            }
        }
    }
}
