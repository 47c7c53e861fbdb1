#![allow(clippy::unwrap_used)]
//! Static checks of `deploy/`: the Loki, Mimir and Tempo configs, Grafana's provisioning and
//! every dashboard query. Each query is parsed by the parser the embedded stack itself uses, so
//! a dashboard that asks for something outside the subset in `docs/embedded-stack.md` fails
//! here, not in front of a user. Nothing here needs Docker or a network.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use stack::embedded::loki::logql;
use stack::embedded::mimir::promql;
use stack::embedded::tempo::traceql;
use steps::dashboards::{
    self, PanelQuery, QueryKind, all_panels, datasource_uids, deploy_dir, expand, panel_queries,
};

fn dashboards_dir() -> PathBuf {
    deploy_dir().join("grafana/dashboards")
}

fn provisioning_file() -> PathBuf {
    deploy_dir().join("grafana/provisioning/datasources/datasources.yaml")
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `a.b.c` in a YAML/JSON tree.
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

const DASHBOARDS: &[&str] = &[
    "device-detail.json",
    "load-run.json",
    "pipeline-health.json",
    "retail-fleet-overview.json",
];

#[test]
fn dashboards_are_valid_json_with_unique_uids_and_titles() {
    let files = dashboards::dashboard_files(&dashboards_dir()).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in DASHBOARDS {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    let mut uids = BTreeMap::new();
    let mut titles = BTreeMap::new();
    for (file, name) in files.iter().zip(&names) {
        let d = dashboards::read_dashboard(file).unwrap();
        let uid = d["uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no uid"));
        let title = d["title"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no title"));
        assert!(!uid.is_empty() && uid.len() <= 40, "{name}: uid {uid:?}");
        if let Some(other) = uids.insert(uid.to_string(), name.clone()) {
            panic!("uid {uid:?} in both {other} and {name}");
        }
        if let Some(other) = titles.insert(title.to_string(), name.clone()) {
            panic!("title {title:?} in both {other} and {name}");
        }
        // Panel ids unique within a dashboard (Grafana links and edits by id).
        let mut ids = BTreeSet::new();
        for p in all_panels(d["panels"].as_array().unwrap()) {
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: panel without id"));
            assert!(ids.insert(id), "{name}: panel id {id} twice");
        }
    }
}

/// Every `{"type": ..., "uid": ...}` datasource reference anywhere in a JSON tree.
fn datasource_refs(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            if let Some(ds) = m.get("datasource")
                && let (Some(t), Some(u)) = (ds["type"].as_str(), ds["uid"].as_str())
            {
                out.push((t.to_string(), u.to_string()));
            }
            m.values().for_each(|v| datasource_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| datasource_refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_datasource_used_is_provisioned_with_its_type() {
    let uids = datasource_uids(&provisioning_file()).unwrap();
    assert_eq!(
        uids.iter().map(String::as_str).collect::<Vec<_>>(),
        ["loki", "mimir", "tempo"]
    );
    let prov = yaml(&provisioning_file());
    let types: BTreeMap<&str, &str> = prov["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["uid"].as_str().unwrap(), d["type"].as_str().unwrap()))
        .collect();
    let mut used = 0;
    for file in dashboards::dashboard_files(&dashboards_dir()).unwrap() {
        let mut refs = Vec::new();
        datasource_refs(&dashboards::read_dashboard(&file).unwrap(), &mut refs);
        for (ty, uid) in refs {
            let have = types.get(uid.as_str()).unwrap_or_else(|| {
                panic!("{}: datasource uid {uid:?} not in {uids:?}", file.display())
            });
            assert_eq!(
                *have,
                ty,
                "{}: datasource {uid} has type {have}",
                file.display()
            );
            used += 1;
        }
    }
    assert!(used > 50, "only {used} datasource references");
}

#[test]
fn datasources_link_logs_traces_and_metrics() {
    let prov = yaml(&provisioning_file());
    let by_uid = |uid: &str| {
        prov["datasources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["uid"] == uid)
            .unwrap()
            .clone()
    };
    let mimir = by_uid("mimir");
    assert_eq!(mimir["type"], "prometheus");
    assert_eq!(mimir["url"], "http://mimir:9009/prometheus");
    assert_eq!(by_uid("loki")["url"], "http://loki:3100");
    assert_eq!(by_uid("tempo")["url"], "http://tempo:3200");

    // Loki: the trace id of a POS checkout line links to Tempo.
    let loki = by_uid("loki");
    let fields = loki["jsonData"]["derivedFields"].as_array().unwrap();
    let trace = fields
        .iter()
        .find(|f| f["datasourceUid"] == "tempo")
        .expect("a derived field linking to tempo");
    let re = trace["matcherRegex"].as_str().unwrap();
    assert!(re.contains("\"trace_id\":\"(") && re.contains(')'), "{re}");
    // `$$` keeps Grafana's env interpolation away from ${__value.raw}.
    assert_eq!(trace["url"], "$${__value.raw}");

    let tempo = by_uid("tempo");
    let j = &tempo["jsonData"];
    assert_eq!(j["tracesToLogsV2"]["datasourceUid"], "loki");
    assert_eq!(j["serviceMap"]["datasourceUid"], "mimir");
    assert_eq!(j["nodeGraph"]["enabled"], true);
    // Gone from current Grafana's Tempo datasource.
    assert!(j["lokiSearch"].is_null(), "lokiSearch is still provisioned");
}

/// A provisioned query as Grafana runs it: `$$` unescaped (Grafana expands `$VAR` from the
/// environment in provisioning files), then the span's variables filled in.
fn as_grafana_runs_it(query: &str, vars: &[(&str, &str)]) -> String {
    vars.iter()
        .fold(query.replace("$$", "$"), |q, (var, value)| {
            q.replace(var, value)
        })
}

const SPAN_DEVICE_TAGS: &str = "device=\"pos-0042-03\"";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[test]
fn span_links_run_queries_the_embedded_stack_answers() {
    let prov = yaml(&provisioning_file());
    let tempo = prov["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["uid"] == "tempo")
        .unwrap()
        .clone();
    let logs = &tempo["jsonData"]["tracesToLogsV2"];
    // Grafana's own trace-id filter (`| label_format ... | ... or trace_id=...` since Grafana 11)
    // is outside the embedded LogQL subset: the link uses a custom query instead.
    assert_eq!(logs["customQuery"], true);
    assert_eq!(logs["filterByTraceID"], false);
    assert_eq!(logs["tags"][0]["key"], "device");
    let q = as_grafana_runs_it(
        logs["query"].as_str().unwrap(),
        &[
            ("${__tags}", SPAN_DEVICE_TAGS),
            ("${__trace.traceId}", TRACE_ID),
        ],
    );
    assert_eq!(q, format!("{{{SPAN_DEVICE_TAGS}}} |= \"{TRACE_ID}\""));
    logql::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));

    // Without queries Grafana shows no trace-to-metrics link at all.
    let metrics = &tempo["jsonData"]["tracesToMetrics"];
    assert_eq!(metrics["datasourceUid"], "mimir");
    let queries = metrics["queries"].as_array().unwrap();
    assert!(!queries.is_empty(), "tracesToMetrics has no queries");
    for m in queries {
        assert!(m["name"].as_str().is_some_and(|n| !n.is_empty()));
        let q = as_grafana_runs_it(
            m["query"].as_str().unwrap(),
            &[("$__tags", SPAN_DEVICE_TAGS)],
        );
        assert!(
            q.contains(SPAN_DEVICE_TAGS),
            "{q} does not select the span's device"
        );
        let ast = promql_parser::parser::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
        promql::check(&ast).unwrap_or_else(|e| panic!("{q}: {e:?}"));
    }
}

/// Parses an expanded query with the embedded stack's parser for its kind.
fn parse(q: &PanelQuery) -> Result<(), String> {
    let e = expand(&q.expr);
    match q.kind {
        QueryKind::PromQL => {
            // promql-parser first (real PromQL), then the embedded Mimir's subset check.
            let ast = promql_parser::parser::parse(&e)?;
            promql::check(&ast).map_err(|err| format!("{err:?}"))
        }
        QueryKind::LogQL => logql::parse(&e).map(drop).map_err(|err| err.to_string()),
        QueryKind::TraceQL => traceql::Query::parse(&e)
            .map(drop)
            .map_err(|err| err.to_string()),
    }
}

#[test]
fn every_panel_query_parses_within_the_embedded_subset() {
    let queries = panel_queries(&dashboards_dir()).unwrap();
    let count = |k| queries.iter().filter(|q| q.kind == k).count();
    assert!(queries.len() > 60, "only {} queries", queries.len());
    assert!(
        count(QueryKind::PromQL) > 40,
        "{}",
        count(QueryKind::PromQL)
    );
    assert!(count(QueryKind::LogQL) >= 5, "{}", count(QueryKind::LogQL));
    assert!(
        count(QueryKind::TraceQL) >= 3,
        "{}",
        count(QueryKind::TraceQL)
    );
    let mut failures = Vec::new();
    for q in &queries {
        let want_uid = match q.kind {
            QueryKind::PromQL => "mimir",
            QueryKind::LogQL => "loki",
            QueryKind::TraceQL => "tempo",
        };
        assert_eq!(q.datasource_uid, want_uid, "{}: {}", q.dashboard, q.panel);
        if let Err(e) = parse(q) {
            failures.push(format!(
                "{} / {} ({:?}): {}\n    {}",
                q.dashboard,
                q.panel,
                q.kind,
                e,
                expand(&q.expr)
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_dashboard_has_panels_of_its_purpose() {
    let queries = panel_queries(&dashboards_dir()).unwrap();
    let of =
        |d: &str| -> Vec<&PanelQuery> { queries.iter().filter(|q| q.dashboard == d).collect() };
    let has = |d: &str, needle: &str| of(d).iter().any(|q| q.expr.contains(needle));
    // Pipeline health uses every self-metric the collector exposes (docs/collector.md).
    for m in [
        "collector_received_items_total",
        "collector_sent_items_total",
        "collector_discarded_items_total",
        "collector_retries_total",
        "collector_queue_depth",
        "collector_batch_size_items",
        "collector_request_duration_seconds",
    ] {
        assert!(has("pipeline-health.json", m), "pipeline-health lacks {m}");
    }
    for q in of("pipeline-health.json") {
        assert!(
            q.expr.contains("job=\"collector\""),
            "{}: {}",
            q.panel,
            q.expr
        );
    }
    // Load run: throughput per signal, latency, errors, and the fleet's own data.
    for needle in [
        "by (signal)",
        "collector_request_duration_seconds_bucket",
        "outcome!=\"2xx\"",
    ] {
        assert!(has("load-run.json", needle), "load-run lacks {needle}");
    }
    let kinds = |d: &str| of(d).iter().map(|q| q.kind).collect::<BTreeSet<_>>().len();
    assert_eq!(kinds("load-run.json"), 3);
    assert_eq!(kinds("device-detail.json"), 3);
    assert_eq!(kinds("retail-fleet-overview.json"), 3);
    for needle in [
        "by (region)",
        "by (location)",
        "by (node_type)",
        "problem_mode=\"problem\"",
    ] {
        assert!(
            has("retail-fleet-overview.json", needle),
            "fleet overview lacks {needle}"
        );
    }
    for q in of("device-detail.json") {
        assert!(
            q.expr.contains("$device"),
            "device-detail {}: {}",
            q.panel,
            q.expr
        );
    }
}

/// Template variables: defined, with a provisioned datasource, a parsable `label_values`
/// selector, and used only in regex matches (`=~ "$x"`), where the "All" value `.+` and
/// multi-value `a|b` work.
#[test]
fn template_variables_are_defined_and_used_as_regexes() {
    let mut checked = 0;
    for file in dashboards::dashboard_files(&dashboards_dir()).unwrap() {
        let d = dashboards::read_dashboard(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let vars = d["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let defined: BTreeSet<String> = vars
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect();
        for v in &vars {
            let vname = v["name"].as_str().unwrap();
            assert_eq!(v["datasource"]["uid"], "mimir", "{name}: ${vname}");
            if v["includeAll"] == true {
                assert_eq!(v["allValue"], ".+", "{name}: ${vname} needs allValue .+");
            }
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .unwrap();
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|s| s.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{name}: ${vname}: {q}"));
            if let Some((selector, _label)) = inner.rsplit_once(',') {
                let e = expand(selector);
                let ast = promql_parser::parser::parse(&e)
                    .unwrap_or_else(|err| panic!("{name}: ${vname}: {e}: {err}"));
                promql::check(&ast).unwrap();
            }
            for used in dashboards::variables(q) {
                assert!(
                    defined.contains(&used),
                    "{name}: ${vname} uses undefined ${used}"
                );
            }
        }
        let exprs = panel_queries(&dashboards_dir())
            .unwrap()
            .into_iter()
            .filter(|q| q.dashboard == name)
            .map(|q| q.expr)
            .chain(
                vars.iter()
                    .map(|v| v["definition"].as_str().unwrap().to_string()),
            );
        for expr in exprs {
            for used in dashboards::variables(&expr) {
                assert!(
                    defined.contains(&used),
                    "{name}: ${used} undefined in {expr}"
                );
                for form in [format!("\"${used}\""), format!("\"${{{used}}}\"")] {
                    for (i, _) in expr.match_indices(&form) {
                        let before = expr[..i].trim_end();
                        assert!(
                            before.ends_with("=~") || before.ends_with("!~"),
                            "{name}: ${used} outside a regex match in {expr}"
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} variable uses");
}

#[test]
fn loki_mimir_tempo_configs_parse_with_the_stack_ports() {
    let dir = deploy_dir();
    let loki = yaml(&dir.join("loki/loki.yaml"));
    assert_eq!(at(&loki, "server.http_listen_port"), 3100);
    assert_eq!(at(&loki, "auth_enabled"), false);
    let schema = &at(&loki, "schema_config.configs")[0];
    assert_eq!(schema["object_store"], "filesystem");
    assert_eq!(schema["store"], "tsdb");
    assert!(at(&loki, "common.storage.filesystem").is_object());
    assert_eq!(at(&loki, "common.replication_factor"), 1);

    let mimir = yaml(&dir.join("mimir/mimir.yaml"));
    assert_eq!(at(&mimir, "server.http_listen_port"), 9009);
    assert_eq!(at(&mimir, "multitenancy_enabled"), false);
    assert_eq!(at(&mimir, "blocks_storage.backend"), "filesystem");
    assert_eq!(at(&mimir, "ingester.ring.replication_factor"), 1);

    // The limits loadgen's own embedded stack applies for load runs are these.
    let (l, m) = (
        stack::embedded::limits::LokiLimits::for_load_runs(),
        stack::embedded::limits::MimirLimits::for_load_runs(),
    );
    let lim = |v: &Value, key: &str| at(v, key).as_u64().map(|n| n as usize);
    assert_eq!(
        lim(&loki, "limits_config.max_global_streams_per_user"),
        Some(l.max_global_streams_per_user)
    );
    assert_eq!(
        lim(&loki, "limits_config.max_label_names_per_series"),
        Some(l.max_label_names_per_series)
    );
    assert_eq!(
        lim(&mimir, "limits.max_global_series_per_user"),
        Some(m.max_global_series_per_user)
    );
    assert_eq!(
        lim(&mimir, "limits.max_label_names_per_series"),
        Some(m.max_label_names_per_series)
    );

    let tempo = yaml(&dir.join("tempo/tempo.yaml"));
    assert_eq!(at(&tempo, "server.http_listen_port"), 3200);
    assert_eq!(at(&tempo, "storage.trace.backend"), "local");
    let otlp = at(&tempo, "distributor.receivers.otlp.protocols");
    assert_eq!(otlp["grpc"]["endpoint"], "0.0.0.0:4317");
    assert_eq!(otlp["http"]["endpoint"], "0.0.0.0:4318");
    assert_eq!(
        at(&tempo, "metrics_generator.storage.remote_write")[0]["url"],
        "http://mimir:9009/api/v1/push"
    );
}

#[test]
fn dashboard_provider_points_where_dashboards_are_mounted() {
    let p = yaml(&deploy_dir().join("grafana/provisioning/dashboards/dashboards.yaml"));
    let provider = &p["providers"][0];
    assert_eq!(provider["type"], "file");
    assert_eq!(
        provider["options"]["path"],
        steps::dashboards::GRAFANA_DASHBOARDS_PATH
    );
}

/// The loadgen receiver ports a gateway must listen on (`loadgen --collector http://HOST`).
const LOKI_PUSH_PORT: &str = ":3500";
const REMOTE_WRITE_PORT: &str = ":19291";
const OTLP_HTTP_PORT: &str = ":4318";

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `["a", "b"]`, as the gateway's TOML writes a list.
fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

#[test]
fn shipped_gateway_takes_every_loadgen_delivery() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../collector/examples/gateway.toml");
    let text = read(&path);
    let cfg = collector::config::Config::parse(&text, "gateway.toml", &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    cfg.build().unwrap_or_else(|e| panic!("{e}"));
    for port in ["127.0.0.1:3500", "127.0.0.1:19291", "127.0.0.1:4318"] {
        assert!(
            text.contains(port),
            "gateway.toml does not listen on {port}"
        );
    }
    assert!(text.contains("type = \"remote_write\""));
    assert!(text.contains("use_incoming_timestamp = true"));
    // The OTLP source turns loadgen's resource attributes back into labels.
    let promote = format!(
        "promote_resource_attributes = {}",
        toml_list(&loadgen::payload::otlp::LABEL_ATTRIBUTES)
    );
    let index = format!(
        "log_index_attributes = {}",
        toml_list(&loadgen::payload::otlp::LOG_INDEX_ATTRIBUTES)
    );
    assert!(text.contains(&promote), "missing `{promote}`");
    assert!(text.contains(&index), "missing `{index}`");
}

/// Names in a YAML mapping.
fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn otel_collector_peer_config_is_wired_and_listens_on_loadgens_ports() {
    let c = yaml(&deploy_dir().join("peers/otelcol/config.yaml"));
    let otlp = at(&c, "receivers.otlp.protocols");
    assert!(
        otlp["http"]["endpoint"]
            .as_str()
            .unwrap()
            .ends_with(OTLP_HTTP_PORT)
    );
    let loki = &c["receivers"]["loki"];
    assert!(
        loki["protocols"]["http"]["endpoint"]
            .as_str()
            .unwrap()
            .ends_with(LOKI_PUSH_PORT)
    );
    assert_eq!(loki["use_incoming_timestamp"], true);
    let rw = &c["exporters"]["prometheusremotewrite/mimir"];
    assert_eq!(rw["resource_to_telemetry_conversion"]["enabled"], true);
    let grouped: Vec<&str> = c["processors"]["groupbyattrs/loki_labels"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(grouped, loadgen::payload::otlp::LABEL_ATTRIBUTES);
    // Every pipeline names defined components, and every signal has a pipeline.
    let pipelines = at(&c, "service.pipelines").as_object().unwrap();
    for (name, p) in pipelines {
        for kind in ["receivers", "processors", "exporters"] {
            let defined = keys(&c[kind]);
            for id in p[kind].as_array().into_iter().flatten() {
                let id = id.as_str().unwrap();
                assert!(
                    defined.contains(id),
                    "pipeline {name}: {kind} `{id}` is not defined"
                );
            }
        }
    }
    for signal in ["traces", "metrics", "logs"] {
        assert!(
            pipelines
                .keys()
                .any(|k| k.split('/').next() == Some(signal)),
            "no {signal} pipeline"
        );
    }
}

#[test]
fn vector_peer_config_is_wired_and_listens_on_loadgens_ports() {
    let c = yaml(&deploy_dir().join("peers/vector/vector.yaml"));
    let otlp = &c["sources"]["otlp"];
    assert_eq!(otlp["type"], "opentelemetry");
    assert!(
        otlp["http"]["address"]
            .as_str()
            .unwrap()
            .ends_with(OTLP_HTTP_PORT)
    );
    assert_eq!(otlp["use_otlp_decoding"]["traces"], true);
    let rw = &c["sources"]["remote_write"];
    assert!(rw["address"].as_str().unwrap().ends_with(REMOTE_WRITE_PORT));
    assert_eq!(rw["path"], "/api/v1/write");
    // Aggregation would merge two canary samples of a series in one batch.
    assert_eq!(c["sinks"]["mimir"]["batch"]["aggregate"], false);
    let labels = keys(&c["sinks"]["loki"]["labels"]);
    for l in loadgen::payload::otlp::LABEL_ATTRIBUTES {
        assert!(labels.contains(l), "the loki sink does not set `{l}`");
    }
    // Every input is a source (or one of its outputs, `otlp.logs`) or a transform.
    let mut defined = keys(&c["sources"]);
    defined.extend(keys(&c["transforms"]));
    for section in ["transforms", "sinks"] {
        for (name, comp) in c[section].as_object().unwrap() {
            for input in comp["inputs"].as_array().unwrap() {
                let input = input.as_str().unwrap();
                let component = input.split('.').next().unwrap();
                assert!(
                    defined.contains(component),
                    "{name}: input `{input}` is not defined"
                );
            }
        }
    }
}

#[test]
fn alloy_peer_config_is_wired_and_listens_on_loadgens_ports() {
    let text = read(&deploy_dir().join("peers/alloy/config.alloy"));
    // Not YAML: check the listeners and the settings the verification depends on as text.
    for needle in [
        "listen_port    = 3500",
        "listen_port    = 19291",
        "endpoint = \"0.0.0.0:4318\"",
        "use_incoming_timestamp = true",
        "resource_to_telemetry_conversion = true",
        "value  = \"raw\"",
    ] {
        assert!(text.contains(needle), "config.alloy lacks `{needle}`");
    }
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(code.matches('{').count(), code.matches('}').count());
    // Every `a.b.NAME.receiver|input` reference names a component block `a.b "NAME"`.
    let mut blocks = BTreeSet::new();
    for line in code.lines() {
        if let Some((kind, rest)) = line.split_once(" \"")
            && let Some((label, _)) = rest.split_once('"')
            && !kind.starts_with(' ')
        {
            blocks.insert(format!("{kind}.{label}"));
        }
    }
    let mut refs = 0;
    for word in code.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '_')) {
        if let Some(component) = word
            .strip_suffix(".receiver")
            .or_else(|| word.strip_suffix(".input"))
        {
            refs += 1;
            assert!(
                blocks.contains(component),
                "`{word}` names no component ({blocks:?})"
            );
        }
    }
    assert!(refs >= 8, "only {refs} references");
}

/// The node-agent templates (`deploy/peers/*/agent.*.tmpl`), rendered with dummy values as loadgen
/// renders them, parse, and every receiver loadgen sends to listens on the port it assigns. The
/// shipped agents table compiles the same files in.
#[test]
fn agent_templates_render_parse_and_listen_on_the_assigned_ports() {
    use loadgen::run::agent::{self, SHIPPED};
    let values = agent::dummy_values();
    let port = |name: &str| -> String { values[name].as_ref().unwrap().clone() };
    for s in SHIPPED {
        let path = deploy_dir().join(s.file.trim_start_matches("deploy/"));
        assert_eq!(
            read(&path),
            s.text,
            "{}: the compiled-in copy is stale",
            s.file
        );
        let text = agent::render(s.file, s.text, &values).unwrap_or_else(|e| panic!("{e}"));
        assert!(!text.contains("{{config}}"));
        match s.name {
            "collector" => {
                let cfg = collector::config::Config::parse(&text, s.file, &|_| None)
                    .unwrap_or_else(|e| panic!("{e}"));
                cfg.build().unwrap_or_else(|e| panic!("{}: {e}", s.file));
            }
            "alloy" => {
                let code: String = text
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .collect::<Vec<_>>()
                    .join("\n");
                assert_eq!(code.matches('{').count(), code.matches('}').count());
            }
            _ => {
                let _: Value =
                    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", s.file));
            }
        }
        // Every receiver port the template names is in a listening address.
        for name in [
            "loki_push_port",
            "remote_write_port",
            "otlp_http_port",
            "agent_port",
        ] {
            if s.text.contains(&format!("{{{{{name}}}}}")) {
                assert!(
                    text.contains(&format!("127.0.0.1:{}", port(name)))
                        || text.contains(&format!("listen_port    = {}", port(name))),
                    "{}: {name} is not a 127.0.0.1 listener",
                    s.file
                );
            }
        }
    }
    // The Prometheus agent scrapes the file_sd targets and keeps the devices' labels.
    let prom = agent::render(
        "prometheus-agent",
        agent::shipped("prometheus-agent").unwrap().text,
        &values,
    )
    .unwrap();
    let c: Value = serde_saphyr::from_str(&prom).unwrap();
    let job = &c["scrape_configs"][0];
    assert_eq!(job["honor_labels"], true);
    assert_eq!(job["honor_timestamps"], true);
    assert_eq!(
        job["file_sd_configs"][0]["files"][0],
        port("file_sd_file").as_str()
    );
    assert_eq!(
        c["remote_write"][0]["url"],
        port("remote_write_url").as_str()
    );
}
