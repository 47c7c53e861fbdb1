//! Writers: where data leaves the collector. Each batches (by size and wait), sends with retries
//! per the backend's spec (5xx, 429 and connection errors retried with capped exponential backoff
//! and jitter; other 4xx dropped and counted with the reason), and reads from a bounded queue
//! (its input channel), so memory stays bounded.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::BoxFuture;
use crate::event::{LogBatch, MetricBatch, Signal, TraceBatch};
use crate::selfmon::ComponentMetrics;
use crate::sources::BuildError;

/// What a running writer is given.
pub struct WriterContext<T> {
    pub name: String,
    /// The writer's bounded queue.
    pub input: mpsc::Receiver<T>,
    /// Turns true when the collector stops: drain `input` (bounded by `drain_timeout`), return.
    pub shutdown: watch::Receiver<bool>,
    pub metrics: ComponentMetrics,
    pub drain_timeout: Duration,
}

/// A running writer of batches of type `T`.
pub trait Writer<T>: Send {
    fn run(self: Box<Self>, ctx: WriterContext<T>) -> BoxFuture<Result<(), WriterError>>;
}

/// A built writer of any signal.
pub enum AnyWriter {
    Logs(Box<dyn Writer<LogBatch>>),
    Metrics(Box<dyn Writer<MetricBatch>>),
    Traces(Box<dyn Writer<TraceBatch>>),
}

impl AnyWriter {
    pub fn signal(&self) -> Signal {
        match self {
            AnyWriter::Logs(_) => Signal::Logs,
            AnyWriter::Metrics(_) => Signal::Metrics,
            AnyWriter::Traces(_) => Signal::Traces,
        }
    }
}

/// Why a writer stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("{0}")]
    Other(String),
}

/// Builds a writer of type `kind` from its settings (the table without the common keys).
pub fn build(kind: &str, table: toml::Table) -> Result<AnyWriter, BuildError> {
    let _ = table;
    Err(BuildError::UnknownType(kind.to_string()))
}
