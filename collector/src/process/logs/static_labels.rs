//! `logs.static_labels`: adds fixed stream labels, as Alloy's `stage.static_labels`.
//!
//! ```toml
//! type = "logs.static_labels"
//! values = { region = "eu-west", node_type = "pos" }
//! ```
//!
//! A label already on the entry is overwritten (Alloy's behaviour). Names follow Loki's label
//! rules and values must not be empty, both checked at build.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{check_label_name, invalid};
use crate::event::{LabelCache, LogBatch};
use crate::process::{Drops, Stage};
use crate::sources::BuildError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    values: BTreeMap<String, String>,
}

/// The `logs.static_labels` stage.
pub struct StaticLabels {
    values: Vec<(String, String)>,
}

/// Checks a `values = { name = "value" }` table of fixed labels: `check_name` on every name,
/// no empty values, at least one entry. Shared with `metrics.static_labels`.
pub(crate) fn fixed_labels(
    values: BTreeMap<String, String>,
    check_name: impl Fn(&str, &str) -> Result<(), BuildError>,
) -> Result<Vec<(String, String)>, BuildError> {
    if values.is_empty() {
        return Err(invalid("values", "must name at least one label"));
    }
    for (name, value) in &values {
        let key = format!("values.{name}");
        check_name(&key, name)?;
        if value.is_empty() {
            return Err(invalid(key, "empty value (an empty label is no label)"));
        }
    }
    Ok(values.into_iter().collect())
}

impl StaticLabels {
    pub fn build(table: toml::Table) -> Result<Self, BuildError> {
        let c: Config = BuildError::parse(table)?;
        Ok(StaticLabels {
            values: fixed_labels(c.values, check_label_name)?,
        })
    }
}

impl Stage<LogBatch> for StaticLabels {
    fn process(&self, batch: &mut LogBatch, _drops: &mut Drops) {
        // One new set per distinct input set in the batch, shared by its entries.
        let mut cache = LabelCache::default();
        for record in batch.iter_mut() {
            record.labels = cache.get(&record.labels, &[], |l| {
                let mut l = l.clone();
                for (name, value) in &self.values {
                    l.insert(name.as_str(), value.as_str());
                }
                l
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::logs::{invalid_key, record, table};

    #[test]
    fn adds_and_overwrites_labels() {
        let stage =
            StaticLabels::build(table(r#"values = { region = "eu-west", job = "pos" }"#)).unwrap();
        let a = record("a");
        let mut batch = vec![a.clone(), a.clone(), record("b")];
        stage.process(&mut batch, &mut Drops::default());
        assert_eq!(
            batch[0].labels.to_loki_string(),
            r#"{job="pos", region="eu-west"}"#
        );
        // One new set per input set, shared; the input set is left as it was.
        use crate::event::SharedLabels;
        assert!(SharedLabels::ptr_eq(&batch[0].labels, &batch[1].labels));
        assert_eq!(batch[2].labels, batch[0].labels);
        assert_eq!(a.labels.get("region"), None);
    }

    #[test]
    fn bad_names_and_empty_values_name_their_key() {
        for (src, key) in [
            (r#"values = { "1x" = "a" }"#, "values.1x"),
            (r#"values = { region = "" }"#, "values.region"),
        ] {
            assert_eq!(invalid_key(StaticLabels::build(table(src))), key, "{src}");
        }
    }
}
