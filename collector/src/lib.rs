//! The collector: sources → process → writers, in the spirit of Grafana Alloy.
//!
//! | module | what it holds |
//! |---|---|
//! | [`ack`] | acknowledgements carried beside batches: what a receiver's 2xx and a file position wait for |
//! | [`buffer`] | writers' disk buffers: checksummed segments, acknowledged once written, replayed on start |
//! | [`event`] | the typed batches that flow: [`event::LogBatch`], [`event::MetricBatch`], [`event::TraceBatch`] |
//! | [`sources`] | where data comes from: OTLP, Loki push, remote write, file tail, Docker, Prometheus scrape |
//! | [`process`] | stages: pure functions on batches (parse, label, relabel, drop, ...) |
//! | [`relabel`] | Prometheus relabeling (`relabel_config`) on label sets, shared by scraping and stages |
//! | [`writers`] | where data goes: Loki push, Prometheus remote write (Mimir), OTLP (Tempo); batching, retry, bounded queues |
//! | [`output`] | the edges between components: bounded channels with `block` or `drop_newest` when full |
//! | [`queue`] | the queue in front of each consumer, bounded in bytes and batches, with true depth gauges |
//! | [`bench`] | `collector bench`: a fixed corpus through the logs, metrics and traces pipelines, items per CPU second and peak RSS |
//! | [`selfmon`] | self-metrics (received, sent, discarded{reason}, retries, queue depth, ...) rendered on `/metrics` |
//!
//! Logs, metrics and traces each flow as batches of their own type (no boxed generic event on
//! the hot path); stages are pure functions on batches, testable without I/O.

pub mod ack;
pub mod bench;
pub mod buffer;
pub mod config;
pub mod event;
pub mod output;
pub mod process;
pub mod queue;
pub mod relabel;
pub mod runtime;
pub mod selfmon;
pub mod serde_util;
pub mod sources;
pub mod writers;

use std::future::Future;
use std::pin::Pin;

/// A boxed future, as components return from `run`.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
