//! `pipeline_health.feature`: the collector's self-metrics account for every event.

use cucumber::{then, when};
use loadgen::generate::DeviceSignals;
use wire::otlp::{Encoding, ExportTraceServiceRequest};

use super::logs::identity;
use super::{balance, post, push_lines, self_metrics, sum_by_component};
use crate::StepsWorld;
use crate::device::loadgen_device;
use crate::eventually::{Attempt, PATIENCE, eventually};

#[when(expr = "{int} log lines and {int} checkout traces are pushed to the gateway")]
async fn push_logs_and_traces(
    w: &mut StepsWorld,
    lines: usize,
    traces: usize,
) -> anyhow::Result<()> {
    let job = w.unique("health");
    let loki = w.collector("gateway")?.listen_addr("loki_in").await?;
    let otlp = w.collector("gateway")?.listen_addr("otlp_in").await?;
    let all: Vec<String> = (1..=lines)
        .map(|k| format!("health line {k} of {job}"))
        .collect();
    for chunk in all.chunks(50) {
        let (status, text) = push_lines(loki, &[("job", job.as_str())], chunk).await?;
        anyhow::ensure!(
            status == 204,
            "Loki push to the gateway: HTTP {status}: {text}"
        );
    }
    let id = identity(w, "pos", "eu-west", "brand1", "healthy");
    let mut signals = DeviceSignals::new(&loadgen_device(&id)?, 1);
    for k in 0..traces {
        let c = signals
            .checkout(crate::query::now_ns() + k as i64, None, None)
            .ok_or_else(|| anyhow::anyhow!("no checkout"))?;
        let body = wire::otlp::encode(
            &ExportTraceServiceRequest {
                resource_spans: c.resource_spans,
            },
            Encoding::Protobuf,
        )?;
        let (status, text) = post(otlp, "/v1/traces", "application/x-protobuf", body).await?;
        anyhow::ensure!(
            status == 200,
            "OTLP export to the gateway: HTTP {status}: {text}"
        );
    }
    Ok(())
}

#[then(
    "within 20 s the gateway's /metrics shows empty queues and received = sent + discarded for every component"
)]
async fn drained_and_balanced(w: &mut StepsWorld) -> anyhow::Result<()> {
    let server = w.collector("gateway")?.server_addr();
    let r = eventually(
        "the gateway drained and balanced",
        PATIENCE,
        || async move {
            let ex = match self_metrics(server).await {
                Ok(ex) => ex,
                Err(e) => return Attempt::not_yet_bare(e.to_string()),
            };
            let depth = match sum_by_component(&ex.body, "collector_queue_depth", &[]) {
                Ok(d) => d,
                Err(e) => return Attempt::not_yet(e, &ex),
            };
            let busy: Vec<_> = depth.iter().filter(|(_, d)| **d > 0.0).collect();
            if !busy.is_empty() {
                return Attempt::not_yet(format!("queues not empty: {busy:?}"), &ex);
            }
            // Everything the sources passed on has reached a writer (each signal has one writer).
            for signal in ["logs", "metrics", "traces"] {
                let total = |metric: &str, kind: &str| {
                    sum_by_component(&ex.body, metric, &[("kind", kind), ("signal", signal)])
                        .map(|m| m.values().sum::<f64>())
                        .unwrap_or(f64::NAN)
                };
                let (out, into) = (
                    total("collector_sent_items_total", "source"),
                    total("collector_received_items_total", "writer"),
                );
                if out != into {
                    return Attempt::not_yet(
                        format!("{signal}: sources sent {out}, writers received {into}"),
                        &ex,
                    );
                }
            }
            match balance(&ex.body) {
                Ok((true, _)) => Attempt::Pass(ex),
                Ok((false, table)) => Attempt::not_yet(format!("not balanced:\n{table}"), &ex),
                Err(e) => Attempt::not_yet(e, &ex),
            }
        },
    )
    .await;
    w.record(r).map(|_| ())
}

#[then(expr = "the gateway's loki writer sent {int} log lines and its tempo writer {int} spans")]
async fn writers_sent(w: &mut StepsWorld, lines: usize, spans: usize) -> anyhow::Result<()> {
    let ex = self_metrics(w.collector("gateway")?.server_addr()).await?;
    w.last = Some(ex.clone());
    let sent = sum_by_component(&ex.body, "collector_sent_items_total", &[])
        .map_err(anyhow::Error::msg)?;
    let loki = sent.get("loki").copied().unwrap_or(0.0);
    let tempo = sent.get("tempo").copied().unwrap_or(0.0);
    anyhow::ensure!(
        loki == lines as f64 && tempo == spans as f64,
        "sent by component: {sent:?}; want loki {lines}, tempo {spans}\n{ex}"
    );
    Ok(())
}

#[when("the gateway is stopped, draining its queues")]
async fn stop_gateway(w: &mut StepsWorld) -> anyhow::Result<()> {
    w.collector("gateway")?.stop().await;
    Ok(())
}

#[then("its final self-metrics still show received = sent + discarded for every component")]
async fn final_balance(w: &mut StepsWorld) -> anyhow::Result<()> {
    let text = w
        .collector("gateway")?
        .final_metrics()
        .ok_or_else(|| anyhow::anyhow!("the gateway never ran"))?;
    let (ok, table) = balance(&text).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(ok, "after the drained stop:\n{table}");
    Ok(())
}
