//! `security.feature`: TLS and credentials on every hop (loadgen → gateway collector → a stack
//! of the scenario's own, `stack serve --tls-cert --tls-key --htpasswd` in process), and the
//! refusals of pushes without them.

use std::time::Duration;

use cucumber::{given, then, when};
use stack::client::LokiClient;
use stack::client::loki::RangeOptions;
use stack::endpoints::Auth;
use stack::{EmbeddedConfig, EmbeddedStack};
use testkit::pki::TestPki;

use super::capacity::loadgen_run_to;
use super::self_metrics;
use crate::StepsWorld;
use crate::collectors::{ScenarioCollector, gateway_toml_with, toml_str};
use crate::eventually::{Attempt, PATIENCE, eventually};

/// The user the agents push as.
const AGENT: &str = "store";

/// A password of this scenario's (made fresh, never printed).
fn password(w: &StepsWorld, who: &str) -> String {
    format!("{who}-{}-{}", w.id, crate::query::now_ns())
}

fn htpasswd(w: &StepsWorld, file: &str, user: &str, password: &str) -> anyhow::Result<String> {
    let path = w.dir.path().join(file);
    std::fs::write(&path, format!("{user}:{}\n", bcrypt::hash(password, 4)?))?;
    Ok(path.display().to_string())
}

fn pki(w: &StepsWorld) -> anyhow::Result<&TestPki> {
    w.pki
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no TLS stack in this scenario"))
}

#[given("a stack of this scenario serving TLS that requires credentials")]
async fn tls_stack(w: &mut StepsWorld) -> anyhow::Result<()> {
    let pki = TestPki::new();
    let pw = password(w, "collector");
    let users = htpasswd(w, "stack.htpasswd", "collector", &pw)?;
    let stack = EmbeddedStack::start(EmbeddedConfig {
        tls: Some(access::TlsSettings {
            cert_file: pki.server_cert_file(),
            key_file: pki.server_key_file(),
            client_ca_file: None,
        }),
        auth: Some(access::AuthSettings {
            htpasswd_file: Some(users.into()),
            ..access::AuthSettings::default()
        }),
        ..EmbeddedConfig::default()
    })
    .await?;
    let mut e = stack.endpoints().clone();
    e.auth = Auth::Basic {
        username: "collector".into(),
        password: pw,
    };
    e.ca_file = Some(pki.ca_file());
    w.endpoints = Some(e);
    w.own_stack = Some(stack);
    w.pki = Some(pki);
    Ok(())
}

#[given(
    "a gateway collector with TLS and credentials on its receivers, writing to that stack with its own"
)]
async fn tls_gateway(w: &mut StepsWorld) -> anyhow::Result<()> {
    let e = w.endpoints().await?;
    let pw = password(w, AGENT);
    let agents = htpasswd(w, "agents.htpasswd", AGENT, &pw)?;
    let pki = pki(w)?;
    let door = format!(
        "tls = {{ cert_file = {}, key_file = {} }}\nauth = {{ htpasswd_file = {} }}\n",
        toml_str(&pki.server_cert_file().display().to_string()),
        toml_str(&pki.server_key_file().display().to_string()),
        toml_str(&agents),
    );
    let text = gateway_toml_with(&w.dir.path().join("gateway-data"), &e, None, &door);
    let c = ScenarioCollector::start("gateway", "gateway.toml", text, Default::default()).await?;
    w.collectors.insert("gateway".into(), c);
    w.vars.insert("agent_password".into(), pw);
    Ok(())
}

/// `https://store:PASSWORD@127.0.0.1:PORT/` of a gateway receiver.
async fn receiver_url(w: &mut StepsWorld, source: &str) -> anyhow::Result<url::Url> {
    let pw = w
        .vars
        .get("agent_password")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no TLS gateway in this scenario"))?;
    let addr = w.collector("gateway")?.listen_addr(source).await?;
    let mut url = url::Url::parse(&format!("https://{addr}/"))?;
    url.set_username(AGENT)
        .and_then(|()| url.set_password(Some(&pw)))
        .map_err(|()| anyhow::anyhow!("cannot put credentials into {addr}"))?;
    Ok(url)
}

#[when(
    expr = "loadgen emulates {int} devices for {int} s through the gateway over TLS with the agents' credentials"
)]
async fn emulate_tls(w: &mut StepsWorld, devices: u64, secs: u64) -> anyhow::Result<()> {
    let receivers = loadgen::run::receivers::Receivers {
        loki: receiver_url(w, "loki_in").await?,
        remote_write: receiver_url(w, "rw_in").await?.join("api/v1/write")?,
        otlp: receiver_url(w, "otlp_in").await?,
    };
    loadgen_run_to(w, devices, secs, 42, 1.0, receivers)
        .await
        .map(|_| ())
}

