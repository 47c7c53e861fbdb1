//! `logs.json`: reads JSON values into extracted fields, as Alloy's `stage.json` (whose
//! JMESPath expressions are narrowed here to the paths people write: dotted keys, quoted keys and
//! array indexes).
//!
//! ```toml
//! type = "logs.json"
//! expressions = { level = "", user = "user.name", first_tag = "tags[0]", host = '"host.name"' }
//! source = "payload"       # extracted field to parse instead of the line (optional)
//! drop_malformed = false   # drop entries that are not a JSON object (reason "json_malformed")
//! ```
//!
//! An empty path is the field's own name. Strings are taken as they are, numbers and booleans
//! as JSON writes them, objects and arrays as compact JSON; `null` and missing paths set nothing.
//! A line that is not a JSON object is left as it is, fields included, and counted, unless
//! `drop_malformed`. A missing `source` field is skipped.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{NameMap, ParseFailures, input, invalid};
use crate::event::LogBatch;
use crate::process::{Drops, Stage};
use crate::sources::BuildError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    expressions: BTreeMap<String, String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    drop_malformed: bool,
}

/// The reason entries dropped by `drop_malformed` are counted under.
pub const DROP_REASON: &str = "json_malformed";

/// The `logs.json` stage.
pub struct Json {
    fields: Vec<(String, Vec<Step>)>,
    /// The distinct top-level keys the paths start with: only their values are built, the rest
    /// of the object is checked and skipped.
    roots: Vec<String>,
    source: Option<String>,
    drop_malformed: bool,
    failures: ParseFailures,
}

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    /// An array index; negative counts from the end.
    Index(i64),
}

impl Json {
    pub fn build(table: toml::Table) -> Result<Self, BuildError> {
        let c: Config = BuildError::parse(table)?;
        let map = NameMap::new("expressions", c.expressions, false)?;
        let fields: Vec<(String, Vec<Step>)> = map
            .iter()
            .map(|(field, path)| {
                parse_path(path)
                    .map(|p| (field.to_string(), p))
                    .map_err(|e| invalid(format!("expressions.{field}"), e))
            })
            .collect::<Result<_, _>>()?;
        let mut roots: Vec<String> = Vec::new();
        for (_, path) in &fields {
            if let Some(Step::Key(k)) = path.first()
                && !roots.contains(k)
            {
                roots.push(k.clone());
            }
        }
        Ok(Json {
            fields,
            roots,
            source: c.source,
            drop_malformed: c.drop_malformed,
            failures: ParseFailures::default(),
        })
    }

    /// Entries that were not JSON objects so far.
    pub fn failures(&self) -> u64 {
        self.failures.count()
    }
}

impl Stage<LogBatch> for Json {
    fn process(&self, batch: &mut LogBatch, drops: &mut Drops) {
        let before = batch.len();
        let mut values: Vec<Option<Value>> = vec![None; self.roots.len()];
        batch.retain_mut(|record| {
            let Some(text) = input(record, self.source.as_deref()) else {
                return true;
            };
            values.iter_mut().for_each(|v| *v = None);
            match pick(text, &self.roots, &mut values) {
                Ok(()) => {
                    for (field, path) in &self.fields {
                        let Some((Step::Key(k), rest)) = path.split_first() else {
                            continue; // an index on the top-level object: nothing
                        };
                        let Some(root) = self
                            .roots
                            .iter()
                            .position(|r| r == k)
                            .and_then(|i| values[i].as_ref())
                        else {
                            continue;
                        };
                        if let Some(v) = lookup(root, rest).and_then(value_to_string) {
                            record.fields.set(field, v);
                        }
                    }
                    true
                }
                _ if self.drop_malformed => false,
                _ => {
                    self.failures.record("logs.json", record);
                    true
                }
            }
        });
        drops.add(DROP_REASON, (before - batch.len()) as u64);
    }
}

/// Reads `text` as one JSON object, building the values of the top-level keys in `roots` only
/// (into `out`, by position; a later duplicate key wins, as with a whole `Value`) and checking
/// and skipping the rest. An error when `text` is not valid JSON or not an object.
fn pick(text: &str, roots: &[String], out: &mut [Option<Value>]) -> Result<(), serde_json::Error> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    /// A key, as its position in `roots` (no key is allocated).
    struct KeySeed<'a>(&'a [String]);
    impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
        type Value = Option<usize>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
            d.deserialize_str(self)
        }
    }
    impl Visitor<'_> for KeySeed<'_> {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Option<usize>, E> {
            Ok(self.0.iter().position(|r| r == k))
        }
    }

    struct Object<'a> {
        roots: &'a [String],
        out: &'a mut [Option<Value>],
    }
    impl<'de> Visitor<'de> for Object<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key_seed(KeySeed(self.roots))? {
                match key {
                    Some(i) => self.out[i] = Some(map.next_value()?),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
    }

    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_any(Object { roots, out })?;
    de.end()
}

