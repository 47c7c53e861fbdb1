//! Acknowledgements: a token ([`Ack`]) that travels beside a batch through every queue, process
//! component and writer, and reports to whoever made it once the last copy is gone.
//!
//! Who holds a copy, and until when:
//! - a queue, while the batch waits in it; a process component, while it works on the batch
//!   (its output's batches carry the copies on; a batch a stage empties lets them go);
//! - a writer with a disk buffer, until the batch is written to the buffer (and synced, with
//!   `fsync = "always"`): then the batch survives `kill -9`;
//! - a writer without one: an [`Until::Taken`] ack until the writer takes the batch off its
//!   queue (today's promise: the batch is in the writer's hands), an [`Until::Delivered`] ack
//!   until the backend answered for it (stored, or refused for good and counted).
//!
//! The outcome is [`Outcome::Abandoned`] if any copy was abandoned — the batch was not taken
//! because the collector stopped first — so a receiver answers 503 and a file source does not
//! move its position past lines it may have lost. A batch dropped by policy (a stage, a full
//! `drop_newest` queue, a 4xx) is not abandoned: the drop is the outcome, counted where it
//! happened.
//!
//! Receivers make acks only when some writer keeps a disk buffer (then "204" means "on disk");
//! the file source always does, for its positions. Nothing else pays for them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// How far a batch must get before its ack is done, at a writer without a disk buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// Taken off the writer's queue (receivers: what their 2xx promised before disk buffers).
    Taken,
    /// Answered for by the backend (the file source: its position follows delivery).
    Delivered,
}

/// How it ended for the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every holder was done with it: stored, buffered, or dropped by a counted policy.
    Done,
    /// Some holder gave it up because the collector stopped first.
    Abandoned,
}

type Notify = Box<dyn FnOnce(Outcome) + Send>;

struct Inner {
    until: Until,
    abandoned: AtomicBool,
    notify: Mutex<Option<Notify>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(notify) = self.notify.get_mut().take() {
            notify(if self.abandoned.load(Ordering::Acquire) {
                Outcome::Abandoned
            } else {
                Outcome::Done
            });
        }
    }
}

/// One batch's acknowledgement; clones are copies of the same one.
#[derive(Clone)]
pub struct Ack(Arc<Inner>);

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ack").field("until", &self.0.until).finish()
    }
}

impl Ack {
    /// An ack that calls `notify` once its last copy is dropped.
    pub fn new(until: Until, notify: impl FnOnce(Outcome) + Send + 'static) -> Ack {
        Ack(Arc::new(Inner {
            until,
            abandoned: AtomicBool::new(false),
            notify: Mutex::new(Some(Box::new(notify))),
        }))
    }

    /// An ack, and what waits for it (see [`AckWait`]).
    pub fn waited(until: Until) -> (Ack, AckWait) {
        let slot = Arc::new((Mutex::new(None::<Outcome>), Condvar::new()));
        let signal = slot.clone();
        let ack = Ack::new(until, move |outcome| {
            *signal.0.lock() = Some(outcome);
            signal.1.notify_all();
        });
        (ack, AckWait(slot))
    }

    pub fn until(&self) -> Until {
        self.0.until
    }

    /// The batch was not taken because the collector stopped: the outcome is
    /// [`Outcome::Abandoned`] whatever the other copies do.
    pub fn abandon(&self) {
        self.0.abandoned.store(true, Ordering::Release);
    }
}

/// Waits for one [`Ack`] (on a blocking thread: receivers decode and offer there).
pub struct AckWait(Arc<(Mutex<Option<Outcome>>, Condvar)>);

impl AckWait {
    /// The outcome, or `None` if it is not in after `timeout`.
    pub fn wait(self, timeout: Duration) -> Option<Outcome> {
        let (slot, cv) = &*self.0;
        let mut outcome = slot.lock();
        let deadline = std::time::Instant::now() + timeout;
        while outcome.is_none() {
            if cv.wait_until(&mut outcome, deadline).timed_out() {
                break;
            }
        }
        *outcome
    }
}

/// The acks of one batch (several once batches are merged); empty for most batches.
#[derive(Clone, Debug, Default)]
pub struct Acks(Vec<Ack>);

impl Acks {
    pub fn none() -> Acks {
        Acks(Vec::new())
    }

    pub fn one(ack: Ack) -> Acks {
        Acks(vec![ack])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Takes `other`'s acks into these (a batch merged into another).
    pub fn merge(&mut self, other: Acks) {
        self.0.extend(other.0);
    }

    /// Lets go of the acks that end here, at a writer without a disk buffer taking the batch
    /// off its queue ([`Until::Taken`]); keeps those that wait for delivery.
    pub fn taken(&mut self) {
        self.0.retain(|a| a.until() == Until::Delivered);
    }

    /// The batch was given up because the collector stopped (see [`Ack::abandon`]).
    pub fn abandon(self) {
        for a in &self.0 {
            a.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_once_the_last_copy_goes_abandoned_if_any_copy_was() {
        let (ack, wait) = Ack::waited(Until::Taken);
        let copy = ack.clone();
        let mut merged = Acks::one(ack);
        merged.merge(Acks::one(copy.clone()));
        drop(copy);
        assert_eq!(merged.len(), 2);
        drop(merged);
        assert_eq!(wait.wait(Duration::from_secs(1)), Some(Outcome::Done));

        let (ack, wait) = Ack::waited(Until::Delivered);
        let kept = Acks::one(ack.clone());
        Acks::one(ack).abandon();
        drop(kept);
        assert_eq!(wait.wait(Duration::from_secs(1)), Some(Outcome::Abandoned));
    }

    #[test]
    fn a_writer_lets_go_of_taken_acks_and_keeps_delivered_ones() {
        let (taken, taken_wait) = Ack::waited(Until::Taken);
        let (delivered, delivered_wait) = Ack::waited(Until::Delivered);
        let mut acks = Acks::one(taken);
        acks.merge(Acks::one(delivered));
        acks.taken();
        assert_eq!(taken_wait.wait(Duration::from_secs(1)), Some(Outcome::Done));
        assert_eq!(acks.len(), 1);
        let still = std::thread::spawn(move || delivered_wait.wait(Duration::from_millis(50)));
        assert_eq!(still.join().ok(), Some(None), "held until delivered");
        drop(acks);
    }
}
