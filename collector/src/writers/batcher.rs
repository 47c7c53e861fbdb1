//! The engine every writer runs: read the bounded input queue, route items to shard workers,
//! batch them by size (`batch_size`, in the writer's unit: bytes, samples, spans) and age
//! (`batch_wait`), encode each batch once and deliver it with the shared retry policy.
//!
//! A writer is a [`Sink`] (how to weigh, shard, encode and send items) wrapped in an [`Engine`]
//! that implements [`Writer`]. Each shard worker keeps one batch in flight at a time, in order,
//! and goes on filling the next batch meanwhile (so a slow request does not stop the shard from
//! taking items); when the next batch is full too, it waits for the one in flight, its small
//! hand-off channel fills, then the input queue, and backpressure reaches the upstream (`block`)
//! or drops there (`drop_newest`), so memory stays bounded and nothing queued is lost to a slow
//! or failing backend.
//!
//! Accounting: `sent` counts items the backend acknowledged (stored); `discarded{reason}` counts
//! the rest (`http_<status>`/`grpc_<code>` refusals, per item when the backend said how many of a
//! request it refused, `rejected` OTLP partial successes, `retries_exhausted` only when
//! `max_retries` is set, `shutdown`); the input queue keeps `queue_depth` (items) and
//! `queue_bytes`; `batch_size` is the items per batch.
//!
//! Memory: besides its queue (`queue_max_bytes`), a writer holds per shard one routed chunk (at
//! most one queued batch), the batch it fills (`batch_size`) and the one in flight (encoded once,
//! its items freed): bounded by the queue's bound plus `shards × 2 × batch_size`.
//!
//! Shutdown: when `ctx.shutdown` turns true the engine stops waiting for batches, hands what is
//! queued to the workers, which flush at once; everything must be delivered within
//! `ctx.drain_timeout`; whatever is still queued, batched or in flight then is counted as
//! `discarded{reason="shutdown"}`. A closed input (all senders gone) flushes without a deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::http::{ClientConfig, take_keys};
use super::retry::{Attempt, Deadline, Delivery, RetryConfig, deliver};
use super::{Writer, WriterContext, WriterError};
use crate::BoxFuture;
use crate::ack::Acks;
use crate::selfmon::ComponentMetrics;
use crate::sources::BuildError;
use wire::Signal;

/// How a writer weighs, shards, encodes and sends its items.
pub trait Sink: Send + Sync + 'static {
    /// What a queued batch is a `Vec` of.
    type Item: Send + 'static;
    /// An encoded request body (encoded once, sent as often as retries need).
    type Payload: Send + Sync + 'static;

    const SIGNAL: Signal;

    /// How many items `item` counts as in the self-metrics (spans for `ResourceSpans`).
    fn count(item: &Self::Item) -> u64;
    /// How much `item` weighs against `batch_size`.
    fn weight(&self, item: &Self::Item) -> usize;
    /// About how much memory `item` holds (a batch also ends at [`MAX_BATCH_MEMORY`]).
    fn size_bytes(item: &Self::Item) -> usize;
    /// How many shard workers send in parallel (each in order).
    fn shards(&self) -> usize {
        1
    }
    /// The shard `item` belongs to, below [`Sink::shards`].
    fn shard(&self, item: &Self::Item) -> usize {
        let _ = item;
        0
    }
    /// Encodes one batch.
    fn encode(&self, items: Vec<Self::Item>) -> Self::Payload;
    /// Sends an encoded batch once.
    fn send(&self, payload: &Self::Payload) -> impl Future<Output = Attempt> + Send;
}

/// The most a batch being filled holds in memory, whatever `batch_size` says (a `batch_size`
/// in lines' bytes, samples or spans can mean much more in memory for small items).
pub const MAX_BATCH_MEMORY: usize = 8 << 20;

/// How full the batch being filled is: in the sink's weight, and in memory.
#[derive(Default)]
struct Fill {
    weight: usize,
    bytes: usize,
}

