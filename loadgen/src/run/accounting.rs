//! What every send of a run is counted into ([`Shared`]): the recorder (attempts from their
//! intended times, requests), the ledger of acknowledged canaries, the breakdown rows per device
//! type and region, and the live progress counters.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;
use reports::results::Breakdown;

use super::devices::Stamp;
use crate::deliver::Delivered;
use crate::fleet::Fleet;
use crate::progress::Progress;
use crate::recorder::{Attempt, Recorder};
use crate::schedule::Event;
use crate::send::Outcome;
use crate::verify::Ledger;

/// What is shared by the tasks that send.
pub(crate) struct Shared {
    /// This run's id in canary trace ids, from its start time.
    pub(crate) run: u32,
    pub(crate) recorder: Recorder,
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) breakdown: Mutex<Vec<Breakdown>>,
    pub(crate) progress: Arc<Progress>,
}

impl Shared {
    /// The outcome of one request carrying one event's items.
    pub(crate) fn finish(
        &self,
        event: &Event,
        group: usize,
        completed: Duration,
        out: &Outcome,
        stamp: Option<Stamp>,
    ) {
        let error = out.error_key();
        self.attempt(event, group, completed, out.items, error.as_deref(), stamp);
    }

    /// An attempt of a delivery path (scrape served, line appended).
    pub(crate) fn delivered(
        &self,
        d: &Delivered,
        warmup: Duration,
        group: usize,
        id: &Arc<str>,
        index: u64,
    ) {
        let event = Event {
            at: d.intended,
            device: d.device as u64,
            signal: d.signal,
            warmup: d.intended < warmup,
        };
        let stamp = d.canary.map(|(seq, sent_ns)| Stamp {
            signal: d.signal,
            device: id.clone(),
            index,
            seq,
            sent_ns,
        });
        self.attempt(
            &event,
            group,
            d.completed,
            d.items,
            d.error.as_deref(),
            stamp,
        );
    }

    /// One event's items, sent at `completed` (since the run's start) with `error` or
    /// acknowledged: recorded from the event's intended time; its canary goes in the ledger
    /// once acknowledged.
    pub(crate) fn attempt(
        &self,
        event: &Event,
        group: usize,
        completed: Duration,
        items: u64,
        error: Option<&str>,
        stamp: Option<Stamp>,
    ) {
        self.recorder.record(&Attempt {
            signal: event.signal,
            intended: event.at,
            completed,
            items,
            error,
            warmup: event.warmup,
        });
        if error.is_none() {
            self.progress.acknowledged[event.signal.index()].fetch_add(items, Ordering::Relaxed);
            if let Some(s) = stamp {
                self.ledger
                    .record(s.signal, &s.device, s.index, s.seq, s.sent_ns);
            }
        } else {
            self.progress.errors.fetch_add(items, Ordering::Relaxed);
        }
        if !event.warmup {
            let mut b = self.breakdown.lock();
            if let Some(row) = b.get_mut(group) {
                *row.sent
                    .entry(event.signal.as_str().to_string())
                    .or_default() += items;
                if error.is_some() {
                    row.errors += items;
                }
            }
        }
    }
}

/// Breakdown rows per (device type, region), and each device's row.
pub(crate) fn groups(fleet: &Fleet) -> (Vec<Breakdown>, Vec<usize>) {
    let mut rows: Vec<Breakdown> = Vec::new();
    let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
    let of_device = fleet
        .devices
        .iter()
        .map(|d| {
            let key = (d.device_type.as_str().to_string(), d.region.clone());
            let i = *index.entry(key).or_insert_with(|| {
                rows.push(Breakdown {
                    device_type: d.device_type.as_str().to_string(),
                    region: d.region.clone(),
                    devices: 0,
                    sent: BTreeMap::new(),
                    errors: 0,
                });
                rows.len() - 1
            });
            rows[i].devices += 1;
            i
        })
        .collect();
    (rows, of_device)
}
