//! Preflight: before the load starts, one probe per signal and endpoint, so a user who points
//! loadgen at the wrong port or path learns it in a second, not after a 60 s run.
//!
//! | probe | request | a pass |
//! |---|---|---|
//! | each push target a run uses | the same kind of request the run sends, with nothing in it (a Loki push with no streams, a remote write with no series, an OTLP export with no resources) | 2xx |
//! | Loki's query API | `GET /loki/api/v1/labels` | 2xx |
//! | the Prometheus query API | `GET /api/v1/query?query=1` | 2xx |
//! | Tempo's query API | `GET /api/search/tags` | 2xx |
//!
//! Empty requests carry no data, so a probe never pollutes the stack; real Loki, Prometheus,
//! Mimir, Tempo and OpenTelemetry receivers accept them. Any failure (connection refused,
//! 404, 401/403, a refusal) stops the run before it starts, naming the URL, the answer and
//! what to check.

use std::fmt;

use stack::Endpoints;
use stack::client::{ClientError, LokiClient, PromClient, TempoClient};

use crate::deliver::Delivery;
use crate::engine::Targets;
use crate::payload::Payload;
use crate::send::{SendError, SenderConfig, Senders, Target};
use wire::Signal;

/// One probe that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeFailure {
    /// What was probed, e.g. "logs push" or "Loki query API".
    pub what: String,
    /// The URL asked.
    pub url: String,
    /// What came back: `HTTP 404: ...`, `connection refused`, ...
    pub answer: String,
    /// What to check.
    pub hint: String,
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {}: {} — {}",
            self.what, self.url, self.answer, self.hint
        )
    }
}

/// Every probe that failed, in probe order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct PreflightError(pub Vec<ProbeFailure>);

