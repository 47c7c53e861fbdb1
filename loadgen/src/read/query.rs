//! One panel target or variable query turned into the HTTP request Grafana's datasource would
//! send: straight to the stack (Loki `query_range`/`query`, Prometheus `query_range`/`query`,
//! Tempo `/api/search` with TraceQL, the label-values APIs) or, with a Grafana, as a browser
//! sends it (`POST /api/ds/query`, `/api/datasources/uid/<uid>/resources/...`).

use reqwest::{RequestBuilder, Url};
use serde_json::{Value, json};
use stack::Endpoints;

use super::dashboard::{QueryKind, Target};

/// Where queries go.
#[derive(Clone, Debug)]
pub(crate) enum Via {
    Direct(Box<Endpoints>),
    Grafana(Url),
}

/// A target with its variables expanded and its timing computed.
pub(crate) struct Concrete<'a> {
    pub(crate) target: &'a Target,
    pub(crate) expr: String,
    pub(crate) from_ms: u64,
    pub(crate) to_ms: u64,
    pub(crate) interval_ms: u64,
    /// The step sent with range queries, in seconds.
    pub(crate) step_s: f64,
    pub(crate) max_data_points: u32,
}

/// The query kind's name in results: `promql_range`, `logql_instant`, `traceql_search`, ...
pub(crate) fn kind_name(t: &Target) -> &'static str {
    match (t.kind, t.instant) {
        (QueryKind::PromQL, false) => "promql_range",
        (QueryKind::PromQL, true) => "promql_instant",
        (QueryKind::LogQL, false) => "logql_range",
        (QueryKind::LogQL, true) => "logql_instant",
        (QueryKind::TraceQL, _) => "traceql_search",
    }
}

/// Lines a Loki range or instant query asks for (the provisioned Loki datasource's `maxLines`).
const LOKI_MAX_LINES: u64 = 1000;

fn join(base: &Url, path: &str) -> String {
    format!("{}{}", base.as_str().trim_end_matches('/'), path)
}

/// The request for one panel target.
pub(crate) fn panel_request(
    client: &reqwest::Client,
    via: &Via,
    q: &Concrete<'_>,
) -> RequestBuilder {
    let t = q.target;
    let (start_s, end_s) = (q.from_ms / 1000, q.to_ms / 1000);
    match via {
        Via::Direct(e) => {
            let rb = match (t.kind, t.instant) {
                (QueryKind::PromQL, false) => form(
                    client.post(join(&e.prometheus_query, "/api/v1/query_range")),
                    &[
                        ("query", q.expr.clone()),
                        ("start", start_s.to_string()),
                        ("end", end_s.to_string()),
                        ("step", super::grafana::fmt_secs(q.step_s)),
                    ],
                ),
                (QueryKind::PromQL, true) => form(
                    client.post(join(&e.prometheus_query, "/api/v1/query")),
                    &[("query", q.expr.clone()), ("time", end_s.to_string())],
                ),
                (QueryKind::LogQL, false) => client.get(with_query(
                    join(&e.loki, "/loki/api/v1/query_range"),
                    &[
                        ("query", q.expr.clone()),
                        ("start", (q.from_ms * 1_000_000).to_string()),
                        ("end", (q.to_ms * 1_000_000).to_string()),
                        ("step", super::grafana::fmt_secs(q.step_s)),
                        ("limit", LOKI_MAX_LINES.to_string()),
                        ("direction", "backward".into()),
                    ],
                )),
                (QueryKind::LogQL, true) => client.get(with_query(
                    join(&e.loki, "/loki/api/v1/query"),
                    &[
                        ("query", q.expr.clone()),
                        ("time", (q.to_ms * 1_000_000).to_string()),
                        ("limit", LOKI_MAX_LINES.to_string()),
                    ],
                )),
                (QueryKind::TraceQL, _) => client.get(with_query(
                    join(&e.tempo_query, "/api/search"),
                    &[
                        ("q", q.expr.clone()),
                        ("limit", t.limit.unwrap_or(20).to_string()),
                        ("start", start_s.to_string()),
                        ("end", end_s.to_string()),
                    ],
                )),
            };
            e.decorate(rb)
        }
        Via::Grafana(g) => client
            .post(join(g, "/api/ds/query"))
            .json(&ds_query_body(q)),
    }
}

