//! The embedded Tempo's trace store: every `ResourceSpans` received, split per trace and kept
//! under (tenant, trace id), with a summary per trace (start, end, root span, span count) that
//! search reads without walking the spans.
//!
//! Memory is bounded by `retention_bytes`, counted as the protobuf-encoded size of what is kept.
//! When a write takes the store over the bound, the traces first written longest ago are evicted
//! until it fits again (the most recent trace is always kept, even if it alone is larger).

use std::collections::{BTreeMap, HashMap};

use prost::Message as _;
use wire::otlp::ExportTraceServiceRequest;
use wire::otlp::proto::common::v1::{AnyValue, KeyValue, any_value};
use wire::otlp::proto::resource::v1::Resource;
use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans};

/// A 128-bit trace id.
pub type TraceId = [u8; 16];

/// Why an export was refused. The messages are those of Tempo's distributor, which refuses the
/// whole export when any span carries an invalid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("trace ids must be 128 bit, received {bits} bits")]
    InvalidTraceId { bits: usize },
    #[error("span ids must be 64 bit and not all zero, received {bits} bits")]
    InvalidSpanId { bits: usize },
    /// Over the tenant's `ingestion_rate_limit_bytes` (see [`crate::embedded::limits`]).
    #[error("{message}")]
    RateLimited { message: String, retry_after_s: u64 },
}

/// Checks every span id of an export, as Tempo's distributor does before storing anything.
pub fn validate(req: &ExportTraceServiceRequest) -> Result<usize, IngestError> {
    let mut spans = 0;
    for span in req
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
    {
        trace_id(&span.trace_id)?;
        if span.span_id.len() != 8 || span.span_id.iter().all(|b| *b == 0) {
            return Err(IngestError::InvalidSpanId {
                bits: span.span_id.len() * 8,
            });
        }
        spans += 1;
    }
    Ok(spans)
}

fn trace_id(bytes: &[u8]) -> Result<TraceId, IngestError> {
    let bad = || IngestError::InvalidTraceId {
        bits: bytes.len() * 8,
    };
    let id: TraceId = bytes.try_into().map_err(|_| bad())?;
    if id == [0; 16] {
        return Err(bad());
    }
    Ok(id)
}

/// Splits an export into one `ResourceSpans` per (resource, trace), keeping resource and scope
/// of every span. Ids must have been checked with [`validate`]; spans with a bad id are dropped.
pub fn split_by_trace(req: ExportTraceServiceRequest) -> Vec<(TraceId, ResourceSpans)> {
    let mut out: Vec<(TraceId, ResourceSpans)> = Vec::new();
    for rs in req.resource_spans {
        let ResourceSpans {
            resource,
            scope_spans,
            schema_url,
        } = rs;
        let mut by_trace: HashMap<TraceId, usize> = HashMap::new();
        for ss in scope_spans {
            let ScopeSpans {
                scope,
                spans,
                schema_url: scope_schema_url,
            } = ss;
            let mut by_scope: HashMap<TraceId, usize> = HashMap::new();
            for span in spans {
                let Ok(id) = trace_id(&span.trace_id) else {
                    continue;
                };
                let i = *by_trace.entry(id).or_insert_with(|| {
                    out.push((
                        id,
                        ResourceSpans {
                            resource: resource.clone(),
                            scope_spans: Vec::new(),
                            schema_url: schema_url.clone(),
                        },
                    ));
                    out.len() - 1
                });
                let batch = &mut out[i].1;
                let j = *by_scope.entry(id).or_insert_with(|| {
                    batch.scope_spans.push(ScopeSpans {
                        scope: scope.clone(),
                        spans: Vec::new(),
                        schema_url: scope_schema_url.clone(),
                    });
                    batch.scope_spans.len() - 1
                });
                batch.scope_spans[j].spans.push(span);
            }
        }
    }
    out
}

/// The string value of a resource's `service.name`, if any.
pub fn service_name(resource: Option<&Resource>) -> Option<&str> {
    resource.and_then(|r| string_attr(&r.attributes, "service.name"))
}

