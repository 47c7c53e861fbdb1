//! The whole path through the runtime, over real sockets: a config is loaded as a user writes it,
//! the collector scrapes a real exporter, stages add node metadata from the environment, the
//! writer sends to the embedded stack, and the data is read back through the query API with the
//! node labels. The self-monitoring endpoints account for what went through.

#![allow(clippy::unwrap_used)]

use collector::config::Config;
use collector::runtime::Collector;
use stack::client::PromClient;
use stack::{EmbeddedConfig, EmbeddedStack};
use testkit::eventually;

/// A tiny exporter: a counter and a gauge with a label that needs escaping.
async fn exporter() -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            "# HELP pos_transactions_total Transactions.\n# TYPE pos_transactions_total counter\n\
             pos_transactions_total{lane=\"1\"} 42\n\
             # TYPE printer_paper_ok gauge\nprinter_paper_ok{model=\"TM \\\"88\\\"\"} 1\n\
             # TYPE go_goroutines gauge\ngo_goroutines 7\n"
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn scrape_to_mimir_with_node_labels() {
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let target = exporter().await;
    let data = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
data_dir = "{data}"
[server]
address = "127.0.0.1:0"

[sources.node]
type = "prometheus_scrape"
job_name = "pos"
scrape_interval = "200ms"
scrape_timeout = "150ms"
targets = [{{ address = "{target}" }}]

[process.node_metadata]
inputs = ["node"]
[[process.node_metadata.stages]]
type = "relabel"
rules = [{{ action = "drop", source_labels = ["__name__"], regex = "go_.*" }}]
[[process.node_metadata.stages]]
type = "metrics.static_labels"
values = {{ region = "${{REGION}}", location = "${{LOCATION:-store-1}}", node_type = "pos", device = "pos-001", brand = "brand1", problem_mode = "healthy" }}

[writers.mimir]
type = "prometheus_remote_write"
inputs = ["node_metadata"]
url = "{write}"
batch_wait = "100ms"
"#,
        data = data.path().display(),
        write = stack.endpoints().prometheus_write,
    );
    let env = |name: &str| (name == "REGION").then(|| "eu-west".to_string());
    let cfg = Config::parse(&config, "agent.toml", &env).unwrap();
    let collector = Collector::start(&cfg).await.unwrap();

    let prom = PromClient::new(stack.endpoints());
    let v = eventually("pos_transactions_total in Mimir", || {
        let prom = prom.clone();
        async move {
            let r = prom.query("pos_transactions_total", None).await.ok()?;
            let v = r.vector()?.to_vec();
            (!v.is_empty()).then_some(v)
        }
    })
    .await;
    let m = &v[0].metric;
    for (k, want) in [
        ("job", "pos"),
        ("region", "eu-west"),
        ("location", "store-1"),
        ("node_type", "pos"),
        ("device", "pos-001"),
        ("lane", "1"),
    ] {
        assert_eq!(m.get(k).map(String::as_str), Some(want), "{k} in {m:?}");
    }
    assert_eq!(v[0].sample.value, 42.0);
    let up = prom.query("up{job=\"pos\"}", None).await.unwrap();
    assert_eq!(up.vector().unwrap()[0].sample.value, 1.0);
    let escaped = prom.query("printer_paper_ok", None).await.unwrap();
    assert_eq!(escaped.vector().unwrap()[0].metric["model"], "TM \"88\"");
    // Relabel dropped go_*.
    assert!(
        prom.query("go_goroutines", None)
            .await
            .unwrap()
            .vector()
            .unwrap()
            .is_empty()
    );

    // Self-monitoring, as an operator reads it.
    let server = collector.server_addr().unwrap();
    let http = reqwest::Client::new();
    let healthy = http
        .get(format!("http://{server}/-/healthy"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthy.status(), 200);
    assert_eq!(
        http.get(format!("http://{server}/-/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let text = testkit::get_text(format!("http://{server}/metrics")).await;
    assert!(
        text.contains(
            "collector_sent_items_total{component=\"mimir\",kind=\"writer\",signal=\"metrics\"}"
        ),
        "{text}"
    );

    let reg = collector.registry().clone();
    collector.shutdown().await;
    // Accounting after a drained stop: every item a component took in was passed on or
    // discarded with a reason, and what the stages passed on the writer got acknowledged.
    let sum = |name: &str, component: &str| reg.counter_sum(name, &[("component", component)]);
    let (p_in, p_out, p_drop) = (
        sum("collector_received_items_total", "node_metadata"),
        sum("collector_sent_items_total", "node_metadata"),
        sum("collector_discarded_items_total", "node_metadata"),
    );
    assert!(p_in > 0 && p_drop > 0, "in {p_in}, dropped {p_drop}");
    assert_eq!(p_in, p_out + p_drop, "process: received = sent + discarded");
    let (w_ok, w_drop) = (
        sum("collector_sent_items_total", "mimir"),
        sum("collector_discarded_items_total", "mimir"),
    );
    assert_eq!(
        p_out,
        w_ok + w_drop,
        "writer: given = acknowledged + discarded"
    );
    assert_eq!(w_drop, 0);
    assert_eq!(
        sum("collector_sent_items_total", "node"),
        p_in,
        "what the source sent is what the stages received"
    );
}
