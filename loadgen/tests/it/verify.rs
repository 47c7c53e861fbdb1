//! The verifier against the embedded stack over real sockets: canaries are pushed with the
//! stack's own clients (some left out, some twice, some reordered), recorded in the ledger, and
//! the verifier must count exactly what happened.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use loadgen::canary;
use loadgen::verify::{Ledger, Signal, Verifier, VerifierConfig, VerifyReport};
use stack::client::{LokiClient, PromClient, TempoClient};
use stack::{EmbeddedConfig, EmbeddedStack};
use testkit::now_ns;
use wire::otlp::proto::common::v1::{AnyValue, KeyValue, any_value};
use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use wire::otlp::{Encoding, ExportTraceServiceRequest};

const DEVICES: [(&str, u64); 2] = [("pos-store-0001-01", 0), ("rtr-store-0001-01", 1)];

/// One canary as pushed: seq, send time, and the timestamp it is stored under.
#[derive(Clone, Copy)]
struct Push {
    seq: u64,
    sent_ns: i64,
    ts_ns: i64,
}

/// Canaries 1..=n sent 100 ms apart, ending a second ago.
fn canaries(n: u64) -> Vec<Push> {
    let base = now_ns() - 1_000_000_000 - n as i64 * 100_000_000;
    (1..=n)
        .map(|seq| {
            let sent_ns = base + seq as i64 * 100_000_000;
            Push {
                seq,
                sent_ns,
                ts_ns: sent_ns,
            }
        })
        .collect()
}

fn config() -> VerifierConfig {
    VerifierConfig {
        poll_interval: Duration::from_millis(100),
        drain_timeout: Duration::from_secs(20),
        query_timeout: Duration::from_secs(10),
        // Small pages, batches and chunks so paging, batching and chunking are exercised.
        devices_per_query: 1,
        log_page_limit: 3,
        metric_chunk: Duration::from_millis(250),
        trace_concurrency: 2,
        run: RUN,
        ..VerifierConfig::default()
    }
}

/// The run id of the canaries these tests push (see `canary::trace_id`).
const RUN: u32 = 7;

