//! Search over the store: `GET /api/search` (tag search and TraceQL), tag names and tag values.
//!
//! - `tags` (logfmt, `service.name=pos "http.url=/a b"`): each tag must be found on some span of
//!   the trace, as a span or resource attribute (or `name`, the span name), the value matched as
//!   a case-insensitive substring (Tempo's documented tag-search semantics);
//! - `q`: the TraceQL subset of [`super::traceql`]; a trace matches when one of its spans
//!   satisfies every condition; the matching spans are returned as the trace's span set (at most
//!   `spss`, default 3), with the attributes the query looked at;
//! - with both `q` and `tags`, `q` is used;
//! - `minDuration`/`maxDuration` (Go durations) bound the trace duration;
//! - `start`/`end` (unix seconds) keep traces overlapping the range;
//! - `limit` (default 20) keeps the most recent traces.

use std::collections::{BTreeSet, HashMap};

use wire::otlp::proto::common::v1::KeyValue;
use wire::otlp::proto::trace::v1::Span;

use super::store::{Store, StoredTrace, TraceId};
use super::traceql::{Field, Query, SpanRef, TraceQlError, Value, attr_value, parse_duration};
use crate::client::tempo::{
    SearchMetrics, SearchResponse, ServiceStats, SpanSet, SpanSummary, TagScope, TraceSummary,
    TypedTagValue,
};

/// Tempo's default number of results.
pub const DEFAULT_LIMIT: usize = 20;
/// Tempo's default spans per span set.
pub const DEFAULT_SPSS: usize = 3;
/// What Tempo shows as root service of a trace whose root span has not arrived.
pub const ROOT_NOT_RECEIVED: &str = "<root span not yet received>";

/// The intrinsic tag names Tempo lists under the `intrinsic` scope (`GetVirtualIntrinsicValues`
/// of Tempo 2.10's pkg/search/util.go, sorted as its tag combiner returns them). Some of them
/// (events, links, instrumentation, ids) are listed but not queryable in the embedded TraceQL.
pub const INTRINSICS: [&str; 25] = [
    "duration",
    "event:name",
    "event:timeSinceStart",
    "instrumentation:name",
    "instrumentation:version",
    "kind",
    "link:spanID",
    "link:traceID",
    "name",
    "rootName",
    "rootServiceName",
    "span:duration",
    "span:id",
    "span:kind",
    "span:name",
    "span:parentID",
    "span:status",
    "span:statusMessage",
    "status",
    "statusMessage",
    "trace:duration",
    "trace:id",
    "trace:rootName",
    "trace:rootService",
    "traceDuration",
];

/// A query parameter the API refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("invalid {name} {value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("http parameter start must be before end")]
    StartAfterEnd,
    #[error(transparent)]
    TraceQl(#[from] TraceQlError),
}

type Params = HashMap<String, String>;

fn param<T: std::str::FromStr>(p: &Params, name: &'static str) -> Result<Option<T>, ParamError>
where
    T::Err: std::fmt::Display,
{
    p.get(name)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.trim().parse().map_err(|e: T::Err| ParamError::Invalid {
                name,
                value: v.clone(),
                reason: e.to_string(),
            })
        })
        .transpose()
}

/// `start`/`end` in unix seconds, as nanoseconds; open ends when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start_ns: u64,
    pub end_ns: u64,
}

impl TimeRange {
    pub fn parse(p: &Params) -> Result<Self, ParamError> {
        let start: Option<u64> = param(p, "start")?;
        let end: Option<u64> = param(p, "end")?;
        if let (Some(s), Some(e)) = (start, end)
            && s > e
        {
            return Err(ParamError::StartAfterEnd);
        }
        Ok(TimeRange {
            start_ns: start.map_or(0, |s| s.saturating_mul(1_000_000_000)),
            // `end` is a whole second: include everything that starts within it.
            end_ns: end.map_or(u64::MAX, |e| {
                e.saturating_add(1).saturating_mul(1_000_000_000) - 1
            }),
        })
    }

    pub fn contains(&self, t: &StoredTrace) -> bool {
        t.overlaps(self.start_ns, self.end_ns)
    }
}

/// What a search looks for.
#[derive(Debug, Clone)]
enum Matcher {
    All,
    Tags(Vec<(String, String)>),
    TraceQl(Query),
}

