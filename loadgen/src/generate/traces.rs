//! A POS checkout as a trace across four services, pos → store-gateway → payment → bank, one
//! OTLP `ResourceSpans` per service (`service.name` and the device labels as resource
//! attributes), one span each, every span the child of the one before. Durations are log-normal
//! and nested; problem mode makes the bank slower and failures (status ERROR up the chain) more
//! frequent. The checkout's POS log line carries the trace id. With a canary sequence number the
//! trace id is [`canary::trace_id`] and the root span carries the canary attributes.

use rand::rngs::StdRng;
use serde_json::{Map, json};
use wire::otlp::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use wire::otlp::proto::resource::v1::Resource;
use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};

use super::logs::{Level, LogEntry, pos_json};
use super::sample::{by_mode, chance, exp, lognormal, nonzero_id, one_of};
use crate::canary;
use crate::fleet::Device;

/// The services of a checkout, root first.
pub const CHECKOUT_SERVICES: [&str; 4] = ["pos", "store-gateway", "payment", "bank"];

/// One checkout: its trace and the POS log line about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkout {
    pub trace_id: [u8; 16],
    /// One per service, in [`CHECKOUT_SERVICES`] order.
    pub resource_spans: Vec<ResourceSpans>,
    pub log: LogEntry,
    /// The payment failed (the spans have status ERROR).
    pub failed: bool,
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn str_kv(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_string()))
}

fn int_kv(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

/// What each hop adds: (span name, kind, median own time s) for the services in order.
const HOPS: [(&str, span::SpanKind, f64); 4] = [
    ("checkout", span::SpanKind::Internal, 0.35),
    ("POST /v1/payments", span::SpanKind::Server, 0.005),
    ("authorize", span::SpanKind::Server, 0.015),
    ("bank.authorize", span::SpanKind::Server, 0.12),
];

/// Builds one checkout that ended at `now_ns`; `trace_canary` and `log_canary` are the device's
/// trace and log canary sequence numbers, when this checkout carries them.
pub(crate) fn checkout(
    rng: &mut StdRng,
    device: &Device,
    now_ns: i64,
    trace_canary: Option<u64>,
    log_canary: Option<u64>,
    run: u32,
) -> Checkout {
    let trace_id = match trace_canary {
        Some(seq) => canary::trace_id(run, device.index, seq),
        None => {
            // Top bit clear: never equal to a canary trace id.
            let mut id = nonzero_id::<16>(rng);
            id[0] &= 0x7f;
            if id.iter().all(|b| *b == 0) {
                id[15] = 1;
            }
            id
        }
    };
    let problem = device.problem;
    let failed = chance(rng, by_mode(problem, 0.01, 0.12));
    let reason = if failed {
        one_of(rng, &["declined", "timeout", "issuer unavailable"])
            .copied()
            .unwrap_or("declined")
    } else {
        ""
    };
    // Durations, innermost first: each hop's own time plus its child's.
    let mut durations = [0.0f64; 4];
    let mut inner = 0.0;
    for (i, (_, _, median)) in HOPS.iter().enumerate().rev() {
        let slow = if i == 3 {
            by_mode(problem, 1.0, 5.0)
        } else {
            1.0
        };
        let mut own = lognormal(rng, median * slow, 0.4);
        if failed && reason == "timeout" && i == 3 {
            own += 3.0;
        }
        inner += own;
        durations[i] = inner;
    }
    let total_ns = (durations[0] * 1e9) as i64;
    let mut start = now_ns.saturating_sub(total_ns).max(0);
    let items = 1 + exp(rng, 6.0).round() as i64;
    let amount_cents = (lognormal(rng, 2500.0, 0.8)).round() as i64;

    let mut parent: Vec<u8> = Vec::new();
    let mut resource_spans = Vec::with_capacity(4);
    for (i, ((name, kind, _), service)) in HOPS.iter().zip(CHECKOUT_SERVICES).enumerate() {
        let span_id = nonzero_id::<8>(rng).to_vec();
        let dur_ns = (durations[i] * 1e9) as i64;
        let child_ns = durations.get(i + 1).map_or(0, |d| (d * 1e9) as i64);
        let mut attributes = match i {
            0 => vec![
                int_kv("pos.items", items),
                int_kv("pos.amount_cents", amount_cents),
            ],
            2 => vec![str_kv("payment.method", "card")],
            3 => vec![str_kv(
                "bank.response",
                if failed { reason } else { "approved" },
            )],
            _ => vec![str_kv("http.request.method", "POST")],
        };
        if i == 0
            && let Some(seq) = trace_canary
        {
            attributes.push(str_kv(canary::SPAN_DEVICE, &device.id));
            attributes.push(int_kv(canary::SPAN_SEQ, seq as i64));
            attributes.push(int_kv(canary::SPAN_SENT_NS, now_ns));
        }
        let status = if failed {
            Status {
                message: format!("payment failed: {reason}"),
                code: status::StatusCode::Error as i32,
            }
        } else {
            Status {
                message: String::new(),
                code: status::StatusCode::Ok as i32,
            }
        };
        let span = Span {
            trace_id: trace_id.to_vec(),
            span_id: span_id.clone(),
            parent_span_id: parent.clone(),
            name: name.to_string(),
            kind: *kind as i32,
            start_time_unix_nano: start as u64,
            end_time_unix_nano: (start + dur_ns) as u64,
            attributes,
            status: Some(status),
            ..Default::default()
        };
        let mut resource = vec![str_kv("service.name", service)];
        resource.extend(device.labels().iter().map(|(k, v)| str_kv(k, v)));
        resource_spans.push(ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "loadgen".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans: vec![span],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        });
        // The child starts after this hop's own work before the call (a third of it).
        start += (dur_ns - child_ns) / 3;
        parent = span_id;
    }

    let mut fields = Map::new();
    fields.insert("event".into(), json!("checkout"));
    fields.insert(
        "trace_id".into(),
        json!(wire::otlp::trace_id_to_hex(&trace_id)),
    );
    fields.insert("items".into(), json!(items));
    fields.insert("amount_cents".into(), json!(amount_cents));
    fields.insert(
        "duration_ms".into(),
        json!((durations[0] * 1e3).round() as i64),
    );
    fields.insert(
        "status".into(),
        json!(if failed { "failed" } else { "paid" }),
    );
    let (level, msg) = if failed {
        (Level::Error, format!("checkout failed: {reason}"))
    } else {
        (Level::Info, "checkout completed".to_string())
    };
    let log_canary = log_canary.map(|seq| crate::canary::Mark { run, seq });
    let line = pos_json(device, now_ns, level, &msg, fields, log_canary);
    Checkout {
        trace_id,
        resource_spans,
        log: LogEntry {
            labels: device.labels(),
            timestamp_ns: now_ns,
            line,
        },
        failed,
    }
}
