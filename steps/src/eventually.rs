//! Polling with a deadline, as the steps use it: testkit's [`testkit::poll`] with the last HTTP
//! [`Exchange`] as what a timeout shows, so a failed step says what it asked and got back.

use crate::query::Exchange;

pub use testkit::poll::{PATIENCE, eventually, throughout};

/// One attempt of a check: passed with a value, or not yet, with the exchange that shows why.
pub type Attempt<T> = testkit::poll::Attempt<T, Exchange>;

/// A check that did not pass in time, with its last exchange for the world's record.
pub type TimedOut = testkit::poll::TimedOut<Exchange>;
