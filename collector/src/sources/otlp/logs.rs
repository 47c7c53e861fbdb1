//! OTLP logs → [`LogRecord`]s, the way Loki's native OTLP ingestion maps them:
//!
//! - stream labels: the resource attributes listed in `log_index_attributes` (by default Loki's
//!   `default_resource_attributes_as_index_labels`: `service.name`, `service.namespace`,
//!   `service.instance.id`, `deployment.environment`, `cloud.region`, `k8s.*` names, ...), with
//!   the name sanitized (`service.name` → `service_name`); `service_name="unknown_service"` when
//!   the resource has none, as Loki does;
//! - structured metadata: every other resource attribute, `scope_name`, `scope_version`, the
//!   scope's and the record's attributes, `trace_id`/`span_id` (hex), `severity_text`,
//!   `severity_number`, `flags`, `observed_timestamp`, each present only when set;
//! - line: the body as a string (scalars as text, maps and arrays as JSON);
//! - time: `time_unix_nano`, else `observed_time_unix_nano`, else now.
//!
//! A record whose time does not fit in nanoseconds since the epoch as an `i64`, or whose
//! `trace_id`/`span_id` has the wrong length, is rejected (reported as a partial success).

use wire::otlp::ExportLogsServiceRequest;
use wire::otlp::proto::logs::v1::LogRecord as OtlpLogRecord;

use super::{Converted, any_to_string, label_name};
use crate::event::{Labels, LogBatch, LogRecord, SharedLabels};

/// Loki's default resource attributes indexed as stream labels.
pub const DEFAULT_INDEX_ATTRIBUTES: &[&str] = &[
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
];

/// Converts an export request; `index` names the resource attributes that become labels.
pub fn convert(
    req: ExportLogsServiceRequest,
    index: &[String],
    now_ns: i64,
) -> Converted<LogBatch> {
    let mut out = Converted::<LogBatch>::default();
    for rl in req.resource_logs {
        let mut labels = Vec::new();
        let mut resource_md = Vec::new();
        for kv in rl.resource.map(|r| r.attributes).unwrap_or_default() {
            let name = label_name(&kv.key);
            if name.is_empty() {
                continue;
            }
            let value = kv.value.as_ref().map(any_to_string).unwrap_or_default();
            if index.contains(&kv.key) {
                if !value.is_empty() {
                    labels.push((name, value));
                }
            } else {
                resource_md.push((name, value));
            }
        }
        let mut labels = Labels::new(labels);
        if labels.get("service_name").is_none() {
            labels.insert("service_name", "unknown_service");
        }
        let labels = SharedLabels::new(labels);
        for sl in rl.scope_logs {
            let mut scope_md = resource_md.clone();
            if let Some(scope) = &sl.scope {
                if !scope.name.is_empty() {
                    scope_md.push(("scope_name".into(), scope.name.clone()));
                }
                if !scope.version.is_empty() {
                    scope_md.push(("scope_version".into(), scope.version.clone()));
                }
                push_attributes(&mut scope_md, &scope.attributes);
            }
            for rec in sl.log_records {
                match record(rec, &labels, &scope_md, now_ns) {
                    Ok(r) => out.batch.push(r),
                    Err(e) => out.reject(e),
                }
            }
        }
    }
    out
}

fn push_attributes(
    md: &mut Vec<(String, String)>,
    attrs: &[wire::otlp::proto::common::v1::KeyValue],
) {
    for kv in attrs {
        let name = label_name(&kv.key);
        if !name.is_empty() {
            md.push((
                name,
                kv.value.as_ref().map(any_to_string).unwrap_or_default(),
            ));
        }
    }
}

