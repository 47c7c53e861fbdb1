//! Processing stages: pure functions on typed batches, so each is unit- and property-testable
//! without I/O. Every stage is a [`Stage<T>`] of its batch type. A `[process.NAME]` component
//! runs a list of stages of one signal in order, chained once when the pipeline is built
//! ([`AnyStages`]).
//!
//! Drops are reported through [`Drops`] with a reason, and counted by the component as
//! `discarded{reason}`.
//!
//! A stage's `type` names its signal first, so one name can exist for several signals
//! (`logs.static_labels`, `metrics.static_labels`); the bare name (`json`, `relabel`) is accepted
//! where only one signal has it. Log stages follow Alloy's `loki.process`
//! stages; every stage refuses unknown keys, and a bad setting names its key.
//!
//! | type | module | what it does |
//! |---|---|---|
//! | `logs.docker` | [`logs::docker`] | Docker JSON log lines: line = `log`, time from `time`, `stream` label |
//! | `logs.cri` | [`logs::cri`] | CRI-O/containerd lines, partial (`P`) lines joined, bounded |
//! | `logs.json` | [`logs::json`] | JSON fields into extracted fields by dotted path |
//! | `logs.logfmt` | [`logs::logfmt`] | logfmt keys into extracted fields |
//! | `logs.regex` | [`logs::regex`] | named captures into extracted fields |
//! | `logs.labels` | [`logs::labels`] | extracted fields promoted to stream labels |
//! | `logs.static_labels` | [`logs::static_labels`] | fixed stream labels |
//! | `logs.structured_metadata` | [`logs::structured_metadata`] | extracted fields into structured metadata |
//! | `logs.drop` | [`logs::drop`] | drops entries by field/line match, age, length, labels |
//! | `logs.timestamp` | [`logs::timestamp`] | the entry's time from an extracted field |
//! | `logs.output` | [`logs::output`] | an extracted field becomes the line |
//! | `metrics.relabel` | [`metrics::relabel`] | Prometheus `relabel_config` rules on every sample's labels |
//! | `metrics.static_labels` | [`metrics::static_labels`] | fixed series labels (existing ones kept unless `override`) |
//! | `traces.resource_attributes` | [`traces::resource_attributes`] | set resource attributes (upsert, insert, update) |
//! | `traces.attribute_filter` | [`traces::attribute_filter`] | keep or drop spans by span/resource attributes |

use std::collections::BTreeMap;

use crate::event::{LogBatch, MetricBatch, Signal, TraceBatch};
use crate::sources::BuildError;

pub mod logs;
pub mod metrics;
pub mod traces;

/// Items a stage dropped, by reason.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drops(pub BTreeMap<String, u64>);

impl Drops {
    pub fn add(&mut self, reason: &str, n: u64) {
        if n > 0 {
            *self.0.entry(reason.to_string()).or_default() += n;
        }
    }
}

/// A stage on batches of type `T` ([`LogBatch`], [`MetricBatch`] or [`TraceBatch`]): the one
/// stage trait, as [`crate::writers::Writer`] is the one writer trait.
pub trait Stage<T>: Send + Sync {
    fn process(&self, batch: &mut T, drops: &mut Drops);
}

/// A process component's stages on batches of type `T`, applied in order.
pub struct Stages<T>(Vec<Box<dyn Stage<T>>>);

impl<T> Stage<T> for Stages<T> {
    fn process(&self, batch: &mut T, drops: &mut Drops) {
        for stage in &self.0 {
            stage.process(batch, drops);
        }
    }
}

/// A built stage of any signal.
pub enum AnyStage {
    Logs(Box<dyn Stage<LogBatch>>),
    Metrics(Box<dyn Stage<MetricBatch>>),
    Traces(Box<dyn Stage<TraceBatch>>),
}

impl AnyStage {
    pub fn signal(&self) -> Signal {
        match self {
            AnyStage::Logs(_) => Signal::Logs,
            AnyStage::Metrics(_) => Signal::Metrics,
            AnyStage::Traces(_) => Signal::Traces,
        }
    }
}

/// A process component's stage list, typed by its signal once when the pipeline is built, so
/// running a batch through it matches nothing.
pub enum AnyStages {
    Logs(Stages<LogBatch>),
    Metrics(Stages<MetricBatch>),
    Traces(Stages<TraceBatch>),
}

