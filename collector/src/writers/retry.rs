//! The retry policy every writer shares: one request is attempted, classified ([`Attempt`]) and,
//! when the failure is transient (5xx, 429, connection errors, timeouts, retryable gRPC codes),
//! attempted again after an exponential backoff with full jitter between `min_backoff` and
//! `max_backoff`: without a count bound by default (what a receiver acknowledged is not dropped
//! because a backend is down for a while: the writer's queue fills and backpressure goes
//! upstream instead), at most `max_retries` times when that is set. A `Retry-After` the backend
//! sent (429, 503) is honoured, capped at `max_backoff` so that a backend cannot park a writer
//! for hours.
//!
//! Every attempt's duration goes into `request_duration(outcome)`, every retry into `retries`.
//! [`deliver`] never gives up silently: it says whether the batch was sent, dropped (and why),
//! given up after the retries, or abandoned because the shutdown drain deadline passed.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::selfmon::ComponentMetrics;

/// The retry settings (`min_backoff`, `max_backoff`, `max_retries`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// The first backoff, and the lower bound of every backoff.
    #[serde(
        default = "default_min_backoff",
        deserialize_with = "crate::serde_util::duration"
    )]
    pub min_backoff: Duration,
    /// The upper bound of every backoff (and of an honoured `Retry-After`).
    #[serde(
        default = "default_max_backoff",
        deserialize_with = "crate::serde_util::duration"
    )]
    pub max_backoff: Duration,
    /// How many times one request is retried before its batch is given up (`retries_exhausted`);
    /// unset: retried until it is delivered, refused for good, or the shutdown drain ends.
    #[serde(default)]
    pub max_retries: Option<u32>,
}

impl RetryConfig {
    /// The keys this struct reads from a writer's table.
    pub const KEYS: &'static [&'static str] = &["min_backoff", "max_backoff", "max_retries"];
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            min_backoff: default_min_backoff(),
            max_backoff: default_max_backoff(),
            max_retries: None,
        }
    }
}

fn default_min_backoff() -> Duration {
    Duration::from_millis(500)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}

impl RetryConfig {
    /// The wait before retry number `retry` (0 for the first): uniformly random between
    /// `min_backoff` and `min(max_backoff, min_backoff * 2^retry)` ("full jitter" above the
    /// floor), or the server's `Retry-After` if that is longer; never above `max_backoff`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let min = self.min_backoff.min(self.max_backoff);
        let cap = min
            .checked_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff);
        let jittered = if cap > min {
            Duration::from_secs_f64(rand::random_range(min.as_secs_f64()..=cap.as_secs_f64()))
        } else {
            min
        };
        jittered
            .max(retry_after.unwrap_or_default())
            .min(self.max_backoff)
            .max(min)
    }
}

/// What one attempt to send a request came to.
#[derive(Debug)]
pub enum Attempt {
    /// The backend took it; `rejected` items of it were refused (OTLP partial success).
    Ok { rejected: u64 },
    /// The backend refused part of the request for good and stored the rest (Loki's 400 "total
    /// ignored: N out of M", a remote-write 400 with `X-Prometheus-Remote-Write-Samples-Written`).
    Partial {
        /// How many were stored or refused.
        split: Split,
        /// The `discarded` reason of the refused ones (`http_400`).
        reason: String,
        /// What the backend said, for logs.
        message: String,
    },
    /// A transient failure: try again later.
    Retry {
        /// `request_duration` outcome label: `4xx` (429), `5xx`, `error`.
        outcome: &'static str,
        /// For logs (never holds credentials).
        reason: String,
        /// When the backend asked to come back.
        retry_after: Option<Duration>,
    },
    /// A permanent failure: the batch is dropped.
    Drop {
        /// `request_duration` outcome label.
        outcome: &'static str,
        /// The `discarded` reason (`http_400`, `grpc_invalid_argument`, ...).
        reason: String,
        /// What the backend said, for logs.
        message: String,
    },
}

/// What a backend said of a partly refused request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// This many items were refused, the others stored.
    Refused(u64),
    /// This many items were stored, the others refused.
    Stored(u64),
}

impl Split {
    /// `(stored, refused)` of a batch of `n` items.
    pub fn of(self, n: u64) -> (u64, u64) {
        match self {
            Split::Refused(r) => (n - r.min(n), r.min(n)),
            Split::Stored(s) => (s.min(n), n - s.min(n)),
        }
    }
}

