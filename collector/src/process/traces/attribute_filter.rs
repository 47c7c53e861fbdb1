//! `traces.attribute_filter`: keeps or drops spans by their attributes or their resource's, in
//! the spirit of the OpenTelemetry filter processor's `include`/`exclude`.
//!
//! ```toml
//! type = "traces.attribute_filter"
//! drop_reason = "attribute_filter"   # the reason dropped spans are counted under (default)
//!
//! [[include]]                 # when present, a span is kept only if one of these matches
//! attribute = "service.name"
//! regex = "^pos-"             # unanchored, as the filter processor's regexp
//! from = "resource"           # span | resource | any (default: span first, then resource)
//!
//! [[exclude]]                 # a span that matches one of these is dropped
//! attribute = "http.target"
//! value = "/healthz"          # exact; with neither value nor regex: the attribute is present
//! ```
//!
//! Values are compared as text (numbers and booleans as written). Dropped spans are counted with
//! [`Drops`]; scopes and resources left without spans are removed.

use serde::Deserialize;
use wire::otlp::proto::common::v1::KeyValue;
use wire::otlp::proto::trace::v1::Span;

use super::{attribute, value_text};
use crate::event::TraceBatch;
use crate::process::logs::{compile_regex, invalid};
use crate::process::{Drops, Stage};
use crate::sources::BuildError;

/// The reason dropped spans are counted under unless `drop_reason` says otherwise.
pub const DEFAULT_REASON: &str = "attribute_filter";

/// Where an attribute is looked up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum From {
    Span,
    Resource,
    #[default]
    Any,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatcherConfig {
    attribute: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    from: From,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    include: Vec<MatcherConfig>,
    #[serde(default)]
    exclude: Vec<MatcherConfig>,
    #[serde(default = "default_reason")]
    drop_reason: String,
}

fn default_reason() -> String {
    DEFAULT_REASON.into()
}

enum Test {
    Present,
    Value(String),
    Regex(::regex::Regex),
}

struct Matcher {
    attribute: String,
    test: Test,
    from: From,
}

impl Matcher {
    fn new(key: &str, c: MatcherConfig) -> Result<Self, BuildError> {
        if c.attribute.is_empty() {
            return Err(invalid(
                format!("{key}.attribute"),
                "must name an attribute",
            ));
        }
        let test = match (c.value, c.regex) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    format!("{key}.value"),
                    "cannot be used together with regex",
                ));
            }
            (Some(v), None) => Test::Value(v),
            (None, Some(r)) => Test::Regex(compile_regex(&format!("{key}.regex"), &r)?),
            (None, None) => Test::Present,
        };
        Ok(Matcher {
            attribute: c.attribute,
            test,
            from: c.from,
        })
    }

    fn matches(&self, span: &Span, resource: &[KeyValue]) -> bool {
        let found = match self.from {
            From::Span => attribute(&span.attributes, &self.attribute),
            From::Resource => attribute(resource, &self.attribute),
            From::Any => attribute(&span.attributes, &self.attribute)
                .or_else(|| attribute(resource, &self.attribute)),
        };
        let Some(v) = found else {
            return false;
        };
        match &self.test {
            Test::Present => true,
            Test::Value(want) => value_text(v) == *want,
            Test::Regex(re) => re.is_match(&value_text(v)),
        }
    }
}

/// The `traces.attribute_filter` stage.
pub struct AttributeFilter {
    include: Vec<Matcher>,
    exclude: Vec<Matcher>,
    reason: String,
}

fn matchers(key: &str, list: Vec<MatcherConfig>) -> Result<Vec<Matcher>, BuildError> {
    list.into_iter()
        .enumerate()
        .map(|(i, c)| Matcher::new(&format!("{key}[{i}]"), c))
        .collect()
}

impl AttributeFilter {
    pub fn build(table: toml::Table) -> Result<Self, BuildError> {
        let c: Config = BuildError::parse(table)?;
        if c.include.is_empty() && c.exclude.is_empty() {
            return Err(invalid("include", "give include and/or exclude matchers"));
        }
        if c.drop_reason.is_empty() {
            return Err(invalid("drop_reason", "must not be empty"));
        }
        Ok(AttributeFilter {
            include: matchers("include", c.include)?,
            exclude: matchers("exclude", c.exclude)?,
            reason: c.drop_reason,
        })
    }

