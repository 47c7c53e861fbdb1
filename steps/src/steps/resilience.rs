//! `resilience.feature`: a backend failing for a while loses nothing; malformed input is
//! refused with 400 and a reason, and counted.

use std::collections::BTreeMap;

use cucumber::{given, then, when};

use super::logs::expect_lines;
use super::{post, push_lines, self_metrics, sum_by_component};
use crate::StepsWorld;
use crate::collectors::{ScenarioCollector, gateway_toml};
use crate::eventually::{Attempt, PATIENCE, eventually};
use crate::proxy::{FaultProxy, Route};

const LOKI_PUSH: &str = "/loki/api/v1/push";

#[given("a fault-injecting proxy in front of Loki")]
async fn proxy_before_loki(w: &mut StepsWorld) -> anyhow::Result<()> {
    let e = w.endpoints().await?;
    let p = FaultProxy::start(vec![Route {
        prefix: "/".into(),
        upstream: e.loki.clone(),
    }])
    .await?;
    w.proxies.insert("loki".into(), p);
    Ok(())
}

/// The scenario's proxy in front of Loki.
fn loki_proxy(w: &StepsWorld) -> anyhow::Result<&FaultProxy> {
    w.proxies
        .get("loki")
        .ok_or_else(|| anyhow::anyhow!("no proxy in this scenario"))
}

#[given("a gateway collector writing to Loki through the proxy")]
async fn gateway_through_proxy(w: &mut StepsWorld) -> anyhow::Result<()> {
    start_gateway(w, "").await
}

#[given("a gateway collector writing to Loki through the proxy with a disk buffer")]
async fn gateway_with_disk_buffer(w: &mut StepsWorld) -> anyhow::Result<()> {
    start_gateway(w, "buffer = { type = \"disk\", max_size = \"16MiB\" }\n").await
}

/// The gateway, its loki writer through the proxy, with `loki_keys` added to that writer.
async fn start_gateway(w: &mut StepsWorld, loki_keys: &str) -> anyhow::Result<()> {
    let e = w.endpoints().await?;
    let url = format!("{}loki/api/v1/push", loki_proxy(w)?.base_url());
    let text = gateway_toml(&w.dir.path().join("gateway-data"), &e, Some(&url)).replacen(
        "[writers.loki]\n",
        &format!("[writers.loki]\n{loki_keys}"),
        1,
    );
    let c = ScenarioCollector::start("gateway", "gateway.toml", text, BTreeMap::new()).await?;
    w.collectors.insert("gateway".into(), c);
    Ok(())
}

#[when("the gateway is killed (kill -9) and started again")]
async fn crash_gateway(w: &mut StepsWorld) -> anyhow::Result<()> {
    w.collector("gateway")?.crash_and_restart().await?;
    Ok(())
}

#[given(expr = "the proxy answers the next {int} Loki pushes with HTTP {int}")]
async fn script_failures(w: &mut StepsWorld, n: usize, status: u16) -> anyhow::Result<()> {
    let p = loki_proxy(w)?;
    p.fail_next(LOKI_PUSH, n, status);
    Ok(())
}

#[given(expr = "the proxy answers every Loki push with HTTP {int} for the next {int} s")]
async fn outage(w: &mut StepsWorld, status: u16, secs: u64) -> anyhow::Result<()> {
    let p = loki_proxy(w)?;
    p.fail_for(LOKI_PUSH, std::time::Duration::from_secs(secs), status);
    Ok(())
}

#[when(expr = "{int} log lines of a new stream are pushed to the gateway")]
async fn push_stream(w: &mut StepsWorld, n: usize) -> anyhow::Result<()> {
    let job = w.unique("resilience");
    let loki = w.collector("gateway")?.listen_addr("loki_in").await?;
    let lines: Vec<String> = (1..=n).map(|k| format!("order {k} of {job}")).collect();
    for chunk in lines.chunks(10) {
        let (status, text) = push_lines(loki, &[("job", job.as_str())], chunk).await?;
        anyhow::ensure!(
            status == 204,
            "Loki push to the gateway: HTTP {status}: {text}"
        );
    }
    w.vars.insert("stream_job".into(), job);
    w.written.insert("stream".into(), lines);
    Ok(())
}

#[then(expr = "within 20 s Loki returns all {int} lines of the stream, each exactly once")]
async fn all_lines(w: &mut StepsWorld, n: usize) -> anyhow::Result<()> {
    all_lines_of_stream(w, n).await
}

#[then(
    expr = "once the outage is over, Loki returns all {int} lines of the stream, each exactly once"
)]
async fn all_lines_after_outage(w: &mut StepsWorld, n: usize) -> anyhow::Result<()> {
    // The outage's own time comes first; the usual patience starts when it ends.
    let p = loki_proxy(w)?;
    if let Some(left) = p.outage_left(LOKI_PUSH) {
        tokio::time::sleep(left).await;
    }
    all_lines_of_stream(w, n).await
}

