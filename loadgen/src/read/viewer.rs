//! The viewers as goose users: one scenario per dashboard (goose hands users to scenarios
//! round-robin), one transaction per refresh that resolves the variables and sends every
//! panel's query in turn, and the dashboard's refresh interval plus think time as goose's wait
//! time between refreshes.
//!
//! Goose is used as a library: no metrics printed, no telnet/websocket controllers, no report
//! but the HTML file asked for. Its Ctrl-C handler would outlive the attack and make Ctrl-C stop
//! only the viewers; [`keep_ctrl_c`] installs ours first (goose's then steps aside), so Ctrl-C
//! ends loadgen as it does without viewers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::config::GooseConfiguration;
use goose::prelude::*;

use super::dashboard::{Dashboard, Panel, Target, VariableSource};
use super::grafana;
use super::query::{self, Concrete, Via};
use super::record::{Origin, QueryRecorder};

/// What every transaction of one dashboard's viewers shares.
pub(crate) struct Shared {
    pub(crate) index: usize,
    pub(crate) dashboard: Dashboard,
    pub(crate) via: Via,
    pub(crate) recorder: Arc<QueryRecorder>,
    /// The end of the run: no query leaves after it, so a refresh under way when sending
    /// stops ends with the query in flight.
    pub(crate) deadline: Instant,
    /// Scrape interval (ms) per Prometheus datasource uid (`jsonData.timeInterval`).
    pub(crate) scrape: Arc<Vec<(String, u64)>>,
}

impl Shared {
    /// The scrape interval Grafana assumes for datasource `uid`, in ms.
    fn scrape_ms(&self, uid: &str) -> Option<u64> {
        self.scrape
            .iter()
            .find(|(u, _)| u == uid)
            .map(|(_, ms)| *ms)
    }
}

/// A viewer's variable values, kept across refreshes: (name, values, multi-valued).
#[derive(Clone, Default)]
pub(crate) struct Selection {
    pub(crate) values: Vec<(String, Vec<String>, bool)>,
}

/// Grafana's browser width the panel widths are taken from (`maxDataPoints` defaults to the
/// panel's width in px).
const VIEWPORT_PX: u32 = 1920;

/// Over how long the viewers open their dashboards: a quarter of the run, at most 10 s, at least
/// 1 s. People do not all open a dashboard in the same second; 20 viewers launched at once send
/// some 400 queries in the first second, a thundering herd no incident room produces (it made
/// the debug-build embedded stack refuse writes with 429 for seconds).
pub(crate) fn launch_spread(run_time: Duration) -> Duration {
    (run_time / 4).clamp(Duration::from_secs(1), Duration::from_secs(10))
}

/// How long one query may take (Grafana's `dataproxy.timeout` default).
pub(crate) const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Installs loadgen's own Ctrl-C handler once (exit 130, what the default SIGINT does), so
/// goose's cannot take Ctrl-C over.
pub(crate) fn keep_ctrl_c() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Err(e) = ctrlc::set_handler(|| std::process::exit(130)) {
            tracing::debug!(error = %e, "Ctrl-C handler already set");
        }
    });
}

/// The goose configuration of a run: `users` for `run_time`, launched over [`launch_spread`],
/// silent, its report at `report`.
pub(crate) fn configuration(
    users: usize,
    run_time: Duration,
    host: &str,
    report: Option<&std::path::Path>,
) -> GooseConfiguration {
    let mut c = GooseConfiguration::default();
    c.host = Some(host.to_string());
    c.users = Some(users);
    let spread = launch_spread(run_time).as_secs_f64();
    c.increase_rate = Some(format!("{:.3}", (users.max(1) as f64 / spread).max(0.001)));
    c.run_time = Some(run_time.as_secs().max(1).to_string());
    // Grafana's data proxy gives up on a datasource after 30 s; so does a viewer.
    c.timeout = Some(QUERY_TIMEOUT.as_secs().to_string());
    c.quiet = 1;
    c.no_print_metrics = true;
    c.no_error_summary = true;
    // Goose resets its metrics once every user is launched (all within the first second):
    // its report then starts at full load. With `no_reset_metrics` it would print "All N
    // users launched." to stdout, into loadgen's summary. Our recorder keeps every query.
    c.no_reset_metrics = false;
    c.no_telnet = true;
    c.report_file = report
        .map(|p| vec![p.display().to_string()])
        .unwrap_or_default();
    c
}

