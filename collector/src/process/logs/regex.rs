//! `logs.regex`: named capture groups into extracted fields, as Alloy's `stage.regex`.
//!
//! ```toml
//! type = "logs.regex"
//! expression = '^<(?P<pri>\d+)>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) .*$'
//! source = "message"   # extracted field to match instead of the line (optional)
//! ```
//!
//! The syntax is RE2's as Rust's `regex` crate reads it (`(?P<name>...)` or `(?<name>...)`; no
//! backreferences or lookaround; matching in linear time). Groups that took part in the match set
//! their field (possibly to ""); a line that does not match is left as it is, as in Alloy.

use serde::Deserialize;

use super::{compile_regex, input, invalid};
use crate::event::LogBatch;
use crate::process::{Drops, Stage};
use crate::sources::BuildError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    expression: String,
    #[serde(default)]
    source: Option<String>,
}

/// The `logs.regex` stage.
pub struct Regex {
    re: ::regex::Regex,
    source: Option<String>,
}

impl Regex {
    pub fn build(table: toml::Table) -> Result<Self, BuildError> {
        let c: Config = BuildError::parse(table)?;
        let re = compile_regex("expression", &c.expression)?;
        if re.capture_names().all(|n| n.is_none()) {
            return Err(invalid(
                "expression",
                "has no named capture groups ((?P<name>...)), so it would extract nothing",
            ));
        }
        Ok(Regex {
            re,
            source: c.source,
        })
    }
}

impl Stage<LogBatch> for Regex {
    fn process(&self, batch: &mut LogBatch, _drops: &mut Drops) {
        for record in batch.iter_mut() {
            let Some(text) = input(record, self.source.as_deref()) else {
                continue;
            };
            let Some(caps) = self.re.captures(text) else {
                continue;
            };
            let found: Vec<(String, String)> = self
                .re
                .capture_names()
                .flatten()
                .filter_map(|name| Some((name.to_string(), caps.name(name)?.as_str().to_string())))
                .collect();
            record.fields.extend(found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::logs::{invalid_key, record, table};

    const RFC5424: &str = r#"'^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) (?P<sd>-|\[.*?\]) ?(?P<msg>.*)$'"#;

    #[test]
    fn parses_rfc5424_syslog_from_a_router() {
        let stage = Regex::build(table(&format!("expression = {RFC5424}"))).unwrap();
        let line = r#"<165>1 2024-03-05T10:20:30.003Z rtr-eu-042 bgpd 2231 ADJCHANGE [meta sequenceId="17"] neighbor 10.0.0.2 Down BGP Notification"#;
        let mut batch = vec![record(line), record("not syslog at all")];
        stage.process(&mut batch, &mut Drops::default());
        let f = &batch[0].fields;
        assert_eq!(f["pri"], "165");
        assert_eq!(f["ts"], "2024-03-05T10:20:30.003Z");
        assert_eq!(f["host"], "rtr-eu-042");
        assert_eq!(f["app"], "bgpd");
        assert_eq!(f["msgid"], "ADJCHANGE");
        assert_eq!(f["sd"], r#"[meta sequenceId="17"]"#);
        assert_eq!(f["msg"], "neighbor 10.0.0.2 Down BGP Notification");
        assert!(batch[1].fields.is_empty());
        assert_eq!(batch[1].line, "not syslog at all");
    }

    #[test]
    fn matches_a_source_field_and_skips_groups_that_did_not_take_part() {
        let stage = Regex::build(table(
            r#"
            expression = '^(?P<user>\w+)(?: from (?P<ip>\S+))?$'
            source = "who"
            "#,
        ))
        .unwrap();
        let mut r = record("line");
        r.fields.insert("who".into(), "alice".into());
        let mut batch = vec![r];
        stage.process(&mut batch, &mut Drops::default());
        assert_eq!(batch[0].fields["user"], "alice");
        assert!(!batch[0].fields.contains_key("ip"));
    }

    #[test]
    fn bad_or_useless_expressions_are_refused() {
        for src in ["expression = '(?P<a>'", "expression = 'no groups'"] {
            assert_eq!(invalid_key(Regex::build(table(src))), "expression", "{src}");
        }
    }
}
