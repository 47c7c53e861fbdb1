//! The Grafana dashboards and datasources in `deploy/grafana/`, read as data: every panel
//! query with its datasource and language, template variables expanded to concrete values,
//! and the datasource uids the provisioning file declares.
//!
//! [`Dashboard::load`] reads one dashboard for a viewer ([`super::viewer`]): its refresh, time
//! range, template variables and every panel's targets with what Grafana needs to turn them into
//! requests (width, max data points, min interval, instant or range).
//!
//! Static checks (`steps/tests/it/deploy.rs`) parse each query with the embedded stack's parsers,
//! so a dashboard never asks for something outside the PromQL/LogQL/TraceQL subset in
//! `docs/embedded-stack.md`; scenarios can run the same queries against a live stack.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The query language of a panel target, from its datasource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QueryKind {
    /// `prometheus` datasources (Mimir): the target's `expr`.
    PromQL,
    /// `loki` datasources: the target's `expr`.
    LogQL,
    /// `tempo` datasources: the target's `query`.
    TraceQL,
}

impl QueryKind {
    /// The kind for a Grafana datasource type, if it is one of ours.
    pub fn from_datasource_type(ty: &str) -> Option<QueryKind> {
        match ty {
            "prometheus" => Some(QueryKind::PromQL),
            "loki" => Some(QueryKind::LogQL),
            "tempo" => Some(QueryKind::TraceQL),
            _ => None,
        }
    }
}

/// One query of one panel, as written in the dashboard (template variables not expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelQuery {
    /// The dashboard's file name, e.g. `device-detail.json`.
    pub dashboard: String,
    /// The panel's title.
    pub panel: String,
    /// The uid of the target's datasource (`loki`, `mimir`, `tempo`).
    pub datasource_uid: String,
    pub kind: QueryKind,
    /// The query text; see [`expand`] for a concrete one.
    pub expr: String,
}

/// One target of a panel, with what a viewer needs to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub ref_id: String,
    pub datasource_uid: String,
    /// `prometheus`, `loki` or `tempo`.
    pub datasource_type: String,
    pub kind: QueryKind,
    /// The query as written (template variables not expanded).
    pub expr: String,
    /// An instant query (one point at the range's end) rather than a range query.
    pub instant: bool,
    /// Tempo's `limit` (traces per search).
    pub limit: Option<u64>,
    /// The target's own min interval (`interval`), e.g. `30s`.
    pub min_interval: Option<String>,
}

/// One panel with targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    /// Grid columns of 24 (`gridPos.w`): Grafana's `maxDataPoints` default is the panel's
    /// width in pixels.
    pub grid_width: u32,
    /// `maxDataPoints`, when the panel sets it.
    pub max_data_points: Option<u32>,
    /// The panel's min interval (`interval`, query options), e.g. `1m`.
    pub min_interval: Option<String>,
    pub targets: Vec<Target>,
}

/// A template variable of a dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    pub name: String,
    pub source: VariableSource,
    pub multi: bool,
    pub include_all: bool,
    /// What `All` stands for (`allValue`); `None`: every option, as a regex alternation.
    pub all_value: Option<String>,
    /// The saved selection (`current.value`), `$__all` for All; empty: the first option.
    pub current: Vec<String>,
    /// Grafana's `refresh`: 1 on dashboard load, 2 on every time range change (so on every
    /// auto-refresh too).
    pub refresh: u64,
}

/// Where a variable's options come from.
#[derive(Debug, Clone, PartialEq)]
pub enum VariableSource {
    /// A datasource query: `label_values(metric_or_selector, label)`, `label_names()` (Prometheus,
    /// Loki) — what a viewer sends to the label APIs.
    Query {
        datasource_uid: String,
        datasource_type: String,
        query: String,
    },
    /// Fixed options (custom, interval, textbox, constant): their values.
    Options(Vec<String>),
}

/// A dashboard as a viewer opens it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    /// The file name, e.g. `device-detail.json`.
    pub name: String,
    pub title: String,
    /// `refresh` (e.g. `30s`); `None`: no auto-refresh.
    pub refresh: Option<String>,
    /// `time.from`, e.g. `now-1h` (`time.to` is taken as `now`).
    pub from: String,
    pub variables: Vec<Variable>,
    /// Panels with targets, rows' nested panels included, in dashboard order.
    pub panels: Vec<Panel>,
}