/// Parses `a.b[0]."c.d"[-1]` into steps.
pub(crate) fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut rest = path.trim();
    if rest.is_empty() {
        return Err("empty path".into());
    }
    let mut need_segment = true;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| format!("{path:?}: unclosed '['"))?;
            let idx = r[..end]
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("{path:?}: {:?} is not an array index", &r[..end]))?;
            steps.push(Step::Index(idx));
            rest = &r[end + 1..];
            need_segment = false;
        } else if need_segment {
            if let Some(r) = rest.strip_prefix('"') {
                let (key, after) = quoted(r).ok_or_else(|| format!("{path:?}: unclosed '\"'"))?;
                steps.push(Step::Key(key));
                rest = after;
            } else {
                let end = rest.find(['.', '[', ']', '"']).unwrap_or(rest.len());
                if end == 0 {
                    return Err(format!("{path:?}: empty key"));
                }
                steps.push(Step::Key(rest[..end].to_string()));
                rest = &rest[end..];
            }
            need_segment = false;
        } else if let Some(r) = rest.strip_prefix('.') {
            rest = r;
            need_segment = true;
        } else {
            return Err(format!("{path:?}: expected '.' or '[' before {rest:?}"));
        }
    }
    if need_segment {
        return Err(format!("{path:?}: ends with '.'"));
    }
    Ok(steps)
}

/// The key of a quoted segment (after its opening quote) and what follows its closing quote.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut key = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((key, &s[i + 1..])),
            '\\' => key.push(chars.next()?.1),
            c => key.push(c),
        }
    }
    None
}

pub(crate) fn lookup<'a>(root: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(root, |v, step| match step {
        Step::Key(k) => v.as_object()?.get(k),
        Step::Index(i) => {
            let a = v.as_array()?;
            let i = if *i < 0 {
                a.len()
                    .checked_sub(usize::try_from(i.unsigned_abs()).ok()?)?
            } else {
                usize::try_from(*i).ok()?
            };
            a.get(i)
        }
    })
}

/// A JSON value as an extracted field: strings bare, the rest as JSON; `null` is nothing.
pub(crate) fn value_to_string(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::logs::{invalid_key, record, table};

    const POS_LINE: &str = r#"{"ts":"2024-03-05T10:20:30.123Z","level":"error","msg":"printer offline","store":{"id":"S042","region":"eu-west"},"terminal":{"id":7,"peripherals":["scanner","printer"]},"amount":12.5,"retry":true,"cashier":null}"#;

    #[test]
    fn extracts_paths_from_a_pos_log() {
        let stage = Json::build(table(
            r#"expressions = { level = "", store = "store.id", terminal = "terminal.id", last = "terminal.peripherals[-1]", first = "terminal.peripherals[0]", amount = "", retry = "", cashier = "", peripherals = "terminal.peripherals", missing = "a.b" }"#,
        ))
        .unwrap();
        let mut batch = vec![record(POS_LINE)];
        stage.process(&mut batch, &mut Drops::default());
        let f = &batch[0].fields;
        assert_eq!(f["level"], "error");
        assert_eq!(f["store"], "S042");
        assert_eq!(f["terminal"], "7");
        assert_eq!(f["first"], "scanner");
        assert_eq!(f["last"], "printer");
        assert_eq!(f["amount"], "12.5");
        assert_eq!(f["retry"], "true");
        assert_eq!(f["peripherals"], r#"["scanner","printer"]"#);
        assert!(!f.contains_key("cashier") && !f.contains_key("missing"));
        assert_eq!(batch[0].line, POS_LINE);
    }

    #[test]
    fn parses_a_source_field_and_quoted_keys() {
        let stage = Json::build(table(
            r#"
            expressions = { host = '"host.name"', code = "resp.status" }
            source = "body"
            "#,
        ))
        .unwrap();
        let mut r = record("plain text");
        r.fields.insert(
            "body".into(),
            r#"{"host.name":"till-3","resp":{"status":503}}"#.into(),
        );
        let mut batch = vec![r, record(r#"{"x":1}"#)];
        stage.process(&mut batch, &mut Drops::default());
        assert_eq!(batch[0].fields["host"], "till-3");
        assert_eq!(batch[0].fields["code"], "503");
        assert!(batch[1].fields.is_empty(), "no source field: skipped");
        assert_eq!(stage.failures(), 0);
    }

    #[test]
    fn non_json_lines_are_kept_and_counted_or_dropped_when_asked() {
        let stage = Json::build(table(r#"expressions = { level = "" }"#)).unwrap();
        let mut batch = vec![
            record("not json"),
            record("[1,2]"),
            record(r#"{"level":"info"}"#),
        ];
        let mut drops = Drops::default();
        stage.process(&mut batch, &mut drops);
        assert_eq!(batch.len(), 3);
        assert_eq!(batch[0].line, "not json");
        assert!(batch[0].fields.is_empty());
        assert_eq!(stage.failures(), 2);
        assert!(drops.0.is_empty());

        let stage = Json::build(table(
            "expressions = { level = \"\" }\ndrop_malformed = true",
        ))
        .unwrap();
        let mut batch = vec![record("not json"), record(r#"{"level":"info"}"#)];
        stage.process(&mut batch, &mut drops);
        assert_eq!(batch.len(), 1);
        assert_eq!(drops.0[DROP_REASON], 1);
    }

    #[test]
    fn paths_parse_or_name_their_key() {
        assert_eq!(
            parse_path(r#"a."b.c"[2][-1].d"#).unwrap(),
            vec![
                Step::Key("a".into()),
                Step::Key("b.c".into()),
                Step::Index(2),
                Step::Index(-1),
                Step::Key("d".into())
            ]
        );
        for bad in ["a.", "a..b", "a[x]", "a[1", "\"a", "a]b"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
        assert_eq!(
            invalid_key(Json::build(table(r#"expressions = { x = "a[" }"#))),
            "expressions.x"
        );
        assert!(matches!(
            Json::build(table("expressions = {}\nbogus = 1")),
            Err(BuildError::Config(_))
        ));
    }
}