/// What became of one batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Acknowledged; `rejected` of its items were refused by the backend.
    Sent { rejected: u64 },
    /// Partly stored, partly refused for good (counted under `reason`).
    Partial { split: Split, reason: String },
    /// Refused for good; the `discarded` reason.
    Dropped(String),
    /// Still failing after `max_retries` retries (only when that is set).
    Exhausted,
    /// The shutdown drain deadline passed first.
    Shutdown,
}

/// The shutdown drain deadline: unset while running, set once when the collector stops.
#[derive(Clone, Debug)]
pub struct Deadline(watch::Receiver<Option<Instant>>);

impl Deadline {
    pub fn new(rx: watch::Receiver<Option<Instant>>) -> Self {
        Deadline(rx)
    }

    /// Resolves when the deadline is set and has passed; never if it is never set.
    pub async fn reached(&self) {
        let mut rx = self.0.clone();
        loop {
            let at = *rx.borrow_and_update();
            if let Some(at) = at {
                tokio::time::sleep_until(at).await;
                return;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Resolves once the deadline is set (the drain has begun); never if it is never set.
    pub async fn started(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(Option::is_some).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Has the drain begun?
    pub fn is_set(&self) -> bool {
        self.0.borrow().is_some()
    }

    /// Has the deadline passed already?
    pub fn passed(&self) -> bool {
        matches!(*self.0.borrow(), Some(at) if at <= Instant::now())
    }
}

/// Sends one request with the retry policy: `attempt` is called once per try, each bounded by
/// `timeout`; the whole is abandoned when `deadline` is reached.
pub async fn deliver<F, Fut>(
    writer: &str,
    retry: &RetryConfig,
    timeout: Duration,
    metrics: &ComponentMetrics,
    deadline: &Deadline,
    mut attempt: F,
) -> Delivery
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt>,
{
    let mut retries = 0u32;
    loop {
        if deadline.passed() {
            return Delivery::Shutdown;
        }
        let started = Instant::now();
        let result = tokio::select! {
            r = tokio::time::timeout(timeout, attempt()) => r.unwrap_or_else(|_| Attempt::Retry {
                outcome: "error",
                reason: format!("no answer within the timeout of {timeout:?}"),
                retry_after: None,
            }),
            () = deadline.reached() => return Delivery::Shutdown,
        };
        let outcome = match &result {
            Attempt::Ok { .. } => "2xx",
            Attempt::Partial { .. } => "4xx",
            Attempt::Retry { outcome, .. } | Attempt::Drop { outcome, .. } => outcome,
        };
        metrics
            .request_duration(outcome)
            .observe(started.elapsed().as_secs_f64());
        match result {
            Attempt::Ok { rejected } => return Delivery::Sent { rejected },
            Attempt::Partial {
                split,
                reason,
                message,
            } => {
                tracing::warn!(writer, %reason, ?split, backend_said = %message, "part of a batch refused by the backend, dropped");
                return Delivery::Partial { split, reason };
            }
            Attempt::Drop {
                reason, message, ..
            } => {
                tracing::warn!(writer, %reason, backend_said = %message, "batch refused by the backend, dropped");
                return Delivery::Dropped(reason);
            }
            Attempt::Retry {
                reason,
                retry_after,
                ..
            } => {
                if retry.max_retries.is_some_and(|max| retries >= max) {
                    tracing::warn!(writer, %reason, retries, "giving up on a batch after the last retry");
                    return Delivery::Exhausted;
                }
                let wait = retry.delay(retries, retry_after);
                if retries > 0 && retries.is_power_of_two() {
                    // Unbounded retries: say so now and then, not on every one.
                    tracing::warn!(writer, %reason, retries, ?wait, "the backend still fails; retrying, the queue holds what waits");
                } else {
                    tracing::debug!(writer, %reason, ?wait, retry = retries + 1, "retrying a request");
                }
                retries = retries.saturating_add(1);
                metrics.retries().inc();
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = deadline.reached() => return Delivery::Shutdown,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selfmon::Registry;

    fn policy(min_ms: u64, max_ms: u64, max_retries: u32) -> RetryConfig {
        RetryConfig {
            min_backoff: Duration::from_millis(min_ms),
            max_backoff: Duration::from_millis(max_ms),
            max_retries: Some(max_retries),
        }
    }

    #[test]
    fn backoff_stays_between_min_and_max_and_grows() {
        let p = policy(100, 2_000, 10);
        for retry in 0..64 {
            for _ in 0..50 {
                let d = p.delay(retry, None);
                assert!(d >= p.min_backoff && d <= p.max_backoff, "{retry}: {d:?}");
                let cap = Duration::from_millis(100u64.saturating_mul(1 << retry.min(20)));
                assert!(d <= cap.max(p.min_backoff), "{retry}: {d:?} above {cap:?}");
            }
        }
        assert_eq!(p.delay(0, None), p.min_backoff);
        // Retry-After is honoured, up to max_backoff.
        assert_eq!(
            p.delay(0, Some(Duration::from_millis(1500))),
            Duration::from_millis(1500)
        );
        assert_eq!(p.delay(3, Some(Duration::from_secs(3600))), p.max_backoff);
        // A min above max is clamped rather than panicking.
        let odd = policy(5_000, 100, 1);
        assert_eq!(odd.delay(7, None), Duration::from_millis(100));
    }

    fn deadline_never() -> Deadline {
        let (tx, rx) = watch::channel(None);
        std::mem::forget(tx);
        Deadline::new(rx)
    }

    /// An attempt that fails with a 5xx `n` times, then goes through.
    fn fail_first(n: u32) -> impl FnMut() -> std::future::Ready<Attempt> {
        let mut calls = 0;
        move || {
            calls += 1;
            std::future::ready(if calls <= n {
                Attempt::Retry {
                    outcome: "5xx",
                    reason: "down".into(),
                    retry_after: None,
                }
            } else {
                Attempt::Ok { rejected: 0 }
            })
        }
    }

    #[tokio::test]
    async fn retries_until_ok_and_counts() {
        let m = ComponentMetrics::new(Registry::new(), "w", "writer");
        let d = deliver(
            "w",
            &policy(10, 100, 5),
            Duration::from_secs(1),
            &m,
            &deadline_never(),
            fail_first(2),
        )
        .await;
        assert_eq!(d, Delivery::Sent { rejected: 0 });
        assert_eq!(m.retries().get(), 2);
        assert_eq!(m.request_duration("5xx").count(), 2);
        assert_eq!(m.request_duration("2xx").count(), 1);
    }

    #[tokio::test]
    async fn gives_up_after_max_retries_and_times_out_hangs() {
        let m = ComponentMetrics::new(Registry::new(), "w", "writer");
        let d = deliver(
            "w",
            &policy(10, 100, 2),
            Duration::from_millis(50),
            &m,
            &deadline_never(),
            std::future::pending::<Attempt>,
        )
        .await;
        assert_eq!(d, Delivery::Exhausted);
        assert_eq!(m.retries().get(), 2);
        assert_eq!(m.request_duration("error").count(), 3);
    }

    /// Without `max_retries`, a failing backend is retried as long as it fails (here far more
    /// than the old default of 10), and the batch is delivered once it answers.
    #[tokio::test]
    async fn without_max_retries_a_request_is_retried_until_it_goes_through() {
        let m = ComponentMetrics::new(Registry::new(), "w", "writer");
        let unbounded = RetryConfig {
            max_retries: None,
            ..policy(1, 1, 0)
        };
        assert_eq!(RetryConfig::default().max_retries, None);
        let d = deliver(
            "w",
            &unbounded,
            Duration::from_secs(1),
            &m,
            &deadline_never(),
            fail_first(40),
        )
        .await;
        assert_eq!(d, Delivery::Sent { rejected: 0 });
        assert_eq!(m.retries().get(), 40);
    }

    #[test]
    fn a_split_never_counts_more_than_the_batch() {
        assert_eq!(Split::Refused(1).of(101), (100, 1));
        assert_eq!(Split::Stored(7).of(10), (7, 3));
        assert_eq!(Split::Refused(50).of(10), (0, 10));
        assert_eq!(Split::Stored(50).of(10), (10, 0));
    }

    #[tokio::test]
    async fn the_drain_deadline_abandons_a_request() {
        let m = ComponentMetrics::new(Registry::new(), "w", "writer");
        let (tx, rx) = watch::channel(None);
        let _ = tx.send(Some(Instant::now() + Duration::from_millis(20)));
        let d = deliver(
            "w",
            &policy(10, 100, 100),
            Duration::from_secs(3600),
            &m,
            &Deadline::new(rx),
            std::future::pending::<Attempt>,
        )
        .await;
        assert_eq!(d, Delivery::Shutdown);
    }
}
