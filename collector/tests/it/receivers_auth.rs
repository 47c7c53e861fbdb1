//! Receivers with TLS and authentication, writing to a stack with TLS and authentication: the
//! writers present their credentials and trust the stack's CA; a client without credentials,
//! with a wrong password or a token bound to another tenant is refused (401/403, gRPC
//! `UNAUTHENTICATED`) and counted by reason, and nothing of its request goes further.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use collector::config::Config;
use collector::runtime::Collector;
use stack::client::LokiClient;
use stack::client::loki::RangeOptions;
use stack::endpoints::Auth;
use stack::{EmbeddedConfig, EmbeddedStack};
use testkit::pki::TestPki;
use testkit::{eventually, now_ns};
use wire::otlp::grpc::TraceServiceClient;

const TOKEN: &str = "tok-store-101-0123456789";

fn htpasswd(path: PathBuf, user: &str, password: &str) -> PathBuf {
    std::fs::write(
        &path,
        format!("{user}:{}\n", bcrypt::hash(password, 4).unwrap()),
    )
    .unwrap();
    path
}

fn tls_settings(pki: &TestPki) -> access::TlsSettings {
    access::TlsSettings {
        cert_file: pki.server_cert_file(),
        key_file: pki.server_key_file(),
        client_ca_file: None,
    }
}

fn config(stack: &EmbeddedStack, pki: &TestPki, dir: &Path) -> String {
    let agents = htpasswd(dir.join("agents"), "store-101", "pw-store");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{TOKEN} store-101\n")).unwrap();
    format!(
        r#"
data_dir = "{data}"
[server]
address = "127.0.0.1:0"

[sources.push]
type = "loki_push"
address = "127.0.0.1:0"
use_incoming_timestamp = true
tls = {{ cert_file = "{cert}", key_file = "{key}" }}
auth = {{ htpasswd_file = "{agents}", bearer_tokens_file = "{tokens}" }}

[sources.otlp]
type = "otlp"
http_enabled = false
grpc_address = "127.0.0.1:0"
auth = {{ bearer_tokens_file = "{tokens}" }}

[writers.loki]
type = "loki"
inputs = ["push"]
url = "{loki}loki/api/v1/push"
batch_wait = "50ms"
tls = {{ ca_file = "{ca}" }}
basic_auth = {{ username = "collector", password = "pw-collector" }}

[writers.tempo]
type = "otlp"
protocol = "http"
inputs = ["otlp"]
url = "{tempo}"
batch_wait = "50ms"
tls = {{ ca_file = "{ca}" }}
basic_auth = {{ username = "collector", password = "pw-collector" }}
"#,
        data = dir.display(),
        cert = pki.server_cert_file().display(),
        key = pki.server_key_file().display(),
        agents = agents.display(),
        tokens = tokens.display(),
        ca = pki.ca_file().display(),
        loki = stack.endpoints().loki,
        tempo = stack
            .endpoints()
            .tempo_otlp_http
            .as_str()
            .trim_end_matches('/'),
    )
}

fn push_body(line: &str) -> serde_json::Value {
    let ts = (now_ns() - 1_000_000_000).to_string();
    serde_json::json!({"streams": [{"stream": {"job": "auth-test"}, "values": [[ts, line]]}]})
}

fn failures(c: &Collector, component: &str, reason: &str) -> u64 {
    c.registry()
        .counter(
            "collector_receiver_auth_failures_total",
            "",
            &[
                ("component", component),
                ("kind", "source"),
                ("reason", reason),
            ],
        )
        .get()
}

