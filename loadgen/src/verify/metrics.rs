//! Metric canaries: every raw sample of
//! `loadgen_canary_seq{device=~"<d1>|<d2>|...",loadgen_run="<run>"}` (this run's only).
//!
//! A `query_range` would not do: it evaluates an instant selector at each step, which repeats a
//! sample over the lookback delta and skips samples closer together than the step, so seqs could
//! not be counted exactly. An instant query of a range selector,
//! `loadgen_canary_seq{...}[<chunk>ms]` at the chunk's end, returns each sample stored in the
//! window as it is (a matrix), on Prometheus and Mimir alike. The window is read in chunks of
//! [`VerifierConfig::metric_chunk`] overlapping by a millisecond (Prometheus 2 closes range
//! windows, 3 opens them on the left); samples are keyed by series and timestamp, so the overlap
//! never counts one twice.
//!
//! The value of a sample is the seq. A seq seen in two samples (another timestamp, or another
//! series of the same device) is a duplicate; within a series, samples are in time order, so a
//! seq lower than an earlier one is out of order (Mimir refuses most such samples, which then
//! count as lost).

use std::collections::{BTreeMap, HashMap};

use stack::client::PromClient;
use stack::client::prom::{Labels, QueryResult};

use super::tally::{Pass, Target};
use super::{Signal, VerifierConfig, VerifyError, device_regex, guarded, promql_string, window};
use crate::canary;

/// Reads the canaries of `targets` (one batch) into `pass`.
pub(crate) async fn read(
    prom: &PromClient,
    cfg: &VerifierConfig,
    targets: &[Target],
    pass: &mut Pass,
) -> Result<(), VerifyError> {
    let Some((start_ns, end_ns)) = window(cfg, targets) else {
        return Ok(());
    };
    let selector = format!(
        "{}{{device=~{},{}={}}}",
        canary::METRIC_NAME,
        promql_string(&device_regex(targets)),
        canary::RUN_LABEL,
        promql_string(&canary::run_tag(cfg.run))
    );
    let (start_ms, end_ms) = (
        start_ns.div_euclid(1_000_000),
        end_ns.div_euclid(1_000_000) + 1,
    );
    let chunk_ms = i64::try_from(cfg.metric_chunk.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let mut series: HashMap<Labels, BTreeMap<i64, f64>> = HashMap::new();
    let mut from = start_ms;
    while from < end_ms {
        let to = from.saturating_add(chunk_ms).min(end_ms);
        let query = format!("{selector}[{}ms]", to - from + 1);
        let what = || format!("{query} at {to}ms");
        let result = guarded(
            Signal::Metrics,
            cfg,
            what,
            prom.query(&query, Some(to as f64 / 1000.0)),
        )
        .await?;
        let QueryResult::Matrix(m) = result else {
            return Err(VerifyError::Shape {
                signal: Signal::Metrics,
                what: format!("{query} did not answer a matrix"),
            });
        };
        for s in m {
            let points = series.entry(s.metric).or_default();
            for p in s.samples {
                points.insert((p.timestamp * 1000.0).round() as i64, p.value);
            }
        }
        from = to;
    }
    for (labels, points) in series {
        let Some(device) = labels.get("device") else {
            continue;
        };
        let entries = points
            .into_iter()
            .filter_map(|(ts, v)| seq_of(v).map(|seq| (ts, seq)))
            .collect();
        pass.stream(device, entries);
    }
    Ok(())
}

/// A sample value as a seq: finite, non-negative, whole (exact up to 2^53).
fn seq_of(v: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 9_007_199_254_740_992.0)
        .then_some(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_seqs() {
        assert_eq!(seq_of(42.0), Some(42));
        assert_eq!(seq_of(1.5), None);
        assert_eq!(seq_of(-1.0), None);
        assert_eq!(seq_of(f64::NAN), None);
    }
}