async fn all_lines_of_stream(w: &mut StepsWorld, n: usize) -> anyhow::Result<()> {
    let job = w.vars.get("stream_job").cloned().unwrap_or_default();
    let expected = w.written.get("stream").cloned().unwrap_or_default();
    anyhow::ensure!(
        expected.len() == n,
        "pushed {} lines, not {n}",
        expected.len()
    );
    expect_lines(
        w,
        "every line in Loki once",
        &format!("{{job=\"{job}\"}}"),
        expected,
    )
    .await
    .map(|_| ())
}

#[then(expr = "the proxy injected {int} failures")]
async fn injected(w: &mut StepsWorld, n: u64) -> anyhow::Result<()> {
    let p = loki_proxy(w)?;
    let t = p.tally("/");
    anyhow::ensure!(
        t.injected == n,
        "the proxy injected {} failures, not {n} ({t:?})",
        t.injected
    );
    Ok(())
}

#[then(expr = "the proxy injected at least {int} failures")]
async fn injected_at_least(w: &mut StepsWorld, n: u64) -> anyhow::Result<()> {
    let p = loki_proxy(w)?;
    let t = p.tally("/");
    anyhow::ensure!(
        t.injected >= n,
        "the proxy injected {} failures, fewer than {n} ({t:?})",
        t.injected
    );
    Ok(())
}

#[then("the gateway's loki writer discarded nothing")]
async fn writer_discarded_nothing(w: &mut StepsWorld) -> anyhow::Result<()> {
    let ex = self_metrics(w.collector("gateway")?.server_addr()).await?;
    let by = sum_by_component(&ex.body, "collector_discarded_items_total", &[])
        .map_err(anyhow::Error::msg)?;
    let got = by.get("loki").copied().unwrap_or(0.0);
    w.last = Some(ex);
    anyhow::ensure!(got == 0.0, "the loki writer discarded {got} items: {by:?}");
    Ok(())
}

#[then(expr = "the gateway's loki writer counted at least {int} retries")]
async fn retries(w: &mut StepsWorld, n: u64) -> anyhow::Result<()> {
    let ex = self_metrics(w.collector("gateway")?.server_addr()).await?;
    w.last = Some(ex.clone());
    let r =
        sum_by_component(&ex.body, "collector_retries_total", &[]).map_err(anyhow::Error::msg)?;
    let got = r.get("loki").copied().unwrap_or(0.0);
    anyhow::ensure!(
        got >= n as f64,
        "retries by component {r:?}; want loki >= {n}\n{ex}"
    );
    Ok(())
}

fn discarded(text: &str, component: &str, reason: &str) -> Result<f64, String> {
    sum_by_component(
        text,
        "collector_discarded_items_total",
        &[("reason", reason)],
    )
    .map(|m| m.get(component).copied().unwrap_or(0.0))
}

#[when("a log push with an unparsable body is sent to the gateway")]
async fn malformed_push(w: &mut StepsWorld) -> anyhow::Result<()> {
    let gw = w.collector("gateway")?;
    let server = gw.server_addr();
    let loki = gw.listen_addr("loki_in").await?;
    let before = self_metrics(server).await?;
    let n = discarded(&before.body, "loki_in", "decode_error").map_err(anyhow::Error::msg)?;
    let (status, body) = post(
        loki,
        LOKI_PUSH,
        "application/json",
        b"{\"streams\": [ not json".to_vec(),
    )
    .await?;
    w.vars.insert("discarded_before".into(), n.to_string());
    w.vars.insert("refusal_status".into(), status.to_string());
    w.vars.insert("refusal_body".into(), body);
    Ok(())
}

#[then(expr = "the gateway answered {int} with a reason")]
async fn answered(w: &mut StepsWorld, want: u16) -> anyhow::Result<()> {
    let status = w.vars.get("refusal_status").cloned().unwrap_or_default();
    let body = w.vars.get("refusal_body").cloned().unwrap_or_default();
    anyhow::ensure!(
        status == want.to_string() && !body.trim().is_empty(),
        "POST {LOKI_PUSH} with a broken JSON body: want HTTP {want} with a reason, got HTTP {status}: {body:?}"
    );
    Ok(())
}

#[then(
    regex = r#"^within 20 s the gateway counts (\d+) more discarded items? with reason "([^"]+)" at "([^"]+)"$"#
)]
async fn counted(
    w: &mut StepsWorld,
    n: f64,
    reason: String,
    component: String,
) -> anyhow::Result<()> {
    let before: f64 = w
        .vars
        .get("discarded_before")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let server = w.collector("gateway")?.server_addr();
    let r = eventually(&format!("{component} discarded {n} more ({reason})"), PATIENCE, || {
        let (reason, component) = (reason.clone(), component.clone());
        async move {
            let ex = match self_metrics(server).await {
                Ok(ex) => ex,
                Err(e) => return Attempt::not_yet_bare(e.to_string()),
            };
            match discarded(&ex.body, &component, &reason) {
                Ok(now) if now - before == n => Attempt::Pass(ex),
                Ok(now) => Attempt::not_yet(
                    format!("collector_discarded_items_total{{component=\"{component}\",reason=\"{reason}\"}} went from {before} to {now}"),
                    &ex,
                ),
                Err(e) => Attempt::not_yet(e, &ex),
            }
        }
    })
    .await;
    w.record(r).map(|_| ())
}
