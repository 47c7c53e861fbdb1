//! `loadgen --viewers`: a short run on the embedded target with Grafana viewers refreshing the
//! four shipped dashboards while the fleet writes. Every query kind the dashboards hold is sent
//! and answered, the verdict passes with the read-path objective, and `report.html` links
//! goose's report, which is in the run folder.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use loadgen::fleet::FleetSpec;
use loadgen::read::{GOOSE_REPORT, ViewersConfig};
use loadgen::run::{RunConfig, run};
use reports::Results;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_read_every_panel_kind_while_fifty_devices_write() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let cfg = RunConfig {
        fleet: FleetSpec {
            devices: 50,
            seed: 11,
            ..FleetSpec::default()
        },
        duration: Duration::from_secs(8),
        canary_every: 5,
        drain_timeout: Duration::from_secs(60),
        out_dir: Some(dir.clone()),
        viewers: Some(ViewersConfig {
            // One viewer per shipped dashboard; refreshing every 2-3 s so the device dashboard,
            // opened before the first device reported, is refreshed with a device too.
            viewers: 4,
            refresh: Some(Duration::from_secs(2)),
            think: Duration::from_secs(1),
            ..ViewersConfig::default()
        }),
        ..RunConfig::default()
    };
    let (results, written) = run(&cfg).await.unwrap();
    assert_eq!(written, dir);

    let rp = results.read_path.as_ref().expect("read_path in results");
    assert_eq!(rp.viewers, 4);
    assert_eq!(rp.dashboards.len(), 4, "{:?}", rp.dashboards);
    assert!(rp.refreshes >= 4, "{rp:?}");
    for kind in [
        "label_values",
        "promql_range",
        "logql_range",
        "traceql_search",
    ] {
        let k = rp
            .kinds
            .get(kind)
            .unwrap_or_else(|| panic!("{kind} missing: {:?}", rp.kinds.keys()));
        assert!(k.queries > 0, "{kind}: no query");
        assert_eq!(k.answered, k.queries, "{kind}: errors {:?}", k.errors);
        assert!(k.errors.is_empty(), "{kind}: {:?}", k.errors);
        assert_eq!(k.latency.count, k.queries, "{kind}: one latency per query");
    }
    assert!(
        rp.panels
            .iter()
            .any(|p| p.dashboard == "device-detail.json" && p.answered > 0),
        "the device dashboard was read once a device had reported"
    );
    let slo = |name: &str| results.slos.iter().find(|s| s.name == name);
    let qe = slo("query_errors").unwrap_or_else(|| panic!("no query_errors: {:?}", results.slos));
    assert!(qe.pass, "{qe:?}");
    assert!(results.passed(), "{:?}", results.slos);

    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    assert_eq!(Results::from_json(&text).unwrap(), results);
    assert_eq!(rp.goose_report.as_deref(), Some(GOOSE_REPORT));
    let goose = std::fs::read_to_string(dir.join(GOOSE_REPORT)).unwrap();
    assert!(goose.contains("<html"), "goose's report is HTML");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("Read path: dashboards under load"));
    assert!(
        html.contains(&format!("href=\"{GOOSE_REPORT}\"")),
        "report.html links goose's report"
    );
}