/// A string attribute by key.
pub fn string_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attrs, key).and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// An attribute value by key.
pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// The root span of a trace: the span without a parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootSpan {
    pub name: String,
    pub service: String,
}

/// One trace and its summary.
#[derive(Debug, Clone)]
pub struct StoredTrace {
    pub batches: Vec<ResourceSpans>,
    /// Earliest span start, ns since the epoch.
    pub start_ns: u64,
    /// Latest span end, ns since the epoch.
    pub end_ns: u64,
    pub root: Option<RootSpan>,
    pub span_count: usize,
    /// Encoded size of `batches`.
    pub bytes: usize,
}

impl StoredTrace {
    fn new() -> Self {
        StoredTrace {
            batches: Vec::new(),
            start_ns: u64::MAX,
            end_ns: 0,
            root: None,
            span_count: 0,
            bytes: 0,
        }
    }

    fn add(&mut self, rs: ResourceSpans) -> usize {
        let service = service_name(rs.resource.as_ref()).unwrap_or_default();
        for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
            self.span_count += 1;
            self.start_ns = self.start_ns.min(span.start_time_unix_nano);
            self.end_ns = self
                .end_ns
                .max(span.end_time_unix_nano.max(span.start_time_unix_nano));
            if self.root.is_none() && span.parent_span_id.is_empty() {
                self.root = Some(RootSpan {
                    name: span.name.clone(),
                    service: service.to_string(),
                });
            }
        }
        let size = rs.encoded_len();
        self.bytes += size;
        self.batches.push(rs);
        size
    }

    /// End minus start, in nanoseconds.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// Does the trace overlap `[start_ns, end_ns]`?
    pub fn overlaps(&self, start_ns: u64, end_ns: u64) -> bool {
        self.start_ns <= end_ns && self.end_ns >= start_ns
    }
}

/// Every tenant's traces, bounded in bytes.
#[derive(Debug)]
pub struct Store {
    tenants: HashMap<String, HashMap<TraceId, StoredTrace>>,
    /// First-write order, for eviction.
    order: BTreeMap<u64, (String, TraceId)>,
    next_seq: u64,
    bytes: usize,
    limit: usize,
}

/// What a write did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub bytes: usize,
    pub evicted: usize,
}