/// The parameters of `GET /api/search`.
#[derive(Debug, Clone)]
pub struct SearchParams {
    matcher: Matcher,
    range: TimeRange,
    min_duration_ns: Option<u64>,
    max_duration_ns: Option<u64>,
    limit: usize,
    spss: usize,
}

impl SearchParams {
    pub fn parse(p: &Params) -> Result<Self, ParamError> {
        let duration = |name: &'static str| -> Result<Option<u64>, ParamError> {
            p.get(name)
                .filter(|v| !v.is_empty())
                .map(|v| {
                    parse_duration(v.trim()).map_err(|reason| ParamError::Invalid {
                        name,
                        value: v.clone(),
                        reason,
                    })
                })
                .transpose()
        };
        let q = p.get("q").map(|q| q.trim()).filter(|q| !q.is_empty());
        let tags = p.get("tags").map(|t| t.trim()).filter(|t| !t.is_empty());
        let matcher = match (q, tags) {
            (Some(q), _) => Matcher::TraceQl(Query::parse(q)?),
            (None, Some(t)) => {
                Matcher::Tags(parse_logfmt(t).map_err(|reason| ParamError::Invalid {
                    name: "tags",
                    value: t.to_string(),
                    reason,
                })?)
            }
            (None, None) => Matcher::All,
        };
        let limit = match param::<usize>(p, "limit")? {
            Some(0) | None => DEFAULT_LIMIT,
            Some(n) => n,
        };
        Ok(SearchParams {
            matcher,
            range: TimeRange::parse(p)?,
            min_duration_ns: duration("minDuration")?,
            max_duration_ns: duration("maxDuration")?,
            limit,
            spss: param::<usize>(p, "spss")?.unwrap_or(DEFAULT_SPSS),
        })
    }
}

/// Parses logfmt `k=v k2="v 2"` into pairs.
pub fn parse_logfmt(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        if chars.next() != Some('=') {
            return Err(format!("expected key=value, found {key:?} without a value"));
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err("unterminated quoted value".into()),
                    },
                    Some(c) => value.push(c),
                    None => return Err("unterminated quoted value".into()),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        out.push((key, value));
    }
}

/// Every span of a trace with its resource attributes.
pub fn spans(trace: &StoredTrace) -> impl Iterator<Item = SpanRef<'_>> {
    trace.batches.iter().flat_map(move |rs| {
        let resource = rs
            .resource
            .as_ref()
            .map_or(&[][..], |r| r.attributes.as_slice());
        rs.scope_spans
            .iter()
            .flat_map(|ss| &ss.spans)
            .map(move |span| SpanRef {
                span,
                resource,
                trace,
            })
    })
}

fn tag_matches(s: &SpanRef<'_>, key: &str, want: &str) -> bool {
    let want = want.to_lowercase();
    let hit = |v: Option<Value>| v.is_some_and(|v| v.render().to_lowercase().contains(&want));
    hit(attr_value(&s.span.attributes, key))
        || hit(attr_value(s.resource, key))
        || (key == "name" && s.span.name.to_lowercase().contains(&want))
}

fn summary(id: &TraceId, t: &StoredTrace) -> TraceSummary {
    TraceSummary {
        trace_id: hex::encode(id),
        root_service_name: t
            .root
            .as_ref()
            .map_or(ROOT_NOT_RECEIVED.to_string(), |r| r.service.clone()),
        root_trace_name: t.root.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
        start_time_unix_nano: t.start_ns,
        duration_ms: t.duration_ns() / 1_000_000,
        span_set: None,
        span_sets: Vec::new(),
        service_stats: service_stats(t),
    }
}

/// Spans and error spans per `service.name` over the whole trace (Tempo's `serviceStats`).
fn service_stats(t: &StoredTrace) -> std::collections::BTreeMap<String, ServiceStats> {
    let mut out = std::collections::BTreeMap::<String, ServiceStats>::new();
    for s in spans(t) {
        let service = match attr_value(s.resource, "service.name") {
            Some(Value::Str(name)) => name,
            _ => String::new(),
        };
        let e = out.entry(service).or_default();
        e.span_count += 1;
        if s.span.status.as_ref().is_some_and(|st| st.code == 2) {
            e.error_count += 1;
        }
    }
    out
}

