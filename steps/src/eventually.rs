//! Polling with a deadline: a check runs until it passes or time is up, and a timeout says what
//! was waited for and what the last attempt asked and got back.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::query::Exchange;

/// How long a step waits for data to show up, unless it says otherwise.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// How often a check is retried.
const EVERY: Duration = Duration::from_millis(250);

/// One attempt of a check: passed with a value, or not yet, with the exchange that shows why.
pub enum Attempt<T> {
    Pass(T),
    NotYet {
        /// What is wrong with the answer, in words.
        why: String,
        exchange: Option<Exchange>,
    },
}

impl<T> Attempt<T> {
    pub fn not_yet(why: impl Into<String>, exchange: &Exchange) -> Self {
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
pub struct TimedOut {
    pub what: String,
    pub waited: Duration,
    pub attempts: u32,
    pub why: String,
    pub shown: String,
    /// The last exchange, for the world's record.
    pub exchange: Option<Exchange>,
}

impl TimedOut {
    fn new(
        what: String,
        start: Instant,
        attempts: u32,
        why: String,
        exchange: Option<Exchange>,
    ) -> TimedOut {
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
pub async fn eventually<T, F, Fut>(
    what: &str,
    patience: Duration,
    mut check: F,
) -> Result<T, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
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
        tokio::time::sleep(EVERY).await;
    }
}

/// Runs `check` for all of `period`: it must pass every time (something that must not happen).
pub async fn throughout<F, Fut>(what: &str, period: Duration, mut check: F) -> Result<(), TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<()>>,
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
