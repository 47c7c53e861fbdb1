//! Processing stages: pure functions on typed batches, so each is unit- and property-testable
//! without I/O. A `[process.NAME]` component runs a list of stages of one signal in order.
//!
//! Drops are reported through [`Drops`] with a reason, and counted by the component as
//! `discarded{reason}`.

pub mod metrics;

use std::collections::BTreeMap;

use crate::event::{LogBatch, MetricBatch, Signal, TraceBatch};
use crate::sources::BuildError;

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

/// A stage on log batches.
pub trait LogStage: Send + Sync {
    fn process(&self, batch: &mut LogBatch, drops: &mut Drops);
}

/// A stage on metric batches.
pub trait MetricStage: Send + Sync {
    fn process(&self, batch: &mut MetricBatch, drops: &mut Drops);
}

/// A stage on trace batches.
pub trait TraceStage: Send + Sync {
    fn process(&self, batch: &mut TraceBatch, drops: &mut Drops);
}

/// A built stage of any signal.
pub enum AnyStage {
    Logs(Box<dyn LogStage>),
    Metrics(Box<dyn MetricStage>),
    Traces(Box<dyn TraceStage>),
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

/// Builds a stage of type `kind` from its settings (the table without `type`).
pub fn build(kind: &str, table: toml::Table) -> Result<AnyStage, BuildError> {
    match kind {
        "relabel" => Ok(AnyStage::Metrics(Box::new(
            metrics::relabel::Relabel::build(table)?,
        ))),
        _ => Err(BuildError::UnknownType(kind.to_string())),
    }
}
