//! `capacity.feature`: a few hundred devices for a short run through the scenario's gateway,
//! with loadgen's run (open-loop schedule, canaries read back from the stack under test).

use std::time::Duration;

use cucumber::{then, when};
use loadgen::fleet::FleetSpec;
use loadgen::run::{CollectorChoice, RunConfig};
use reports::Results;
use stack::external::ExternalArgs;
use stack::{Auth, Endpoints};

use crate::StepsWorld;
use crate::proxy::{FaultProxy, Route};

/// The endpoints as the flags a loadgen run takes.
pub fn external_args(e: &Endpoints) -> ExternalArgs {
    let (username, password, bearer_token) = match &e.auth {
        Auth::None => (None, None, None),
        Auth::Basic { username, password } => {
            (Some(username.clone()), Some(password.clone()), None)
        }
        Auth::Bearer(t) => (None, None, Some(t.clone())),
    };
    ExternalArgs {
        loki_url: e.loki.to_string(),
        mimir_write_url: e.prometheus_write.to_string(),
        mimir_query_url: e.prometheus_query.to_string(),
        tempo_otlp_url: e.tempo_otlp_http.to_string(),
        tempo_otlp_grpc_url: e.tempo_otlp_grpc.as_ref().map(ToString::to_string),
        tempo_query_url: e.tempo_query.to_string(),
        grafana_url: e.grafana.as_ref().map(ToString::to_string),
        tenant: e.tenant.clone(),
        username,
        password,
        bearer_token,
        ca_file: e.ca_file.clone(),
    }
}

/// One base URL for the gateway's three receivers, as loadgen's collector target expects.
pub async fn gateway_front(w: &mut StepsWorld) -> anyhow::Result<String> {
    let gw = w.collector("gateway")?;
    let mut routes = Vec::new();
    for (prefix, source) in [
        ("/loki/api/v1/push", "loki_in"),
        ("/api/v1/write", "rw_in"),
        ("/v1/", "otlp_in"),
    ] {
        let addr = gw.listen_addr(source).await?;
        routes.push(Route {
            prefix: prefix.into(),
            upstream: url::Url::parse(&format!("http://{addr}/"))?,
        });
    }
    let p = FaultProxy::start(routes).await?;
    let base = p.base_url();
    w.proxies.insert("front".into(), p);
    Ok(base)
}

/// A loadgen run of `devices` for `secs` through the gateway, every rate times `rate`; the
/// results go into the world.
pub async fn loadgen_run(
    w: &mut StepsWorld,
    devices: u64,
    secs: u64,
    seed: u64,
    rate: f64,
) -> anyhow::Result<Results> {
    let base = gateway_front(w).await?;
    // One proxy in front of the gateway's three receivers routes by path.
    let receivers = loadgen::run::receivers::Receivers {
        loki: url::Url::parse(&base)?,
        remote_write: url::Url::parse(&base)?.join("api/v1/write")?,
        otlp: url::Url::parse(&base)?,
    };
    loadgen_run_to(w, devices, secs, seed, rate, receivers).await
}

/// A loadgen run of `devices` for `secs` to `receivers`, verified against the scenario's
/// stack; the results go into the world.
pub async fn loadgen_run_to(
    w: &mut StepsWorld,
    devices: u64,
    secs: u64,
    seed: u64,
    rate: f64,
    receivers: loadgen::run::receivers::Receivers,
) -> anyhow::Result<Results> {
    let e = w.endpoints().await?;
    let cfg = RunConfig {
        fleet: FleetSpec {
            devices,
            seed,
            ..FleetSpec::default()
        },
        duration: Duration::from_secs(secs),
        rate_multiplier: rate,
        canary_every: 5,
        drain_timeout: Duration::from_secs(30),
        out_dir: Some(w.dir.path().join(format!("run-{}", w.id))),
        stack: stack::StackChoice::External(external_args(&e)),
        collector: CollectorChoice::Remote(Box::new(receivers)),
        command: format!("steps: {devices} devices for {secs} s"),
        ..RunConfig::default()
    };
    // A run is CPU work for seconds: off the task the scenarios share.
    let (results, _) = tokio::spawn(async move { loadgen::run::run(&cfg).await })
        .await
        .map_err(|e| anyhow::anyhow!("the loadgen run panicked: {e}"))??;
    w.vars
        .insert("results".into(), serde_json::to_string(&results)?);
    Ok(results)
}

#[when(expr = "loadgen emulates {int} devices for {int} s through the gateway")]
async fn emulate(w: &mut StepsWorld, devices: u64, secs: u64) -> anyhow::Result<()> {
    loadgen_run(w, devices, secs, 42, 1.0).await.map(|_| ())
}

fn results(w: &StepsWorld) -> anyhow::Result<Results> {
    let text = w
        .vars
        .get("results")
        .ok_or_else(|| anyhow::anyhow!("no loadgen run in this scenario"))?;
    Ok(serde_json::from_str(text)?)
}

/// Per signal: sent, acknowledged, errors, canaries, lost, p99 send.
fn summary(r: &Results) -> String {
    r.signals
        .iter()
        .map(|(s, v)| {
            format!(
                "  {s}: sent {} acknowledged {} errors {:?}; canaries {} found {} lost {} duplicated {}; p99 send {} {}\n",
                v.sent, v.acknowledged, v.errors, v.verification.canaries, v.verification.found,
                v.verification.lost, v.verification.duplicated, v.send_latency.p99, v.send_latency.unit
            )
        })
        .collect()
}

#[then("every log, metric and trace sent was acknowledged")]
async fn all_acknowledged(w: &mut StepsWorld) -> anyhow::Result<()> {
    let r = results(w)?;
    for s in ["logs", "metrics", "traces"] {
        let v = r
            .signals
            .get(s)
            .ok_or_else(|| anyhow::anyhow!("no {s} in the results\n{}", summary(&r)))?;
        anyhow::ensure!(
            v.sent > 0 && v.sent == v.acknowledged,
            "{s} not all acknowledged:\n{}",
            summary(&r)
        );
    }
    Ok(())
}

#[then("no canary is lost in logs, metrics or traces")]
async fn nothing_lost(w: &mut StepsWorld) -> anyhow::Result<()> {
    let r = results(w)?;
    for s in ["logs", "metrics", "traces"] {
        let v = r
            .signals
            .get(s)
            .ok_or_else(|| anyhow::anyhow!("no {s} in the results"))?;
        let c = &v.verification;
        anyhow::ensure!(
            c.canaries > 0 && c.lost == 0 && c.found == c.canaries,
            "{s} lost canaries:\n{}",
            summary(&r)
        );
    }
    Ok(())
}

#[then(expr = "the p99 send latency of every signal is under {int} ms")]
async fn p99_under(w: &mut StepsWorld, ms: u64) -> anyhow::Result<()> {
    let r = results(w)?;
    let slo: loadgen::run::Slo = format!("p99_send_ms={ms}").parse()?;
    let v = slo.check(&r, false);
    anyhow::ensure!(v.pass, "p99 send over {ms} ms: {v:?}\n{}", summary(&r));
    Ok(())
}