impl Fill {
    fn would_overflow(&self, w: usize, b: usize, batch_size: usize) -> bool {
        self.weight.saturating_add(w) > batch_size
            || self.bytes.saturating_add(b) > MAX_BATCH_MEMORY
    }

    fn add(&mut self, w: usize, b: usize) {
        self.weight = self.weight.saturating_add(w);
        self.bytes = self.bytes.saturating_add(b);
    }

    fn is_full(&self, batch_size: usize) -> bool {
        self.weight >= batch_size || self.bytes >= MAX_BATCH_MEMORY
    }
}

/// The settings every writer shares, besides its own.
pub struct Common {
    pub client: ClientConfig,
    pub retry: RetryConfig,
    pub batch_wait: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitConfig {
    #[serde(
        default = "default_batch_wait",
        deserialize_with = "crate::serde_util::duration"
    )]
    batch_wait: Duration,
}

fn default_batch_wait() -> Duration {
    Duration::from_secs(1)
}

/// Splits a writer's table into the shared settings and the writer's own `T`, each parsed with
/// unknown keys refused.
pub fn parse_config<T: serde::de::DeserializeOwned>(
    mut table: toml::Table,
) -> Result<(Common, T), BuildError> {
    let client = BuildError::parse(take_keys(&mut table, ClientConfig::KEYS))?;
    let retry = BuildError::parse(take_keys(&mut table, RetryConfig::KEYS))?;
    let wait: WaitConfig = BuildError::parse(take_keys(&mut table, &["batch_wait"]))?;
    let own = BuildError::parse(table).map_err(|e| match e {
        BuildError::Config(msg) if msg.starts_with("unknown field") => BuildError::Config(format!(
            "{msg}; or one every writer takes: {}, batch_wait",
            [ClientConfig::KEYS, RetryConfig::KEYS].concat().join(", ")
        )),
        other => other,
    })?;
    Ok((
        Common {
            client,
            retry,
            batch_wait: wait.batch_wait,
        },
        own,
    ))
}

/// A [`Sink`] run as a [`Writer`].
pub struct Engine<S> {
    sink: Arc<S>,
    batch_size: usize,
    batch_wait: Duration,
    retry: RetryConfig,
    timeout: Duration,
}

impl<S: Sink> Engine<S> {
    pub fn new(sink: S, batch_size: usize, common: &Common) -> Self {
        Engine {
            sink: Arc::new(sink),
            batch_size: batch_size.max(1),
            batch_wait: common.batch_wait,
            retry: common.retry.clone(),
            timeout: common.client.timeout,
        }
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }
}

impl<S: Sink> Writer<Vec<S::Item>> for Engine<S> {
    fn run(
        self: Box<Self>,
        ctx: WriterContext<Vec<S::Item>>,
    ) -> BoxFuture<Result<(), WriterError>> {
        Box::pin(run(*self, ctx))
    }
}

fn count<S: Sink>(items: &[S::Item]) -> u64 {
    items.iter().map(S::count).sum()
}

/// What a worker needs besides its channel.
struct Shared<S> {
    sink: Arc<S>,
    name: String,
    metrics: ComponentMetrics,
    batch_size: usize,
    batch_wait: Duration,
    retry: RetryConfig,
    timeout: Duration,
    deadline: Deadline,
    /// The input is a disk buffer's: what shutdown leaves unsent stays there for the next
    /// start, so it is not counted as discarded.
    durable: bool,
}

impl<S: Sink> Shared<S> {
    /// `n` items left unsent at shutdown, with their acks.
    fn left_at_shutdown(&self, n: u64, acks: Acks) {
        acks.abandon();
        if !self.durable {
            self.metrics.discarded(S::SIGNAL, "shutdown").add(n);
        }
    }
}

/// A routed chunk of items and the acks of the batches they came from.
type Chunk<T> = (Vec<T>, Acks);