/// The body a browser posts to `/api/ds/query` for one target.
pub(crate) fn ds_query_body(q: &Concrete<'_>) -> Value {
    let t = q.target;
    let mut query = json!({
        "refId": t.ref_id,
        "datasource": {"uid": t.datasource_uid, "type": t.datasource_type},
        "intervalMs": q.interval_ms,
        "maxDataPoints": q.max_data_points,
    });
    match t.kind {
        QueryKind::PromQL => {
            query["expr"] = json!(q.expr);
            query["instant"] = json!(t.instant);
            query["range"] = json!(!t.instant);
            query["interval"] = json!(t.min_interval.clone().unwrap_or_default());
        }
        QueryKind::LogQL => {
            query["expr"] = json!(q.expr);
            query["queryType"] = json!(if t.instant { "instant" } else { "range" });
            query["maxLines"] = json!(LOKI_MAX_LINES);
        }
        QueryKind::TraceQL => {
            query["query"] = json!(q.expr);
            query["queryType"] = json!("traceql");
            query["limit"] = json!(t.limit.unwrap_or(20));
        }
    }
    json!({
        "queries": [query],
        "from": q.from_ms.to_string(),
        "to": q.to_ms.to_string(),
    })
}

/// A `label_values([selector,] label)` variable query: the request, or `None` for a query
/// form the viewers do not send (e.g. `query_result(...)`); such a variable takes its saved
/// value.
pub(crate) fn label_values_request(
    client: &reqwest::Client,
    via: &Via,
    uid: &str,
    ds_type: &str,
    query: &str,
    from_ms: u64,
    to_ms: u64,
) -> Option<RequestBuilder> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    // The label is after the last comma outside braces and quotes; a selector may hold commas.
    let (selector, label) = match split_last_arg(inner) {
        Some((sel, label)) => (Some(sel.trim()), label.trim()),
        None => (None, inner.trim()),
    };
    if label.is_empty() {
        return None;
    }
    let loki = ds_type == "loki";
    let (start, end) = if loki {
        (
            (from_ms * 1_000_000).to_string(),
            (to_ms * 1_000_000).to_string(),
        )
    } else {
        ((from_ms / 1000).to_string(), (to_ms / 1000).to_string())
    };
    let mut params = vec![("start", start), ("end", end)];
    if let Some(s) = selector.filter(|s| !s.is_empty()) {
        params.push((if loki { "query" } else { "match[]" }, s.to_string()));
    }
    let path = if loki {
        format!("/label/{label}/values")
    } else {
        format!("/api/v1/label/{label}/values")
    };
    Some(match via {
        Via::Direct(e) => {
            let base = if loki {
                join(&e.loki, &format!("/loki/api/v1{path}"))
            } else {
                join(&e.prometheus_query, &path)
            };
            e.decorate(client.get(with_query(base, &params)))
        }
        Via::Grafana(g) => client.get(with_query(
            join(g, &format!("/api/datasources/uid/{uid}/resources{path}")),
            &params,
        )),
    })
}

/// `url?k=v&...`, form-encoded.
fn with_query(url: String, params: &[(&str, String)]) -> String {
    format!("{url}?{}", encode(params))
}

/// A form-encoded POST body, as Grafana's Prometheus datasource sends with `httpMethod: POST`.
fn form(rb: RequestBuilder, params: &[(&str, String)]) -> RequestBuilder {
    rb.header(
        reqwest::header::CONTENT_TYPE,
        "application/x-www-form-urlencoded",
    )
    .body(encode(params))
}

fn encode(params: &[(&str, String)]) -> String {
    let mut u = Url::parse("http://x/").unwrap_or_else(|_| unreachable!());
    u.query_pairs_mut()
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
    u.query().unwrap_or_default().to_string()
}

fn split_last_arg(s: &str) -> Option<(&str, &str)> {
    let (mut depth, mut quoted, mut last) = (0i32, false, None);
    let mut prev = '\0';
    for (i, c) in s.char_indices() {
        match c {
            '"' if prev != '\\' => quoted = !quoted,
            '{' | '(' if !quoted => depth += 1,
            '}' | ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => last = Some(i),
            _ => {}
        }
        prev = c;
    }
    last.map(|i| (&s[..i], &s[i + 1..]))
}

/// Whether a 2xx body says the query succeeded: Prometheus and Loki answer
/// `{"status":"success"}`, Grafana `{"results":{"A":{"status":200}}}` with an `error` on
/// failure, Tempo `{"traces":[...]}`. `Err` carries the error key.
pub(crate) fn check_body(via: &Via, kind: QueryKind, body: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "body".to_string())?;
    match via {
        Via::Grafana(_) if v.get("results").is_some() => {
            for r in v["results"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
            {
                if r.get("error").is_some_and(|e| !e.is_null()) {
                    let status = r.get("status").and_then(Value::as_u64).unwrap_or(0);
                    return Err(format!("grafana:{status}"));
                }
            }
            Ok(v)
        }
        _ if kind == QueryKind::TraceQL => Ok(v),
        _ => match v.get("status").and_then(Value::as_str) {
            Some("success") | None if v.get("data").is_some() => Ok(v),
            _ => Err("status".to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_label_values_arguments() {
        assert_eq!(
            split_last_arg(r#"{region=~"$region", a="x,y"}, location"#),
            Some((r#"{region=~"$region", a="x,y"}"#, " location"))
        );
        assert_eq!(split_last_arg("region"), None);
    }
}
