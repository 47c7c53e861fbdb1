//! Backfill: what an offline device produced, sent when it is back (`--offline`). The backlog
//! goes oldest first, one request at a time (so each series' samples stay in order, as a real
//! device's retry queue sends them), timed from the event that found the device back online.
//! Canaries count as sent when they are sent, not when they were produced.

use super::{Outbound, Transport};
use crate::payload::log_payload;
use crate::recorder::Request;
use crate::run::devices::{Item, Stamp, now_ns};
use crate::schedule::Event;
use crate::send::Outcome;
use wire::Signal;

/// Sends `backlog` in order, each request after the previous one's outcome.
pub(super) async fn backfill<T: Transport>(
    backlog: Vec<(Item, Option<Stamp>, Signal)>,
    event: Event,
    group: usize,
    out: Outbound<T>,
) {
    for (item, stamp, signal) in backlog {
        let payload = match item {
            Item::Push(p) => p,
            Item::Log(entry) => log_payload(entry, out.otlp),
        };
        let mut event = event;
        event.signal = signal;
        let stamp = stamp.map(|s| Stamp {
            sent_ns: now_ns(),
            ..s
        });
        let target = out.targets.of(&payload);
        let outcome = match payload.prepare(target) {
            Ok(req) => {
                let bytes = req.body_len();
                let permit = out.transport.acquire(req.url()).await;
                let outcome = out.transport.send(permit, req).await;
                out.shared.recorder.request(&Request {
                    signal,
                    completed: out.start.elapsed(),
                    bytes,
                    warmup: event.warmup,
                });
                outcome
            }
            Err(e) => Outcome {
                items: payload.items(),
                result: Err(e),
            },
        };
        let stamp = if outcome.result.is_ok() { stamp } else { None };
        out.shared
            .finish(&event, group, out.start.elapsed(), &outcome, stamp);
    }
}
