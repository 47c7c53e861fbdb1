//! The `relabel` metrics stage: Prometheus relabeling rules applied to every sample's labels
//! (`__name__` included), in order, as `metric_relabel_configs` would.
//!
//! ```toml
//! [process.shard]
//! type = "relabel"
//! rules = [
//!   { source_labels = ["__name__"], regex = "go_.*", action = "drop" },
//!   { source_labels = ["instance"], target_label = "shard", modulus = 4, action = "hashmod" },
//! ]
//! ```
//!
//! Samples a rule drops, or left without a `__name__`, are counted in [`Drops`] as
//! `relabel_drop`.

use serde::Deserialize;

use crate::event::{MetricBatch, PerSet};
use crate::process::{Drops, Stage};
use crate::relabel::{RelabelConfig, Relabeler};
use crate::sources::BuildError;

/// The reason dropped samples are counted under.
pub const DROP_REASON: &str = "relabel_drop";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    rules: Vec<RelabelConfig>,
}

/// The built stage.
#[derive(Debug)]
pub struct Relabel {
    relabeler: Relabeler,
}

impl Relabel {
    pub fn build(table: toml::Table) -> Result<Self, BuildError> {
        let c: Config = BuildError::parse(table)?;
        Ok(Relabel {
            relabeler: Relabeler::new(&c.rules, "rules")?,
        })
    }
}

impl Stage<MetricBatch> for Relabel {
    fn process(&self, batch: &mut MetricBatch, drops: &mut Drops) {
        let before = batch.len();
        let mut per_set = PerSet::default();
        batch.retain_mut(|s| {
            per_set.apply(&mut s.labels, |l| {
                self.relabeler.apply(l) && l.get("__name__").is_some()
            })
        });
        drops.add(DROP_REASON, (before - batch.len()) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{MetricSample, SharedLabels};
    use crate::process::{AnyStage, build};

    fn sample(name: &str, job: &str) -> MetricSample {
        MetricSample {
            labels: SharedLabels::from_iter([("__name__", name), ("job", job)]),
            value: 1.0,
            timestamp_ms: 1,
        }
    }

    #[test]
    fn drops_and_rewrites_and_counts() {
        let table: toml::Table = toml::from_str(
            r#"rules = [
                { source_labels = ["__name__"], regex = "go_.*", action = "drop" },
                { source_labels = ["job"], target_label = "team", replacement = "t-$1" },
                { regex = "job", action = "labeldrop" },
            ]"#,
        )
        .unwrap();
        let AnyStage::Metrics(stage) = build("relabel", table).unwrap() else {
            panic!("relabel is a metrics stage");
        };
        let mut batch = vec![sample("go_goroutines", "a"), sample("up", "b")];
        let mut drops = Drops::default();
        stage.process(&mut batch, &mut drops);
        assert_eq!(drops.0.get(DROP_REASON), Some(&1));
        assert_eq!(batch.len(), 1);
        assert_eq!(
            batch[0].labels.iter().collect::<Vec<_>>(),
            vec![("__name__", "up"), ("team", "t-b")]
        );
    }

    #[test]
    fn bad_rules_are_refused() {
        let table: toml::Table =
            toml::from_str(r#"rules = [{ source_labels = ["a"], regex = "[" }]"#).unwrap();
        assert!(matches!(
            build("relabel", table),
            Err(BuildError::Invalid { key, .. }) if key == "rules[0].regex"
        ));
        let table: toml::Table = toml::from_str("rulez = []").unwrap();
        assert!(matches!(
            build("relabel", table),
            Err(BuildError::Config(_))
        ));
    }
}
