//! Log canaries: `{device=~"<d1>|<d2>|..."} |= "loadgen_canary" |= "/<run>"` over the window of
//! a batch of devices, direction forward, paged by time when a page is full; each line is parsed
//! with [`canary::find_token`], and a canary of another run is not this run's. Duplicates are lines carrying the same token (Loki itself drops an
//! entry identical in stream, timestamp and line); order is checked per stream and device.

use std::collections::{HashMap, HashSet};

use stack::client::LokiClient;
use stack::client::loki::{Direction, LokiResult, RangeOptions};
use stack::client::prom::Labels;

use super::tally::{Pass, Target};
use super::{Signal, VerifierConfig, VerifyError, device_regex, guarded, promql_string, window};
use crate::canary;

/// Stream identity plus device → `(timestamp, seq)` entries.
type Streams = HashMap<(Labels, String), Vec<(i64, u64)>>;

/// Reads the canaries of `targets` (one batch) into `pass`.
pub(crate) async fn read(
    loki: &LokiClient,
    cfg: &VerifierConfig,
    targets: &[Target],
    pass: &mut Pass,
) -> Result<(), VerifyError> {
    let Some((start_ns, end_ns)) = window(cfg, targets) else {
        return Ok(());
    };
    let query = format!(
        "{{device=~{}}} |= {} |= {}",
        promql_string(&device_regex(targets)),
        promql_string(canary::LOG_KEY),
        promql_string(&format!("/{}", canary::run_tag(cfg.run)))
    );
    let limit = cfg.log_page_limit.max(1);
    let mut streams = Streams::new();
    let mut start = start_ns;
    // Entries at the boundary timestamp already taken from the previous page.
    let mut boundary: HashSet<(Labels, String)> = HashSet::new();
    loop {
        let opts = RangeOptions {
            start_ns: start,
            end_ns,
            limit: Some(limit),
            step: None,
            direction: Some(Direction::Forward),
        };
        let what = || format!("{query} from {start}");
        let result = guarded(Signal::Logs, cfg, what, loki.query_range(&query, &opts)).await?;
        let LokiResult::Streams(page) = result else {
            return Err(VerifyError::Shape {
                signal: Signal::Logs,
                what: format!("{query} answered a metric result"),
            });
        };
        let count: usize = page.iter().map(|s| s.entries.len()).sum();
        let last_ts = page
            .iter()
            .flat_map(|s| s.entries.iter().map(|(ts, _)| *ts))
            .max();
        let mut next_boundary = HashSet::new();
        for s in page {
            for (ts, line) in s.entries {
                let key = (s.labels.clone(), line);
                if ts == start && boundary.contains(&key) {
                    continue;
                }
                if Some(ts) == last_ts {
                    next_boundary.insert(key.clone());
                }
                if let Some(c) = canary::find_token(&key.1).filter(|c| c.run == cfg.run) {
                    streams
                        .entry((key.0, c.device))
                        .or_default()
                        .push((ts, c.seq));
                }
            }
        }
        match last_ts {
            // A full page whose entries all share the start timestamp: Loki cannot page within
            // one timestamp, so the rest of it is skipped (and said).
            Some(ts) if count >= limit as usize && ts == start => {
                tracing::warn!(%query, ts, limit, "more canary lines at one timestamp than a page holds");
                start = ts + 1;
                boundary.clear();
            }
            Some(ts) if count >= limit as usize => {
                start = ts;
                boundary = next_boundary;
            }
            _ => break,
        }
    }
    for ((_, device), entries) in streams {
        pass.stream(&device, entries);
    }
    Ok(())
}
