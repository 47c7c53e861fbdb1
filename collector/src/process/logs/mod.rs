//! Log stages, after Alloy's `loki.process` stages, and the helpers they share: compiling a
//! regex into a [`BuildError`] naming its key, the `{ target = "source" }` name maps (empty
//! source = same name) of `json`, `logfmt`, `labels` and `structured_metadata`, Loki's label name
//! rules, reading a stage's input (an extracted field or the line) and counting parse failures.
//!
//! Parsing stages never drop what they cannot parse (unless told to, as `logs.json`'s
//! `drop_malformed`): the entry goes on unchanged, fields included, and is counted in the stage's
//! [`ParseFailures`] (and logged at debug level, as Alloy does).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::event::LogRecord;
use crate::sources::BuildError;

pub mod cri;
pub mod docker;
pub mod drop;
pub mod json;
pub mod labels;
pub mod logfmt;
pub mod output;
pub mod regex;
pub mod static_labels;
pub mod structured_metadata;
pub mod timestamp;

#[cfg(test)]
mod pipeline_tests;
#[cfg(test)]
mod proptests;

/// A [`BuildError::Invalid`] for `key`.
pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> BuildError {
    BuildError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// Compiles an RE2-like regex (Rust's `regex` crate: no backreferences or lookaround, linear
/// time), naming `key` when it is not valid.
pub(crate) fn compile_regex(key: &str, pattern: &str) -> Result<::regex::Regex, BuildError> {
    ::regex::Regex::new(pattern).map_err(|e| invalid(key, format!("bad regex: {e}")))
}

/// Is `name` a name Loki takes for a stream label: `[a-zA-Z_][a-zA-Z0-9_]*`, and not starting
/// with `__` (reserved for internal labels, which are not sent)?
pub fn is_loki_label_name(name: &str) -> bool {
    wire::labels::is_valid_label_name(name) && !name.starts_with("__")
}

/// Checks a configured label name against [`is_loki_label_name`].
pub(crate) fn check_label_name(key: &str, name: &str) -> Result<(), BuildError> {
    if is_loki_label_name(name) {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!(
                "{name:?} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
            ),
        ))
    }
}

/// A `{ target = "source" }` map from a stage's config, an empty source meaning the target's own
/// name (Alloy's convention), kept as pairs in name order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NameMap(Vec<(String, String)>);

impl NameMap {
    /// From the config's map under `key`; `label_names` checks the targets are label names.
    pub(crate) fn new(
        key: &str,
        map: BTreeMap<String, String>,
        label_names: bool,
    ) -> Result<Self, BuildError> {
        if map.is_empty() {
            return Err(invalid(key, "must name at least one entry"));
        }
        let mut pairs = Vec::with_capacity(map.len());
        for (target, source) in map {
            if label_names {
                check_label_name(&format!("{key}.{target}"), &target)?;
            }
            let source = if source.is_empty() {
                target.clone()
            } else {
                source
            };
            pairs.push((target, source));
        }
        Ok(NameMap(pairs))
    }

    /// `(target, source)` pairs.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(t, s)| (t.as_str(), s.as_str()))
    }
}

/// What a stage reads: the extracted field `source`, or the line when there is none. `None` when
/// the field is not there.
pub(crate) fn input<'a>(record: &'a LogRecord, source: Option<&str>) -> Option<&'a str> {
    match source {
        Some(field) => record.fields.get(field).map(String::as_str),
        None => Some(record.line.as_str()),
    }
}

/// Counts the entries a parsing stage could not parse. (The stage trait has no way to hand
/// counts to the self-metrics yet; stages expose theirs as `failures()`.)
#[derive(Debug, Default)]
pub struct ParseFailures(AtomicU64);

impl ParseFailures {
    /// Counts one entry `stage` could not parse, leaving the entry as it is.
    pub(crate) fn record(&self, stage: &str, record: &LogRecord) {
        self.0.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            stage,
            line_bytes = record.line.len(),
            "entry not parsed, passed on unchanged"
        );
    }

    /// Entries not parsed so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A record for tests: `line` with labels `{job="test"}`.
#[cfg(test)]
pub(crate) fn record(line: &str) -> LogRecord {
    LogRecord {
        labels: [("job", "test")].into_iter().collect(),
        line: line.to_string(),
        ..Default::default()
    }
}

#[cfg(test)]
pub(crate) use crate::process::test_util::{invalid_key, table};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_map_fills_empty_sources_and_checks_label_names() {
        let m: BTreeMap<String, String> = [("level", ""), ("svc", "service.name")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let nm = NameMap::new("values", m, true).unwrap();
        assert_eq!(
            nm.iter().collect::<Vec<_>>(),
            vec![("level", "level"), ("svc", "service.name")]
        );
        let bad: BTreeMap<String, String> = [("bad-name".to_string(), String::new())].into();
        let err = NameMap::new("values", bad, true).unwrap_err().to_string();
        assert!(err.starts_with("values.bad-name:"), "{err}");
        assert!(NameMap::new("values", BTreeMap::new(), false).is_err());
        assert!(!is_loki_label_name("__internal"));
        assert!(is_loki_label_name("_x9"));
    }

    #[test]
    fn bad_regex_names_its_key() {
        let err = compile_regex("expression", "(unclosed").unwrap_err();
        assert!(matches!(err, BuildError::Invalid { ref key, .. } if key == "expression"));
    }
}