impl Store {
    /// An empty store keeping at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Store {
            tenants: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
            bytes: 0,
            limit,
        }
    }

    /// Adds spans of one export (already split by trace), then evicts what no longer fits.
    pub fn write(&mut self, tenant: &str, batches: Vec<(TraceId, ResourceSpans)>) -> Written {
        let mut written = Written::default();
        for (id, rs) in batches {
            let traces = self.tenants.entry(tenant.to_string()).or_default();
            let trace = traces.entry(id).or_insert_with(|| {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.order.insert(seq, (tenant.to_string(), id));
                StoredTrace::new()
            });
            let size = trace.add(rs);
            written.bytes += size;
            self.bytes += size;
        }
        written.evicted = self.evict();
        written
    }

    fn evict(&mut self) -> usize {
        let mut evicted = 0;
        while self.bytes > self.limit && self.order.len() > 1 {
            let Some((_, (tenant, id))) = self.order.pop_first() else {
                break;
            };
            if let Some(traces) = self.tenants.get_mut(&tenant) {
                if let Some(t) = traces.remove(&id) {
                    self.bytes -= t.bytes;
                    evicted += 1;
                }
                if traces.is_empty() {
                    self.tenants.remove(&tenant);
                }
            }
        }
        evicted
    }

    /// One trace of a tenant.
    pub fn get(&self, tenant: &str, id: &TraceId) -> Option<&StoredTrace> {
        self.tenants.get(tenant).and_then(|t| t.get(id))
    }

    /// Every trace of a tenant, in no particular order.
    pub fn traces<'a>(
        &'a self,
        tenant: &str,
    ) -> impl Iterator<Item = (&'a TraceId, &'a StoredTrace)> + 'a {
        self.tenants.get(tenant).into_iter().flat_map(|t| t.iter())
    }

    /// Number of traces, all tenants.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Is the store empty?
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Bytes kept, all tenants.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The write sequence numbers of the traces kept, oldest first; test helper.
    #[cfg(test)]
    fn seqs(&self) -> Vec<u64> {
        self.order.keys().copied().collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use wire::otlp::proto::common::v1::any_value::Value;
    use wire::otlp::proto::trace::v1::Span;

    pub(crate) fn kv(key: &str, v: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    pub(crate) fn span(trace: u8, id: u8, parent: Option<u8>, name: &str) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: name.into(),
            start_time_unix_nano: 1_000_000_000 * u64::from(trace),
            end_time_unix_nano: 1_000_000_000 * u64::from(trace) + 5_000_000,
            ..Default::default()
        }
    }

    pub(crate) fn export(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", Value::StringValue(service.into()))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn validate_rejects_bad_ids_like_tempo() {
        let mut s = span(1, 1, None, "a");
        s.trace_id = vec![1; 8];
        assert_eq!(
            validate(&export("x", vec![s])).unwrap_err().to_string(),
            "trace ids must be 128 bit, received 64 bits"
        );
        let s = span(0, 1, None, "a");
        assert!(matches!(
            validate(&export("x", vec![s])),
            Err(IngestError::InvalidTraceId { bits: 128 })
        ));
        let mut s = span(1, 1, None, "a");
        s.span_id = vec![0; 8];
        assert!(matches!(
            validate(&export("x", vec![s])),
            Err(IngestError::InvalidSpanId { bits: 64 })
        ));
        assert_eq!(
            validate(&export("x", vec![span(1, 1, None, "a")])).unwrap(),
            1
        );
    }

    #[test]
    fn split_groups_per_trace_and_keeps_resource() {
        let req = export(
            "svc",
            vec![
                span(1, 1, None, "root"),
                span(2, 2, None, "other"),
                span(1, 3, Some(1), "child"),
            ],
        );
        let parts = split_by_trace(req);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, [1; 16]);
        assert_eq!(parts[0].1.scope_spans[0].spans.len(), 2);
        assert_eq!(service_name(parts[1].1.resource.as_ref()), Some("svc"));
    }

    #[test]
    fn summary_and_lookup() {
        let mut store = Store::new(1 << 20);
        let req = export(
            "svc",
            vec![span(1, 3, Some(1), "child"), span(1, 1, None, "root")],
        );
        store.write("t", split_by_trace(req));
        let t = store.get("t", &[1; 16]).unwrap();
        assert_eq!(t.span_count, 2);
        assert_eq!(
            t.root,
            Some(RootSpan {
                name: "root".into(),
                service: "svc".into()
            })
        );
        assert_eq!(t.duration_ns(), 5_000_000);
        assert!(store.get("other", &[1; 16]).is_none());
        assert_eq!(store.traces("t").count(), 1);
    }

    #[test]
    fn eviction_drops_oldest_first_and_counts() {
        let one = split_by_trace(export("svc", vec![span(1, 1, None, "a")]));
        let size = one[0].1.encoded_len();
        let mut store = Store::new(size * 2);
        for t in 1..=5u8 {
            let w = store.write(
                "t",
                split_by_trace(export("svc", vec![span(t, 1, None, "a")])),
            );
            assert_eq!(w.evicted, usize::from(t > 2));
        }
        assert_eq!(store.len(), 2);
        assert!(store.bytes() <= size * 2);
        assert!(store.get("t", &[1; 16]).is_none());
        assert!(store.get("t", &[5; 16]).is_some());
        assert_eq!(store.seqs(), vec![3, 4]);
    }

    #[test]
    fn a_single_oversized_trace_is_kept() {
        let mut store = Store::new(1);
        let w = store.write(
            "t",
            split_by_trace(export("svc", vec![span(1, 1, None, "a")])),
        );
        assert_eq!(w.evicted, 0);
        assert_eq!(store.len(), 1);
    }
}
