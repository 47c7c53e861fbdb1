//! What the fuzz targets in `fuzz_targets/` share: a counting allocator (the decoded-size
//! estimates of `wire::budget` are checked against the real heap peak of decoding), the input
//! format of the request targets ([`input`]), how they encode a body as its headers say
//! ([`encode`]), the checks of the `wire` targets ([`checks`]) and the in-process receivers the
//! `rx_*` targets drive ([`receivers`]). See fuzz/README.md for the targets and how to run them.

pub mod checks;
pub mod encode;
pub mod input;
pub mod receivers;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes held and their peak (as `allocation-counter`, which
/// the `wire` budget tests use: a `realloc` is an allocation of the new size, a copy, then the
/// release of the old one).
pub struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The heap peak while `f` runs, above what was held when it started, its result included
/// (dropped after the measurement). Counts every thread: call it where nothing else runs (the
/// `wire` targets are single-threaded).
pub fn peak_of<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let r = f();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    (peak, r)
}

/// The three OTLP signals, picked by an input's first byte (`0` logs, `1` metrics, `2` traces,
/// modulo 3) in the `otlp_*` targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpSignal {
    Logs,
    Metrics,
    Traces,
}

impl OtlpSignal {
    /// The signal of a first byte, and the rest.
    pub fn split(data: &[u8]) -> Option<(OtlpSignal, &[u8])> {
        let (&b, rest) = data.split_first()?;
        let s = match b % 3 {
            0 => OtlpSignal::Logs,
            1 => OtlpSignal::Metrics,
            _ => OtlpSignal::Traces,
        };
        Some((s, rest))
    }
}
