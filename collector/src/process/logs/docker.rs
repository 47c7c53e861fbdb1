//! `logs.docker`: reads Docker's json-file log lines, as Alloy's `stage.docker`.
//!
//! ```toml
//! type = "logs.docker"   # no settings
//! ```
//!
//! `{"log":"GET /sale 200\n","stream":"stdout","time":"2024-03-05T10:20:30.123456789Z"}` becomes
//! the line `GET /sale 200` (without the trailing newline), the time of `time` (RFC3339Nano), the
//! label `stream="stdout"`, and the extracted fields `output`, `stream` and `timestamp` (Alloy's
//! names). A line that is not Docker JSON is left as it is and counted; an unreadable `time`
//! leaves the entry's time as it was. Docker splits lines
//! over 16 KiB into several entries; like Alloy, this stage does not join them.

use serde::Deserialize;

use super::ParseFailures;
use super::timestamp::parse_rfc3339;
use crate::event::{LabelCache, LogBatch};
use crate::process::{Drops, Stage};
use crate::sources::BuildError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {}

#[derive(Deserialize)]
struct DockerLine {
    log: String,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    time: Option<String>,
}

/// The `logs.docker` stage.
pub struct Docker {
    failures: ParseFailures,
}

impl Docker {
    pub fn build(table: toml::Table) -> Result<Self, BuildError> {
        let Config {} = BuildError::parse(table)?;
        Ok(Docker {
            failures: ParseFailures::default(),
        })
    }

    /// Lines that were not Docker JSON so far.
    pub fn failures(&self) -> u64 {
        self.failures.count()
    }
}

/// `line` without one trailing `\n` (or `\r\n`).
pub(crate) fn strip_newline(mut line: String) -> String {
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    line
}

impl Stage<LogBatch> for Docker {
    fn process(&self, batch: &mut LogBatch, _drops: &mut Drops) {
        let mut cache = LabelCache::default();
        for record in batch.iter_mut() {
            let Ok(parsed) = serde_json::from_str::<DockerLine>(&record.line) else {
                self.failures.record("logs.docker", record);
                continue;
            };
            let line = strip_newline(parsed.log);
            if let Some(stream) = parsed.stream.filter(|s| !s.is_empty()) {
                cache.set_label(&mut record.labels, "stream", &stream);
                record.fields.insert("stream".into(), stream);
            }
            if let Some(time) = parsed.time {
                if let Some(ns) = parse_rfc3339(&time) {
                    record.timestamp_ns = ns;
                }
                record.fields.insert("timestamp".into(), time);
            }
            record.fields.insert("output".into(), line.clone());
            record.line = line;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::logs::{record, table};

    #[test]
    fn parses_docker_json_lines() {
        let stage = Docker::build(table("")).unwrap();
        let mut batch = vec![
            record(
                r#"{"log":"2024-03-05 10:20:30 INFO sale completed store=S042\n","stream":"stdout","time":"2024-03-05T10:20:30.123456789Z"}"#,
            ),
            record(
                r#"{"log":"panic: printer on fire\r\n","stream":"stderr","time":"2024-03-05T10:20:31Z"}"#,
            ),
            record("plain text, not docker"),
        ];
        batch[2].timestamp_ns = 9;
        stage.process(&mut batch, &mut Drops::default());
        assert_eq!(
            batch[0].line,
            "2024-03-05 10:20:30 INFO sale completed store=S042"
        );
        assert_eq!(batch[0].timestamp_ns, 1_709_634_030_123_456_789);
        assert_eq!(batch[0].labels.get("stream"), Some("stdout"));
        assert_eq!(batch[0].fields["stream"], "stdout");
        assert_eq!(
            batch[0].fields["timestamp"],
            "2024-03-05T10:20:30.123456789Z"
        );
        assert_eq!(batch[0].fields["output"], batch[0].line);
        assert_eq!(batch[1].line, "panic: printer on fire");
        assert_eq!(batch[1].labels.get("stream"), Some("stderr"));
        assert_eq!(batch[2].line, "plain text, not docker");
        assert_eq!(batch[2].timestamp_ns, 9);
        assert!(batch[2].fields.is_empty());
        assert_eq!(stage.failures(), 1);
    }

    #[test]
    fn refuses_settings() {
        assert!(matches!(
            Docker::build(table("x = 1")),
            Err(BuildError::Config(_))
        ));
    }
}