impl Dashboard {
    /// Reads one dashboard file.
    pub fn load(file: &Path) -> Result<Dashboard, DashboardError> {
        let dash = read_dashboard(file)?;
        let shape = |what: &str| DashboardError::Shape {
            file: file.to_path_buf(),
            what: what.to_string(),
        };
        let panels_json = dash
            .get("panels")
            .and_then(Value::as_array)
            .ok_or_else(|| shape("no \"panels\" array"))?;
        let mut panels = Vec::new();
        for p in all_panels(panels_json) {
            let targets = targets_of(file, p)?;
            if targets.is_empty() {
                continue;
            }
            panels.push(Panel {
                title: title_of(p),
                grid_width: p
                    .pointer("/gridPos/w")
                    .and_then(Value::as_u64)
                    .map_or(12, |w| w.clamp(1, 24) as u32),
                max_data_points: p
                    .get("maxDataPoints")
                    .and_then(Value::as_u64)
                    .map(|v| v.clamp(1, u64::from(u32::MAX)) as u32),
                min_interval: non_empty(p.get("interval")),
                targets,
            });
        }
        let mut variables = Vec::new();
        for v in dash
            .pointer("/templating/list")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            variables.push(variable_of(file, v)?);
        }
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Dashboard {
            title: dash
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or(&name)
                .to_string(),
            name,
            refresh: non_empty(dash.get("refresh")),
            from: dash
                .pointer("/time/from")
                .and_then(Value::as_str)
                .unwrap_or("now-6h")
                .to_string(),
            variables,
            panels,
        })
    }
}

fn variable_of(file: &Path, v: &Value) -> Result<Variable, DashboardError> {
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| DashboardError::Shape {
            file: file.to_path_buf(),
            what: "a template variable has no name".into(),
        })?
        .to_string();
    let ty = v.get("type").and_then(Value::as_str).unwrap_or("custom");
    let current: Vec<String> = match v.pointer("/current/value") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let source = match ty {
        "query" => {
            let ds = datasource_ref(v.get("datasource")).ok_or_else(|| DashboardError::Shape {
                file: file.to_path_buf(),
                what: format!(
                    "variable {name:?}: a query variable names no datasource {{type, uid}}"
                ),
            })?;
            // Grafana 10+ stores `{query, refId, qryType}`; older dashboards a bare string.
            let query = match v.get("query") {
                Some(Value::String(s)) => s.clone(),
                Some(q) => q
                    .get("query")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                None => String::new(),
            };
            VariableSource::Query {
                datasource_uid: ds.1.to_string(),
                datasource_type: ds.0.to_string(),
                query,
            }
        }
        _ => {
            let mut options: Vec<String> = v
                .get("options")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|o| o.get("value").and_then(Value::as_str))
                .filter(|o| *o != "$__all" && *o != "$__auto")
                .map(str::to_string)
                .collect();
            if options.is_empty() {
                // custom: "a,b,c" (Grafana splits on commas not preceded by a backslash).
                options = v
                    .get("query")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .split(',')
                    .map(|o| o.trim().to_string())
                    .filter(|o| !o.is_empty())
                    .collect();
            }
            VariableSource::Options(options)
        }
    };
    Ok(Variable {
        name,
        source,
        multi: v.get("multi").and_then(Value::as_bool).unwrap_or(false),
        include_all: v
            .get("includeAll")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        all_value: non_empty(v.get("allValue")),
        current,
        refresh: v.get("refresh").and_then(Value::as_u64).unwrap_or(1),
    })
}

/// Why a dashboard or provisioning file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not valid JSON: {source}")]
    Json {
        file: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{file}: not valid YAML: {reason}")]
    Yaml { file: PathBuf, reason: String },
    #[error("{file}: {what}")]
    Shape { file: PathBuf, what: String },
    #[error(
        "{file}: panel {panel:?}: target {ref_id} has no datasource {{type, uid}} (every target names its own)"
    )]
    MissingDatasource {
        file: PathBuf,
        panel: String,
        ref_id: String,
    },
    #[error(
        "{file}: panel {panel:?}: target {ref_id}: datasource type {ty:?} is none of prometheus, loki, tempo"
    )]
    UnknownDatasourceType {
        file: PathBuf,
        panel: String,
        ref_id: String,
        ty: String,
    },
    #[error("{file}: panel {panel:?}: target {ref_id} has no {field:?} query")]
    MissingQuery {
        file: PathBuf,
        panel: String,
        ref_id: String,
        field: &'static str,
    },
}