    fn keep(&self, span: &Span, resource: &[KeyValue]) -> bool {
        let included =
            self.include.is_empty() || self.include.iter().any(|m| m.matches(span, resource));
        included && !self.exclude.iter().any(|m| m.matches(span, resource))
    }
}

impl Stage<TraceBatch> for AttributeFilter {
    fn process(&self, batch: &mut TraceBatch, drops: &mut Drops) {
        let mut dropped = 0u64;
        for rs in batch.iter_mut() {
            let resource = rs.resource.take();
            let attrs = resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
            for ss in rs.scope_spans.iter_mut() {
                let before = ss.spans.len();
                ss.spans.retain(|s| self.keep(s, attrs));
                dropped += (before - ss.spans.len()) as u64;
            }
            rs.resource = resource;
            rs.scope_spans.retain(|ss| !ss.spans.is_empty());
        }
        batch.retain(|rs| !rs.scope_spans.is_empty());
        drops.add(&self.reason, dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Items;
    use crate::process::test_util::invalid_key;
    use crate::process::traces::test_data::{resource_spans, span};

    fn build(src: &str) -> Result<AttributeFilter, BuildError> {
        AttributeFilter::build(toml::from_str(src).unwrap())
    }

    fn batch() -> TraceBatch {
        vec![
            resource_spans(
                &[("service.name", "pos-api")],
                vec![
                    span("GET /healthz", &[("http.target", "/healthz")]),
                    span("POST /sale", &[("http.target", "/sale")]),
                ],
            ),
            resource_spans(
                &[("service.name", "router-agent")],
                vec![span("GET /healthz", &[("http.target", "/healthz")])],
            ),
        ]
    }

    #[test]
    fn exclude_drops_matching_spans_and_empty_containers() {
        let stage = build(
            r#"
            [[exclude]]
            attribute = "http.target"
            value = "/healthz"
            "#,
        )
        .unwrap();
        let mut b = batch();
        let mut drops = Drops::default();
        stage.process(&mut b, &mut drops);
        assert_eq!(drops.0[DEFAULT_REASON], 2);
        assert_eq!(b.len(), 1, "the router resource lost its only span");
        assert_eq!(b.items(), 1);
        assert_eq!(b[0].scope_spans[0].spans[0].name, "POST /sale");
    }

    #[test]
    fn include_keeps_only_matching_spans_by_resource() {
        let stage = build(
            r#"
            drop_reason = "not_pos"
            [[include]]
            attribute = "service.name"
            regex = "^pos-"
            from = "resource"
            "#,
        )
        .unwrap();
        let mut b = batch();
        let mut drops = Drops::default();
        stage.process(&mut b, &mut drops);
        assert_eq!(drops.0["not_pos"], 1);
        assert_eq!(b.items(), 2);

        // `from = "span"` does not look at the resource.
        let stage = build("[[include]]\nattribute = \"service.name\"\nfrom = \"span\"").unwrap();
        let mut b = batch();
        stage.process(&mut b, &mut drops);
        assert!(b.is_empty());
        assert_eq!(drops.0[DEFAULT_REASON], 3);
    }

    #[test]
    fn bad_settings_name_their_key() {
        for (src, key) in [
            ("", "include"),
            (
                "[[exclude]]\nattribute = \"a\"\nregex = \"(\"",
                "exclude[0].regex",
            ),
            (
                "[[include]]\nattribute = \"a\"\nregex = \"x\"\nvalue = \"y\"",
                "include[0].value",
            ),
            ("[[include]]\nattribute = \"\"", "include[0].attribute"),
        ] {
            assert_eq!(invalid_key(build(src)), key, "{src}");
        }
        assert!(matches!(
            build("[[include]]\nattribute = \"a\"\nfrom = \"scope\""),
            Err(BuildError::Invalid { key, .. }) if key.starts_with("include")
        ));
    }
}