#[tokio::test]
async fn an_encrypted_authenticated_hop_delivers_and_refuses_strangers() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let stack_users = htpasswd(dir.path().join("stack"), "collector", "pw-collector");
    let stack = EmbeddedStack::start(EmbeddedConfig {
        tls: Some(tls_settings(&pki)),
        auth: Some(access::AuthSettings {
            htpasswd_file: Some(stack_users),
            ..access::AuthSettings::default()
        }),
        ..EmbeddedConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(stack.endpoints().loki.scheme(), "https");
    let cfg = Config::parse(&config(&stack, &pki, dir.path()), "auth.toml", &|_| None).unwrap();
    let collector = Collector::start(&cfg).await.unwrap();
    let addrs = collector.listen_addrs();
    let push = addrs
        .wait_for("push", Duration::from_secs(10))
        .await
        .unwrap();
    let grpc = addrs
        .wait_for("otlp.grpc", Duration::from_secs(10))
        .await
        .unwrap();
    let url = format!("https://localhost:{}/loki/api/v1/push", push.port());
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pki.ca_pem()).unwrap())
        .build()
        .unwrap();

    // Strangers: no credentials, a wrong password, a token used for another tenant.
    let r = http
        .post(&url)
        .json(&push_body("nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenges: Vec<_> = r.headers().get_all("www-authenticate").iter().collect();
    assert!(
        challenges
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("Basic ")),
        "{challenges:?}"
    );
    let r = http
        .post(&url)
        .basic_auth("store-101", Some("guess"))
        .json(&push_body("guessed"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(&url)
        .bearer_auth(TOKEN)
        .header("X-Scope-OrgID", "store-102")
        .json(&push_body("other tenant"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(failures(&collector, "push", "missing"), 1);
    assert_eq!(failures(&collector, "push", "bad_credentials"), 1);
    assert_eq!(failures(&collector, "push", "tenant_mismatch"), 1);

    // The store's own credentials: through the collector, into the stack over TLS with the
    // collector's credentials.
    let r = http
        .post(&url)
        .basic_auth("store-101", Some("pw-store"))
        .json(&push_body("from store-101"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let mut endpoints = stack.endpoints().clone();
    endpoints.auth = Auth::Basic {
        username: "collector".into(),
        password: "pw-collector".into(),
    };
    endpoints.ca_file = Some(pki.ca_file());
    let loki = LokiClient::new(&endpoints);
    let window = RangeOptions {
        start_ns: now_ns() - 600_000_000_000,
        end_ns: now_ns() + 60_000_000_000,
        limit: Some(100),
        ..RangeOptions::default()
    };
    let lines = eventually("the pushed line in Loki", || {
        let loki = loki.clone();
        async move {
            let r = loki
                .query_range(r#"{job="auth-test"}"#, &window)
                .await
                .ok()?;
            let lines: Vec<String> = r.lines().iter().map(|l| l.to_string()).collect();
            (!lines.is_empty()).then_some(lines)
        }
    })
    .await;
    assert_eq!(
        lines,
        vec!["from store-101"],
        "only the authenticated push is stored"
    );

    // The stack refuses what comes without the collector's credentials, and counts it.
    let r = http
        .post(format!("{}loki/api/v1/push", stack.endpoints().loki))
        .json(&push_body("around the collector"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let metrics = http
        .get(format!("{}metrics", stack.endpoints().loki))
        .basic_auth("collector", Some("pw-collector"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"stack_embedded_auth_failures_total{reason="missing"} 1"#),
        "{metrics}"
    );

    // gRPC: UNAUTHENTICATED without the token, accepted with it.
    let mut client = TraceServiceClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let request = collector::sources::otlp::test_data::traces_request();
    let status = client.export(request.clone()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    let mut authed = tonic::Request::new(request);
    authed
        .metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    client.export(authed).await.unwrap();
    assert_eq!(failures(&collector, "otlp", "missing"), 1);

    collector.shutdown().await;
    stack.shutdown().await;
}

#[test]
fn check_names_the_key_or_file_of_a_mistake_without_a_secret() {
    let pki = TestPki::new();
    for (settings, want) in [
        (
            format!(
                "tls = {{ cert_file = \"{}\", key_file = \"/nonexistent.key\" }}",
                pki.server_cert_file().display()
            ),
            "tls: /nonexistent.key:",
        ),
        (
            "auth = { users = [{ username = \"u\", password_hash = \"hunter2-plain\" }] }".into(),
            "auth.users[0].password_hash:",
        ),
        ("auth = {}".into(), "auth: set htpasswd_file"),
        ("auth = { htpasswd = \"x\" }".into(), "htpasswd"),
    ] {
        let text = format!(
            "[sources.push]\ntype = \"loki_push\"\n{settings}\n[writers.out]\ntype = \"loki\"\ninputs = [\"push\"]\nurl = \"http://127.0.0.1:1/loki/api/v1/push\"\n"
        );
        let e = Config::parse(&text, "c.toml", &|_| None)
            .and_then(|c| c.build().map(|_| ()))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{settings}: {e}");
        assert!(!e.contains("hunter2"), "a secret shown: {e}");
    }
}

#[tokio::test]
async fn a_writer_presents_its_client_certificate_to_a_stack_that_demands_one() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let stack = EmbeddedStack::start(EmbeddedConfig {
        tls: Some(access::TlsSettings {
            client_ca_file: Some(pki.ca_file()),
            ..tls_settings(&pki)
        }),
        ..EmbeddedConfig::default()
    })
    .await
    .unwrap();
    let text = format!(
        r#"
data_dir = "{data}"
[server]
address = "127.0.0.1:0"
[sources.push]
type = "loki_push"
address = "127.0.0.1:0"
use_incoming_timestamp = true
[writers.loki]
type = "loki"
inputs = ["push"]
url = "{loki}loki/api/v1/push"
batch_wait = "50ms"
tls = {{ ca_file = "{ca}", cert_file = "{cert}", key_file = "{key}" }}
"#,
        data = dir.path().display(),
        loki = stack.endpoints().loki,
        ca = pki.ca_file().display(),
        cert = pki.client_cert_file().display(),
        key = pki.client_key_file().display(),
    );
    let cfg = Config::parse(&text, "mtls.toml", &|_| None).unwrap();
    let collector = Collector::start(&cfg).await.unwrap();
    let push = collector
        .listen_addrs()
        .wait_for("push", Duration::from_secs(10))
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("http://{push}/loki/api/v1/push"))
        .json(&push_body("with a client certificate"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // The writer's own count of what the mTLS stack acknowledged.
    let sent = eventually("the line acknowledged by the mTLS stack", || {
        let registry = collector.registry().clone();
        async move {
            let n = registry
                .counter(
                    "collector_sent_items_total",
                    "",
                    &[
                        ("component", "loki"),
                        ("kind", "writer"),
                        ("signal", "logs"),
                    ],
                )
                .get();
            (n == 1).then_some(n)
        }
    })
    .await;
    assert_eq!(sent, 1);
    // Without a certificate, no way in.
    let plain = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pki.ca_pem()).unwrap())
        .build()
        .unwrap()
        .get(format!("{}ready", stack.endpoints().loki))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
    collector.shutdown().await;
    stack.shutdown().await;
}
