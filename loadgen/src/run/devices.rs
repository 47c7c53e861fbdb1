//! One device's state during a run ([`DeviceState`]): its generators, its canary counters, which
//! generation of its slot it is (churn), and what it produced while offline. [`DeviceState::items`]
//! turns one scheduled event into what it sends, with its canary [`Stamp`].

use std::sync::Arc;

use crate::generate::{DeviceSignals, LogEntry};
use crate::payload::Payload;
use crate::schedule::Event;
use wire::Signal;
pub(crate) use wire::time::now_ns;

/// A canary to put in the ledger once its request is acknowledged.
#[derive(Clone, Debug)]
pub(crate) struct Stamp {
    pub(crate) signal: Signal,
    pub(crate) device: Arc<str>,
    pub(crate) index: u64,
    pub(crate) seq: u64,
    pub(crate) sent_ns: i64,
}

/// What one event produces: a payload to push, or a log entry (pushed, or appended to a file).
#[derive(Debug)]
pub(crate) enum Item {
    Push(Payload),
    Log(LogEntry),
}

impl Item {
    pub(crate) fn signal(&self) -> Signal {
        match self {
            Item::Push(p) => p.signal(),
            Item::Log(_) => Signal::Logs,
        }
    }
}

/// One device's generators and canary counters.
pub(crate) struct DeviceState {
    pub(crate) signals: DeviceSignals,
    pub(crate) id: Arc<str>,
    pub(crate) group: usize,
    events: [u64; 3],
    canaries: [u64; 3],
    /// Which device of its slot this is ([`super::dynamics::Plan::generation`]).
    pub(crate) generation: u32,
    /// What it produced while offline, oldest first.
    pub(crate) backlog: Vec<(Item, Option<Stamp>, Signal)>,
}

impl DeviceState {
    pub(crate) fn new(
        device: &crate::fleet::Device,
        seed: u64,
        group: usize,
        generation: u32,
        run: u32,
    ) -> Self {
        DeviceState {
            signals: DeviceSignals::new(device, seed.wrapping_add(u64::from(generation)))
                .for_run(run),
            id: Arc::from(device.id.as_str()),
            group,
            events: [0; 3],
            canaries: [0; 3],
            generation,
            backlog: Vec::new(),
        }
    }

    /// The canary sequence number of this event of `signal`, if it carries one: the first
    /// event of each device's signal and every `every`-th after it, so short runs verify too.
    fn next_canary(&mut self, signal: Signal, every: u64) -> Option<u64> {
        let i = signal.index();
        let n = self.events[i];
        self.events[i] += 1;
        (every > 0 && n.is_multiple_of(every)).then(|| {
            self.canaries[i] += 1;
            self.canaries[i]
        })
    }

    /// The items of one event (a checkout is a trace and a log line), with its canary stamp;
    /// metrics as OTLP when `otlp`, else as remote write.
    pub(crate) fn items(
        &mut self,
        event: &Event,
        canary_every: u64,
        otlp: bool,
    ) -> Vec<(Item, Option<Stamp>)> {
        let now = now_ns();
        let seq = self.next_canary(event.signal, canary_every);
        let stamp = seq.map(|seq| Stamp {
            signal: event.signal,
            device: self.id.clone(),
            index: self.signals.device().index,
            seq,
            sent_ns: now,
        });
        match event.signal {
            Signal::Logs => vec![(Item::Log(self.signals.log_line(now, seq)), stamp)],
            Signal::Metrics if otlp => {
                let scrape = self.signals.scrape(now / 1_000_000, seq);
                let req =
                    crate::payload::otlp::metrics_request(&scrape, &self.signals.device().labels());
                vec![(Item::Push(Payload::OtlpMetrics(req)), stamp)]
            }
            Signal::Metrics => {
                let timeseries = self.signals.metrics(now / 1_000_000, seq);
                let req = wire::remote_write::WriteRequest {
                    timeseries,
                    metadata: Vec::new(),
                };
                vec![(Item::Push(Payload::RemoteWrite(req)), stamp)]
            }
            Signal::Traces => match self.signals.checkout(now, seq, None) {
                Some(c) => {
                    let req = wire::otlp::ExportTraceServiceRequest {
                        resource_spans: c.resource_spans,
                    };
                    vec![
                        (Item::Push(Payload::OtlpTraces(req)), stamp),
                        (Item::Log(c.log), None),
                    ]
                }
                None => Vec::new(),
            },
        }
    }
}
