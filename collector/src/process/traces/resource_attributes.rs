//! `traces.resource_attributes`: sets resource attributes from fixed values, like Alloy's
//! `otelcol.processor.resource` / `attributes` actions. Node metadata comes in through the config
//! loader's `${VAR}` interpolation.
//!
//! ```toml
//! type = "traces.resource_attributes"
//! values = { "deployment.environment" = "prod", region = "${REGION}", "store.number" = 42 }
//! action = "upsert"   # upsert (default): set; insert: only where absent; update: only where present
//! ```
//!
//! Values may be strings, integers, floats or booleans, and keep their OTLP type. A
//! `ResourceSpans` without a resource gets one (for `upsert` and `insert`).

use std::collections::BTreeMap;

use serde::Deserialize;
use wire::otlp::proto::common::v1::{AnyValue, KeyValue, any_value::Value};

use crate::event::TraceBatch;
use crate::process::logs::invalid;
use crate::process::{Drops, Stage};
use crate::sources::BuildError;

/// How values meet attributes already there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Upsert,
    Insert,
    Update,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    values: BTreeMap<String, toml::Value>,
    #[serde(default)]
    action: Action,
}

/// The `traces.resource_attributes` stage.
pub struct ResourceAttributes {
    values: Vec<(String, AnyValue)>,
    action: Action,
}

impl ResourceAttributes {
    pub fn build(table: toml::Table) -> Result<Self, BuildError> {
        let c: Config = BuildError::parse(table)?;
        if c.values.is_empty() {
            return Err(invalid("values", "must name at least one attribute"));
        }
        let values = c
            .values
            .into_iter()
            .map(|(k, v)| {
                let value = match v {
                    toml::Value::String(s) => Value::StringValue(s),
                    toml::Value::Integer(i) => Value::IntValue(i),
                    toml::Value::Float(f) => Value::DoubleValue(f),
                    toml::Value::Boolean(b) => Value::BoolValue(b),
                    other => {
                        return Err(invalid(
                            format!("values.{k}"),
                            format!("a {} cannot be an attribute value here; use a string, number or boolean", other.type_str()),
                        ));
                    }
                };
                if k.is_empty() {
                    return Err(invalid("values", "empty attribute name"));
                }
                Ok((k, AnyValue { value: Some(value) }))
            })
            .collect::<Result<_, _>>()?;
        Ok(ResourceAttributes {
            values,
            action: c.action,
        })
    }
}

impl Stage<TraceBatch> for ResourceAttributes {
    fn process(&self, batch: &mut TraceBatch, _drops: &mut Drops) {
        for rs in batch.iter_mut() {
            if rs.resource.is_none() && self.action == Action::Update {
                continue;
            }
            let attrs = &mut rs.resource.get_or_insert_with(Default::default).attributes;
            for (key, value) in &self.values {
                match (attrs.iter_mut().find(|kv| kv.key == *key), self.action) {
                    (Some(kv), Action::Upsert | Action::Update) => kv.value = Some(value.clone()),
                    (None, Action::Upsert | Action::Insert) => attrs.push(KeyValue {
                        key: key.clone(),
                        value: Some(value.clone()),
                        ..Default::default()
                    }),
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::test_util::invalid_key;
    use crate::process::traces::test_data::{resource_spans, span};
    use crate::process::traces::{attribute, value_text};

    fn run(src: &str, batch: &mut TraceBatch) {
        ResourceAttributes::build(toml::from_str(src).unwrap())
            .unwrap()
            .process(batch, &mut Drops::default());
    }

    fn attr(batch: &TraceBatch, key: &str) -> Option<String> {
        let r = batch[0].resource.as_ref()?;
        attribute(&r.attributes, key).map(value_text)
    }

    fn batch() -> TraceBatch {
        vec![resource_spans(
            &[("service.name", "pos-api"), ("region", "us-east")],
            vec![span("checkout", &[])],
        )]
    }

    #[test]
    fn upsert_insert_update() {
        let mut b = batch();
        run(
            r#"values = { "deployment.environment" = "prod", region = "eu-west", "store.number" = 42 }"#,
            &mut b,
        );
        assert_eq!(attr(&b, "deployment.environment").as_deref(), Some("prod"));
        assert_eq!(attr(&b, "region").as_deref(), Some("eu-west"));
        let n = attribute(&b[0].resource.as_ref().unwrap().attributes, "store.number").unwrap();
        assert_eq!(n.value, Some(Value::IntValue(42)));

        let mut b = batch();
        run(
            "values = { region = \"eu-west\", zone = \"a\" }\naction = \"insert\"",
            &mut b,
        );
        assert_eq!(attr(&b, "region").as_deref(), Some("us-east"));
        assert_eq!(attr(&b, "zone").as_deref(), Some("a"));

        let mut b = batch();
        run(
            "values = { region = \"eu-west\", zone = \"a\" }\naction = \"update\"",
            &mut b,
        );
        assert_eq!(attr(&b, "region").as_deref(), Some("eu-west"));
        assert_eq!(attr(&b, "zone"), None);

        let mut b = batch();
        b[0].resource = None;
        run(r#"values = { region = "eu-west" }"#, &mut b);
        assert_eq!(attr(&b, "region").as_deref(), Some("eu-west"));
    }

    #[test]
    fn bad_settings_are_refused() {
        let build = |s: &str| ResourceAttributes::build(toml::from_str(s).unwrap());
        assert!(matches!(
            build("values = {}"),
            Err(BuildError::Invalid { .. })
        ));
        assert_eq!(invalid_key(build("values = { x = [1] }")), "values.x");
        assert!(matches!(
            build("values = { x = \"1\" }\naction = \"delete\""),
            Err(BuildError::Invalid { key, .. }) if key == "action"
        ));
    }
}