impl AnyStages {
    /// Chains `stages` in order: `None` when there are none, or they are not all of one signal
    /// (a config refuses both, naming the stage).
    pub fn chain(stages: impl IntoIterator<Item = AnyStage>) -> Option<AnyStages> {
        let mut stages = stages.into_iter();
        let mut chain = match stages.next()? {
            AnyStage::Logs(s) => AnyStages::Logs(Stages(vec![s])),
            AnyStage::Metrics(s) => AnyStages::Metrics(Stages(vec![s])),
            AnyStage::Traces(s) => AnyStages::Traces(Stages(vec![s])),
        };
        for stage in stages {
            match (&mut chain, stage) {
                (AnyStages::Logs(c), AnyStage::Logs(s)) => c.0.push(s),
                (AnyStages::Metrics(c), AnyStage::Metrics(s)) => c.0.push(s),
                (AnyStages::Traces(c), AnyStage::Traces(s)) => c.0.push(s),
                _ => return None,
            }
        }
        Some(chain)
    }

    pub fn signal(&self) -> Signal {
        match self {
            AnyStages::Logs(_) => Signal::Logs,
            AnyStages::Metrics(_) => Signal::Metrics,
            AnyStages::Traces(_) => Signal::Traces,
        }
    }
}

/// Builds a stage of type `kind` from its settings (the table without `type`).
pub fn build(kind: &str, table: toml::Table) -> Result<AnyStage, BuildError> {
    if !kind.contains('.') {
        let full: Vec<&str> = KINDS
            .iter()
            .copied()
            .filter(|k| k.split_once('.').map(|(_, name)| name) == Some(kind))
            .collect();
        return match full.as_slice() {
            [one] => build_exact(one, table),
            [] => Err(BuildError::UnknownType(kind.to_string())),
            several => Err(BuildError::Invalid {
                key: "type".into(),
                reason: format!(
                    "{kind:?} exists for several signals: write one of {}",
                    several.join(", ")
                ),
            }),
        };
    }
    build_exact(kind, table)
}

/// Every stage type.
pub const KINDS: &[&str] = &[
    "logs.docker",
    "logs.cri",
    "logs.json",
    "logs.logfmt",
    "logs.regex",
    "logs.labels",
    "logs.static_labels",
    "logs.structured_metadata",
    "logs.drop",
    "logs.timestamp",
    "logs.output",
    "metrics.relabel",
    "metrics.static_labels",
    "traces.resource_attributes",
    "traces.attribute_filter",
];

fn build_exact(kind: &str, table: toml::Table) -> Result<AnyStage, BuildError> {
    fn log<S: Stage<LogBatch> + 'static>(s: Result<S, BuildError>) -> Result<AnyStage, BuildError> {
        Ok(AnyStage::Logs(Box::new(s?)))
    }
    fn metric<S: Stage<MetricBatch> + 'static>(
        s: Result<S, BuildError>,
    ) -> Result<AnyStage, BuildError> {
        Ok(AnyStage::Metrics(Box::new(s?)))
    }
    fn trace<S: Stage<TraceBatch> + 'static>(
        s: Result<S, BuildError>,
    ) -> Result<AnyStage, BuildError> {
        Ok(AnyStage::Traces(Box::new(s?)))
    }
    match kind {
        "logs.docker" => log(logs::docker::Docker::build(table)),
        "logs.cri" => log(logs::cri::Cri::build(table)),
        "logs.json" => log(logs::json::Json::build(table)),
        "logs.logfmt" => log(logs::logfmt::Logfmt::build(table)),
        "logs.regex" => log(logs::regex::Regex::build(table)),
        "logs.labels" => log(logs::labels::Labels::build(table)),
        "logs.static_labels" => log(logs::static_labels::StaticLabels::build(table)),
        "logs.structured_metadata" => {
            log(logs::structured_metadata::StructuredMetadata::build(table))
        }
        "logs.drop" => log(logs::drop::Drop::build(table)),
        "logs.timestamp" => log(logs::timestamp::Timestamp::build(table)),
        "logs.output" => log(logs::output::Output::build(table)),
        "metrics.relabel" => metric(metrics::relabel::Relabel::build(table)),
        "metrics.static_labels" => metric(metrics::static_labels::StaticLabels::build(table)),
        "traces.resource_attributes" => trace(
            traces::resource_attributes::ResourceAttributes::build(table),
        ),
        "traces.attribute_filter" => trace(traces::attribute_filter::AttributeFilter::build(table)),
        _ => Err(BuildError::UnknownType(kind.to_string())),
    }
}

/// Helpers for the stage tests.
#[cfg(test)]
pub(crate) mod test_util {
    use super::{AnyStage, Stage, build};
    use crate::event::LogBatch;
    use crate::sources::BuildError;

    /// A log stage built from its `type` and TOML settings, as a config builds it.
    pub fn log_stage(kind: &str, settings: &str) -> Box<dyn Stage<LogBatch>> {
        match build(kind, table(settings)) {
            Ok(AnyStage::Logs(s)) => s,
            Ok(other) => panic!("{kind}: a {} stage", other.signal()),
            Err(e) => panic!("{kind}: {e}"),
        }
    }

    /// A stage's settings from TOML source.
    pub fn table(toml_src: &str) -> toml::Table {
        toml::from_str(toml_src).unwrap()
    }