async fn run<S: Sink>(
    engine: Engine<S>,
    ctx: WriterContext<Vec<S::Item>>,
) -> Result<(), WriterError> {
    let WriterContext {
        name,
        mut input,
        mut shutdown,
        metrics,
        drain_timeout,
        durable,
    } = ctx;
    let (deadline_tx, deadline_rx) = watch::channel(None::<Instant>);
    let deadline = Deadline::new(deadline_rx);
    let shared = Arc::new(Shared {
        sink: engine.sink.clone(),
        name: name.clone(),
        metrics: metrics.clone(),
        batch_size: engine.batch_size,
        batch_wait: engine.batch_wait,
        retry: engine.retry.clone(),
        timeout: engine.timeout,
        deadline: deadline.clone(),
        durable,
    });
    let shards = engine.sink.shards().max(1);
    let mut workers = JoinSet::new();
    let mut txs = Vec::with_capacity(shards);
    for _ in 0..shards {
        let (tx, rx) = mpsc::channel::<Chunk<S::Item>>(1);
        txs.push(tx);
        workers.spawn(worker(shared.clone(), rx));
    }
    // The series a writer counts into, at 0 from the start (a backend's refusals, `http_<code>`
    // and `grpc_<code>`, appear when they happen: their codes are not known in advance).
    metrics.declare(
        S::SIGNAL,
        &[
            "rejected",
            "retries_exhausted",
            "shutdown",
            "internal_error",
        ],
    );
    metrics.retries();
    let received = metrics.received(S::SIGNAL);
    // Starts the drain clock when the collector stops, whatever the engine is waiting on.
    let watcher = tokio::spawn({
        let name = name.clone();
        async move {
            if shutdown.wait_for(|stop| *stop).await.is_ok() {
                deadline_tx.send_replace(Some(Instant::now() + drain_timeout));
                tracing::debug!(writer = %name, ?drain_timeout, "draining the queue");
            }
        }
    });

    'recv: loop {
        let batch = if deadline.is_set() {
            input.try_recv_acked().ok()
        } else {
            tokio::select! {
                b = input.recv_acked() => b,
                () = deadline.started() => continue,
            }
        };
        let Some((batch, mut acks)) = batch else {
            break;
        };
        // Taken: only the acks that wait for delivery stay with the items.
        acks.taken();
        // What the writer took in: sent + discarded add up to it once it has drained.
        received.add(count::<S>(&batch));
        // Route to shards, keeping each shard's items in arrival order.
        let mut routed: Vec<Vec<S::Item>> = (0..shards).map(|_| Vec::new()).collect();
        for item in batch {
            let s = engine.sink.shard(&item).min(shards - 1);
            routed[s].push(item);
        }
        let mut routed = routed.into_iter().enumerate();
        while let Some((i, chunk)) = routed.next() {
            if chunk.is_empty() {
                continue;
            }
            let n = count::<S>(&chunk);
            tokio::select! {
                r = txs[i].send((chunk, acks.clone())) => {
                    if let Err(mpsc::error::SendError((chunk, acks))) = r {
                        // A worker gone (it hit the deadline): nothing can send this any more.
                        shared.left_at_shutdown(count::<S>(&chunk), acks);
                    }
                }
                () = deadline.reached() => {
                    // The chunk went down with the select: count it and the other shards'.
                    let left: u64 = routed.map(|(_, c)| count::<S>(&c)).sum();
                    shared.left_at_shutdown(n + left, acks);
                    break 'recv;
                }
            }
        }
    }
    // Whatever the deadline left in the queue.
    input.close();
    while let Ok((b, acks)) = input.try_recv_acked() {
        shared.left_at_shutdown(count::<S>(&b), acks);
    }
    drop(txs);
    while let Some(j) = workers.join_next().await {
        if let Err(e) = j {
            tracing::error!(writer = %name, error = %e, "a writer worker failed");
        }
    }
    watcher.abort();
    Ok(())
}

