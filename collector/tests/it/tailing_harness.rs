//! Drives a tailing source (`file`, `docker`) directly: its logs output is one `block` edge
//! over a bounded queue the test reads; the other outputs have no targets.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use collector::event::{LogBatch, LogRecord, Signal};
use collector::output::{Output, Target, WhenFull};
use collector::queue;
use collector::selfmon::{ComponentMetrics, Registry};
use collector::sources::{ListenAddrs, Outputs, SourceContext, SourceError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long any wait may take before the test fails (a guard against hangs, not a timing).
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct Running {
    pub rx: queue::Receiver<LogBatch>,
    pub stop: watch::Sender<bool>,
    pub task: JoinHandle<Result<(), SourceError>>,
    pub registry: Arc<Registry>,
    pub metrics: ComponentMetrics,
}

/// Builds a source of `kind` from TOML settings and runs it with `data_dir`.
pub fn start(kind: &str, name: &str, settings: &str, data_dir: &Path) -> Running {
    let table: toml::Table = toml::from_str(settings).unwrap();
    let source = collector::sources::build(kind, table).unwrap();
    let registry = Registry::new();
    let metrics = ComponentMetrics::new(registry.clone(), name, "source");
    let (tx, rx) = queue::bounded(1);
    let (stop, shutdown) = watch::channel(false);
    let ctx = SourceContext {
        name: name.into(),
        outputs: Outputs {
            logs: Output::new(
                Signal::Logs,
                vec![Target {
                    tx,
                    when_full: WhenFull::Block,
                    name: "test".into(),
                }],
                metrics.clone(),
            ),
            metrics: Output::new(Signal::Metrics, vec![], metrics.clone()),
            traces: Output::new(Signal::Traces, vec![], metrics.clone()),
        },
        shutdown,
        metrics: metrics.clone(),
        data_dir: data_dir.to_path_buf(),
        listen_addrs: ListenAddrs::default(),
        started: collector::sources::Started::new().0,
    };
    let task = tokio::spawn(source.run(ctx));
    Running {
        rx,
        stop,
        task,
        registry,
        metrics,
    }
}

impl Running {
    /// Receives records until there are `n` (fails after [`PATIENCE`]).
    pub async fn take(&mut self, n: usize) -> Vec<LogRecord> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while out.len() < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(batch)) => out.extend(batch),
                Ok(None) => panic!("the source stopped after {} of {n} records", out.len()),
                Err(_) => panic!(
                    "only {} of {n} records arrived: {:?}",
                    out.len(),
                    lines(&out)
                ),
            }
        }
        out
    }

    /// Like [`take`](Self::take), returning the lines.
    pub async fn take_lines(&mut self, n: usize) -> Vec<String> {
        lines(&self.take(n).await)
    }

    /// Asks the source to stop, waits for it, and returns what it sent meanwhile.
    pub async fn stop(mut self) -> Vec<LogRecord> {
        self.stop.send(true).unwrap();
        let mut out = Vec::new();
        let result = loop {
            tokio::select! {
                r = &mut self.task => break r,
                Some(batch) = self.rx.recv() => out.extend(batch),
                _ = tokio::time::sleep(PATIENCE) => panic!("the source did not stop"),
            }
        };
        result.unwrap().unwrap();
        while let Ok(batch) = self.rx.try_recv() {
            out.extend(batch);
        }
        out
    }
}

pub fn lines(records: &[LogRecord]) -> Vec<String> {
    records.iter().map(|r| r.line.clone()).collect()
}