    /// The key a refused build names; panics unless it is a [`BuildError::Invalid`].
    pub fn invalid_key<T>(built: Result<T, BuildError>) -> String {
        match built {
            Err(BuildError::Invalid { key, .. }) => key,
            Err(other) => panic!("not an Invalid error: {other}"),
            Ok(_) => panic!("built, though it should have been refused"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_every_kind_for_its_signal_and_refuses_unknown_ones() {
        let cases = [
            ("logs.docker", "", Signal::Logs),
            ("logs.cri", "", Signal::Logs),
            ("logs.json", "expressions = { a = \"\" }", Signal::Logs),
            ("logs.logfmt", "mapping = { a = \"\" }", Signal::Logs),
            ("logs.regex", "expression = '(?P<a>.)'", Signal::Logs),
            ("logs.labels", "values = { a = \"\" }", Signal::Logs),
            ("logs.static_labels", "values = { a = \"b\" }", Signal::Logs),
            (
                "logs.structured_metadata",
                "values = { a = \"\" }",
                Signal::Logs,
            ),
            ("logs.drop", "expression = \"x\"", Signal::Logs),
            (
                "logs.timestamp",
                "source = \"t\"\nformat = \"Unix\"",
                Signal::Logs,
            ),
            ("logs.output", "source = \"a\"", Signal::Logs),
            (
                "metrics.static_labels",
                "values = { a = \"b\" }",
                Signal::Metrics,
            ),
            (
                "traces.resource_attributes",
                "values = { a = \"b\" }",
                Signal::Traces,
            ),
            (
                "traces.attribute_filter",
                "[[exclude]]\nattribute = \"a\"",
                Signal::Traces,
            ),
        ];
        for (kind, settings, signal) in cases {
            let stage = build(kind, toml::from_str(settings).unwrap())
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(stage.signal(), signal, "{kind}");
        }
        assert!(matches!(
            build("static_labels", toml::Table::new()),
            Err(BuildError::Invalid { key, .. }) if key == "type"
        ));
        assert!(matches!(
            build("nonesuch", toml::Table::new()),
            Err(BuildError::UnknownType(k)) if k == "nonesuch"
        ));
        // A bare name resolves where only one signal has it.
        assert_eq!(
            build(
                "json",
                toml::from_str("expressions = { a = \"\" }").unwrap()
            )
            .map(|s| s.signal())
            .ok(),
            Some(Signal::Logs)
        );
        assert_eq!(
            build("relabel", toml::from_str("rules = []").unwrap())
                .map(|s| s.signal())
                .ok(),
            Some(Signal::Metrics)
        );
        for kind in KINDS {
            assert!(
                !matches!(
                    build(kind, toml::Table::new()),
                    Err(BuildError::UnknownType(_))
                ),
                "{kind}"
            );
        }
        let err = build(
            "logs.json",
            toml::from_str("expressions = { a = \"\" }\nsorce = \"x\"").unwrap(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("sorce"), "{err}");
    }

    #[test]
    fn chains_stages_of_one_signal_in_order_and_refuses_mixed_ones() {
        let stage =
            |kind: &str, settings: &str| build(kind, toml::from_str(settings).unwrap()).unwrap();
        let chain = AnyStages::chain([
            stage("logs.regex", r"expression = '^(?P<level>\w+) '"),
            stage("logs.labels", r#"values = { level = "" }"#),
            stage(
                "logs.drop",
                "source = \"level\"\nvalue = \"debug\"\ndrop_counter_reason = \"debug\"",
            ),
        ]);
        let Some(AnyStages::Logs(chain)) = chain else {
            panic!("three log stages make a log chain");
        };
        let mut batch: LogBatch = ["info ok", "debug noise", "unparsed"]
            .into_iter()
            .map(logs::record)
            .collect();
        let mut drops = Drops::default();
        chain.process(&mut batch, &mut drops);
        // In order: the labels and drop stages read the field the regex stage extracted.
        assert_eq!(drops.0.get("debug"), Some(&1));
        let lines: Vec<(&str, Option<&str>)> = batch
            .iter()
            .map(|r| (r.line.as_str(), r.labels.get("level")))
            .collect();
        assert_eq!(lines, vec![("info ok", Some("info")), ("unparsed", None)]);

        let metrics = AnyStages::chain([stage("metrics.static_labels", "values = { a = \"b\" }")]);
        assert_eq!(metrics.map(|c| c.signal()), Some(Signal::Metrics));
        let mixed = AnyStages::chain([
            stage("logs.static_labels", "values = { a = \"b\" }"),
            stage("traces.resource_attributes", "values = { a = \"b\" }"),
        ]);
        assert!(mixed.is_none());
        assert!(AnyStages::chain([]).is_none());
    }
}
