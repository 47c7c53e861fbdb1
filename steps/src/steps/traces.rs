//! `traces.feature`: a POS checkout sent over OTLP through a gateway, found in Tempo by id, by
//! tags and by TraceQL.

use std::collections::BTreeMap;

use cucumber::{given, then, when};
use loadgen::generate::DeviceSignals;
use serde_json::Value;
use wire::otlp::{Encoding, ExportTraceServiceRequest};

use super::logs::identity;
use super::post;
use crate::StepsWorld;
use crate::collectors::{ScenarioCollector, gateway_toml};
use crate::device::loadgen_device;
use crate::eventually::{Attempt, PATIENCE, eventually};
use crate::query::{Api, Exchange};

#[given("a gateway collector in front of the stack")]
async fn gateway(w: &mut StepsWorld) -> anyhow::Result<()> {
    let e = w.endpoints().await?;
    let text = gateway_toml(&w.dir.path().join("gateway-data"), &e, None);
    let c = ScenarioCollector::start("gateway", "gateway.toml", text, BTreeMap::new()).await?;
    w.collectors.insert("gateway".into(), c);
    Ok(())
}

/// A checkout of a new POS device of this scenario: its trace goes to the gateway over OTLP;
/// with `log`, its log line over Loki push too. Returns the trace id (hex).
pub async fn checkout(w: &mut StepsWorld, node_type: &str, log: bool) -> anyhow::Result<String> {
    let id = identity(w, node_type, "eu-west", "brand1", "healthy");
    let dev = loadgen_device(&id)?;
    let mut signals = DeviceSignals::new(&dev, 1);
    let c = signals
        .checkout(crate::query::now_ns(), None, None)
        .ok_or_else(|| anyhow::anyhow!("a {node_type} device makes no checkouts"))?;
    let gw = w.collector("gateway")?;
    let otlp = gw.listen_addr("otlp_in").await?;
    let req = ExportTraceServiceRequest {
        resource_spans: c.resource_spans.clone(),
    };
    let body = wire::otlp::encode(&req, Encoding::Protobuf)?;
    let (status, text) = post(otlp, "/v1/traces", "application/x-protobuf", body).await?;
    anyhow::ensure!(
        status == 200,
        "OTLP export to the gateway: HTTP {status}: {text}"
    );
    if log {
        let loki = w.collector("gateway")?.listen_addr("loki_in").await?;
        let labels: Vec<(&str, &str)> = c
            .log
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (status, text) =
            super::push_lines(loki, &labels, std::slice::from_ref(&c.log.line)).await?;
        anyhow::ensure!(
            status == 204,
            "Loki push to the gateway: HTTP {status}: {text}"
        );
    }
    let trace_id = hex::encode(c.trace_id);
    w.vars.insert("trace_id".into(), trace_id.clone());
    w.identities.insert("node".into(), id);
    Ok(trace_id)
}

#[when(expr = "a {string} device completes a checkout, its trace sent over OTLP to the gateway")]
async fn checkout_trace(w: &mut StepsWorld, node_type: String) -> anyhow::Result<()> {
    checkout(w, &node_type, false).await.map(|_| ())
}

