//! Coalescing the fleet's sends into fewer requests (`--batch-window`): the payloads of events
//! whose intended times fall within one window are merged into one request per payload kind
//! (one Loki push with many streams, one remote write with many series, ...), sent when the
//! window closes or the batch is full. This is what an aggregation point in a store does, and
//! what keeps loadgen's cost per item far below the system under test's.
//!
//! Nothing is sent before its intended time: a batch goes out at the end of its window, so
//! every event's send latency (measured from its own intended time) includes its wait in the
//! batch, up to one window. A window of zero sends every event on its own.

use std::time::Duration;

use crate::payload::Payload;
use crate::run::devices::Stamp;
use crate::schedule::Event;

/// The most items one request carries.
pub(crate) const MAX_ITEMS: u64 = 2000;

/// The number of payload kinds ([`Payload::kind`]).
const KINDS: usize = 5;

/// One event's share of a batched request: recorded as its own attempt.
#[derive(Debug)]
pub(crate) struct Part {
    /// The event, with the signal of its payload.
    pub(crate) event: Event,
    pub(crate) group: usize,
    pub(crate) items: u64,
    pub(crate) stamp: Option<Stamp>,
}

/// A request in the making.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) payload: Payload,
    pub(crate) parts: Vec<Part>,
    /// When it goes out, since the start of the run.
    pub(crate) deadline: Duration,
    items: u64,
}

/// The open batches, one per payload kind.
#[derive(Debug)]
pub(crate) struct Batcher {
    window: Duration,
    open: [Option<Batch>; KINDS],
}

impl Batcher {
    pub(crate) fn new(window: Duration) -> Batcher {
        Batcher {
            window,
            open: Default::default(),
        }
    }

    /// Adds one event's payload; returns a batch that is ready now (full, or no window).
    pub(crate) fn add(&mut self, part: Part, payload: Payload) -> Option<Batch> {
        let kind = payload.kind();
        let deadline = part.event.at + self.window;
        let items = part.items;
        let slot = &mut self.open[kind];
        match slot {
            Some(b) => {
                if let Err(p) = b.payload.merge(payload) {
                    // Kinds match by construction; should they not, send it on its own.
                    return Some(Batch {
                        payload: p,
                        parts: vec![part],
                        deadline,
                        items,
                    });
                }
                b.items += items;
                b.parts.push(part);
            }
            None => {
                *slot = Some(Batch {
                    payload,
                    parts: vec![part],
                    deadline,
                    items,
                });
            }
        }
        let ready = self.window.is_zero() || slot.as_ref().is_some_and(|b| b.items >= MAX_ITEMS);
        if ready { slot.take() } else { None }
    }

    /// The earliest deadline of the open batches.
    pub(crate) fn next_deadline(&self) -> Option<Duration> {
        self.open.iter().flatten().map(|b| b.deadline).min()
    }

    /// The batches whose deadline is at or before `now`.
    pub(crate) fn due(&mut self, now: Duration) -> Vec<Batch> {
        self.open
            .iter_mut()
            .filter(|b| b.as_ref().is_some_and(|b| b.deadline <= now))
            .filter_map(Option::take)
            .collect()
    }

    /// Every open batch.
    pub(crate) fn drain(&mut self) -> Vec<Batch> {
        self.open.iter_mut().filter_map(Option::take).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::Signal;

    fn log_part(at_ms: u64) -> (Part, Payload) {
        let payload = Payload::Loki(wire::loki::PushRequest {
            streams: vec![wire::loki::Stream {
                labels: "{device=\"d\"}".into(),
                entries: vec![wire::loki::Entry::new(at_ms as i64, "x")],
                hash: 0,
            }],
        });
        let part = Part {
            event: Event {
                at: Duration::from_millis(at_ms),
                device: 0,
                signal: Signal::Logs,
                warmup: false,
            },
            group: 0,
            items: 1,
            stamp: None,
        };
        (part, payload)
    }

    #[test]
    fn no_window_sends_each_event_at_once() {
        let mut b = Batcher::new(Duration::ZERO);
        let (p, pl) = log_part(5);
        let batch = b.add(p, pl).unwrap();
        assert_eq!(batch.parts.len(), 1);
        assert_eq!(b.next_deadline(), None);
    }

    #[test]
    fn a_window_merges_and_closes_at_its_deadline() {
        let mut b = Batcher::new(Duration::from_millis(10));
        for at in [100, 103, 109] {
            let (p, pl) = log_part(at);
            assert!(b.add(p, pl).is_none());
        }
        assert_eq!(b.next_deadline(), Some(Duration::from_millis(110)));
        assert!(b.due(Duration::from_millis(109)).is_empty());
        let mut due = b.due(Duration::from_millis(110));
        assert_eq!(due.len(), 1);
        let batch = due.remove(0);
        assert_eq!(batch.parts.len(), 3);
        let Payload::Loki(req) = &batch.payload else {
            panic!("not a Loki push")
        };
        assert_eq!(req.streams.len(), 3);
        // Each part keeps its own intended time, for its own latency.
        let ats: Vec<u64> = batch
            .parts
            .iter()
            .map(|p| p.event.at.as_millis() as u64)
            .collect();
        assert_eq!(ats, [100, 103, 109]);
        assert!(b.drain().is_empty());
    }

    #[test]
    fn a_full_batch_goes_at_once_and_kinds_stay_apart() {
        let mut b = Batcher::new(Duration::from_secs(1));
        let mut sent = 0;
        for i in 0..MAX_ITEMS {
            let (p, pl) = log_part(i);
            if let Some(batch) = b.add(p, pl) {
                sent += batch.parts.len();
            }
        }
        assert_eq!(sent as u64, MAX_ITEMS);
        let (p, _) = log_part(1);
        let rw = Payload::RemoteWrite(wire::remote_write::WriteRequest::default());
        assert!(b.add(p, rw).is_none());
        let (p, pl) = log_part(2);
        assert!(b.add(p, pl).is_none());
        assert_eq!(b.drain().len(), 2, "a remote write and a Loki batch");
    }
}
