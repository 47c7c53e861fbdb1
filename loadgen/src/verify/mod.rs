//! The verifier: reads the canaries of the [`Ledger`] back from the stack through its public
//! query APIs (`stack::client`, so embedded, external and real servers alike) and reports, per
//! signal, what was found, lost, duplicated and reordered and how long canaries took from send to
//! queryable ([`reports::results::Verification`]).
//!
//! | signal | how | module |
//! |---|---|---|
//! | logs | LogQL `{device=~"..."} \|= "loadgen_canary" \|= "/<run>"`, forward, paged by time | `logs` |
//! | metrics | raw samples of `loadgen_canary_seq{device=~"...",loadgen_run="<run>"}` by an instant query of a range selector | `metrics` |
//! | traces | Tempo trace by id, bounded concurrency | `traces` |
//!
//! During the run, [`Verifier::poll`] (or [`Verifier::poll_until`]) looks for the canaries not
//! found yet; a canary's first-seen time minus its send time is its write-to-queryable latency,
//! so its resolution is the poll interval. After the run, [`Verifier::drain`] polls until every
//! canary is found or the drain timeout passes, then sweeps the whole run window once more to
//! count duplicates and reorderings over everything, and reports. Queries batch
//! [`VerifierConfig::devices_per_query`] devices in one regex matcher, keeping URLs bounded, and
//! cover the window from the batch's earliest send time minus [`VerifierConfig::window_margin`]
//! to now. A failed query is counted and retried at the next poll; it never stops the verifier.
//!
//! Counts are canaries of the ledger: `duplicated` counts extra copies (a canary stored three
//! times adds 2), `out_of_order` canaries stored after a higher seq of the same stream (see the
//! `tally` module); canaries found but not in the ledger (sent, never acknowledged) are ignored.

pub mod ledger;
mod logs;
mod metrics;
mod tally;
mod traces;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use reports::results::Verification;
use stack::Endpoints;
use stack::client::{ClientError, LokiClient, PromClient, TempoClient};

pub use ledger::{Ledger, Signal};
use tally::{Pass, Tally, Target};
use wire::time::now_ns;

/// How the verifier queries and how long it waits.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifierConfig {
    /// Pause between polls (during the run and while draining).
    pub poll_interval: Duration,
    /// How long [`Verifier::drain`] keeps polling for canaries not found yet.
    pub drain_timeout: Duration,
    /// Longest wait for one query; a slower one counts as failed.
    pub query_timeout: Duration,
    /// Longest the final sweep of [`Verifier::drain`] may take.
    pub sweep_timeout: Duration,
    /// Devices per log or metric query (one regex matcher).
    pub devices_per_query: usize,
    /// Entries per Loki page (Loki's `max_entries_limit_per_query` is 5000 by default).
    pub log_page_limit: u32,
    /// Longest range selector of one metric query.
    pub metric_chunk: Duration,
    /// Trace fetches in flight at once.
    pub trace_concurrency: usize,
    /// How far before its send time a canary may be stamped (clock skew, a pipeline that
    /// rewrites timestamps): queries start this much before the earliest send time.
    pub window_margin: Duration,
    /// The run whose canaries to look for ([`crate::canary`]): every canary carries it.
    pub run: u32,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            poll_interval: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(60),
            query_timeout: Duration::from_secs(30),
            sweep_timeout: Duration::from_secs(120),
            devices_per_query: 20,
            log_page_limit: 5000,
            metric_chunk: Duration::from_secs(3600),
            trace_concurrency: 8,
            window_margin: Duration::from_secs(60),
            run: 0,
        }
    }
}

/// Why a query of the verifier failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{signal} canary query {what}: {source}")]
    Query {
        signal: Signal,
        what: String,
        #[source]
        source: ClientError,
    },
    #[error("{signal} canary query {what}: no answer within {after:?}")]
    Timeout {
        signal: Signal,
        what: String,
        after: Duration,
    },
    #[error("{signal} canary query answered an unexpected shape: {what}")]
    Shape { signal: Signal, what: String },
    #[error("a trace fetch task failed: {0}")]
    Task(String),
}

