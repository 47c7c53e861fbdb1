//! `logs.logfmt`: reads logfmt keys (`level=info msg="payment ok" took=12ms`) into extracted
//! fields, as Alloy's `stage.logfmt`.
//!
//! ```toml
//! type = "logs.logfmt"
//! mapping = { level = "", duration = "took" }   # field = key; empty = the same name
//! source = "message"                            # extracted field to parse instead of the line
//! ```
//!
//! Quoted values take Go's escapes (`\"`, `\\`, `\n`, `\t`, `\r`, `\uXXXX`); a key without `=`
//! has an empty value; a later duplicate key wins. A line that is not logfmt (an unterminated
//! quote, `=` without a key) is left as it is, fields included, and counted.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{NameMap, ParseFailures, input};
use crate::event::LogBatch;
use crate::process::{Drops, Stage};
use crate::sources::BuildError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    mapping: BTreeMap<String, String>,
    #[serde(default)]
    source: Option<String>,
}

/// The `logs.logfmt` stage.
pub struct Logfmt {
    mapping: NameMap,
    source: Option<String>,
    failures: ParseFailures,
}

impl Logfmt {
    pub fn build(table: toml::Table) -> Result<Self, BuildError> {
        let c: Config = BuildError::parse(table)?;
        Ok(Logfmt {
            mapping: NameMap::new("mapping", c.mapping, false)?,
            source: c.source,
            failures: ParseFailures::default(),
        })
    }

    /// Entries that were not logfmt so far.
    pub fn failures(&self) -> u64 {
        self.failures.count()
    }
}

impl Stage<LogBatch> for Logfmt {
    fn process(&self, batch: &mut LogBatch, _drops: &mut Drops) {
        for record in batch.iter_mut() {
            let Some(text) = input(record, self.source.as_deref()) else {
                continue;
            };
            match parse(text) {
                Some(pairs) => {
                    for (field, key) in self.mapping.iter() {
                        // The last occurrence of a key wins.
                        if let Some((_, v)) = pairs.iter().rev().find(|(k, _)| k == key) {
                            record.fields.insert(field.to_string(), v.clone());
                        }
                    }
                }
                None => self.failures.record("logs.logfmt", record),
            }
        }
    }
}

/// The `key=value` pairs of a logfmt line, or `None` when it is not logfmt.
pub(crate) fn parse(line: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut rest = line;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Some(pairs);
        }
        let key_end = rest
            .find(|c: char| c == '=' || c == '"' || c.is_whitespace())
            .unwrap_or(rest.len());
        if key_end == 0 {
            return None; // '=' or '"' where a key should start
        }
        let key = rest[..key_end].to_string();
        rest = &rest[key_end..];
        let Some(after_eq) = rest.strip_prefix('=') else {
            if rest.starts_with('"') {
                return None;
            }
            pairs.push((key, String::new()));
            continue;
        };
        rest = after_eq;
        let value = if let Some(q) = rest.strip_prefix('"') {
            let (v, after) = unquote(q)?;
            rest = after;
            v
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let v = &rest[..end];
            if v.contains('"') {
                return None;
            }
            rest = &rest[end..];
            v.to_string()
        };
        pairs.push((key, value));
    }
}

/// A quoted value (after its opening quote) and what follows its closing quote.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'u' => {
                    let hex: String = (0..4)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    let c = u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .unwrap_or(char::REPLACEMENT_CHARACTER);
                    out.push(c);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::logs::{record, table};

    const SERVER_LINE: &str = r#"ts=2024-03-05T10:20:30.123Z level=warn caller=checkout.go:88 msg="payment gateway slow" store=S042 took=1.532s status=200 retried"#;

    #[test]
    fn extracts_mapped_keys_from_a_server_log() {
        let stage =
            Logfmt::build(table(r#"mapping = { level = "", duration = "took", message = "msg", retried = "", absent = "" }"#))
                .unwrap();
        let mut batch = vec![record(SERVER_LINE)];
        stage.process(&mut batch, &mut Drops::default());
        let f = &batch[0].fields;
        assert_eq!(f["level"], "warn");
        assert_eq!(f["duration"], "1.532s");
        assert_eq!(f["message"], "payment gateway slow");
        assert_eq!(f["retried"], "");
        assert!(!f.contains_key("absent") && !f.contains_key("store"));
    }

    #[test]
    fn quoted_values_unescape_and_source_fields_parse() {
        assert_eq!(
            parse(r#"a="x \"y\"\n\u00e9" b=2 a=3"#).unwrap(),
            vec![
                ("a".to_string(), "x \"y\"\né".to_string()),
                ("b".to_string(), "2".to_string()),
                ("a".to_string(), "3".to_string()),
            ]
        );
        let stage = Logfmt::build(table("mapping = { a = \"\" }\nsource = \"inner\"")).unwrap();
        let mut r = record("a=from_line");
        r.fields.insert("inner".into(), "a=from_field".into());
        let mut batch = vec![r];
        stage.process(&mut batch, &mut Drops::default());
        assert_eq!(batch[0].fields["a"], "from_field");
    }

    #[test]
    fn non_logfmt_lines_are_kept_and_counted() {
        let stage = Logfmt::build(table(r#"mapping = { level = "" }"#)).unwrap();
        let mut batch = vec![
            record(r#"level="unterminated"#),
            record("=oops"),
            record("level=info"),
        ];
        stage.process(&mut batch, &mut Drops::default());
        assert_eq!(batch.len(), 3);
        assert!(batch[0].fields.is_empty() && batch[1].fields.is_empty());
        assert_eq!(batch[2].fields["level"], "info");
        assert_eq!(stage.failures(), 2);
    }
}