// Where deploy/ is and where Grafana's image reads it: facts of the real stack, so they live
// in `stack`; re-exported because the dashboard checks and scenarios read deploy/ through here.
pub use stack::images::{
    GRAFANA_DASHBOARDS_PATH, GRAFANA_PROVISIONING_PATH, deploy_dir, workspace_dir,
};

/// The `*.json` files of a folder, sorted by name.
pub fn dashboard_files(dashboards_dir: &Path) -> Result<Vec<PathBuf>, DashboardError> {
    let io = |source| DashboardError::Io {
        file: dashboards_dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dashboards_dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads one dashboard file as JSON.
pub fn read_dashboard(file: &Path) -> Result<Value, DashboardError> {
    let text = std::fs::read_to_string(file).map_err(|source| DashboardError::Io {
        file: file.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| DashboardError::Json {
        file: file.to_path_buf(),
        source,
    })
}

/// Every query of every panel (rows' nested panels included) of every dashboard in the folder.
/// Each target must name its datasource (`{type, uid}`) itself, or inherit it from its panel;
/// panels without targets (text, rows) have none.
pub fn panel_queries(dashboards_dir: &Path) -> Result<Vec<PanelQuery>, DashboardError> {
    let mut out = Vec::new();
    for file in dashboard_files(dashboards_dir)? {
        let dash = read_dashboard(&file)?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let panels = dash
            .get("panels")
            .and_then(Value::as_array)
            .ok_or_else(|| DashboardError::Shape {
                file: file.clone(),
                what: "no \"panels\" array".into(),
            })?;
        for panel in all_panels(panels) {
            queries_of(&file, &name, panel, &mut out)?;
        }
    }
    Ok(out)
}

/// Panels, with the panels nested in (collapsed) rows after their row.
pub fn all_panels(panels: &[Value]) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in panels {
        out.push(p);
        if let Some(inner) = p.get("panels").and_then(Value::as_array) {
            out.extend(all_panels(inner));
        }
    }
    out
}

fn queries_of(
    file: &Path,
    dashboard: &str,
    panel: &Value,
    out: &mut Vec<PanelQuery>,
) -> Result<(), DashboardError> {
    for t in targets_of(file, panel)? {
        out.push(PanelQuery {
            dashboard: dashboard.to_string(),
            panel: title_of(panel),
            datasource_uid: t.datasource_uid,
            kind: t.kind,
            expr: t.expr,
        });
    }
    Ok(())
}

fn title_of(panel: &Value) -> String {
    panel
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or("(untitled)")
        .to_string()
}

/// A panel's targets. Each names its datasource (`{type, uid}`) or inherits its panel's.
fn targets_of(file: &Path, panel: &Value) -> Result<Vec<Target>, DashboardError> {
    let Some(targets) = panel.get("targets").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let title = title_of(panel);
    let mut out = Vec::with_capacity(targets.len());
    for (i, target) in targets.iter().enumerate() {
        let ref_id = target
            .get("refId")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("#{i}"));
        let ds = datasource_ref(target.get("datasource"))
            .or_else(|| datasource_ref(panel.get("datasource")))
            .ok_or_else(|| DashboardError::MissingDatasource {
                file: file.to_path_buf(),
                panel: title.clone(),
                ref_id: ref_id.clone(),
            })?;
        let kind = QueryKind::from_datasource_type(ds.0).ok_or_else(|| {
            DashboardError::UnknownDatasourceType {
                file: file.to_path_buf(),
                panel: title.clone(),
                ref_id: ref_id.clone(),
                ty: ds.0.to_string(),
            }
        })?;
        let field = match kind {
            QueryKind::PromQL | QueryKind::LogQL => "expr",
            QueryKind::TraceQL => "query",
        };
        let expr = target
            .get(field)
            .and_then(Value::as_str)
            .filter(|e| !e.trim().is_empty())
            .ok_or_else(|| DashboardError::MissingQuery {
                file: file.to_path_buf(),
                panel: title.clone(),
                ref_id: ref_id.clone(),
                field,
            })?;
        // Prometheus targets say `instant: true` (and `range: false`); Loki ones
        // `queryType: "instant"`. Everything else is a range query, as in Grafana.
        let instant = target.get("instant").and_then(Value::as_bool) == Some(true)
            && target.get("range").and_then(Value::as_bool) != Some(true)
            || target.get("queryType").and_then(Value::as_str) == Some("instant");
        out.push(Target {
            ref_id,
            datasource_uid: ds.1.to_string(),
            datasource_type: ds.0.to_string(),
            kind,
            expr: expr.to_string(),
            instant,
            limit: target.get("limit").and_then(Value::as_u64),
            min_interval: non_empty(target.get("interval")),
        });
    }
    Ok(out)
}

fn non_empty(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
}

/// `(type, uid)` of an explicit datasource reference; a bare string (legacy name) is not one.
fn datasource_ref(v: Option<&Value>) -> Option<(&str, &str)> {
    let v = v?;
    let ty = v.get("type")?.as_str()?;
    let uid = v.get("uid")?.as_str()?;
    Some((ty, uid))
}

/// What [`expand`] puts in place of a dashboard template variable (`$region`, `${region}`,
/// `${region:regex}`, `[[region]]`): the dashboards' "All" value (`allValue: ".+"`). `.+`
/// rather than `.*` because Loki and Mimir refuse a selector whose every matcher matches the
/// empty string; dashboards use template variables only with `=~`.
pub const MATCH_ALL: &str = ".+";

/// Grafana's interval variables and the value [`expand`] gives them.
const BUILTINS: &[(&str, &str)] = &[
    ("__interval_ms", "60000"),
    ("__interval", "1m"),
    ("__rate_interval_ms", "60000"),
    ("__rate_interval", "1m"),
    ("__range_ms", "3600000"),
    ("__range_s", "3600"),
    ("__range", "1h"),
    ("__auto", "1m"),
];

/// Replaces Grafana's variables by concrete values, as Grafana would before sending a query:
/// `$__interval`, `$__rate_interval` and `$__auto` by `1m`, `$__range` by `1h` (the `_ms` and
/// `_s` forms accordingly), and every other variable by [`MATCH_ALL`].
pub fn expand(expr: &str) -> String {
    interpolate(expr, |name, _| Some(value_of(name).to_string()))
}

/// Replaces each variable reference in `expr` by `value(name, format)` (`format` from
/// `${name:format}`); where that is `None` the reference is left as written.
pub fn interpolate(
    expr: &str,
    mut value: impl FnMut(&str, Option<&str>) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(i) = rest.find(['$', '[']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some((name, format, len)) = variable_ref_at(tail) {
            match value(name, format) {
                Some(v) => out.push_str(&v),
                None => out.push_str(&tail[..len]),
            }
            rest = &tail[len..];
        } else {
            // Not a variable: keep the character and go on after it.
            let c = tail.chars().next().map_or(1, char::len_utf8);
            out.push_str(&tail[..c]);
            rest = &tail[c..];
        }
    }
    out.push_str(rest);
    out
}

/// The variable name at the start of `s` and the length of its reference, for `$name`,
/// `${name}`, `${name:format}` and `[[name]]`.
fn variable_at(s: &str) -> Option<(&str, usize)> {
    variable_ref_at(s).map(|(name, _, len)| (name, len))
}

/// [`variable_at`] with the `format` of `${name:format}`.
fn variable_ref_at(s: &str) -> Option<(&str, Option<&str>, usize)> {
    let ident_len = |t: &str| {
        t.char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(t.len(), |(i, _)| i)
    };
    if let Some(t) = s.strip_prefix("${") {
        let n = ident_len(t);
        let close = t.find('}')?;
        if n == 0
            || t.starts_with(|c: char| c.is_ascii_digit())
            || close < n
            || (close > n && !t[n..].starts_with(':'))
        {
            return None;
        }
        let format = (close > n).then(|| &t[n + 1..close]);
        return Some((&t[..n], format, close + 3));
    }
    if let Some(t) = s.strip_prefix("[[") {
        let n = ident_len(t);
        return (n > 0 && t[n..].starts_with("]]")).then(|| (&t[..n], None, n + 4));
    }
    let t = s.strip_prefix('$')?;
    let n = ident_len(t);
    (n > 0 && !t.starts_with(|c: char| c.is_ascii_digit())).then(|| (&t[..n], None, n + 1))
}

fn value_of(name: &str) -> &'static str {
    BUILTINS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(MATCH_ALL, |(_, v)| v)
}

