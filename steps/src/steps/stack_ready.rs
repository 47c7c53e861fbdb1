//! `stack_ready.feature`: the backends' readiness endpoints and Grafana's health.

use cucumber::{given, then};

use crate::StepsWorld;
use crate::eventually::{Attempt, PATIENCE, eventually};

#[given("the central stack")]
async fn the_central_stack(w: &mut StepsWorld) -> anyhow::Result<()> {
    w.endpoints().await.map(|_| ())
}

/// Mimir's `/ready` is at its root; with Prometheus as the metrics backend, its `/-/ready`.
#[then(regex = r"^(Loki|Mimir|Tempo) answers 200 on /ready$")]
async fn answers_ready(w: &mut StepsWorld, backend: String) -> anyhow::Result<()> {
    let api = w.api().await?;
    let e = api.endpoints().clone();
    let base = match backend.as_str() {
        "Loki" => e.loki,
        "Mimir" => e.prometheus_query,
        _ => e.tempo_query,
    };
    let r = eventually(&format!("{backend} ready"), PATIENCE, || {
        let api = api.clone();
        let (base, backend) = (base.clone(), backend.clone());
        async move {
            let answer = if backend == "Mimir" {
                api.ready_metrics(&base).await
            } else {
                api.ready(&base).await
            };
            match answer {
                Ok(ex) if ex.status == 200 => Attempt::Pass(ex),
                Ok(ex) => Attempt::not_yet("not 200", &ex),
                Err(e) => Attempt::not_yet_bare(e.to_string()),
            }
        }
    })
    .await;
    w.record(r).map(|_| ())
}

#[then("Grafana reports its database ok on /api/health")]
async fn grafana_healthy(w: &mut StepsWorld) -> anyhow::Result<()> {
    let api = w.api().await?;
    let r = eventually("Grafana healthy", PATIENCE, || {
        let api = api.clone();
        async move {
            match api.grafana("api/health").await {
                Ok(Some(ex)) => {
                    let db = ex.json().and_then(|j| {
                        j.get("database")
                            .and_then(|d| d.as_str())
                            .map(str::to_string)
                    });
                    if ex.status == 200 && db.as_deref() == Some("ok") {
                        Attempt::Pass(ex)
                    } else {
                        Attempt::not_yet("want HTTP 200 with \"database\": \"ok\"", &ex)
                    }
                }
                Ok(None) => Attempt::not_yet_bare("the stack has no Grafana (GRAFANA_URL)"),
                Err(e) => Attempt::not_yet_bare(e.to_string()),
            }
        }
    })
    .await;
    w.record(r).map(|_| ())
}