/// The scenario of one dashboard.
pub(crate) fn scenario(
    shared: Arc<Shared>,
    wait: (Duration, Duration),
) -> Result<Scenario, GooseError> {
    let name = shared.dashboard.name.clone();
    let refresh: TransactionFunction = Arc::new(move |user| {
        let shared = shared.clone();
        Box::pin(async move {
            refresh(user, &shared).await;
            Ok(())
        })
    });
    Scenario::new(&name)
        .register_transaction(Transaction::new(refresh).set_name("refresh"))
        .set_wait_time(wait.0, wait.1)
}

/// One dashboard refresh: variables (all on the first, then those Grafana refreshes on time
/// range changes), then every panel's targets.
async fn refresh(user: &mut GooseUser, s: &Shared) {
    let to_ms = u64::try_from(wire::time::now_ns() / 1_000_000).unwrap_or_default();
    let range_ms = relative_ms(&s.dashboard.from).unwrap_or(3_600_000);
    let from_ms = to_ms.saturating_sub(range_ms);
    let first = user.get_session_data::<Selection>().is_none();
    let mut sel = user
        .get_session_data_mut::<Selection>()
        .map(std::mem::take)
        .unwrap_or_default();
    let d = (s.index, s.dashboard.name.as_str());
    for (i, v) in s.dashboard.variables.iter().enumerate() {
        // Grafana re-runs variable queries on every refresh when `refresh` is 2 (on time
        // range change: a relative range moves each refresh); one still without a value is
        // asked again too, as a viewer would reopen its empty drop-down.
        let empty = sel.values.get(i).is_none_or(|(_, vals, _)| vals.is_empty());
        if !first && v.refresh != 2 && !empty {
            continue;
        }
        let mut options = Vec::new();
        let expand = |q: &str, sel: &Selection| {
            super::dashboard::interpolate(q, |name, fmt| {
                sel.values
                    .iter()
                    .find(|(n, _, _)| n == name)
                    .map(|(_, vals, m)| grafana::format_values(vals, *m, fmt))
            })
        };
        match &v.source {
            VariableSource::Options(o) => options.clone_from(o),
            VariableSource::Query {
                datasource_uid,
                datasource_type,
                query,
            } => {
                let q = expand(query, &sel);
                let client = reqwest::Client::new();
                if let Some(rb) = query::label_values_request(
                    &client,
                    &s.via,
                    datasource_uid,
                    datasource_type,
                    &q,
                    from_ms,
                    to_ms,
                ) {
                    let origin = Origin {
                        dashboard: d,
                        panel: None,
                    };
                    if let Some(body) = send(user, s, "label_values", &origin, rb, None).await {
                        options = body["data"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect();
                    }
                }
            }
        }
        let all =
            v.current.iter().any(|c| c == "$__all") || (v.current.is_empty() && v.include_all);
        let values = if all {
            match &v.all_value {
                Some(a) => vec![a.clone()],
                None => options.clone(),
            }
        } else if v.current.is_empty() {
            // Grafana selects the first option of a variable without a saved value.
            options.first().cloned().into_iter().collect()
        } else {
            v.current.clone()
        };
        // A raw allValue goes in as written; option lists are regex-formatted.
        let multi = !(all && v.all_value.is_some()) && (v.multi || all);
        let entry = (v.name.clone(), values, multi);
        if let Some(slot) = sel.values.get_mut(i) {
            *slot = entry;
        } else {
            sel.values.push(entry);
        }
    }
    for (p, panel) in s.dashboard.panels.iter().enumerate() {
        if Instant::now() >= s.deadline {
            // The run is over: an unfinished refresh is not counted.
            user.set_session_data(sel);
            return;
        }
        for t in &panel.targets {
            let origin = Origin {
                dashboard: d,
                panel: Some((p, panel.title.as_str())),
            };
            let window = (from_ms, to_ms);
            let q = match concrete(t, panel, &sel, window, s.scrape_ms(&t.datasource_uid)) {
                Ok(q) => q,
                Err(var) => {
                    tracing::debug!(panel = %panel.title, variable = %var, "variable has no value; panel query not sent");
                    s.recorder.skipped(query::kind_name(t), &origin);
                    continue;
                }
            };
            let client = reqwest::Client::new();
            let rb = query::panel_request(&client, &s.via, &q);
            send(user, s, query::kind_name(t), &origin, rb, Some(t.kind)).await;
        }
    }
    s.recorder.refreshed();
    user.set_session_data(sel);
}

/// One panel target as sent: variables expanded, `$__interval`, `$__rate_interval` and
/// `$__range` computed as Grafana does for the panel's width and the time window
/// `(from_ms, to_ms)`. `Err` names a variable the query uses that has no value yet (its
/// label_values query found nothing, e.g. a device dashboard opened before the first device
/// reported): it would expand to `device=~""`, which Loki refuses with 400 ("at least one
/// matcher that does not have an empty-compatible value") and Prometheus matches nothing with
/// — a panel the viewer cannot fill in, not a failing backend, so it is not sent but counted.
pub(crate) fn concrete<'a>(
    t: &'a Target,
    panel: &Panel,
    sel: &Selection,
    (from_ms, to_ms): (u64, u64),
    scrape_ms: Option<u64>,
) -> Result<Concrete<'a>, String> {
    let range_ms = to_ms.saturating_sub(from_ms);
    let resolution = panel
        .max_data_points
        .unwrap_or(panel.grid_width * VIEWPORT_PX / 24);
    let low = t
        .min_interval
        .as_deref()
        .or(panel.min_interval.as_deref())
        .and_then(grafana::interval_to_ms)
        .or(scrape_ms);
    let interval_ms = grafana::calculate_interval(range_ms, resolution, low);
    let step_s = grafana::prometheus_step_s(interval_ms, low.unwrap_or(0), range_ms);
    let rate_s = grafana::rate_interval_s(step_s, scrape_ms.unwrap_or(15_000) as f64 / 1000.0);
    let interval = grafana::ms_to_hms((step_s * 1000.0) as u64);
    let mut unset: Option<String> = None;
    let expr = super::dashboard::interpolate(&t.expr, |name, fmt| match name {
        "__interval" | "__auto" => Some(interval.clone()),
        "__interval_ms" => Some(((step_s * 1000.0) as u64).to_string()),
        "__rate_interval" => Some(format!("{}s", grafana::fmt_secs(rate_s))),
        "__rate_interval_ms" => Some(((rate_s * 1000.0) as u64).to_string()),
        "__range" => Some(format!("{}s", range_ms / 1000)),
        "__range_s" => Some((range_ms / 1000).to_string()),
        "__range_ms" => Some(range_ms.to_string()),
        _ => sel
            .values
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, vals, m)| {
                if vals.is_empty() {
                    unset.get_or_insert_with(|| name.to_string());
                }
                grafana::format_values(vals, *m, fmt)
            }),
    });
    if let Some(var) = unset {
        return Err(var);
    }
    Ok(Concrete {
        target: t,
        expr,
        from_ms,
        to_ms,
        interval_ms,
        step_s,
        max_data_points: resolution,
    })
}

