//! Trace canaries: `GET /api/traces/<hex(canary::trace_id(run, device index, seq))>` for each
//! canary, at most [`VerifierConfig::trace_concurrency`] at a time. A trace that exists is
//! found; its copies are the spans carrying `loadgen.canary.seq` = seq (at least one once the
//! trace exists). Tempo merges spans with the same span id when it reads a trace, so only a
//! canary re-sent under a new span id shows as a duplicate. Traces have no order to check.

use std::sync::Arc;

use stack::client::TempoClient;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use wire::otlp::proto::common::v1::any_value::Value as AnyValue;
use wire::otlp::proto::trace::v1::ResourceSpans;

use super::tally::{Pass, Target};
use super::{Signal, VerifierConfig, VerifyError, guarded};
use crate::canary;

/// Fetches every canary trace of `targets` into `pass`; returns the failures (each canary's
/// fetch stands alone).
pub(crate) async fn read(
    tempo: &TempoClient,
    cfg: &VerifierConfig,
    targets: &[Target],
    pass: &mut Pass,
) -> Vec<VerifyError> {
    let permits = Arc::new(Semaphore::new(cfg.trace_concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for t in targets {
        for &(seq, _) in &t.canaries {
            let (tempo, cfg, permits) = (tempo.clone(), cfg.clone(), permits.clone());
            let (device, index) = (t.device.clone(), t.index);
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let id = hex::encode(canary::trace_id(cfg.run, index, seq));
                let what = || format!("trace {id} ({device}/{seq})");
                let trace = guarded(Signal::Traces, &cfg, what, tempo.trace_by_id(&id)).await;
                (
                    device,
                    seq,
                    trace.map(|t| t.map_or(0, |rs| copies(&rs, seq))),
                )
            });
        }
    }
    let mut errors = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((device, seq, Ok(n))) => pass.saw_n(&device, seq, n),
            Ok((_, _, Err(e))) => errors.push(e),
            Err(e) => errors.push(VerifyError::Task(e.to_string())),
        }
    }
    errors
}

/// Copies of canary `seq` in a fetched trace: spans carrying the seq attribute, at least one
/// when the trace has any span.
fn copies(trace: &[ResourceSpans], seq: u64) -> u32 {
    let spans = trace
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans);
    let (mut any, mut stamped) = (false, 0u32);
    for span in spans {
        any = true;
        let carries = span.attributes.iter().any(|kv| {
            kv.key == canary::SPAN_SEQ
                && match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(AnyValue::IntValue(i)) => u64::try_from(*i).ok() == Some(seq),
                    Some(AnyValue::StringValue(s)) => s.parse::<u64>().ok() == Some(seq),
                    _ => false,
                }
        });
        stamped += u32::from(carries);
    }
    if any { stamped.max(1) } else { 0 }
}