/// The verification of one signal, with how the querying went.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalReport {
    pub verification: Verification,
    /// Canaries acknowledged but not kept by the full ledger (not verified).
    pub unverified: u64,
    /// Failed queries (each retried at the next poll).
    pub query_errors: u64,
    /// The last failure, for the operator.
    pub last_error: Option<String>,
}

/// The verification of every signal.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyReport {
    pub signals: BTreeMap<Signal, SignalReport>,
}

impl VerifyReport {
    /// The verification of each signal keyed as in `results.json` (`"logs"`, ...).
    pub fn verifications(&self) -> BTreeMap<String, Verification> {
        self.signals
            .iter()
            .map(|(s, r)| (s.as_str().to_string(), r.verification.clone()))
            .collect()
    }

    /// One signal's report.
    pub fn signal(&self, signal: Signal) -> Option<&SignalReport> {
        self.signals.get(&signal)
    }
}

#[derive(Debug, Default)]
struct SignalState {
    tally: Tally,
    query_errors: u64,
    last_error: Option<String>,
}

/// Reads canaries back from a stack.
pub struct Verifier {
    loki: LokiClient,
    prom: PromClient,
    tempo: TempoClient,
    ledger: std::sync::Arc<Ledger>,
    cfg: VerifierConfig,
    state: [Mutex<SignalState>; 3],
}

impl Verifier {
    /// A verifier of the canaries in `ledger`, querying the stack at `endpoints`.
    pub fn new(endpoints: &Endpoints, ledger: std::sync::Arc<Ledger>, cfg: VerifierConfig) -> Self {
        Verifier {
            loki: LokiClient::new(endpoints),
            prom: PromClient::new(endpoints),
            tempo: TempoClient::new(endpoints),
            ledger,
            cfg,
            state: Default::default(),
        }
    }

    fn state(&self, signal: Signal) -> &Mutex<SignalState> {
        &self.state[signal.index()]
    }

    /// One look for every canary not found yet; returns how many are still missing.
    pub async fn poll(&self) -> u64 {
        self.pass(false).await;
        self.pending()
    }

    /// Canaries of the ledger not found yet, all signals.
    pub fn pending(&self) -> u64 {
        Signal::ALL
            .iter()
            .map(|&s| {
                let st = self.state(s).lock();
                self.ledger.read(s, |l| st.tally.pending(l))
            })
            .sum()
    }

