//! The edges between components: one bounded [`queue`](crate::queue) per downstream (bounded in
//! bytes by `queue_max_bytes` and in batches by `queue_capacity`), so memory stays bounded.
//!
//! What happens when a downstream queue is full is the downstream's `when_full` setting:
//! - `block`: the sender waits (backpressure travels upstream; receivers that cannot wait answer
//!   429 / RESOURCE_EXHAUSTED through [`Output::try_send`]);
//! - `drop_newest`: the batch is dropped for that downstream and counted, in items, as
//!   `discarded{reason="queue_full"}`.

use serde::Deserialize;

use crate::ack::Acks;
use crate::queue;

use crate::event::{Items, Signal};
use crate::selfmon::ComponentMetrics;

/// The `discarded` reasons an [`Output`] counts, declared at 0 by every producer.
pub const REASONS: [&str; 2] = ["no_consumer", "queue_full"];

/// What a full queue does to its senders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    #[default]
    Block,
    DropNewest,
}

/// One downstream edge.
pub struct Target<T> {
    pub tx: queue::Sender<T>,
    pub when_full: WhenFull,
    /// The downstream's name, for logs.
    pub name: String,
}

impl<T> Clone for Target<T> {
    fn clone(&self) -> Self {
        Target {
            tx: self.tx.clone(),
            when_full: self.when_full,
            name: self.name.clone(),
        }
    }
}

/// Every downstream of one signal of one component.
pub struct Output<T> {
    signal: Signal,
    targets: Vec<Target<T>>,
    metrics: ComponentMetrics,
    /// Some writer keeps a disk buffer: receivers acknowledge once batches are on disk.
    acknowledged: bool,
}

impl<T> Clone for Output<T> {
    fn clone(&self) -> Self {
        Output {
            signal: self.signal,
            targets: self.targets.clone(),
            metrics: self.metrics.clone(),
            acknowledged: self.acknowledged,
        }
    }
}

/// Why [`Output::try_send`] did not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum TrySendError<T> {
    /// A `block` downstream is full: ask the client to come back (429).
    #[error("downstream {0} is full")]
    Full(String, T),
    /// The pipeline is shutting down.
    #[error("the pipeline is shutting down")]
    Closed(T),
}

/// The pipeline is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("the pipeline is shutting down")]
pub struct Closed;

impl<T: Clone + Items> Output<T> {
    pub fn new(signal: Signal, targets: Vec<Target<T>>, metrics: ComponentMetrics) -> Self {
        Output {
            signal,
            targets,
            metrics,
            acknowledged: false,
        }
    }

    /// Receivers on this output wait for their batches' acks before they answer (set when
    /// some writer keeps a disk buffer: a 2xx then means "on disk").
    pub fn acknowledging(mut self, on: bool) -> Self {
        self.acknowledged = on;
        self
    }

    /// Should a receiver wait for its batches' acks (see [`Output::acknowledging`])?
    pub fn is_acknowledged(&self) -> bool {
        self.acknowledged
    }

    /// Does anything consume this output?
    pub fn is_connected(&self) -> bool {
        !self.targets.is_empty()
    }

    /// Sends to every downstream, waiting on `block` ones that are full. Counts `sent` once per
    /// batch (fan-out copies are not counted twice) and drops to `drop_newest` downstreams that
    /// are full.
    pub async fn send(&self, batch: T) -> Result<(), Closed> {
        self.send_acked(batch, Acks::none()).await
    }

    /// [`Output::send`] with the batch's acks: every downstream that takes the batch holds a
    /// copy. On `Err` the caller abandons them.
    pub async fn send_acked(&self, batch: T, acks: Acks) -> Result<(), Closed> {
        let n = batch.items() as u64;
        if n == 0 {
            return Ok(());
        }
        if self.targets.is_empty() {
            self.metrics.discarded(self.signal, "no_consumer").add(n);
            return Ok(());
        }
        let last = self.targets.len() - 1;
        let mut batch = Some(batch);
        for (i, t) in self.targets.iter().enumerate() {
            let b = if i == last {
                batch.take()
            } else {
                batch.clone()
            };
            let Some(b) = b else { break };
            match t.when_full {
                WhenFull::Block => t.tx.send_acked(b, acks.clone()).await.map_err(|_| Closed)?,
                WhenFull::DropNewest => match t.tx.try_send_acked(b, acks.clone()) {
                    Ok(()) => {}
                    Err(queue::TrySendError::Full(_)) => {
                        self.metrics.discarded(self.signal, "queue_full").add(n)
                    }
                    Err(queue::TrySendError::Closed(_)) => return Err(Closed),
                },
            }
        }
        self.metrics.sent(self.signal).add(n);
        Ok(())
    }

    /// Sends only if every `block` downstream has room now; otherwise hands the batch back, so a
    /// receiver can answer 429 instead of holding it in memory.
    pub fn try_send(&self, batch: T) -> Result<(), TrySendError<T>> {
        let bytes = batch.size_bytes();
        self.try_send_sized(batch, bytes)
    }

    /// [`Output::try_send`] for a batch whose [`Items::size_bytes`] the caller already has
    /// (a caller that tries again while a queue is full weighs the batch once).
    pub fn try_send_sized(&self, batch: T, bytes: usize) -> Result<(), TrySendError<T>> {
        self.try_send_acked(batch, bytes, &Acks::none())
    }