/// Sends one query through goose (so goose's report counts it too), reads the whole answer,
/// records it; the JSON body when answered.
async fn send(
    user: &mut GooseUser,
    s: &Shared,
    kind: &'static str,
    origin: &Origin<'_>,
    rb: reqwest::RequestBuilder,
    query_kind: Option<super::dashboard::QueryKind>,
) -> Option<serde_json::Value> {
    // The request builder was made with a throwaway client; goose sends with the user's.
    let Some(req) = rb.build().ok() else {
        s.recorder.record(kind, origin, 0, Some("request"));
        return None;
    };
    let method = req.method().clone();
    let mut b = user.client.request(method, req.url().clone());
    for (k, v) in req.headers() {
        b = b.header(k, v);
    }
    if let Some(body) = req.body().and_then(|b| b.as_bytes()) {
        b = b.body(body.to_vec());
    }
    let started = Instant::now();
    let goose_req = GooseRequest::builder()
        .name(kind)
        .set_request_builder(b)
        .build();
    let outcome = match user.request(goose_req).await {
        Err(e) => Err(format!("goose: {}", wire::redact::text(&e.to_string()))),
        Ok(r) => match r.response {
            Err(e) if e.is_timeout() => Err("timeout".to_string()),
            Err(e) if e.is_connect() => Err("connect".to_string()),
            Err(_) => Err("transport".to_string()),
            Ok(resp) => {
                let status = resp.status();
                match resp.bytes().await {
                    Err(_) => Err("body".to_string()),
                    Ok(_) if !status.is_success() => Err(status.as_u16().to_string()),
                    Ok(body) => query::check_body(
                        &s.via,
                        query_kind.unwrap_or(super::dashboard::QueryKind::PromQL),
                        &body,
                    ),
                }
            }
        },
    };
    let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    match outcome {
        Ok(v) => {
            s.recorder.record(kind, origin, us, None);
            Some(v)
        }
        Err(e) => {
            tracing::debug!(kind, error = %e, "dashboard query failed");
            s.recorder.record(kind, origin, us, Some(&e));
            None
        }
    }
}