fn span_summary(s: &SpanRef<'_>, q: &Query) -> SpanSummary {
    let span: &Span = s.span;
    let mut seen = BTreeSet::new();
    // Tempo's asTraceSearchMetadata: the name has its own field; durations and trace-level
    // intrinsics are not repeated per span.
    let attributes = q
        .conditions
        .iter()
        .filter(|c| {
            !matches!(
                c.field,
                Field::Name
                    | Field::Duration
                    | Field::TraceDuration
                    | Field::RootName
                    | Field::RootServiceName
            )
        })
        .filter(|c| seen.insert(c.field.key().to_string()))
        .filter_map(|c| {
            let v = match &c.field {
                Field::Any(k) => {
                    attr_value(&span.attributes, k).or_else(|| attr_value(s.resource, k))
                }
                f => s.get(f),
            }?;
            Some(KeyValue {
                key: c.field.key().to_string(),
                value: Some(v.to_any()),
                ..Default::default()
            })
        })
        .collect();
    let selected_name = q.conditions.iter().any(|c| c.field == Field::Name);
    SpanSummary {
        span_id: hex::encode(&span.span_id),
        name: if selected_name {
            span.name.clone()
        } else {
            String::new()
        },
        start_time_unix_nano: span.start_time_unix_nano,
        duration_nanos: span
            .end_time_unix_nano
            .saturating_sub(span.start_time_unix_nano),
        attributes,
    }
}

/// Runs a search for a tenant.
pub fn search(store: &Store, tenant: &str, p: &SearchParams) -> SearchResponse {
    let mut found = Vec::new();
    let mut metrics = SearchMetrics {
        total_jobs: 1,
        completed_jobs: 1,
        ..Default::default()
    };
    for (id, t) in store.traces(tenant) {
        metrics.inspected_traces += 1;
        metrics.inspected_bytes += t.bytes as u64;
        let d = t.duration_ns();
        if !p.range.contains(t)
            || p.min_duration_ns.is_some_and(|min| d < min)
            || p.max_duration_ns.is_some_and(|max| d > max)
        {
            continue;
        }
        match &p.matcher {
            Matcher::All => found.push(summary(id, t)),
            Matcher::Tags(tags) => {
                if tags
                    .iter()
                    .all(|(k, v)| spans(t).any(|s| tag_matches(&s, k, v)))
                {
                    found.push(summary(id, t));
                }
            }
            Matcher::TraceQl(q) => {
                let matched: Vec<SpanRef<'_>> = spans(t).filter(|s| q.matches(s)).collect();
                if matched.is_empty() {
                    continue;
                }
                let set = SpanSet {
                    spans: matched
                        .iter()
                        .take(p.spss)
                        .map(|s| span_summary(s, q))
                        .collect(),
                    matched: u32::try_from(matched.len()).unwrap_or(u32::MAX),
                };
                found.push(TraceSummary {
                    span_set: Some(set.clone()),
                    span_sets: vec![set],
                    ..summary(id, t)
                });
            }
        }
    }
    found.sort_by(|a, b| {
        b.start_time_unix_nano
            .cmp(&a.start_time_unix_nano)
            .then_with(|| a.trace_id.cmp(&b.trace_id))
    });
    found.truncate(p.limit);
    SearchResponse {
        traces: found,
        metrics,
    }
}

/// Which tag scopes a tags request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes {
    pub resource: bool,
    pub span: bool,
    pub intrinsic: bool,
}

impl Scopes {
    /// From the `scope` parameter: `resource`, `span`, `intrinsic`, or all when absent (v1
    /// leaves intrinsics out of "all", v2 includes them).
    pub fn parse(p: &Params, v2: bool) -> Result<Self, ParamError> {
        Ok(match p.get("scope").map(String::as_str).unwrap_or("") {
            "" | "all" => Scopes {
                resource: true,
                span: true,
                intrinsic: v2,
            },
            "resource" => Scopes {
                resource: true,
                span: false,
                intrinsic: false,
            },
            "span" => Scopes {
                resource: false,
                span: true,
                intrinsic: false,
            },
            "intrinsic" => Scopes {
                resource: false,
                span: false,
                intrinsic: true,
            },
            other => {
                return Err(ParamError::Invalid {
                    name: "scope",
                    value: other.to_string(),
                    reason: "must be one of resource, span, intrinsic, all".into(),
                });
            }
        })
    }
}