    /// Polls every [`VerifierConfig::poll_interval`] until `stop` completes (the run ended).
    pub async fn poll_until(&self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = self.poll() => {}
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.cfg.poll_interval) => {}
            }
        }
    }

    /// After the run: polls until every canary is found or [`VerifierConfig::drain_timeout`]
    /// passes, sweeps the whole window once (bounded by [`VerifierConfig::sweep_timeout`]) and
    /// reports. Returns within about drain + sweep timeout + one query timeout.
    pub async fn drain(&self) -> VerifyReport {
        let deadline = Instant::now() + self.cfg.drain_timeout;
        loop {
            let pending = self.poll().await;
            let now = Instant::now();
            if pending == 0 || now >= deadline {
                break;
            }
            tokio::time::sleep(self.cfg.poll_interval.min(deadline - now)).await;
        }
        if tokio::time::timeout(self.cfg.sweep_timeout, self.pass(true))
            .await
            .is_err()
        {
            tracing::warn!(timeout = ?self.cfg.sweep_timeout, "the final canary sweep did not finish; duplicate and order counts come from the polls");
        }
        self.report()
    }

    /// What is known now (found so far; the rest counts as lost).
    pub fn report(&self) -> VerifyReport {
        let signals = Signal::ALL
            .iter()
            .map(|&s| {
                let st = self.state(s).lock();
                let mut verification = self.ledger.read(s, |l| st.tally.verification(l));
                verification.query_errors = st.query_errors;
                verification.last_query_error = st.last_error.clone();
                verification.poll_interval_ms =
                    u64::try_from(self.cfg.poll_interval.as_millis()).unwrap_or(u64::MAX);
                let report = SignalReport {
                    verification,
                    unverified: self.ledger.overflowed(s),
                    query_errors: st.query_errors,
                    last_error: st.last_error.clone(),
                };
                (s, report)
            })
            .collect();
        VerifyReport { signals }
    }

    /// One read of every signal (the three at once): canaries not found yet, or (`all`) every
    /// canary.
    async fn pass(&self, all: bool) {
        tokio::join!(
            self.pass_signal(Signal::Logs, all),
            self.pass_signal(Signal::Metrics, all),
            self.pass_signal(Signal::Traces, all),
        );
    }

    async fn pass_signal(&self, signal: Signal, all: bool) {
        let targets = {
            let st = self.state(signal).lock();
            self.ledger.read(signal, |l| st.tally.targets(l, all))
        };
        if targets.is_empty() {
            return;
        }
        if signal == Signal::Traces {
            let mut pass = Pass::default();
            let errors = traces::read(&self.tempo, &self.cfg, &targets, &mut pass).await;
            self.absorb(signal, &pass, errors);
            return;
        }
        for batch in targets.chunks(self.cfg.devices_per_query.max(1)) {
            let mut pass = Pass::default();
            let r = if signal == Signal::Logs {
                logs::read(&self.loki, &self.cfg, batch, &mut pass).await
            } else {
                metrics::read(&self.prom, &self.cfg, batch, &mut pass).await
            };
            // A batch that failed half way is not absorbed: partial pages would undercount
            // duplicates and order.
            match r {
                Ok(()) => self.absorb(signal, &pass, Vec::new()),
                Err(e) => self.absorb(signal, &Pass::default(), vec![e]),
            }
        }
    }

    fn absorb(&self, signal: Signal, pass: &Pass, errors: Vec<VerifyError>) {
        let now = now_ns();
        let mut st = self.state(signal).lock();
        self.ledger.read(signal, |l| st.tally.absorb(pass, l, now));
        for e in errors {
            tracing::warn!(error = %e, "canary query failed; retried at the next poll");
            st.query_errors += 1;
            st.last_error = Some(e.to_string());
        }
    }
}

/// The query window of a batch: earliest send time minus the margin, to a second from now.
fn window(cfg: &VerifierConfig, targets: &[Target]) -> Option<(i64, i64)> {
    let min_sent = targets.iter().filter_map(Target::min_sent).min()?;
    let margin = i64::try_from(cfg.window_margin.as_nanos()).unwrap_or(i64::MAX);
    let end = now_ns().saturating_add(1_000_000_000);
    Some((min_sent.saturating_sub(margin).min(end - 1), end))
}

/// A regex matching exactly the batch's device ids (label matchers are anchored).
fn device_regex(targets: &[Target]) -> String {
    targets
        .iter()
        .map(|t| regex_escape(&t.device))
        .collect::<Vec<_>>()
        .join("|")
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A PromQL double-quoted string (also LogQL's).
fn promql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Runs one query under [`VerifierConfig::query_timeout`], naming it in errors.
async fn guarded<T>(
    signal: Signal,
    cfg: &VerifierConfig,
    what: impl FnOnce() -> String,
    query: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, VerifyError> {
    match tokio::time::timeout(cfg.query_timeout, query).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(VerifyError::Query {
            signal,
            what: what(),
            source,
        }),
        Err(_) => Err(VerifyError::Timeout {
            signal,
            what: what(),
            after: cfg.query_timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_regexes_are_escaped_and_quoted() {
        let t = |d: &str| Target {
            device: d.into(),
            index: 0,
            canaries: vec![(1, 5)],
        };
        let re = device_regex(&[t("pos-1"), t("a.b")]);
        assert_eq!(re, r"pos-1|a\.b");
        assert_eq!(promql_string(&re), r#""pos-1|a\\.b""#);
    }
}