impl fmt::Display for PreflightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "preflight failed, the run did not start ({} of the probes failed):",
            self.0.len()
        )?;
        for p in &self.0 {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// What a run will push: for each signal it sends, the empty payload of the kind it sends and
/// where to.
pub struct PushProbe {
    pub signal: Signal,
    pub payload: Payload,
    pub target: Target,
}

impl PushProbe {
    /// The empty payload a run with (`otlp` delivery or not) sends for `signal`.
    pub fn empty(signal: Signal, otlp: bool) -> Payload {
        match (signal, otlp) {
            (Signal::Logs, false) => Payload::Loki(wire::loki::PushRequest::default()),
            (Signal::Metrics, false) => {
                Payload::RemoteWrite(wire::remote_write::WriteRequest::default())
            }
            (Signal::Logs, true) => {
                Payload::OtlpLogs(wire::otlp::ExportLogsServiceRequest::default())
            }
            (Signal::Metrics, true) => {
                Payload::OtlpMetrics(wire::otlp::ExportMetricsServiceRequest::default())
            }
            (Signal::Traces, _) => {
                Payload::OtlpTraces(wire::otlp::ExportTraceServiceRequest::default())
            }
        }
    }
}

/// The probes of a run: one empty request to every push target it will use (logs and metrics
/// only when pushed, not tailed or scraped) and one query of each query API.
pub(crate) async fn probe_run(
    delivery: Delivery,
    targets: &Targets,
    verify: &Endpoints,
) -> Result<(), super::RunError> {
    let otlp = delivery == Delivery::Otlp;
    let senders = Senders::new(&SenderConfig {
        ca_file: verify.ca_file.clone(),
        ..SenderConfig::default()
    })?;
    let pushes: Vec<PushProbe> = Signal::ALL
        .into_iter()
        .filter(|s| match s {
            Signal::Logs => !delivery.writes_files(),
            Signal::Metrics => !delivery.scrapes(),
            Signal::Traces => true,
        })
        .map(|signal| {
            let payload = PushProbe::empty(signal, otlp);
            PushProbe {
                signal,
                target: targets.of(&payload).clone(),
                payload,
            }
        })
        .collect();
    check(&senders, &pushes, verify).await?;
    Ok(())
}

/// Probes every push target and the stack's query APIs; all failures are collected.
pub async fn check(
    senders: &Senders,
    pushes: &[PushProbe],
    verify: &Endpoints,
) -> Result<(), PreflightError> {
    let mut failures = Vec::new();
    for p in pushes {
        let what = format!("{} push ({})", p.signal, kind_name(&p.payload));
        let req = match p.payload.prepare(&p.target) {
            Ok(req) => req,
            Err(e) => {
                failures.push(ProbeFailure {
                    what,
                    url: wire::redact::url(p.target.url.as_str()).into_owned(),
                    answer: e.to_string(),
                    hint: "check the URL".into(),
                });
                continue;
            }
        };
        let url = wire::redact::url(req.url().as_str()).into_owned();
        let outcome = senders.send(Ok(req)).await;
        if let Err(e) = outcome.result {
            failures.push(ProbeFailure {
                hint: push_hint(&e, p.signal, &p.payload),
                answer: send_answer(&e),
                what,
                url,
            });
        }
    }
    let loki = LokiClient::new(verify);
    let prom = PromClient::new(verify);
    let tempo = TempoClient::new(verify);
    let (l, m, t) = tokio::join!(loki.labels(), prom.query("1", None), tempo.search_tags());
    let queries = [
        (
            "Loki query API",
            verify.loki.join("loki/api/v1/labels").ok(),
            l.err(),
            "LOKI_URL / --loki-url: the Loki base URL (its query API is under /loki/api/v1/)",
        ),
        (
            "Prometheus query API",
            verify.prometheus_query.join("api/v1/query").ok(),
            m.err(),
            "MIMIR_QUERY_URL / --mimir-query-url: Mimir's is http://HOST:PORT/prometheus, Prometheus' its root",
        ),
        (
            "Tempo query API",
            verify.tempo_query.join("api/search/tags").ok(),
            t.err(),
            "TEMPO_QUERY_URL / --tempo-query-url: Tempo's HTTP port (3200), not its OTLP receiver",
        ),
    ];
    for (what, url, err, flag) in queries {
        if let Some(e) = err {
            failures.push(ProbeFailure {
                what: what.into(),
                url: url
                    .map(|u| wire::redact::url(u.as_str()).into_owned())
                    .unwrap_or_default(),
                answer: client_answer(&e),
                hint: client_hint(&e, flag),
            });
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(PreflightError(failures))
    }
}

fn kind_name(p: &Payload) -> &'static str {
    match p {
        Payload::Loki(_) => "Loki push API",
        Payload::RemoteWrite(_) => "Prometheus remote write",
        Payload::OtlpTraces(_) | Payload::OtlpMetrics(_) | Payload::OtlpLogs(_) => "OTLP/HTTP",
    }
}

fn send_answer(e: &SendError) -> String {
    match e {
        SendError::Status { status, body, .. } if body.trim().is_empty() => {
            format!("HTTP {status}")
        }
        SendError::Status { status, body, .. } => format!("HTTP {status}: {}", body.trim()),
        // reqwest's chain ends in the OS's words ("Connection refused (os error 111)").
        SendError::Connect { detail, .. } => format!(
            "cannot connect ({})",
            detail.rsplit(": ").next().unwrap_or(detail)
        ),
        SendError::Timeout { detail, .. } => format!("no answer in time ({detail})"),
        other => other.to_string(),
    }
}

fn push_hint(e: &SendError, signal: Signal, payload: &Payload) -> String {
    let receiver = match payload {
        Payload::Loki(_) => {
            "a Loki push receiver (Loki's /loki/api/v1/push; the shipped gateway's on port 3500)"
        }
        Payload::RemoteWrite(_) => {
            "a remote-write receiver (Mimir's /api/v1/push, Prometheus' /api/v1/write; the shipped gateway's on port 19291)"
        }
        _ => "an OTLP/HTTP receiver (/v1/traces, /v1/logs, /v1/metrics; port 4318)",
    };
    match e {
        SendError::Connect { .. } => format!(
            "nothing listens there: is the collector or stack running, and is the port right? {signal} needs {receiver}"
        ),
        SendError::Status { status: 404, .. } | SendError::Status { status: 405, .. } => {
            format!("wrong port or path: {signal} needs {receiver}")
        }
        SendError::Status { status: 401, .. } | SendError::Status { status: 403, .. } => {
            "the target wants credentials: --username/--password or --bearer-token (STACK_USERNAME, STACK_PASSWORD, STACK_BEARER_TOKEN), and a tenant with --tenant if it is multi-tenant".into()
        }
        SendError::Status { status: 415, .. } => format!(
            "the receiver does not take this content type: {signal} is sent to {receiver}"
        ),
        SendError::Status { status, .. } if *status >= 500 => {
            "the target is there but failing: look at its logs and /metrics".into()
        }
        SendError::Status { .. } => format!(
            "the target refused even an empty request: is it {receiver}?"
        ),
        SendError::Timeout { .. } => "the target is too slow or a firewall drops packets".into(),
        _ => "check the URL".into(),
    }
}

fn client_answer(e: &ClientError) -> String {
    match e {
        ClientError::Status { status, body, .. } => {
            let body = body.trim();
            if body.is_empty() {
                format!("HTTP {}", status.as_u16())
            } else {
                format!(
                    "HTTP {}: {}",
                    status.as_u16(),
                    body.chars().take(200).collect::<String>()
                )
            }
        }
        ClientError::Transport { reason, .. } => format!("no answer ({reason})"),
        ClientError::Decode { status, reason, .. } => {
            format!(
                "HTTP {} with an unexpected body ({reason})",
                status.as_u16()
            )
        }
        other => other.to_string(),
    }
}

fn client_hint(e: &ClientError, flag: &str) -> String {
    match e.status().map(|s| s.as_u16()) {
        Some(401 | 403) => {
            "the stack wants credentials: --username/--password or --bearer-token, --tenant".into()
        }
        Some(_) => format!("wrong URL? {flag}"),
        None => format!("nothing answers there: is the stack running? {flag}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_print_url_answer_and_hint() {
        let e = PreflightError(vec![ProbeFailure {
            what: "metrics push (Prometheus remote write)".into(),
            url: "http://127.0.0.1:4318/api/v1/write".into(),
            answer: "HTTP 404".into(),
            hint: "wrong port or path".into(),
        }]);
        let text = e.to_string();
        assert!(text.starts_with("preflight failed, the run did not start"));
        assert!(text.contains(
            "metrics push (Prometheus remote write) at http://127.0.0.1:4318/api/v1/write: HTTP 404 — wrong port or path"
        ));
    }

    #[test]
    fn hints_follow_the_answer() {
        let status = |status| SendError::Status {
            url: "u".into(),
            status,
            body: String::new(),
        };
        let loki = PushProbe::empty(Signal::Logs, false);
        assert!(push_hint(&status(404), Signal::Logs, &loki).contains("wrong port or path"));
        assert!(push_hint(&status(401), Signal::Logs, &loki).contains("credentials"));
        let connect = SendError::Connect {
            addr: "a".into(),
            detail: "refused".into(),
        };
        assert!(push_hint(&connect, Signal::Logs, &loki).contains("nothing listens"));
        assert_eq!(send_answer(&status(404)), "HTTP 404");
    }
}
