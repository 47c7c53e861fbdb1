//! `correlation.feature`: the trace id in a POS checkout log line finds its trace.

use cucumber::{then, when};

use super::logs::LOOKBACK;
use super::node_selector;
use super::traces::{checkout, expect_trace, services};
use crate::StepsWorld;
use crate::eventually::{Attempt, PATIENCE, eventually};
use crate::query::label;

#[when(
    expr = "a {string} device completes a checkout, its trace sent over OTLP and its log line over Loki push to the gateway"
)]
async fn checkout_with_log(w: &mut StepsWorld, node_type: String) -> anyhow::Result<()> {
    checkout(w, &node_type, true).await.map(|_| ())
}

#[then("within 20 s Loki has the device's checkout line")]
async fn checkout_line(w: &mut StepsWorld) -> anyhow::Result<()> {
    let id = w.identity("node")?;
    // Parsed with `| json`: the trace id comes back as a label of the stream.
    let q = format!("{{{}}} |= \"checkout\" | json", node_selector(&id));
    let api = w.api().await?;
    let r = eventually("the checkout line in Loki", PATIENCE, || {
        let api = api.clone();
        let q = q.clone();
        async move {
            match api.logql(&q, LOOKBACK, 10).await {
                Ok(ex)
                    if ex.ok()
                        && ex
                            .streams()
                            .iter()
                            .any(|(l, _)| label(l, "trace_id").is_some()) =>
                {
                    Attempt::Pass(ex)
                }
                Ok(ex) => Attempt::not_yet("no line with a trace_id yet", &ex),
                Err(e) => Attempt::not_yet_bare(e.to_string()),
            }
        }
    })
    .await;
    let ex = w.record(r)?;
    let trace_id = ex
        .streams()
        .iter()
        .find_map(|(l, _)| label(l, "trace_id").map(str::to_string))
        .unwrap_or_default();
    w.vars.insert("line_trace_id".into(), trace_id);
    Ok(())
}

#[then(
    expr = "within 20 s the trace_id of that line finds the trace in Tempo, its root span {string} from the same device"
)]
async fn line_finds_trace(w: &mut StepsWorld, root: String) -> anyhow::Result<()> {
    let device = w.identity("node")?.device;
    let id = w.vars.get("line_trace_id").cloned().unwrap_or_default();
    let sent = w.vars.get("trace_id").cloned().unwrap_or_default();
    anyhow::ensure!(
        id == sent,
        "the line's trace_id {id:?} is not the trace sent ({sent:?})"
    );
    expect_trace(w, "the trace of the log line", &id, move |t| {
        let found = services(t).into_iter().any(|(s, names, attrs)| {
            s == "pos" && names.contains(&root) && attrs.get("device") == Some(&device)
        });
        if found {
            Ok(())
        } else {
            Err(format!(
                "no span {root:?} of service pos with device {device:?}"
            ))
        }
    })
    .await
    .map(|_| ())
}