fn record(
    rec: OtlpLogRecord,
    labels: &SharedLabels,
    scope_md: &[(String, String)],
    now_ns: i64,
) -> Result<LogRecord, String> {
    let ts = match (rec.time_unix_nano, rec.observed_time_unix_nano) {
        (0, 0) => now_ns,
        (0, t) | (t, _) => {
            i64::try_from(t).map_err(|_| format!("log record time {t} ns is out of range"))?
        }
    };
    if !matches!(rec.trace_id.len(), 0 | 16) {
        return Err(format!(
            "log record trace_id has {} bytes, want 16",
            rec.trace_id.len()
        ));
    }
    if !matches!(rec.span_id.len(), 0 | 8) {
        return Err(format!(
            "log record span_id has {} bytes, want 8",
            rec.span_id.len()
        ));
    }
    let mut md = scope_md.to_vec();
    push_attributes(&mut md, &rec.attributes);
    if !rec.trace_id.is_empty() {
        md.push((
            "trace_id".into(),
            wire::otlp::trace_id_to_hex(&rec.trace_id),
        ));
    }
    if !rec.span_id.is_empty() {
        md.push(("span_id".into(), wire::otlp::span_id_to_hex(&rec.span_id)));
    }
    if !rec.severity_text.is_empty() {
        md.push(("severity_text".into(), rec.severity_text));
    }
    if rec.severity_number != 0 {
        md.push(("severity_number".into(), rec.severity_number.to_string()));
    }
    if rec.flags != 0 {
        md.push(("flags".into(), rec.flags.to_string()));
    }
    if rec.observed_time_unix_nano != 0 {
        md.push((
            "observed_timestamp".into(),
            rec.observed_time_unix_nano.to_string(),
        ));
    }
    Ok(LogRecord {
        labels: labels.clone(),
        timestamp_ns: ts,
        line: rec.body.as_ref().map(any_to_string).unwrap_or_default(),
        structured_metadata: md,
        fields: Default::default(),
    })
}

#[cfg(test)]
mod receiver_tests {
    use super::*;
    use crate::sources::otlp::test_data::{kv, logs_request};

    fn index() -> Vec<String> {
        DEFAULT_INDEX_ATTRIBUTES
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn resource_attributes_split_into_labels_and_metadata() {
        let got = convert(logs_request(), &index(), 42);
        assert_eq!(got.rejected, 0, "{:?}", got.error);
        assert_eq!(got.batch.len(), 2);
        let r = &got.batch[0];
        assert_eq!(
            r.labels.to_loki_string(),
            r#"{deployment_environment="prod", service_instance_id="till-07", service_name="pos-checkout", service_namespace="retail"}"#
        );
        assert_eq!(r.line, "checkout completed");
        assert_eq!(r.timestamp_ns, 1_700_000_000_000_000_000);
        let md: std::collections::BTreeMap<_, _> = r.structured_metadata.iter().cloned().collect();
        assert_eq!(md["host_name"], "till-07");
        assert_eq!(md["scope_name"], "pos.checkout");
        assert_eq!(md["store_id"], "1042");
        assert_eq!(md["payment_method"], "card");
        assert_eq!(md["trace_id"], "5b8efff798038103d269b633813fc60c");
        assert_eq!(md["span_id"], "eee19b7ec3c1b174");
        assert_eq!(md["severity_text"], "INFO");
        assert_eq!(md["severity_number"], "9");
        // A structured body is JSON; no time falls back to the observed time.
        let r = &got.batch[1];
        assert_eq!(r.line, r#"{"amount":12.5,"items":["sku-1","sku-2"]}"#);
        assert_eq!(r.timestamp_ns, 1_700_000_001_000_000_000);
    }

    #[test]
    fn missing_service_name_is_unknown_service_and_bad_records_are_rejected() {
        let mut req = logs_request();
        let rl = &mut req.resource_logs[0];
        rl.resource = Some(Default::default());
        rl.scope_logs[0].log_records[0].time_unix_nano = u64::MAX;
        rl.scope_logs[0].log_records[1].trace_id = vec![1, 2, 3];
        rl.scope_logs[0].log_records.push(OtlpLogRecord {
            attributes: vec![kv("1st.attr", "x")],
            ..Default::default()
        });
        let got = convert(req, &index(), 42);
        assert_eq!(got.rejected, 2);
        assert!(got.error.unwrap().contains("out of range"));
        assert_eq!(got.batch.len(), 1);
        let r = &got.batch[0];
        assert_eq!(r.labels.get("service_name"), Some("unknown_service"));
        assert_eq!(r.timestamp_ns, 42);
        assert_eq!(
            r.structured_metadata.last(),
            Some(&("key_1st_attr".into(), "x".into()))
        );
    }
}