/// One shard: batches what it receives, with at most one batch in flight, in order.
async fn worker<S: Sink>(shared: Arc<Shared<S>>, mut rx: mpsc::Receiver<Chunk<S::Item>>) {
    let mut acc: Vec<S::Item> = Vec::new();
    // The acks of every chunk with items in `acc`.
    let mut acc_acks = Acks::none();
    let mut weight = Fill::default();
    let mut flush_at: Option<Instant> = None;
    let mut inflight: Option<InFlight> = None;
    loop {
        let chunk = tokio::select! {
            c = rx.recv() => c,
            () = sleep_until_opt(flush_at) => {
                if !flush(&shared, &mut inflight, &mut acc, &mut acc_acks, &mut weight, &mut flush_at).await {
                    break;
                }
                continue;
            }
        };
        let Some((chunk, chunk_acks)) = chunk else {
            flush(
                &shared,
                &mut inflight,
                &mut acc,
                &mut acc_acks,
                &mut weight,
                &mut flush_at,
            )
            .await;
            break;
        };
        let mut items = chunk.into_iter();
        let mut gave_up = false;
        // Which batches hold this chunk's items: the one being filled, and each one a flush
        // in the middle of the chunk starts.
        acc_acks.merge(chunk_acks.clone());
        while let Some(item) = items.next() {
            let w = shared.sink.weight(&item);
            let b = S::size_bytes(&item);
            if !acc.is_empty() && weight.would_overflow(w, b, shared.batch_size) {
                if !flush(
                    &shared,
                    &mut inflight,
                    &mut acc,
                    &mut acc_acks,
                    &mut weight,
                    &mut flush_at,
                )
                .await
                {
                    // The drain deadline passed: what is left is counted below.
                    acc.push(item);
                    acc.extend(items);
                    gave_up = true;
                    break;
                }
                acc_acks.merge(chunk_acks.clone());
            }
            acc.push(item);
            weight.add(w, b);
            flush_at.get_or_insert_with(|| Instant::now() + shared.batch_wait);
        }
        if gave_up || shared.deadline.passed() {
            break;
        }
        if weight.is_full(shared.batch_size)
            && !flush(
                &shared,
                &mut inflight,
                &mut acc,
                &mut acc_acks,
                &mut weight,
                &mut flush_at,
            )
            .await
        {
            break;
        }
    }
    // The batch in flight counts its own items, sent or not.
    if let Some(h) = inflight.take() {
        let _ = finished(&shared, h).await;
    }
    // Only reached with items left when the drain deadline passed.
    shared.left_at_shutdown(count::<S>(&acc), acc_acks);
    rx.close();
    while let Ok((c, acks)) = rx.try_recv() {
        shared.left_at_shutdown(count::<S>(&c), acks);
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Starts sending what `acc` holds, once the batch in flight (if any) is done; false when that
/// one found the drain deadline passed (`acc` is then left as it is, for the caller to count).
async fn flush<S: Sink>(
    shared: &Arc<Shared<S>>,
    inflight: &mut Option<InFlight>,
    acc: &mut Vec<S::Item>,
    acks: &mut Acks,
    weight: &mut Fill,
    flush_at: &mut Option<Instant>,
) -> bool {
    if let Some(h) = inflight.take()
        && !finished(shared, h).await
    {
        return false;
    }
    *weight = Fill::default();
    *flush_at = None;
    if acc.is_empty() {
        return true;
    }
    let items = std::mem::take(acc);
    let n = count::<S>(&items);
    let acks = std::mem::take(acks);
    *inflight = Some(InFlight {
        task: tokio::spawn(send_batch(shared.clone(), items, AbandonOnDrop(Some(acks)))),
        items: n,
    });
    true
}

/// The batch a shard has in flight: its task, and its items (counted if the task panics).
struct InFlight {
    task: JoinHandle<bool>,
    items: u64,
}

/// The outcome of a batch in flight. A send that panicked is logged and its items counted as
/// `discarded{reason="internal_error"}` (its acks were abandoned as it unwound, so a disk
/// buffer sends the batch again after a restart); the shard goes on.
async fn finished<S: Sink>(shared: &Shared<S>, h: InFlight) -> bool {
    h.task.await.unwrap_or_else(|e| {
        tracing::error!(writer = %shared.name, error = %e, items = h.items, "a writer send task failed");
        shared
            .metrics
            .discarded(S::SIGNAL, "internal_error")
            .add(h.items);
        true
    })
}

/// A batch's acks, abandoned if dropped without [`AbandonOnDrop::release`] (a panic).
struct AbandonOnDrop(Option<Acks>);

impl AbandonOnDrop {
    fn release(mut self) -> Acks {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        if let Some(acks) = self.0.take() {
            acks.abandon();
        }
    }
}

/// Sends one batch with the retry policy and counts it; false when the drain deadline passed
/// (the batch is then counted as `shutdown`).
/// Its acks are let go once the backend answered for it, abandoned if the deadline came first.
async fn send_batch<S: Sink>(
    shared: Arc<Shared<S>>,
    items: Vec<S::Item>,
    acks: AbandonOnDrop,
) -> bool {
    let n = count::<S>(&items);
    let m = &shared.metrics;
    m.batch_size(S::SIGNAL).observe(n as f64);
    let payload = shared.sink.encode(items);
    let delivery = deliver(
        &shared.name,
        &shared.retry,
        shared.timeout,
        m,
        &shared.deadline,
        || shared.sink.send(&payload),
    )
    .await;
    // Answered for (or the deadline came): the acks go as the outcome says, not abandoned.
    let acks = acks.release();
    match delivery {
        Delivery::Sent { rejected } => {
            let rejected = rejected.min(n);
            m.sent(S::SIGNAL).add(n - rejected);
            if rejected > 0 {
                m.discarded(S::SIGNAL, "rejected").add(rejected);
            }
            true
        }
        Delivery::Partial { split, reason } => {
            let (stored, refused) = split.of(n);
            m.sent(S::SIGNAL).add(stored);
            m.discarded(S::SIGNAL, &reason).add(refused);
            true
        }
        Delivery::Dropped(reason) => {
            m.discarded(S::SIGNAL, &reason).add(n);
            true
        }
        Delivery::Exhausted => {
            m.discarded(S::SIGNAL, "retries_exhausted").add(n);
            true
        }
        Delivery::Shutdown => {
            shared.left_at_shutdown(n, acks);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selfmon::Registry;
    use parking_lot::Mutex;

    /// Records batches; answers from a script (then OK).
    struct Fake {
        sent: Mutex<Vec<Vec<u32>>>,
        script: Mutex<Vec<Attempt>>,
        shards: usize,
    }

    impl Sink for Fake {
        type Item = u32;
        type Payload = Vec<u32>;
        const SIGNAL: Signal = Signal::Metrics;
        fn count(_: &u32) -> u64 {
            1
        }
        fn weight(&self, _: &u32) -> usize {
            1
        }
        fn size_bytes(_: &u32) -> usize {
            4
        }
        fn shards(&self) -> usize {
            self.shards
        }
        fn shard(&self, item: &u32) -> usize {
            *item as usize % self.shards
        }
        fn encode(&self, items: Vec<u32>) -> Vec<u32> {
            items
        }
        fn send(&self, p: &Vec<u32>) -> impl Future<Output = Attempt> + Send {
            let next = {
                let mut s = self.script.lock();
                if s.is_empty() {
                    None
                } else {
                    Some(s.remove(0))
                }
            };
            let a = match next {
                Some(a) => a,
                None => {
                    self.sent.lock().push(p.clone());
                    Attempt::Ok { rejected: 0 }
                }
            };
            async move { a }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Nothing {}

    impl crate::event::Items for Vec<u32> {
        fn items(&self) -> usize {
            self.len()
        }
        fn size_bytes(&self) -> usize {
            self.len() * 4
        }
    }

    fn channel() -> (
        crate::queue::Sender<Vec<u32>>,
        crate::queue::Receiver<Vec<u32>>,
    ) {
        crate::queue::channel(crate::queue::Bound::batches(4), Default::default())
    }

    fn common() -> Common {
        let (c, Nothing {}) = parse_config::<Nothing>(
            toml::from_str(
                "url = \"http://x\"\nbatch_wait = \"20ms\"\nmin_backoff = \"1ms\"\nmax_backoff = \"5ms\"\nmax_retries = 3",
            )
            .unwrap(),
        )
        .unwrap();
        c
    }

    fn ctx(
        rx: crate::queue::Receiver<Vec<u32>>,
        shutdown: watch::Receiver<bool>,
    ) -> (WriterContext<Vec<u32>>, ComponentMetrics) {
        let m = ComponentMetrics::new(Registry::new(), "w", "writer");
        (
            WriterContext {
                name: "w".into(),
                input: rx,
                shutdown,
                metrics: m.clone(),
                drain_timeout: Duration::from_secs(5),
                durable: false,
            },
            m,
        )
    }

    #[tokio::test]
    async fn batches_by_size_keeps_order_per_shard_and_flushes_on_close() {
        let fake = Fake {
            sent: Mutex::new(vec![]),
            script: Mutex::new(vec![Attempt::Retry {
                outcome: "5xx",
                reason: "x".into(),
                retry_after: None,
            }]),
            shards: 2,
        };
        let engine = Engine::new(fake, 3, &common());
        let sink = engine.sink.clone();
        let (tx, rx) = channel();
        let (_stop, stop_rx) = watch::channel(false);
        let (c, m) = ctx(rx, stop_rx);
        let task = tokio::spawn(Box::new(engine).run(c));
        tx.send((0..10).collect()).await.unwrap();
        tx.send((10..13).collect()).await.unwrap();
        drop(tx);
        task.await.unwrap().unwrap();
        let sent = sink.sent.lock().clone();
        assert!(sent.iter().all(|b| b.len() <= 3));
        for shard in 0..2 {
            let seq: Vec<u32> = sent
                .iter()
                .flatten()
                .copied()
                .filter(|i| i % 2 == shard)
                .collect();
            let want: Vec<u32> = (0..13).filter(|i| i % 2 == shard).collect();
            assert_eq!(seq, want);
        }
        assert_eq!(m.sent(Signal::Metrics).get(), 13);
        assert_eq!(m.retries().get(), 1);
    }

    #[tokio::test]
    async fn exhausted_and_dropped_batches_are_counted() {
        let retry = || Attempt::Retry {
            outcome: "5xx",
            reason: "x".into(),
            retry_after: None,
        };
        let fake = Fake {
            sent: Mutex::new(vec![]),
            script: Mutex::new(vec![
                Attempt::Drop {
                    outcome: "4xx",
                    reason: "http_400".into(),
                    message: "bad".into(),
                },
                retry(),
                retry(),
                retry(),
                retry(),
            ]),
            shards: 1,
        };
        let engine = Engine::new(fake, 2, &common());
        let (tx, rx) = channel();
        let (_stop, stop_rx) = watch::channel(false);
        let (c, m) = ctx(rx, stop_rx);
        let task = tokio::spawn(Box::new(engine).run(c));
        tx.send(vec![1, 2, 3, 4, 5, 6]).await.unwrap();
        drop(tx);
        task.await.unwrap().unwrap();
        assert_eq!(m.discarded(Signal::Metrics, "http_400").get(), 2);
        assert_eq!(m.discarded(Signal::Metrics, "retries_exhausted").get(), 2);
        assert_eq!(m.sent(Signal::Metrics).get(), 2);
    }

    #[test]
    fn unknown_keys_are_refused_shared_and_own() {
        let t: toml::Table = toml::from_str("url = \"http://x\"\nbogus = 1").unwrap();
        let err = parse_config::<Nothing>(t).err().unwrap().to_string();
        assert!(err.contains("bogus") && err.contains("tenant_id"), "{err}");
        let t: toml::Table = toml::from_str("url = \"http://x\"\ntls = { nope = true }").unwrap();
        assert!(parse_config::<Nothing>(t).is_err());
    }
}
