//! `logs.drop`: drops entries, as Alloy's `stage.drop`. Every criterion given must hold for an
//! entry to be dropped (AND); use several stages for OR.
//!
//! ```toml
//! type = "logs.drop"
//! source = "level"              # extracted field(s), comma-separated; none = the line
//! separator = ";"               # joins several source values (default ";")
//! expression = "^(debug|trace)$"  # regex the source (or the line) must match, or:
//! value = "debug"               # exact value of the source (needs `source`)
//! older_than = "24h"            # entry time before now - this
//! longer_than = "8KiB"          # line longer than this many bytes (number or 8KB, 1MiB, ...)
//! labels = { job = "pos|till" } # every named label must fully match its regex
//! drop_counter_reason = "drop_stage"  # the reason drops are counted under (default)
//! ```
//!
//! A `source` with neither `expression` nor `value` drops entries that have all the fields; when
//! a source field is missing, nothing is dropped, as in Alloy.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{compile_regex, invalid};
use crate::event::{LogBatch, LogRecord};
use crate::process::{Drops, Stage};
use crate::sources::BuildError;

/// The reason drops are counted under unless `drop_counter_reason` says otherwise.
pub const DEFAULT_REASON: &str = "drop_stage";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    source: Option<String>,
    #[serde(default = "default_separator")]
    separator: String,
    #[serde(default)]
    expression: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default, deserialize_with = "crate::serde_util::opt_duration")]
    older_than: Option<Duration>,
    #[serde(default)]
    longer_than: Option<ByteSize>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default = "default_reason")]
    drop_counter_reason: String,
}

fn default_separator() -> String {
    ";".into()
}

fn default_reason() -> String {
    DEFAULT_REASON.into()
}

/// A size: a number of bytes, or a string with a unit (B, KB/KiB, MB/MiB, GB/GiB; all base 2,
/// as Alloy's).
#[derive(Deserialize)]
#[serde(untagged)]
enum ByteSize {
    Bytes(u64),
    Text(String),
}

impl ByteSize {
    fn bytes(&self) -> Option<u64> {
        match self {
            ByteSize::Bytes(n) => Some(*n),
            ByteSize::Text(s) => {
                let s = s.trim();
                let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
                let n: u64 = s[..split].parse().ok()?;
                let mult: u64 = match s[split..].trim() {
                    "" | "B" => 1,
                    "KB" | "KiB" | "K" => 1 << 10,
                    "MB" | "MiB" | "M" => 1 << 20,
                    "GB" | "GiB" | "G" => 1 << 30,
                    _ => return None,
                };
                n.checked_mul(mult)
            }
        }
    }
}

/// What the source (or line) must satisfy.
enum Match {
    Regex(::regex::Regex),
    Value(String),
    /// The source fields exist.
    Present,
}

/// The `logs.drop` stage.
pub struct Drop {
    sources: Vec<String>,
    separator: String,
    matcher: Option<Match>,
    older_than: Option<Duration>,
    longer_than: Option<u64>,
    labels: Vec<(String, ::regex::Regex)>,
    reason: String,
}