/// `(service.name, span names, resource attributes)` of each batch of a trace answer.
pub fn services(trace: &Value) -> Vec<(String, Vec<String>, BTreeMap<String, String>)> {
    let batches = trace
        .get("batches")
        .or_else(|| trace.pointer("/trace/resourceSpans"));
    let Some(batches) = batches.and_then(Value::as_array) else {
        return vec![];
    };
    batches
        .iter()
        .map(|b| {
            let attrs: BTreeMap<String, String> = b
                .pointer("/resource/attributes")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|kv| {
                            Some((
                                kv.get("key")?.as_str()?.to_string(),
                                kv.pointer("/value/stringValue")?.as_str()?.to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let scopes = b
                .get("scopeSpans")
                .or_else(|| b.get("instrumentationLibrarySpans"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let names = scopes
                .iter()
                .flat_map(|s| {
                    s.get("spans")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|s| s.get("name").and_then(Value::as_str).map(str::to_string))
                .collect();
            (
                attrs.get("service.name").cloned().unwrap_or_default(),
                names,
                attrs,
            )
        })
        .collect()
}

/// Waits for Tempo to return trace `id` and `check` to accept it.
pub async fn expect_trace(
    w: &mut StepsWorld,
    what: &str,
    id: &str,
    check: impl Fn(&Value) -> Result<(), String> + Clone,
) -> anyhow::Result<Exchange> {
    let api = w.api().await?;
    let r = eventually(what, PATIENCE, || {
        let api = api.clone();
        let id = id.to_string();
        let check = check.clone();
        async move {
            match api.trace(&id).await {
                Ok(ex) if ex.status == 200 => match ex
                    .json()
                    .ok_or("not JSON".to_string())
                    .and_then(|j| check(&j))
                {
                    Ok(()) => Attempt::Pass(ex),
                    Err(why) => Attempt::not_yet(why, &ex),
                },
                Ok(ex) => Attempt::not_yet("trace not found yet", &ex),
                Err(e) => Attempt::not_yet_bare(e.to_string()),
            }
        }
    })
    .await;
    w.record(r)
}

#[then(
    "within 20 s Tempo returns the trace by its id with spans from pos, store-gateway, payment and bank"
)]
async fn trace_by_id(w: &mut StepsWorld) -> anyhow::Result<()> {
    let id = w.vars.get("trace_id").cloned().unwrap_or_default();
    expect_trace(w, "the checkout trace by id", &id, |t| {
        let got: Vec<String> = services(t).into_iter().map(|(s, _, _)| s).collect();
        let missing: Vec<&str> = loadgen::generate::CHECKOUT_SERVICES
            .into_iter()
            .filter(|s| !got.iter().any(|g| g == s))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("services {got:?}, missing {missing:?}"))
        }
    })
    .await
    .map(|_| ())
}

/// Does a search answer list trace `id` (Tempo may drop leading zeros)?
fn search_finds(ex: &Exchange, id: &str) -> bool {
    let want = id.trim_start_matches('0');
    ex.json()
        .and_then(|j| j.get("traces").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.get("traceID").and_then(Value::as_str))
        .any(|t| t.trim_start_matches('0') == want)
}

async fn expect_search(
    w: &mut StepsWorld,
    what: &str,
    traceql: Option<String>,
    tags: Option<String>,
) -> anyhow::Result<()> {
    let id = w.vars.get("trace_id").cloned().unwrap_or_default();
    let api: Api = w.api().await?;
    let r = eventually(what, PATIENCE, || {
        let api = api.clone();
        let (q, tags, id) = (traceql.clone(), tags.clone(), id.clone());
        async move {
            let ex = match (&q, &tags) {
                (Some(q), _) => api.traceql(q).await,
                (None, Some(t)) => api.tag_search(t).await,
                (None, None) => return Attempt::not_yet_bare("nothing to search for"),
            };
            match ex {
                Ok(ex) if ex.ok() && search_finds(&ex, &id) => Attempt::Pass(ex),
                Ok(ex) => Attempt::not_yet(format!("trace {id} not among the results"), &ex),
                Err(e) => Attempt::not_yet_bare(e.to_string()),
            }
        }
    })
    .await;
    w.record(r).map(|_| ())
}

#[then(expr = "within 20 s a tag search for service.name {string} and the device finds the trace")]
async fn tag_search(w: &mut StepsWorld, service: String) -> anyhow::Result<()> {
    let dev = w.identity("node")?.device;
    expect_search(
        w,
        "tag search finds the trace",
        None,
        Some(format!("service.name={service} device={dev}")),
    )
    .await
}

#[then(expr = "within 20 s a TraceQL search for the device's {string} spans finds the trace")]
async fn traceql_search(w: &mut StepsWorld, service: String) -> anyhow::Result<()> {
    let dev = w.identity("node")?.device;
    let q = format!("{{ resource.service.name = \"{service}\" && resource.device = \"{dev}\" }}");
    expect_search(w, "TraceQL finds the trace", Some(q), None).await
}