/// `now-1h` → 3,600,000 ms (`now` alone, or anything else: `None`).
pub(crate) fn relative_ms(from: &str) -> Option<u64> {
    grafana::interval_to_ms(from.trim().strip_prefix("now-")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::dashboard::QueryKind;
    use crate::read::{ViewersConfig, load_dashboards};
    use stack::embedded::{loki, mimir, tempo};

    /// A selection as a viewer's first refresh makes it with data present: saved `All`s take
    /// the raw `allValue`, others one option.
    fn selection(d: &Dashboard, empty: Option<&str>) -> Selection {
        let values = d
            .variables
            .iter()
            .map(|v| {
                let vals = if Some(v.name.as_str()) == empty {
                    Vec::new()
                } else {
                    vec![v.all_value.clone().unwrap_or_else(|| "dev-0001".into())]
                };
                (v.name.clone(), vals, false)
            })
            .collect();
        Selection { values }
    }

    #[test]
    fn every_shipped_panel_expands_to_a_query_the_stack_parses() {
        let dashboards = load_dashboards(&ViewersConfig::default()).expect("shipped dashboards");
        assert_eq!(
            dashboards.len(),
            4,
            "the four under deploy/grafana/dashboards"
        );
        let to = 1_767_225_600_000;
        let window = (to - 3_600_000, to);
        let mut kinds = std::collections::BTreeSet::new();
        for d in &dashboards {
            assert!(!d.panels.is_empty(), "{}: no panel with a query", d.name);
            let sel = selection(d, None);
            for panel in &d.panels {
                assert!(!panel.targets.is_empty(), "{}: {}", d.name, panel.title);
                for t in &panel.targets {
                    let q = concrete(t, panel, &sel, window, Some(15_000))
                        .unwrap_or_else(|v| panic!("{}: {}: ${v} unset", d.name, panel.title));
                    let where_ = format!("{} / {}: {}", d.name, panel.title, q.expr);
                    assert!(!q.expr.contains('$') && !q.expr.contains("[["), "{where_}");
                    assert!(q.step_s >= 1.0 && q.interval_ms > 0, "{where_}");
                    match t.kind {
                        QueryKind::LogQL => {
                            loki::logql::parser::parse(&q.expr)
                                .unwrap_or_else(|e| panic!("{where_}: {e}"));
                        }
                        QueryKind::PromQL => {
                            mimir::promql::parse(&q.expr)
                                .unwrap_or_else(|e| panic!("{where_}: {e}"));
                        }
                        QueryKind::TraceQL => {
                            tempo::traceql::Query::parse(&q.expr)
                                .unwrap_or_else(|e| panic!("{where_}: {e}"));
                        }
                    }
                    kinds.insert(query::kind_name(t));
                }
            }
        }
        for k in ["promql_range", "logql_range", "traceql_search"] {
            assert!(kinds.contains(k), "{k} not among {kinds:?}");
        }
    }

    #[test]
    fn a_query_using_a_variable_without_value_is_not_sent() {
        let dashboards = load_dashboards(&ViewersConfig::default()).expect("shipped dashboards");
        let d = dashboards
            .iter()
            .find(|d| d.name == "device-detail.json")
            .expect("device-detail.json");
        let sel = selection(d, Some("device"));
        let (mut sent, mut held) = (0, 0);
        for panel in &d.panels {
            for t in &panel.targets {
                match concrete(t, panel, &sel, (0, 3_600_000), None) {
                    Ok(_) => sent += 1,
                    Err(v) => {
                        assert_eq!(v, "device");
                        assert!(t.expr.contains("$device"), "{}", t.expr);
                        held += 1;
                    }
                }
            }
        }
        assert!(held > 0, "device-detail's panels use $device");
        assert!(sent + held > 0);
    }
}