impl Drop {
    pub fn build(table: toml::Table) -> Result<Self, BuildError> {
        let c: Config = BuildError::parse(table)?;
        let sources: Vec<String> = c
            .source
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let matcher = match (c.expression, c.value) {
            (Some(_), Some(_)) => {
                return Err(invalid("value", "cannot be used together with expression"));
            }
            (Some(e), None) => Some(Match::Regex(compile_regex("expression", &e)?)),
            (None, Some(_)) if sources.is_empty() => {
                return Err(invalid("value", "needs a source to compare with"));
            }
            (None, Some(v)) => Some(Match::Value(v)),
            (None, None) if !sources.is_empty() => Some(Match::Present),
            (None, None) => None,
        };
        let longer_than = match c.longer_than {
            None => None,
            Some(b) => Some(b.bytes().ok_or_else(|| {
                invalid(
                    "longer_than",
                    "not a size: a number of bytes or e.g. 8KB, 1MiB",
                )
            })?),
        };
        let labels = c
            .labels
            .into_iter()
            .map(|(name, re)| {
                let key = format!("labels.{name}");
                compile_regex(&key, &format!("^(?:{re})$")).map(|re| (name, re))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if matcher.is_none() && c.older_than.is_none() && longer_than.is_none() && labels.is_empty()
        {
            return Err(invalid(
                "expression",
                "a drop stage needs at least one of source, expression, older_than, longer_than or labels",
            ));
        }
        if c.drop_counter_reason.is_empty() {
            return Err(invalid("drop_counter_reason", "must not be empty"));
        }
        Ok(Drop {
            sources,
            separator: c.separator,
            matcher,
            older_than: c.older_than,
            longer_than,
            labels,
            reason: c.drop_counter_reason,
        })
    }

    fn should_drop(&self, record: &LogRecord, cutoff_ns: Option<i64>) -> bool {
        if let Some(cutoff) = cutoff_ns
            && record.timestamp_ns >= cutoff
        {
            return false;
        }
        if let Some(max) = self.longer_than
            && record.line.len() as u64 <= max
        {
            return false;
        }
        let labels_match = self
            .labels
            .iter()
            .all(|(name, re)| re.is_match(record.labels.get(name).unwrap_or("")));
        if !labels_match {
            return false;
        }
        let Some(matcher) = &self.matcher else {
            return true;
        };
        let subject = if self.sources.is_empty() {
            record.line.clone()
        } else {
            let mut values = Vec::with_capacity(self.sources.len());
            for s in &self.sources {
                match record.fields.get(s) {
                    Some(v) => values.push(v.as_str()),
                    None => return false,
                }
            }
            values.join(&self.separator)
        };
        match matcher {
            Match::Regex(re) => re.is_match(&subject),
            Match::Value(v) => subject == *v,
            Match::Present => true,
        }
    }
}

impl Stage<LogBatch> for Drop {
    fn process(&self, batch: &mut LogBatch, drops: &mut Drops) {
        let cutoff_ns = self.older_than.map(|d| {
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
            now.saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        });
        let before = batch.len();
        batch.retain(|r| !self.should_drop(r, cutoff_ns));
        drops.add(&self.reason, (before - batch.len()) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::logs::{invalid_key, record, table};

    fn run(src: &str, batch: &mut LogBatch) -> Drops {
        let stage = Drop::build(table(src)).unwrap();
        let mut drops = Drops::default();
        stage.process(batch, &mut drops);
        drops
    }

    fn with_level(line: &str, level: Option<&str>) -> LogRecord {
        let mut r = record(line);
        if let Some(l) = level {
            r.fields.insert("level".into(), l.into());
        }
        r
    }

    #[test]
    fn drops_by_source_value_and_expression() {
        let mut batch = vec![
            with_level("level=debug msg=poll", Some("debug")),
            with_level("level=info msg=sale", Some("info")),
            with_level("no level", None),
        ];
        let drops = run(r#"source = "level""#, &mut batch.clone());
        assert_eq!(
            drops.0[DEFAULT_REASON], 2,
            "source alone: drop where present"
        );

        let drops = run(
            "source = \"level\"\nvalue = \"debug\"\ndrop_counter_reason = \"debug_logs\"",
            &mut batch,
        );
        assert_eq!(drops.0["debug_logs"], 1);
        assert_eq!(batch.len(), 2);

        let mut batch = vec![record("GET /healthz 200"), record("POST /sale 201")];
        let drops = run(r#"expression = "/healthz""#, &mut batch);
        assert_eq!(drops.0[DEFAULT_REASON], 1);
        assert_eq!(batch[0].line, "POST /sale 201");
    }

    #[test]
    fn several_sources_join_with_the_separator() {
        let mut r = record("x");
        r.fields.insert("a".into(), "1".into());
        r.fields.insert("b".into(), "2".into());
        let mut batch = vec![r.clone(), record("y")];
        let drops = run(
            "source = \"a, b\"\nseparator = \"-\"\nvalue = \"1-2\"",
            &mut batch,
        );
        assert_eq!(drops.0[DEFAULT_REASON], 1);
        assert_eq!(batch[0].line, "y");
    }

    #[test]
    fn drops_old_long_and_labelled_entries_all_criteria_required() {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
        let hour = 3_600_000_000_000;
        let mut old = record("old");
        old.timestamp_ns = now - 2 * hour;
        let mut fresh = record("fresh");
        fresh.timestamp_ns = now;
        let mut batch = vec![old, fresh];
        let drops = run(r#"older_than = "1h""#, &mut batch);
        assert_eq!(drops.0[DEFAULT_REASON], 1);
        assert_eq!(batch[0].line, "fresh");

        let mut batch = vec![record(&"x".repeat(2048)), record("short")];
        run(r#"longer_than = "1KB""#, &mut batch);
        assert_eq!(batch.len(), 1);
        let mut batch = vec![record(&"x".repeat(11)), record("short")];
        run("longer_than = 10", &mut batch);
        assert_eq!(batch[0].line, "short");

        let mut other = record(&"x".repeat(20));
        other.labels.insert("job", "router");
        let mut batch = vec![record(&"x".repeat(20)), other, record("short")];
        run(
            "longer_than = 10\nlabels = { job = \"test|pos\" }",
            &mut batch,
        );
        assert_eq!(batch.len(), 2, "long AND job matches");
    }

    #[test]
    fn bad_settings_name_their_key() {
        for (src, key) in [
            ("", "expression"),
            ("expression = \"(\"", "expression"),
            ("value = \"x\"", "value"),
            ("source = \"a\"\nvalue = \"x\"\nexpression = \"x\"", "value"),
            ("longer_than = \"lots\"", "longer_than"),
            ("labels = { job = \"(\" }", "labels.job"),
        ] {
            assert_eq!(invalid_key(Drop::build(table(src))), key, "{src}");
        }
        assert!(matches!(
            Drop::build(table("older_than = \"soon\"")),
            Err(BuildError::Invalid { key, .. }) if key == "older_than"
        ));
    }
}
