//! `logs.labels`: promotes extracted fields to stream labels, as Alloy's `stage.labels`.
//!
//! ```toml
//! type = "logs.labels"
//! values = { level = "", container = "container_name" }   # label = field; empty = same name
//! ```
//!
//! Label names must follow Loki's rules (`[a-zA-Z_][a-zA-Z0-9_]*`, not `__`-prefixed), checked
//! at build. A missing or empty field sets nothing (an empty label value is no label in Loki); an
//! existing label of that name is replaced.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::NameMap;
use crate::event::{LabelCache, LogBatch};
use crate::process::{Drops, Stage};
use crate::sources::BuildError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    values: BTreeMap<String, String>,
}

/// The `logs.labels` stage.
pub struct Labels {
    values: NameMap,
}

impl Labels {
    pub fn build(table: toml::Table) -> Result<Self, BuildError> {
        let c: Config = BuildError::parse(table)?;
        Ok(Labels {
            values: NameMap::new("values", c.values, true)?,
        })
    }
}

impl Stage<LogBatch> for Labels {
    /// The new label set is made once per distinct (stream labels, promoted values) in the
    /// batch and shared by its entries.
    fn process(&self, batch: &mut LogBatch, _drops: &mut Drops) {
        let mut cache = LabelCache::default();
        let mut values: Vec<Option<&str>> = Vec::new();
        for record in batch.iter_mut() {
            values.clear();
            values.extend(self.values.iter().map(|(_, field)| {
                record
                    .fields
                    .get(field)
                    .map(String::as_str)
                    .filter(|v| !v.is_empty())
            }));
            if values.iter().all(Option::is_none) {
                continue;
            }
            let labels = cache.get(&record.labels, &values, |input| {
                let mut out = input.clone();
                for ((label, _), v) in self.values.iter().zip(&values) {
                    if let Some(v) = v {
                        out.insert(label, *v);
                    }
                }
                out
            });
            record.labels = labels;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::logs::{invalid_key, record, table};

    #[test]
    fn promotes_fields_to_labels() {
        let stage = Labels::build(table(
            r#"values = { level = "", container = "container_name", job = "j", absent = "" }"#,
        ))
        .unwrap();
        let mut r = record("x");
        r.fields.insert("level".into(), "error".into());
        r.fields.insert("container_name".into(), "pos-api".into());
        r.fields.insert("j".into(), "".into());
        let mut batch = vec![r];
        stage.process(&mut batch, &mut Drops::default());
        assert_eq!(
            batch[0].labels.to_loki_string(),
            r#"{container="pos-api", job="test", level="error"}"#
        );
    }

    #[test]
    fn entries_of_a_stream_with_the_same_values_share_the_new_set() {
        let stage = Labels::build(table(r#"values = { level = "" }"#)).unwrap();
        let base = record("x");
        let mut batch: Vec<_> = ["info", "info", "error", "info", ""]
            .into_iter()
            .map(|level| {
                let mut r = base.clone();
                r.fields.insert("level".into(), level.into());
                r
            })
            .collect();
        stage.process(&mut batch, &mut Drops::default());
        use crate::event::SharedLabels;
        assert!(SharedLabels::ptr_eq(&batch[0].labels, &batch[1].labels));
        assert!(SharedLabels::ptr_eq(&batch[0].labels, &batch[3].labels));
        assert_eq!(batch[2].labels.get("level"), Some("error"));
        assert_eq!(batch[0].labels.get("level"), Some("info"));
        // Nothing to promote: the entry keeps its set, which is left as it was.
        assert!(SharedLabels::ptr_eq(&batch[4].labels, &base.labels));
        assert_eq!(base.labels.get("level"), None);
    }

    #[test]
    fn invalid_label_names_are_refused_with_their_key() {
        for (src, key) in [
            (r#"values = { "bad-name" = "" }"#, "values.bad-name"),
            (r#"values = { "__meta" = "x" }"#, "values.__meta"),
            ("values = {}", "values"),
        ] {
            assert_eq!(invalid_key(Labels::build(table(src))), key, "{src}");
        }
    }
}
