//! `metrics.static_labels`: adds fixed labels to every series, with Prometheus'
//! `external_labels` semantics: a label the series already has is kept, unless `override`.
//!
//! ```toml
//! type = "metrics.static_labels"
//! values = { region = "eu-west", location = "store-042" }
//! override = false   # true: replace values the series already has
//! ```
//!
//! Names must be Prometheus label names and not `__`-prefixed (reserved, `__name__` included);
//! values must not be empty. Both are checked at build.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::event::{Labels, MetricBatch, PerSet};
use crate::process::logs::check_label_name;
use crate::process::logs::static_labels::fixed_labels;
use crate::process::{Drops, Stage};
use crate::sources::BuildError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    values: BTreeMap<String, String>,
    #[serde(default, rename = "override")]
    override_existing: bool,
}

/// The `metrics.static_labels` stage.
pub struct StaticLabels {
    values: Vec<(String, String)>,
    override_existing: bool,
}

impl StaticLabels {
    pub fn build(table: toml::Table) -> Result<Self, BuildError> {
        let c: Config = BuildError::parse(table)?;
        Ok(StaticLabels {
            values: fixed_labels(c.values, check_label_name)?,
            override_existing: c.override_existing,
        })
    }
}

impl Stage<MetricBatch> for StaticLabels {
    fn process(&self, batch: &mut MetricBatch, _drops: &mut Drops) {
        let mut per_set = PerSet::default();
        for sample in batch.iter_mut() {
            let missing = |l: &Labels| self.values.iter().any(|(n, _)| l.get(n).is_none());
            if !self.override_existing && !missing(&sample.labels) {
                continue;
            }
            per_set.apply(&mut sample.labels, |labels| {
                for (name, value) in &self.values {
                    if self.override_existing || labels.get(name).is_none() {
                        labels.insert(name.as_str(), value.as_str());
                    }
                }
                true
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{MetricSample, SharedLabels};
    use crate::process::test_util::invalid_key;

    fn sample(labels: &[(&str, &str)]) -> MetricSample {
        MetricSample {
            labels: labels.iter().copied().collect::<SharedLabels>(),
            value: 1.0,
            timestamp_ms: 0,
        }
    }

    fn build(src: &str) -> Result<StaticLabels, BuildError> {
        StaticLabels::build(toml::from_str(src).unwrap())
    }

    #[test]
    fn adds_labels_keeping_existing_ones_unless_override() {
        let mut batch = vec![
            sample(&[("__name__", "node_load1"), ("region", "us-east")]),
            sample(&[("__name__", "pos_sales_total")]),
        ];
        build(r#"values = { region = "eu-west", location = "store-042" }"#)
            .unwrap()
            .process(&mut batch, &mut Drops::default());
        assert_eq!(batch[0].labels.get("region"), Some("us-east"));
        assert_eq!(batch[0].labels.get("location"), Some("store-042"));
        assert_eq!(batch[1].labels.get("region"), Some("eu-west"));
        assert_eq!(batch[1].name(), Some("pos_sales_total"));

        build("values = { region = \"eu-west\" }\noverride = true")
            .unwrap()
            .process(&mut batch, &mut Drops::default());
        assert_eq!(batch[0].labels.get("region"), Some("eu-west"));
    }

    #[test]
    fn reserved_or_bad_names_and_empty_values_are_refused() {
        for (src, key) in [
            (r#"values = { __name__ = "x" }"#, "values.__name__"),
            (r#"values = { "a.b" = "x" }"#, "values.a.b"),
            (r#"values = { region = "" }"#, "values.region"),
            ("values = {}", "values"),
        ] {
            assert_eq!(invalid_key(build(src)), key, "{src}");
        }
    }
}
