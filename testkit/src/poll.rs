//! Polling with a deadline: a check runs until it passes or time is up. The deadline is a guard
//! against hangs, not a timed assertion: a passing test never waits for it.
//!
//! [`until_some`] (re-exported as `testkit::eventually`) is for plain tests: the check returns
//! `Some` when done, and a timeout panics naming what was waited for. [`eventually`] and
//! [`throughout`] return a [`TimedOut`] that says what was waited for and what the last attempt
//! saw (`E`, e.g. the HTTP exchange of a query), for callers that report it themselves.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How long a check may keep failing, unless the caller says otherwise.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// How long [`until_some`] waits: generous, since only a failing test ever reaches it, and some
/// checks wait for real servers (a scrape interval, a remote-write flush).
pub const PLAIN_PATIENCE: Duration = Duration::from_secs(60);

/// How often a check is retried.
const EVERY: Duration = Duration::from_millis(250);

/// How often [`until_some`] retries: plain checks are cheap, in-process reads.
const PLAIN_EVERY: Duration = Duration::from_millis(100);

/// One attempt of a check: passed with a value, or not yet, with what shows why.
pub enum Attempt<T, E = ()> {
    Pass(T),
    NotYet {
        /// What is wrong with the answer, in words.
        why: String,
        exchange: Option<E>,
    },
}

impl<T, E: Clone> Attempt<T, E> {
    pub fn not_yet(why: impl Into<String>, exchange: &E) -> Self {
        Attempt::NotYet {
            why: why.into(),
            exchange: Some(exchange.clone()),
        }
    }

    pub fn not_yet_bare(why: impl Into<String>) -> Self {
        Attempt::NotYet {
            why: why.into(),
            exchange: None,
        }
    }
}

/// A check that did not pass in time.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what}: still not so after {waited:?} ({attempts} attempts). Last attempt: {why}\n{shown}"
)]
pub struct TimedOut<E> {
    pub what: String,
    pub waited: Duration,
    pub attempts: u32,
    pub why: String,
    pub shown: String,
    /// The last exchange, for the caller's record.
    pub exchange: Option<E>,
}

impl<E: Display> TimedOut<E> {
    fn new(
        what: String,
        start: Instant,
        attempts: u32,
        why: String,
        exchange: Option<E>,
    ) -> TimedOut<E> {
        TimedOut {
            what,
            waited: start.elapsed(),
            attempts,
            why,
            shown: exchange
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            exchange,
        }
    }
}

/// Runs `check` until it passes or `patience` is over.
pub async fn eventually<T, E, F, Fut>(
    what: &str,
    patience: Duration,
    check: F,
) -> Result<T, TimedOut<E>>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
{
    retry(what, patience, EVERY, check).await
}

/// Runs `check` every `every` until it passes or `patience` is over.
async fn retry<T, E, F, Fut>(
    what: &str,
    patience: Duration,
    every: Duration,
    mut check: F,
) -> Result<T, TimedOut<E>>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
{
    let start = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match check().await {
            Attempt::Pass(v) => return Ok(v),
            Attempt::NotYet { why, exchange } => {
                if start.elapsed() >= patience {
                    return Err(TimedOut::new(
                        what.to_string(),
                        start,
                        attempts,
                        why,
                        exchange,
                    ));
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Runs `check` for all of `period`: it must pass every time (something that must not happen).
pub async fn throughout<E, F, Fut>(
    what: &str,
    period: Duration,
    mut check: F,
) -> Result<(), TimedOut<E>>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<(), E>>,
{
    let start = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        if let Attempt::NotYet { why, exchange } = check().await {
            return Err(TimedOut::new(
                format!("{what} (broken after {:?})", start.elapsed()),
                start,
                attempts,
                why,
                exchange,
            ));
        }
        if start.elapsed() >= period {
            return Ok(());
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// Runs `check` until it returns `Some`, and returns that; panics (failing the test) naming
/// `what` when [`PLAIN_PATIENCE`] is over.
pub async fn until_some<T, F>(what: &str, mut check: impl FnMut() -> F) -> T
where
    F: Future<Output = Option<T>>,
{
    let attempt = || {
        let next = check();
        async move {
            match next.await {
                Some(v) => Attempt::<T, String>::Pass(v),
                None => Attempt::not_yet_bare("not yet"),
            }
        }
    };
    match retry(what, PLAIN_PATIENCE, PLAIN_EVERY, attempt).await {
        Ok(v) => v,
        Err(e) => panic!("timed out waiting for {what} ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn eventually_returns_the_first_pass_and_times_out_with_the_last_attempt() {
        let mut n = 0;
        let got = eventually::<_, String, _, _>("three", PATIENCE, || {
            n += 1;
            let n = n;
            async move {
                if n == 3 {
                    Attempt::Pass(n)
                } else {
                    Attempt::not_yet(format!("{n}"), &format!("asked {n}"))
                }
            }
        })
        .await;
        assert_eq!(got.ok(), Some(3));

        let err = eventually::<(), String, _, _>("never", Duration::from_secs(1), || async {
            Attempt::not_yet("no", &"the answer".to_string())
        })
        .await
        .expect_err("times out");
        assert_eq!(err.what, "never");
        assert_eq!(err.attempts, 5, "at 0, 250, 500, 750 and 1000 ms");
        assert_eq!(err.exchange.as_deref(), Some("the answer"));
        assert!(
            err.to_string().ends_with("Last attempt: no\nthe answer"),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throughout_fails_at_the_first_broken_attempt() {
        let mut n = 0;
        let err = throughout::<String, _, _>("quiet", Duration::from_secs(10), || {
            n += 1;
            let n = n;
            async move {
                if n < 4 {
                    Attempt::Pass(())
                } else {
                    Attempt::not_yet_bare("noise")
                }
            }
        })
        .await
        .expect_err("breaks");
        assert_eq!(err.attempts, 4);
        assert!(
            err.what.starts_with("quiet (broken after 750ms"),
            "{}",
            err.what
        );
    }

    #[tokio::test(start_paused = true)]
    async fn until_some_returns_the_value() {
        let mut n = 0;
        let got = until_some("two", || {
            n += 1;
            let n = n;
            async move { (n == 2).then_some(n) }
        })
        .await;
        assert_eq!(got, 2);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "timed out waiting for nothing")]
    async fn until_some_panics_naming_what_it_waited_for() {
        until_some("nothing", || async { None::<()> }).await;
    }
}