/// Tag names per scope, sorted; empty scopes other than `intrinsic` are left out.
pub fn tag_scopes(store: &Store, tenant: &str, range: TimeRange, scopes: Scopes) -> Vec<TagScope> {
    let mut resource = BTreeSet::new();
    let mut span = BTreeSet::new();
    for (_, t) in store.traces(tenant).filter(|(_, t)| range.contains(t)) {
        for s in spans(t) {
            if scopes.span {
                span.extend(s.span.attributes.iter().map(|kv| kv.key.clone()));
            }
            if scopes.resource {
                resource.extend(s.resource.iter().map(|kv| kv.key.clone()));
            }
        }
    }
    let mut out = Vec::new();
    for (name, tags) in [("resource", resource), ("span", span)] {
        if !tags.is_empty() {
            out.push(TagScope {
                name: name.to_string(),
                tags: tags.into_iter().collect(),
            });
        }
    }
    if scopes.intrinsic {
        out.push(TagScope {
            name: "intrinsic".to_string(),
            tags: INTRINSICS.iter().map(|s| s.to_string()).collect(),
        });
    }
    out
}

/// Values of an unscoped tag (span or resource attribute), as strings, sorted.
pub fn tag_values(store: &Store, tenant: &str, range: TimeRange, tag: &str) -> Vec<String> {
    let mut out = BTreeSet::new();
    for (_, t) in store.traces(tenant).filter(|(_, t)| range.contains(t)) {
        for s in spans(t) {
            for v in [
                attr_value(&s.span.attributes, tag),
                attr_value(s.resource, tag),
            ]
            .into_iter()
            .flatten()
            {
                out.insert(v.render());
            }
        }
    }
    out.into_iter().collect()
}

