//! `logs.structured_metadata`: copies extracted fields into Loki structured metadata (sent with
//! the entry, not indexed), as Alloy's `stage.structured_metadata`. Good for high-cardinality
//! values such as trace ids that must not become labels.
//!
//! ```toml
//! type = "logs.structured_metadata"
//! values = { trace_id = "", terminal = "terminal_id" }   # name = field; empty = same name
//! ```
//!
//! Names follow the label name rules (checked at build); a missing or empty field sets nothing;
//! an existing entry of the same name is replaced.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::NameMap;
use crate::event::LogBatch;
use crate::process::{Drops, Stage};
use crate::sources::BuildError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    values: BTreeMap<String, String>,
}

/// The `logs.structured_metadata` stage.
pub struct StructuredMetadata {
    values: NameMap,
}

impl StructuredMetadata {
    pub fn build(table: toml::Table) -> Result<Self, BuildError> {
        let c: Config = BuildError::parse(table)?;
        Ok(StructuredMetadata {
            values: NameMap::new("values", c.values, true)?,
        })
    }
}

impl Stage<LogBatch> for StructuredMetadata {
    fn process(&self, batch: &mut LogBatch, _drops: &mut Drops) {
        for record in batch.iter_mut() {
            for (name, field) in self.values.iter() {
                let Some(value) = record.fields.get(field).filter(|v| !v.is_empty()) else {
                    continue;
                };
                let value = value.clone();
                match record
                    .structured_metadata
                    .iter_mut()
                    .find(|(k, _)| k == name)
                {
                    Some(entry) => entry.1 = value,
                    None => record.structured_metadata.push((name.to_string(), value)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::logs::{record, table};

    #[test]
    fn copies_fields_into_structured_metadata() {
        let stage = StructuredMetadata::build(table(
            r#"values = { trace_id = "", terminal = "terminal_id", none = "" }"#,
        ))
        .unwrap();
        let mut r = record("x");
        r.structured_metadata
            .push(("trace_id".into(), "old".into()));
        r.fields
            .insert("trace_id".into(), "4bf92f3577b34da6a3ce929d0e0e4736".into());
        r.fields.insert("terminal_id".into(), "7".into());
        let mut batch = vec![r];
        stage.process(&mut batch, &mut Drops::default());
        assert_eq!(
            batch[0].structured_metadata,
            vec![
                (
                    "trace_id".to_string(),
                    "4bf92f3577b34da6a3ce929d0e0e4736".to_string()
                ),
                ("terminal".to_string(), "7".to_string()),
            ]
        );
        assert_eq!(batch[0].labels.len(), 1, "labels untouched");
    }
}