    /// [`Output::try_send_sized`] with the batch's acks: every downstream that takes the batch
    /// holds a copy.
    pub fn try_send_acked(
        &self,
        batch: T,
        bytes: usize,
        acks: &Acks,
    ) -> Result<(), TrySendError<T>> {
        let n = batch.items() as u64;
        if n == 0 {
            return Ok(());
        }
        if self.targets.is_empty() {
            self.metrics.discarded(self.signal, "no_consumer").add(n);
            return Ok(());
        }
        // Reserve room in every `block` downstream first, so the batch goes to all or none.
        let mut permits = Vec::with_capacity(self.targets.len());
        for t in &self.targets {
            match t.when_full {
                WhenFull::Block => match t.tx.try_reserve(bytes) {
                    Ok(p) => permits.push(Some(p)),
                    Err(queue::ReserveError::Full) => {
                        return Err(TrySendError::Full(t.name.clone(), batch));
                    }
                    Err(queue::ReserveError::Closed) => {
                        return Err(TrySendError::Closed(batch));
                    }
                },
                WhenFull::DropNewest => permits.push(None),
            }
        }
        let last = self.targets.len() - 1;
        let mut batch = Some(batch);
        for (i, (t, permit)) in self.targets.iter().zip(permits).enumerate() {
            let b = if i == last {
                batch.take()
            } else {
                batch.clone()
            };
            let Some(b) = b else { break };
            match permit {
                Some(p) => {
                    // The consumer closed between the reservation and now (a stop): refuse
                    // the batch (the client keeps it) rather than acknowledge it unread.
                    if let Err(b) = p.send_acked(b, acks.clone()) {
                        return Err(TrySendError::Closed(b));
                    }
                }
                None => {
                    if t.tx.try_send_acked(b, acks.clone()).is_err() {
                        self.metrics.discarded(self.signal, "queue_full").add(n);
                    }
                }
            }
        }
        self.metrics.sent(self.signal).add(n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{LogBatch, LogRecord};
    use crate::selfmon::Registry;

    fn batch(n: usize) -> LogBatch {
        vec![LogRecord::default(); n]
    }

    fn channel(n: usize) -> (queue::Sender<LogBatch>, queue::Receiver<LogBatch>) {
        queue::channel(queue::Bound::batches(n), queue::Gauges::default())
    }

    #[tokio::test]
    async fn fan_out_block_and_drop_newest() {
        let reg = Registry::new();
        let m = ComponentMetrics::new(reg.clone(), "src", "source");
        let (tx_a, mut rx_a) = channel(1);
        let (tx_b, mut rx_b) = channel(1);
        let out = Output::new(
            Signal::Logs,
            vec![
                Target {
                    tx: tx_a,
                    when_full: WhenFull::Block,
                    name: "a".into(),
                },
                Target {
                    tx: tx_b,
                    when_full: WhenFull::DropNewest,
                    name: "b".into(),
                },
            ],
            m.clone(),
        );
        out.send(batch(2)).await.unwrap();
        // a is full now: try_send hands the batch back; b would have dropped.
        match out.try_send(batch(3)) {
            Err(TrySendError::Full(name, b)) => assert_eq!((name.as_str(), b.len()), ("a", 3)),
            other => panic!("expected Full, got {other:?}"),
        }
        assert_eq!(rx_a.recv().await.unwrap().len(), 2);
        // a has room again, b is still full: b drops and counts it.
        out.try_send(batch(4)).unwrap();
        assert_eq!(m.discarded(Signal::Logs, "queue_full").get(), 4);
        assert_eq!(rx_b.recv().await.unwrap().len(), 2);
        assert_eq!(rx_a.recv().await.unwrap().len(), 4);
        assert_eq!(m.sent(Signal::Logs).get(), 6);
    }

    /// A `block` downstream full by bytes hands the batch back (the receiver answers 429); a
    /// `drop_newest` one full by bytes drops it, counted in items.
    #[tokio::test]
    async fn full_by_bytes_is_backpressure_or_a_counted_drop() {
        let m = ComponentMetrics::new(Registry::new(), "src", "source");
        let one = batch(1).size_bytes();
        let bound = queue::Bound {
            batches: 100,
            bytes: one * 3,
        };
        let (tx_a, mut rx_a) = queue::channel(bound, queue::Gauges::default());
        let (tx_b, _rx_b) = queue::channel(bound, queue::Gauges::default());
        let target = |tx, when_full, name: &str| Target {
            tx,
            when_full,
            name: name.into(),
        };
        let block = Output::new(
            Signal::Logs,
            vec![target(tx_a, WhenFull::Block, "a")],
            m.clone(),
        );
        let drop = Output::new(
            Signal::Logs,
            vec![target(tx_b, WhenFull::DropNewest, "b")],
            m.clone(),
        );
        block.try_send(batch(1)).unwrap();
        block.try_send(batch(1)).unwrap();
        assert!(matches!(
            block.try_send(batch(2)),
            Err(TrySendError::Full(..))
        ));
        assert_eq!(rx_a.try_recv().unwrap().len(), 1);
        block.try_send(batch(2)).unwrap();
        drop.send(batch(3)).await.unwrap();
        drop.send(batch(3)).await.unwrap();
        assert_eq!(m.discarded(Signal::Logs, "queue_full").get(), 3);
    }

    #[tokio::test]
    async fn unconnected_output_counts_a_discard() {
        let m = ComponentMetrics::new(Registry::new(), "src", "source");
        let out: Output<LogBatch> = Output::new(Signal::Logs, vec![], m.clone());
        out.send(batch(3)).await.unwrap();
        assert_eq!(m.discarded(Signal::Logs, "no_consumer").get(), 3);
    }
}
