//! Trace stages, on OTLP `ResourceSpans`, and the attribute helpers they share.

use wire::otlp::proto::common::v1::{AnyValue, KeyValue, any_value::Value};

pub mod attribute_filter;
pub mod resource_attributes;

/// The value of attribute `key`, if set.
pub(crate) fn attribute<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key)?.value.as_ref()
}

/// An attribute value as text for matching: strings bare, numbers and booleans as written,
/// bytes as hex, arrays and maps as a JSON-like rendering.
pub(crate) fn value_text(v: &AnyValue) -> String {
    match &v.value {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => hex::encode(b),
        Some(Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(value_text).collect();
            format!("[{}]", items.join(","))
        }
        Some(Value::KvlistValue(l)) => {
            let items: Vec<String> = l
                .values
                .iter()
                .map(|kv| {
                    format!(
                        "{}:{}",
                        kv.key,
                        kv.value.as_ref().map(value_text).unwrap_or_default()
                    )
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
        Some(_) => String::new(),
    }
}

#[cfg(test)]
pub(crate) mod test_data {
    //! Small OTLP batches for the trace stage tests.
    use wire::otlp::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
    use wire::otlp::proto::resource::v1::Resource;
    use wire::otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

    pub fn string_value(s: &str) -> AnyValue {
        AnyValue {
            value: Some(Value::StringValue(s.into())),
        }
    }

    pub fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(string_value(v)),
            ..Default::default()
        }
    }

    pub fn span(name: &str, attrs: &[(&str, &str)]) -> Span {
        Span {
            name: name.into(),
            attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
            ..Default::default()
        }
    }

    pub fn resource_spans(resource: &[(&str, &str)], spans: Vec<Span>) -> ResourceSpans {
        ResourceSpans {
            resource: Some(Resource {
                attributes: resource.iter().map(|(k, v)| kv(k, v)).collect(),
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }
    }
}
