//! The ledger of acknowledged canaries: per signal, per device, each sequence number and its
//! send time. The engine records a canary once the target acknowledged the request carrying it;
//! the verifier reads the ledger to know what it must find.
//!
//! Recording takes one short `parking_lot` lock per signal, so it is cheap from any thread.
//! Memory is bounded: each signal keeps at most `capacity` canaries (about 50 bytes each);
//! canaries beyond that are counted in [`Ledger::overflowed`] and not verified.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use parking_lot::Mutex;

pub use wire::Signal;

/// Canaries kept per signal by [`Ledger::new`].
pub const DEFAULT_CAPACITY: usize = 1 << 20;

/// The acknowledged canaries of one device and one signal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceCanaries {
    /// The device's position in the fleet (trace ids are built from it).
    pub index: u64,
    /// Sequence number → send time (unix ns).
    pub sent: BTreeMap<u64, i64>,
}

/// Every device's canaries of one signal, by device id.
pub type SignalCanaries = HashMap<String, DeviceCanaries>;

#[derive(Default)]
struct SignalLedger {
    devices: SignalCanaries,
    len: usize,
    overflowed: u64,
}

/// The acknowledged canaries of a run.
pub struct Ledger {
    capacity: usize,
    signals: [Mutex<SignalLedger>; 3],
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new()
    }
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Ledger");
        for s in Signal::ALL {
            d.field(s.as_str(), &self.len(s));
        }
        d.finish()
    }
}

impl Ledger {
    /// A ledger keeping up to [`DEFAULT_CAPACITY`] canaries per signal.
    pub fn new() -> Self {
        Ledger::with_capacity(DEFAULT_CAPACITY)
    }

    /// A ledger keeping up to `capacity` canaries per signal.
    pub fn with_capacity(capacity: usize) -> Self {
        Ledger {
            capacity,
            signals: Default::default(),
        }
    }

    /// Records that the target acknowledged canary `seq` of `device_id` (fleet position
    /// `device_index`), sent at `sent_ns`. Returns `false` when the ledger is full for this
    /// signal (the canary is then counted in [`Ledger::overflowed`] only). Recording the same
    /// canary twice (a retried request acknowledged twice) keeps the first send time.
    pub fn record(
        &self,
        signal: Signal,
        device_id: &str,
        device_index: u64,
        seq: u64,
        sent_ns: i64,
    ) -> bool {
        let mut l = self.signals[signal.index()].lock();
        if l.len >= self.capacity {
            l.overflowed += 1;
            return false;
        }
        let dev = match l.devices.get_mut(device_id) {
            Some(d) => d,
            None => l
                .devices
                .entry(device_id.to_string())
                .or_insert_with(|| DeviceCanaries {
                    index: device_index,
                    sent: BTreeMap::new(),
                }),
        };
        let added = match dev.sent.entry(seq) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(sent_ns);
                true
            }
            std::collections::btree_map::Entry::Occupied(_) => false,
        };
        if added {
            l.len += 1;
        }
        true
    }

    /// Canaries recorded for `signal`.
    pub fn len(&self, signal: Signal) -> usize {
        self.signals[signal.index()].lock().len
    }

    /// Is nothing recorded for any signal?
    pub fn is_empty(&self) -> bool {
        Signal::ALL.iter().all(|&s| self.len(s) == 0)
    }

    /// Canaries of `signal` not kept because the ledger was full.
    pub fn overflowed(&self, signal: Signal) -> u64 {
        self.signals[signal.index()].lock().overflowed
    }

    /// Runs `f` over the canaries of `signal` under the lock: keep `f` short and never await in
    /// it.
    pub fn read<R>(&self, signal: Signal, f: impl FnOnce(&SignalCanaries) -> R) -> R {
        f(&self.signals[signal.index()].lock().devices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_per_signal_and_device_and_stays_bounded() {
        let l = Ledger::with_capacity(3);
        assert!(l.record(Signal::Logs, "a", 0, 1, 10));
        assert!(l.record(Signal::Logs, "a", 0, 1, 99)); // same canary: first send time kept
        assert!(l.record(Signal::Logs, "b", 1, 1, 11));
        assert!(l.record(Signal::Logs, "a", 0, 2, 12));
        assert!(!l.record(Signal::Logs, "a", 0, 3, 13));
        assert!(l.record(Signal::Traces, "a", 0, 3, 13));
        assert_eq!(l.len(Signal::Logs), 3);
        assert_eq!(l.overflowed(Signal::Logs), 1);
        assert_eq!(l.len(Signal::Metrics), 0);
        l.read(Signal::Logs, |m| {
            assert_eq!(m["a"].sent.get(&1), Some(&10));
            assert_eq!(m["b"].index, 1);
        });
    }
}