async fn push_logs(endpoints: &stack::Endpoints, device: &str, pushes: &[Push], run: u32) {
    let entries = pushes
        .iter()
        .map(|p| {
            let mark = canary::Mark { run, seq: p.seq };
            wire::loki::Entry::new(
                p.ts_ns,
                format!("sale ok {}", canary::token(device, mark, p.sent_ns)),
            )
        })
        .collect();
    let req = wire::loki::PushRequest {
        streams: vec![wire::loki::Stream {
            labels: format!(r#"{{device="{device}", job="pos"}}"#),
            entries,
            hash: 0,
        }],
    };
    LokiClient::new(endpoints).push(&req).await.unwrap();
}

async fn push_metrics(endpoints: &stack::Endpoints, device: &str, pushes: &[Push], run: u32) {
    use wire::remote_write::{Label, Sample, TimeSeries, WriteRequest};
    let mut ts = TimeSeries {
        labels: vec![
            Label::new("__name__", canary::METRIC_NAME),
            Label::new("device", device),
            Label::new("job", "pos"),
            Label::new(canary::RUN_LABEL, canary::run_tag(run)),
        ],
        samples: pushes
            .iter()
            .map(|p| Sample {
                value: p.seq as f64,
                timestamp: p.ts_ns / 1_000_000,
            })
            .collect(),
        exemplars: Vec::new(),
    };
    ts.sort_labels();
    let req = WriteRequest {
        timeseries: vec![ts],
        metadata: Vec::new(),
    };
    PromClient::new(endpoints).remote_write(&req).await.unwrap();
}

fn attr(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

/// Pushes each canary's root span of run `run`; `span_salt` makes distinct span ids for
/// re-sends.
async fn push_traces(
    endpoints: &stack::Endpoints,
    (device, index): (&str, u64),
    pushes: &[Push],
    span_salt: u64,
    run: u32,
) {
    let spans = pushes
        .iter()
        .map(|p| Span {
            trace_id: canary::trace_id(run, index, p.seq).to_vec(),
            span_id: (p.seq + 1 + (span_salt << 32)).to_be_bytes().to_vec(),
            name: "checkout".into(),
            start_time_unix_nano: p.ts_ns as u64,
            end_time_unix_nano: p.ts_ns as u64 + 1_000_000,
            attributes: vec![
                attr(
                    canary::SPAN_DEVICE,
                    any_value::Value::StringValue(device.into()),
                ),
                attr(canary::SPAN_SEQ, any_value::Value::IntValue(p.seq as i64)),
                attr(canary::SPAN_SENT_NS, any_value::Value::IntValue(p.sent_ns)),
            ],
            ..Default::default()
        })
        .collect();
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: None,
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    TempoClient::new(endpoints)
        .push(&req, Encoding::Protobuf)
        .await
        .unwrap();
}

/// Pushes `pushes` of every signal for `device`.
async fn push_all(endpoints: &stack::Endpoints, device: (&str, u64), pushes: &[Push]) {
    push_logs(endpoints, device.0, pushes, RUN).await;
    push_metrics(endpoints, device.0, pushes, RUN).await;
    push_traces(endpoints, device, pushes, 0, RUN).await;
}

fn record_all(ledger: &Ledger, (device, index): (&str, u64), pushes: &[Push]) {
    for s in Signal::ALL {
        for p in pushes {
            assert!(ledger.record(s, device, index, p.seq, p.sent_ns));
        }
    }
}

async fn drain(stack: &EmbeddedStack, ledger: Arc<Ledger>, cfg: VerifierConfig) -> VerifyReport {
    let v = Verifier::new(stack.endpoints(), ledger, cfg);
    // Never a hang: the drain is bounded by its own timeouts, far below this.
    tokio::time::timeout(Duration::from_secs(120), v.drain())
        .await
        .unwrap()
}

/// (canaries, found, lost, duplicated, out_of_order) of a signal, with the invariants every
/// report keeps checked on the way.
fn counts(r: &VerifyReport, s: Signal) -> (u64, u64, u64, u64, u64) {
    let sr = r.signal(s).unwrap();
    assert_eq!(sr.query_errors, 0, "{s}: {:?}", sr.last_error);
    let v = &sr.verification;
    assert_eq!(v.write_to_query_latency.count, v.found, "{s}");
    assert_eq!(v.found + v.lost, v.canaries, "{s}");
    (v.canaries, v.found, v.lost, v.duplicated, v.out_of_order)
}

#[tokio::test]
async fn every_pushed_canary_is_found() {
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let ledger = Arc::new(Ledger::new());
    let pushes = canaries(8);
    for d in DEVICES {
        push_all(stack.endpoints(), d, &pushes).await;
        record_all(&ledger, d, &pushes);
    }
    let r = drain(&stack, ledger, config()).await;
    for s in Signal::ALL {
        assert_eq!(counts(&r, s), (16, 16, 0, 0, 0), "{s}");
    }
    let v = r.verifications();
    assert_eq!(v.keys().collect::<Vec<_>>(), ["logs", "metrics", "traces"]);
}

#[tokio::test]
async fn an_earlier_runs_traces_do_not_hide_this_runs_losses() {
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let ledger = Arc::new(Ledger::new());
    let pushes = canaries(6);
    let d = DEVICES[0];
    // An earlier run of the same seed left every canary trace (same devices, same numbers) in
    // the stack; this run's odd canaries never arrived.
    push_traces(stack.endpoints(), d, &pushes, 0, RUN - 1).await;
    let this_run: Vec<Push> = pushes.iter().copied().filter(|p| p.seq % 2 == 0).collect();
    push_traces(stack.endpoints(), d, &this_run, 1, RUN).await;
    record_all(&ledger, d, &pushes);
    let cfg = VerifierConfig {
        drain_timeout: Duration::from_secs(1),
        ..config()
    };
    let r = drain(&stack, ledger, cfg).await;
    let (canaries, found, lost, duplicated, _) = counts(&r, Signal::Traces);
    assert_eq!((canaries, found, lost, duplicated), (6, 3, 3, 0));
}

#[tokio::test]
async fn an_earlier_runs_logs_and_metrics_do_not_count_as_this_runs() {
    // A real stack keeps data: a run 35 s after another of the same seed used to count the
    // earlier run's canaries as its own (found with 0 ms latency, and as duplicates).
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let ledger = Arc::new(Ledger::new());
    let pushes = canaries(6);
    let d = DEVICES[0];
    let earlier: Vec<Push> = pushes
        .iter()
        .map(|p| Push {
            ts_ns: p.ts_ns - 700_000_000,
            ..*p
        })
        .collect();
    push_logs(stack.endpoints(), d.0, &earlier, RUN - 1).await;
    push_metrics(stack.endpoints(), d.0, &earlier, RUN - 1).await;
    let this_run: Vec<Push> = pushes.iter().copied().filter(|p| p.seq % 2 == 0).collect();
    push_logs(stack.endpoints(), d.0, &this_run, RUN).await;
    push_metrics(stack.endpoints(), d.0, &this_run, RUN).await;
    record_all(&ledger, d, &pushes);
    let cfg = VerifierConfig {
        drain_timeout: Duration::from_secs(1),
        ..config()
    };
    let r = drain(&stack, ledger, cfg).await;
    for s in [Signal::Logs, Signal::Metrics] {
        assert_eq!(counts(&r, s), (6, 3, 3, 0, 0), "{s}");
    }
}

#[tokio::test]
async fn canaries_acknowledged_but_never_stored_are_lost_exactly() {
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let ledger = Arc::new(Ledger::new());
    let pushes = canaries(9);
    // Every third canary is in the ledger but never reaches the stack.
    let delivered: Vec<Push> = pushes.iter().copied().filter(|p| p.seq % 3 != 0).collect();
    for d in DEVICES {
        push_all(stack.endpoints(), d, &delivered).await;
        record_all(&ledger, d, &pushes);
    }
    let cfg = VerifierConfig {
        drain_timeout: Duration::from_secs(1),
        ..config()
    };
    let r = drain(&stack, ledger, cfg).await;
    for s in Signal::ALL {
        assert_eq!(counts(&r, s), (18, 12, 6, 0, 0), "{s}");
    }
}

#[tokio::test]
async fn the_drain_ends_at_its_timeout_when_a_canary_never_arrives() {
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let ledger = Arc::new(Ledger::new());
    let pushes = canaries(1);
    for s in Signal::ALL {
        ledger.record(s, DEVICES[0].0, DEVICES[0].1, 1, pushes[0].sent_ns);
    }
    let cfg = VerifierConfig {
        drain_timeout: Duration::from_millis(500),
        ..config()
    };
    let r = drain(&stack, ledger, cfg).await;
    for s in Signal::ALL {
        assert_eq!(counts(&r, s), (1, 0, 1, 0, 0), "{s}");
    }
}

#[tokio::test]
async fn canaries_stored_twice_are_duplicates() {
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let ledger = Arc::new(Ledger::new());
    let pushes = canaries(5);
    let d = DEVICES[0];
    record_all(&ledger, d, &pushes);
    // Seq 3 is stored a second time 50 ms later (a retry that was not recognised as one):
    // another log line, another sample, another span.
    let mut twice = pushes.clone();
    twice.insert(
        3,
        Push {
            ts_ns: pushes[2].ts_ns + 50_000_000,
            ..pushes[2]
        },
    );
    push_logs(stack.endpoints(), d.0, &twice, RUN).await;
    push_metrics(stack.endpoints(), d.0, &twice, RUN).await;
    push_traces(stack.endpoints(), d, &pushes, 0, RUN).await;
    push_traces(stack.endpoints(), d, &pushes[2..3], 1, RUN).await;
    let r = drain(&stack, ledger, config()).await;
    for s in Signal::ALL {
        assert_eq!(counts(&r, s), (5, 5, 0, 1, 0), "{s}");
    }
}

#[tokio::test]
async fn reordered_canaries_are_out_of_order() {
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let ledger = Arc::new(Ledger::new());
    let mut pushes = canaries(6);
    record_all(&ledger, DEVICES[1], &pushes);
    // Seqs 3 and 4 swap timestamps, and 6 comes before 5: 3 and 5 are out of order.
    let (t3, t4) = (pushes[2].ts_ns, pushes[3].ts_ns);
    pushes[2].ts_ns = t4;
    pushes[3].ts_ns = t3;
    let (t5, t6) = (pushes[4].ts_ns, pushes[5].ts_ns);
    pushes[4].ts_ns = t6;
    pushes[5].ts_ns = t5;
    pushes.sort_by_key(|p| p.ts_ns);
    push_all(stack.endpoints(), DEVICES[1], &pushes).await;
    let r = drain(&stack, ledger, config()).await;
    assert_eq!(counts(&r, Signal::Logs), (6, 6, 0, 0, 2));
    assert_eq!(counts(&r, Signal::Metrics), (6, 6, 0, 0, 2));
    // Traces have no order.
    assert_eq!(counts(&r, Signal::Traces), (6, 6, 0, 0, 0));
}

#[tokio::test]
async fn polls_during_the_run_find_canaries_as_they_arrive() {
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let ledger = Arc::new(Ledger::new());
    let v = Verifier::new(stack.endpoints(), ledger.clone(), config());
    let pushes = canaries(4);
    record_all(&ledger, DEVICES[0], &pushes);
    assert_eq!(v.poll().await, 12);
    push_all(stack.endpoints(), DEVICES[0], &pushes[..2]).await;
    assert_eq!(v.poll().await, 6);
    let r = v.report();
    for s in Signal::ALL {
        assert_eq!(counts(&r, s), (4, 2, 2, 0, 0), "{s}");
    }
}
