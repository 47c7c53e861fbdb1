//! Logs and metrics delivered over OTLP/HTTP, over real sockets: the requests of
//! `loadgen::payload::otlp` for a few devices go to an in-process collector's `otlp` source
//! (device labels promoted and indexed), whose Loki and remote-write writers send to the
//! embedded stack; read back by the device labels, the series are the scrape's remote-write
//! series and the streams the entries' labels (plus `service_name`), lines and times.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use collector::config::Config;
use collector::runtime::Collector;
use loadgen::fleet::{Fleet, FleetSpec};
use loadgen::generate::DeviceSignals;
use loadgen::payload::otlp::{
    LABEL_ATTRIBUTES, LOG_INDEX_ATTRIBUTES, logs_request, metrics_request,
};
use prost::Message;
use stack::client::loki::RangeOptions;
use stack::client::{LokiClient, PromClient};
use stack::{EmbeddedConfig, EmbeddedStack};
use testkit::eventually;

fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<_> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

async fn post(http: &reqwest::Client, url: String, body: Vec<u8>) {
    let resp = http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(status, 200, "{url}: {bytes:?}");
}

#[tokio::test]
async fn logs_and_metrics_over_otlp_reach_loki_and_mimir_as_pushed() {
    let stack = EmbeddedStack::start(EmbeddedConfig::default())
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
data_dir = "{data}"
[server]
address = "127.0.0.1:0"

[sources.otlp]
type = "otlp"
http_address = "127.0.0.1:0"
grpc_enabled = false
promote_resource_attributes = {promote}
log_index_attributes = {index}

[writers.loki]
type = "loki"
inputs = ["otlp"]
url = "{loki}loki/api/v1/push"
batch_wait = "50ms"

[writers.mimir]
type = "prometheus_remote_write"
inputs = ["otlp"]
url = "{mimir}"
batch_wait = "50ms"
"#,
        data = data.path().display(),
        promote = toml_list(&LABEL_ATTRIBUTES),
        index = toml_list(&LOG_INDEX_ATTRIBUTES),
        loki = stack.endpoints().loki,
        mimir = stack.endpoints().prometheus_write,
    );
    let cfg = Config::parse(&text, "test.toml", &|_| None).unwrap();
    let collector = Collector::start(&cfg).await.unwrap();
    let addr = collector
        .listen_addrs()
        .wait_for("otlp", Duration::from_secs(10))
        .await
        .expect("the otlp source listens");

    // One device of each type.
    let fleet = Fleet::generate(&FleetSpec {
        devices: 30,
        problem_fraction: 0.3,
        ..FleetSpec::default()
    });
    let mut devices = Vec::new();
    for t in loadgen::fleet::DeviceType::ALL {
        devices.push(fleet.devices.iter().find(|d| d.device_type == t).unwrap());
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let http = reqwest::Client::new();
    let mut scrapes = Vec::new();
    let mut entries = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        let mut signals = DeviceSignals::new(d, fleet.spec.seed);
        let scrape = signals.scrape(now_ms - 1_000, Some(i as u64 + 1));
        let req = metrics_request(&scrape, &d.labels());
        post(
            &http,
            format!("http://{addr}/v1/metrics"),
            req.encode_to_vec(),
        )
        .await;
        scrapes.push(scrape);
        let lines: Vec<_> = (0..4)
            .map(|n| signals.log_line((now_ms - 2_000) * 1_000_000 + n, Some(n as u64)))
            .collect();
        entries.push(lines);
    }
    // All devices' logs in one request: one resource each.
    let all: Vec<_> = entries.iter().flatten().cloned().collect();
    let req = logs_request(&all);
    assert_eq!(req.resource_logs.len(), devices.len());
    post(&http, format!("http://{addr}/v1/logs"), req.encode_to_vec()).await;

    let prom = PromClient::new(stack.endpoints());
    let loki = LokiClient::new(stack.endpoints());
    for ((d, scrape), lines) in devices.iter().zip(&scrapes).zip(&entries) {
        // Metrics: every remote-write series of the scrape, with its value and time, and no other.
        let mut want: Vec<(BTreeMap<String, String>, u64, i64)> = scrape
            .series()
            .into_iter()
            .map(|ts| {
                let labels = ts.labels.into_iter().map(|l| (l.name, l.value)).collect();
                (
                    labels,
                    ts.samples[0].value.to_bits(),
                    ts.samples[0].timestamp,
                )
            })
            .collect();
        want.sort();
        let query = format!("{{device={:?}}}[10m]", d.id);
        let got = eventually(&format!("the series of {}", d.id), || {
            let (prom, query) = (prom.clone(), query.clone());
            let n = want.len();
            async move {
                let r = prom.query(&query, None).await.ok()?;
                let m = r.matrix()?;
                let mut got: Vec<_> = m
                    .iter()
                    .flat_map(|s| {
                        s.samples.iter().map(|x| {
                            let ts = (x.timestamp * 1000.0).round() as i64;
                            (s.metric.clone(), x.value.to_bits(), ts)
                        })
                    })
                    .collect();
                got.sort();
                (got.len() >= n).then_some(got)
            }
        })
        .await;
        assert_eq!(got, want, "{}", d.id);
        let canary = got
            .iter()
            .find(|(l, _, _)| l["__name__"] == "loadgen_canary_seq")
            .unwrap();
        assert!(f64::from_bits(canary.1) >= 1.0);

        // Logs: one stream, the device's labels plus service_name, every line at its time.
        let selector = format!("{{device={:?}}}", d.id);
        let opts = RangeOptions {
            start_ns: (now_ms - 60_000) * 1_000_000,
            end_ns: (now_ms + 60_000) * 1_000_000,
            limit: Some(100),
            direction: Some(stack::client::loki::Direction::Forward),
            ..Default::default()
        };
        let streams = eventually(&format!("the logs of {}", d.id), || {
            let (loki, selector) = (loki.clone(), selector.clone());
            let n = lines.len();
            async move {
                let r = loki.query_range(&selector, &opts).await.ok()?;
                let streams = r.streams()?.to_vec();
                let count: usize = streams.iter().map(|s| s.entries.len()).sum();
                (count >= n).then_some(streams)
            }
        })
        .await;
        // The index has one stream: the device's labels plus service_name.
        let mut want_labels: BTreeMap<String, String> = d.labels().into_iter().collect();
        want_labels.insert("service_name".into(), d.device_type.as_str().into());
        let series = loki.series(&[&selector], None).await.unwrap();
        assert_eq!(series, vec![want_labels.clone()]);
        // Query results show structured metadata as labels (as Loki does), so the distinct
        // `observed_timestamp`s make one result stream per entry.
        let mut got_entries = Vec::new();
        for s in &streams {
            let mut labels = s.labels.clone();
            for (k, v) in [
                ("scope_name", "loadgen"),
                ("scope_version", env!("CARGO_PKG_VERSION")),
            ] {
                assert_eq!(labels.remove(k).as_deref(), Some(v), "{s:?}");
            }
            let observed = labels.remove("observed_timestamp").unwrap();
            // Loki 3 (and the embedded Loki) add the detected level as structured metadata.
            assert!(labels.remove("detected_level").is_some(), "{s:?}");
            assert_eq!(labels, want_labels);
            for (ts, line) in &s.entries {
                assert_eq!(observed, ts.to_string());
                got_entries.push((*ts, line.clone()));
            }
        }
        got_entries.sort();
        let want_entries: Vec<(i64, String)> = lines
            .iter()
            .map(|e| (e.timestamp_ns, e.line.clone()))
            .collect();
        assert_eq!(got_entries, want_entries);
    }
    collector.shutdown().await;
}