/// The names of the template variables a query uses (Grafana's built-ins `$__...` excluded).
pub fn variables(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find(['$', '[']) {
        let tail = &rest[i..];
        match variable_at(tail) {
            Some((name, len)) => {
                if !name.starts_with("__") {
                    out.insert(name.to_string());
                }
                rest = &tail[len..];
            }
            None => rest = &tail[1..],
        }
    }
    out
}

/// The `uid` of every datasource in a Grafana datasource provisioning file.
pub fn datasource_uids(provisioning_file: &Path) -> Result<BTreeSet<String>, DashboardError> {
    let text = std::fs::read_to_string(provisioning_file).map_err(|source| DashboardError::Io {
        file: provisioning_file.to_path_buf(),
        source,
    })?;
    let doc: Value = serde_saphyr::from_str(&text).map_err(|e| DashboardError::Yaml {
        file: provisioning_file.to_path_buf(),
        reason: e.to_string(),
    })?;
    let shape = |what: String| DashboardError::Shape {
        file: provisioning_file.to_path_buf(),
        what,
    };
    let list = doc
        .get("datasources")
        .and_then(Value::as_array)
        .ok_or_else(|| shape("no \"datasources\" list".into()))?;
    let mut uids = BTreeSet::new();
    for (i, ds) in list.iter().enumerate() {
        let uid = ds
            .get("uid")
            .and_then(Value::as_str)
            .ok_or_else(|| shape(format!("datasource #{i} has no uid")))?;
        if !uids.insert(uid.to_string()) {
            return Err(shape(format!("datasource uid {uid:?} appears twice")));
        }
    }
    Ok(uids)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn expands_template_and_interval_variables() {
        assert_eq!(
            expand(r#"sum(rate(x{region=~"$region", location=~"${location}"}[$__rate_interval]))"#),
            r#"sum(rate(x{region=~".+", location=~".+"}[1m]))"#
        );
        assert_eq!(
            expand(r#"{device=~"[[device]]"} [$__interval]"#),
            r#"{device=~".+"} [1m]"#
        );
        assert_eq!(
            expand("increase(x[$__range]) $__interval_ms ${__range_s} ${node_type:regex}"),
            "increase(x[1h]) 60000 3600 .+"
        );
    }

    #[test]
    fn leaves_non_variables_alone() {
        // Regex anchors, PromQL ranges and a lone `$` survive.
        for s in [
            r#"{a=~"x$"} |~ "^err$""#,
            "rate(x[5m])",
            "a[0]",
            "$ 1",
            "${} ${1}",
            "[[ x ]]",
        ] {
            assert_eq!(expand(s), s, "{s}");
        }
    }

    #[test]
    fn lists_variables() {
        let v = variables(r#"{a=~"$region", b=~"${store:pipe}"}[$__interval] [[device]]"#);
        assert_eq!(
            v.into_iter().collect::<Vec<_>>(),
            vec!["device", "region", "store"]
        );
    }

    #[test]
    fn reads_queries_and_names_the_panel_without_a_datasource() {
        let dir = tempfile::tempdir().unwrap();
        let good = r#"{"uid":"a","title":"A","panels":[
            {"type":"row","title":"r","panels":[
              {"title":"nested","targets":[{"refId":"A","datasource":{"type":"loki","uid":"loki"},"expr":"{a=\"b\"}"}]}]},
            {"title":"text panel","type":"text"},
            {"title":"p","datasource":{"type":"tempo","uid":"tempo"},"targets":[{"refId":"A","query":"{ }"}]}]}"#;
        std::fs::write(dir.path().join("a.json"), good).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a dashboard").unwrap();
        let q = panel_queries(dir.path()).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q[0].panel, "nested");
        assert_eq!(q[0].kind, QueryKind::LogQL);
        assert_eq!(q[1].kind, QueryKind::TraceQL);
        assert_eq!(q[1].datasource_uid, "tempo");

        let bad = r#"{"panels":[{"title":"CPU","targets":[{"refId":"B","expr":"up"}]}]}"#;
        std::fs::write(dir.path().join("b.json"), bad).unwrap();
        let e = panel_queries(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("b.json") && e.contains("\"CPU\"") && e.contains("B"),
            "{e}"
        );

        std::fs::write(dir.path().join("b.json"), "{").unwrap();
        let e = panel_queries(dir.path()).unwrap_err().to_string();
        assert!(e.contains("b.json") && e.contains("JSON"), "{e}");
    }

    #[test]
    fn reads_datasource_uids() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ds.yaml");
        std::fs::write(
            &f,
            "apiVersion: 1\ndatasources:\n  - name: L\n    uid: loki\n  - name: M\n    uid: mimir\n",
        )
        .unwrap();
        let uids = datasource_uids(&f).unwrap();
        assert_eq!(uids.into_iter().collect::<Vec<_>>(), vec!["loki", "mimir"]);
        std::fs::write(&f, "datasources:\n  - name: L\n").unwrap();
        assert!(
            datasource_uids(&f)
                .unwrap_err()
                .to_string()
                .contains("no uid")
        );
    }
}