/// The pushes of this scenario, in order: (what, status, `WWW-Authenticate` values).
fn pushes(w: &StepsWorld) -> Vec<(String, u16, Vec<String>)> {
    w.vars
        .get("pushes")
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default()
}

#[when(
    regex = r"^a log push (without credentials|with a wrong password|with the agents' credentials) is sent to the gateway over TLS$"
)]
async fn push(w: &mut StepsWorld, how: String) -> anyhow::Result<()> {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(pki(w)?.ca_file())?)?;
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()?;
    let addr = w.collector("gateway")?.listen_addr("loki_in").await?;
    let line = format!("push {how}");
    let ts = crate::query::now_ns().to_string();
    let body = serde_json::json!({"streams": [{
        "stream": {"job": "security", "scenario": w.id.clone()},
        "values": [[ts, line]],
    }]});
    let mut req = http
        .post(format!("https://{addr}/loki/api/v1/push"))
        .json(&body);
    let pw = w.vars.get("agent_password").cloned().unwrap_or_default();
    req = match how.as_str() {
        "without credentials" => req,
        "with a wrong password" => req.basic_auth(AGENT, Some(format!("{pw}-wrong"))),
        _ => req.basic_auth(AGENT, Some(pw)),
    };
    let r = req.send().await?;
    let challenges = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let mut all = pushes(w);
    all.push((line, r.status().as_u16(), challenges));
    w.vars.insert("pushes".into(), serde_json::to_string(&all)?);
    Ok(())
}

#[then("the gateway refused the first two with 401 and a Basic challenge, and took the third")]
async fn refused_two(w: &mut StepsWorld) -> anyhow::Result<()> {
    let all = pushes(w);
    anyhow::ensure!(all.len() == 3, "want 3 pushes, got {all:?}");
    for (what, status, challenges) in &all[..2] {
        anyhow::ensure!(
            *status == 401 && challenges.iter().any(|c| c.starts_with("Basic realm=")),
            "{what}: want 401 with a Basic challenge, got {status} {challenges:?}"
        );
    }
    anyhow::ensure!(all[2].1 == 204, "{}: want 204, got {}", all[2].0, all[2].1);
    Ok(())
}

#[then(
    expr = "the gateway counts {int} auth failure {string} and {int} auth failure {string} at {string}"
)]
async fn auth_failures(
    w: &mut StepsWorld,
    n1: u64,
    r1: String,
    n2: u64,
    r2: String,
    component: String,
) -> anyhow::Result<()> {
    let ex = self_metrics(w.collector("gateway")?.server_addr()).await?;
    for (n, reason) in [(n1, r1), (n2, r2)] {
        let counted = super::sum_by_component(
            &ex.body,
            "collector_receiver_auth_failures_total",
            &[("reason", reason.as_str())],
        )
        .map_err(anyhow::Error::msg)?;
        let got = counted.get(&component).copied().unwrap_or(0.0);
        anyhow::ensure!(
            got == n as f64,
            "collector_receiver_auth_failures_total{{component=\"{component}\",reason=\"{reason}\"}}: want {n}, got {got}"
        );
    }
    Ok(())
}

#[then("within 20 s the stack holds the line of the third push and none of the refused ones")]
async fn stored_only_the_third(w: &mut StepsWorld) -> anyhow::Result<()> {
    let e = w.endpoints().await?;
    let loki = LokiClient::new(&e);
    let query = format!(r#"{{job="security", scenario="{}"}}"#, w.id);
    let now = crate::query::now_ns();
    let window = RangeOptions {
        start_ns: now - 600_000_000_000,
        end_ns: now + 60_000_000_000,
        limit: Some(100),
        ..RangeOptions::default()
    };
    let lines = eventually("the accepted push in Loki", PATIENCE, || {
        let (loki, query) = (loki.clone(), query.clone());
        async move {
            match loki.query_range(&query, &window).await {
                Ok(r) if !r.lines().is_empty() => {
                    Attempt::Pass(r.lines().iter().map(|l| l.to_string()).collect::<Vec<_>>())
                }
                Ok(_) => Attempt::not_yet_bare("no line yet".to_string()),
                Err(e) => Attempt::not_yet_bare(e.to_string()),
            }
        }
    })
    .await
    .map_err(anyhow::Error::from)?;
    // A moment more, for a refused push that would arrive late.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let want = vec![pushes(w)[2].0.clone()];
    anyhow::ensure!(lines == want, "want only {want:?} in Loki, got {lines:?}");
    Ok(())
}