/// Values of a TraceQL identifier (`resource.service.name`, `.http.method`, `name`, `status`,
/// ...) with their types, from the spans matching `filter`.
pub fn typed_tag_values(
    store: &Store,
    tenant: &str,
    range: TimeRange,
    field: &Field,
    filter: &Query,
) -> Vec<TypedTagValue> {
    let mut out = BTreeSet::new();
    for (_, t) in store.traces(tenant).filter(|(_, t)| range.contains(t)) {
        for s in spans(t).filter(|s| filter.matches(s)) {
            let values = match field {
                Field::Any(k) => vec![attr_value(&s.span.attributes, k), attr_value(s.resource, k)],
                // Tempo lists no values for durations.
                Field::Duration | Field::TraceDuration => vec![],
                f => vec![s.get(f)],
            };
            for v in values.into_iter().flatten() {
                out.insert(TypedTagValue {
                    kind: v.type_name().to_string(),
                    value: v.render(),
                });
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::super::store::split_by_trace;
    use super::super::store::tests::{export, kv, span};
    use super::*;
    use wire::otlp::proto::common::v1::any_value::Value as V;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn store() -> Store {
        let mut store = Store::new(1 << 20);
        let mut a = span(1, 1, None, "checkout");
        a.attributes = vec![kv("http.status_code", V::IntValue(500))];
        let mut b = span(2, 2, None, "browse");
        b.end_time_unix_nano = b.start_time_unix_nano + 2_000_000_000;
        b.attributes = vec![kv("http.method", V::StringValue("GET".into()))];
        let orphan = span(3, 3, Some(9), "late");
        store.write("t", split_by_trace(export("pos", vec![a])));
        store.write("t", split_by_trace(export("web", vec![b])));
        store.write("t", split_by_trace(export("web", vec![orphan])));
        store.write(
            "other",
            split_by_trace(export("secret", vec![span(4, 4, None, "x")])),
        );
        store
    }

    fn ids(pairs: &[(&str, &str)]) -> Vec<String> {
        let p = SearchParams::parse(&params(pairs)).unwrap();
        search(&store(), "t", &p)
            .traces
            .into_iter()
            .map(|t| t.trace_id[..2].to_string())
            .collect()
    }

    #[test]
    fn search_by_tags_time_duration_and_traceql() {
        assert_eq!(ids(&[]), ["03", "02", "01"]);
        assert_eq!(ids(&[("limit", "2")]), ["03", "02"]);
        assert_eq!(ids(&[("tags", "service.name=web")]), ["03", "02"]);
        assert_eq!(ids(&[("tags", "service.name=WE http.method=get")]), ["02"]);
        assert_eq!(ids(&[("tags", "name=checkout")]), ["01"]);
        assert_eq!(ids(&[("tags", "service.name=nope")]), Vec::<String>::new());
        assert_eq!(ids(&[("minDuration", "1s")]), ["02"]);
        assert_eq!(ids(&[("maxDuration", "10ms")]), ["03", "01"]);
        assert_eq!(ids(&[("start", "2"), ("end", "2")]), ["02"]);
        assert_eq!(ids(&[("q", "{ span.http.status_code = 500 }")]), ["01"]);
        assert_eq!(
            ids(&[("q", r#"{ resource.service.name = "web" && duration > 1s }"#)]),
            ["02"]
        );
    }

    #[test]
    fn search_response_shape() {
        let p = SearchParams::parse(&params(&[(
            "q",
            "{ status = unset && .http.status_code >= 500 }",
        )]))
        .unwrap();
        let r = search(&store(), "t", &p);
        let v = serde_json::to_value(&r).unwrap();
        let t = &v["traces"][0];
        assert_eq!(t["traceID"], hex::encode([1u8; 16]));
        assert_eq!(t["rootServiceName"], "pos");
        assert_eq!(t["rootTraceName"], "checkout");
        assert_eq!(t["startTimeUnixNano"], "1000000000");
        assert_eq!(t["durationMs"], 5);
        assert_eq!(t["spanSet"], t["spanSets"][0]);
        let s = &t["spanSets"][0]["spans"][0];
        assert_eq!(s["spanID"], hex::encode([1u8; 8]));
        assert_eq!(s["durationNanos"], "5000000");
        assert_eq!(s["attributes"][0]["key"], "status");
        assert_eq!(s["attributes"][0]["value"]["stringValue"], "unset");
        assert_eq!(s["attributes"][1]["key"], "http.status_code");
        assert_eq!(t["spanSets"][0]["matched"], 1);
        assert_eq!(v["metrics"]["inspectedTraces"], 3);

        let all = search(&store(), "t", &SearchParams::parse(&params(&[])).unwrap());
        assert_eq!(all.traces[0].root_service_name, ROOT_NOT_RECEIVED);
    }

    #[test]
    fn bad_params_are_refused() {
        for (k, v) in [
            ("limit", "x"),
            ("minDuration", "10"),
            ("start", "-1"),
            ("q", "{ .a = 1 || .b = 2 }"),
            ("tags", "novalue"),
            ("tags", "a=\"open"),
        ] {
            assert!(SearchParams::parse(&params(&[(k, v)])).is_err(), "{k}={v}");
        }
        assert_eq!(
            SearchParams::parse(&params(&[("start", "5"), ("end", "4")])).unwrap_err(),
            ParamError::StartAfterEnd
        );
    }

    #[test]
    fn logfmt() {
        assert_eq!(
            parse_logfmt(r#" a=b  c="d e\"f" g= "#).unwrap(),
            vec![
                ("a".into(), "b".into()),
                ("c".into(), "d e\"f".into()),
                ("g".into(), "".into())
            ]
        );
    }

    #[test]
    fn tags_and_values() {
        let s = store();
        let all = TimeRange::parse(&params(&[])).unwrap();
        let scopes = tag_scopes(&s, "t", all, Scopes::parse(&params(&[]), true).unwrap());
        assert_eq!(scopes[0].name, "resource");
        assert_eq!(scopes[0].tags, ["service.name"]);
        assert_eq!(scopes[1].tags, ["http.method", "http.status_code"]);
        assert_eq!(scopes[2].name, "intrinsic");
        assert_eq!(tag_values(&s, "t", all, "service.name"), ["pos", "web"]);
        assert_eq!(tag_values(&s, "t", all, "http.status_code"), ["500"]);
        let typed = |f: &str, q: &str| {
            typed_tag_values(
                &s,
                "t",
                all,
                &Field::parse(f).unwrap(),
                &Query::parse(q).unwrap(),
            )
        };
        assert_eq!(
            typed("span.http.status_code", "{}"),
            [TypedTagValue {
                kind: "int".into(),
                value: "500".into()
            }]
        );
        assert_eq!(
            typed("resource.service.name", "{ name = \"browse\" }").len(),
            1
        );
        assert_eq!(typed("status", "{}")[0].kind, "keyword");
        assert!(Scopes::parse(&params(&[("scope", "bogus")]), false).is_err());
    }
}
