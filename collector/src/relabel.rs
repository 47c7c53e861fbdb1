//! Prometheus relabeling (`relabel_config`) on a [`Labels`] set, as
//! `prometheus/model/relabel/relabel.go` does it.
//!
//! A rule joins the values of `source_labels` with `separator` (default `;`), matches the fully
//! anchored `regex` (default `(.*)`, compiled as `^(?s:REGEX)$`) and, by `action`:
//!
//! | action | effect |
//! |---|---|
//! | `replace` (default) | on a match, sets `target_label` (may hold `$1`, `${name}`) to `replacement` (default `$1`) expanded; an empty result deletes the label |
//! | `keep` / `drop` | keeps / drops the set when the joined value matches |
//! | `keepequal` / `dropequal` | keeps / drops the set when the joined value equals `target_label`'s value |
//! | `hashmod` | sets `target_label` to the MD5 of the joined value (last 8 bytes, big-endian) mod `modulus` |
//! | `lowercase` / `uppercase` | sets `target_label` to the joined value in lower / upper case |
//! | `labelmap` | copies every label whose *name* matches to the name `replacement` expands to |
//! | `labeldrop` / `labelkeep` | removes the labels whose names match / do not match |
//!
//! Setting a label to the empty string removes it, as Prometheus' label builder does. Configs are
//! checked when built ([`Relabeler::new`]) the way Prometheus validates them; a built
//! [`Relabeler`] never fails or panics on any label set. Label names are the classic
//! `[a-zA-Z_][a-zA-Z0-9_]*` ones: a `replace` or `labelmap` whose expanded name is not one is
//! skipped.

use regex::Regex;
use serde::Deserialize;

use crate::event::Labels;
use crate::sources::BuildError;
use wire::labels::is_valid_label_name;

const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REPLACEMENT: &str = "$1";

/// What a rule does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

/// One `relabel_config`, with Prometheus' YAML keys. Unset keys take Prometheus' defaults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default)]
    pub source_labels: Vec<String>,
    pub separator: Option<String>,
    pub regex: Option<String>,
    pub target_label: Option<String>,
    pub replacement: Option<String>,
    pub modulus: Option<u64>,
    #[serde(default)]
    pub action: Action,
}

/// One checked, compiled rule.
#[derive(Clone, Debug)]
struct Rule {
    source_labels: Vec<String>,
    separator: String,
    regex: Regex,
    /// Is the regex the default `(.*)`? (enables `replace`'s fast path)
    default_regex: bool,
    target_label: String,
    replacement: String,
    modulus: u64,
    action: Action,
}

/// A list of compiled rules, applied in order.
#[derive(Clone, Debug, Default)]
pub struct Relabeler {
    rules: Vec<Rule>,
}

impl Relabeler {
    /// Checks and compiles `configs`; errors name `key[i].field`.
    pub fn new(configs: &[RelabelConfig], key: &str) -> Result<Self, BuildError> {
        let rules = configs
            .iter()
            .enumerate()
            .map(|(i, c)| Rule::new(c, &format!("{key}[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(Relabeler { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Applies every rule in order; `None` when a rule drops the set.
    pub fn process(&self, mut labels: Labels) -> Option<Labels> {
        self.apply(&mut labels).then_some(labels)
    }

    /// Applies every rule in order to `labels`; false when a rule drops the set (then `labels`
    /// holds whatever the rules before had made of it).
    pub fn apply(&self, labels: &mut Labels) -> bool {
        self.rules.iter().all(|r| r.apply(labels))
    }
}

fn invalid(key: &str, field: &str, reason: impl Into<String>) -> BuildError {
    BuildError::Invalid {
        key: format!("{key}.{field}"),
        reason: reason.into(),
    }
}

/// Is `s` a label name possibly made of `$1` / `${name}` references (Prometheus' `relabelTarget`)?
fn is_valid_label_template(s: &str) -> bool {
    static TEMPLATE: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$").ok())
        .as_ref()
        .is_some_and(|re| re.is_match(s))
}

impl Rule {
    fn new(c: &RelabelConfig, key: &str) -> Result<Rule, BuildError> {
        let action = c.action;
        let name = action.as_str();
        let regex_src = c.regex.as_deref().unwrap_or(DEFAULT_REGEX);
        let regex = Regex::new(&format!("^(?s:{regex_src})$"))
            .map_err(|e| invalid(key, "regex", format!("{regex_src:?} is not a regex: {e}")))?;
        let target_label = c.target_label.clone().unwrap_or_default();
        let replacement = c
            .replacement
            .clone()
            .unwrap_or_else(|| DEFAULT_REPLACEMENT.to_string());
        let modulus = c.modulus.unwrap_or(0);
        for l in &c.source_labels {
            if !is_valid_label_name(l) {
                return Err(invalid(
                    key,
                    "source_labels",
                    format!("{l:?} is not a label name"),
                ));
            }
        }
        let needs_target = matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && target_label.is_empty() {
            return Err(invalid(
                key,
                "target_label",
                format!("action {name} requires it"),
            ));
        }
        if action == Action::Replace && !is_valid_label_template(&target_label) {
            return Err(invalid(
                key,
                "target_label",
                format!("{target_label:?} is not a label name (or $-template of one)"),
            ));
        }
        if needs_target && action != Action::Replace && !is_valid_label_name(&target_label) {
            return Err(invalid(
                key,
                "target_label",
                format!("{target_label:?} is not a label name"),
            ));
        }
        if action == Action::HashMod && modulus == 0 {
            return Err(invalid(
                key,
                "modulus",
                "action hashmod requires a non-zero modulus",
            ));
        }
        if action == Action::LabelMap && !is_valid_label_template(&replacement) {
            return Err(invalid(
                key,
                "replacement",
                format!("{replacement:?} is not a label name (or $-template of one)"),
            ));
        }
        // Keys an action ignores must keep their defaults, as Prometheus insists.
        let mut must_be_default: Vec<(&str, bool)> = Vec::new();
        if matches!(
            action,
            Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual
        ) {
            must_be_default.push(("replacement", c.replacement.is_some()));
        }
        if matches!(action, Action::KeepEqual | Action::DropEqual) {
            must_be_default.push(("regex", c.regex.is_some()));
            must_be_default.push(("separator", c.separator.is_some()));
            must_be_default.push(("modulus", c.modulus.is_some()));
        }
        if matches!(action, Action::LabelDrop | Action::LabelKeep) {
            must_be_default.push(("source_labels", !c.source_labels.is_empty()));
            must_be_default.push(("target_label", c.target_label.is_some()));
            must_be_default.push(("separator", c.separator.is_some()));
            must_be_default.push(("replacement", c.replacement.is_some()));
            must_be_default.push(("modulus", c.modulus.is_some()));
        }
        if let Some((field, _)) = must_be_default.iter().find(|(_, set)| *set) {
            return Err(invalid(
                key,
                field,
                format!("not allowed with action {name}"),
            ));
        }
        Ok(Rule {
            source_labels: c.source_labels.clone(),
            separator: c
                .separator
                .clone()
                .unwrap_or_else(|| DEFAULT_SEPARATOR.to_string()),
            default_regex: regex_src == DEFAULT_REGEX,
            regex,
            target_label,
            replacement,
            modulus,
            action,
        })
    }

    /// Sets `name` to `value`, or removes it when `value` is empty.
    fn set(labels: &mut Labels, name: &str, value: String) {
        if value.is_empty() {
            labels.remove(name);
        } else {
            labels.insert(name, value);
        }
    }

    /// Applies the rule; false when the set is dropped.
    fn apply(&self, labels: &mut Labels) -> bool {
        let val = self
            .source_labels
            .iter()
            .map(|n| labels.get(n).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&self.separator);
        match self.action {
            Action::Keep => return self.regex.is_match(&val),
            Action::Drop => return !self.regex.is_match(&val),
            Action::KeepEqual => return labels.get(&self.target_label).unwrap_or("") == val,
            Action::DropEqual => return labels.get(&self.target_label).unwrap_or("") != val,
            Action::Replace => self.replace(labels, &val),
            Action::Lowercase => Self::set(labels, &self.target_label, val.to_lowercase()),
            Action::Uppercase => Self::set(labels, &self.target_label, val.to_uppercase()),
            Action::HashMod => {
                let m = hashmod(&val, self.modulus);
                labels.insert(self.target_label.as_str(), m.to_string());
            }
            Action::LabelMap => {
                for (name, value) in labels.clone().into_vec() {
                    if self.regex.is_match(&name) {
                        let new = self.regex.replace(&name, self.replacement.as_str());
                        if is_valid_label_name(&new) {
                            Self::set(labels, &new, value);
                        }
                    }
                }
            }
            Action::LabelDrop => labels.retain(|name, _| !self.regex.is_match(name)),
            Action::LabelKeep => labels.retain(|name, _| self.regex.is_match(name)),
        }
        true
    }

    fn replace(&self, labels: &mut Labels, val: &str) {
        // Prometheus' fast path: nothing to match or expand, just set (or delete) the target.
        if val.is_empty()
            && self.default_regex
            && !self.target_label.contains('$')
            && !self.replacement.contains('$')
        {
            Self::set(labels, &self.target_label, self.replacement.clone());
            return;
        }
        let Some(caps) = self.regex.captures(val) else {
            return;
        };
        let mut target = String::new();
        caps.expand(&self.target_label, &mut target);
        if !is_valid_label_name(&target) {
            return;
        }
        let mut value = String::new();
        caps.expand(&self.replacement, &mut value);
        Self::set(labels, &target, value);
    }
}

/// Prometheus' `hashmod`: MD5 of `val`, its last 8 bytes as a big-endian u64, mod `modulus`.
pub fn hashmod(val: &str, modulus: u64) -> u64 {
    use md5::{Digest, Md5};
    let digest = Md5::digest(val.as_bytes());
    let mut last = [0u8; 8];
    last.copy_from_slice(&digest[8..16]);
    u64::from_be_bytes(last).checked_rem(modulus).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (*k, *v)).collect()
    }

    fn rules(toml_text: &str) -> Result<Relabeler, BuildError> {
        #[derive(Deserialize)]
        struct R {
            rules: Vec<RelabelConfig>,
        }
        let r: R = toml::from_str(toml_text).map_err(|e| BuildError::Config(e.to_string()))?;
        Relabeler::new(&r.rules, "rules")
    }

    #[test]
    fn replace_with_groups_defaults_and_deletion() {
        let r = rules(
            r#"
            rules = [
              { source_labels = ["__address__"], regex = "([^:]+):(\\d+)", target_label = "host", replacement = "${1}" },
              { source_labels = ["__address__"], regex = "([^:]+):(\\d+)", target_label = "port_$2", replacement = "p$2" },
              { source_labels = ["job"], target_label = "copy" },
              { source_labels = ["nope"], target_label = "job" },
              { target_label = "env", replacement = "prod" },
              { source_labels = ["job"], regex = "no", target_label = "never" },
            ]"#,
        )
        .unwrap();
        let out = r
            .process(labels(&[("__address__", "h1:9100"), ("job", "node")]))
            .unwrap();
        assert_eq!(out.get("host"), Some("h1"));
        assert_eq!(out.get("port_9100"), Some("p9100"));
        assert_eq!(out.get("copy"), Some("node"));
        // The default regex matches the empty value and `$1` is empty: the label goes.
        assert_eq!(out.get("job"), None);
        assert_eq!(out.get("env"), Some("prod"));
        assert_eq!(out.get("never"), None);
    }

    #[test]
    fn regex_is_anchored_and_dot_matches_newline() {
        let r =
            rules(r#"rules = [{ source_labels = ["a"], regex = "b", action = "keep" }]"#).unwrap();
        assert!(r.process(labels(&[("a", "b")])).is_some());
        assert!(r.process(labels(&[("a", "abc")])).is_none());
        let r = rules(r#"rules = [{ source_labels = ["a"], regex = "x.y", action = "keep" }]"#)
            .unwrap();
        assert!(r.process(labels(&[("a", "x\ny")])).is_some());
    }

    #[test]
    fn keep_drop_on_joined_values() {
        let r = rules(
            r#"rules = [{ source_labels = ["a", "b"], separator = "-", regex = "1-2", action = "drop" }]"#,
        )
        .unwrap();
        assert!(r.process(labels(&[("a", "1"), ("b", "2")])).is_none());
        assert!(r.process(labels(&[("a", "1"), ("b", "3")])).is_some());
    }

    #[test]
    fn keepequal_dropequal() {
        let keep = rules(
            r#"rules = [{ source_labels = ["a"], target_label = "b", action = "keepequal" }]"#,
        )
        .unwrap();
        let drop = rules(
            r#"rules = [{ source_labels = ["a"], target_label = "b", action = "dropequal" }]"#,
        )
        .unwrap();
        let same = labels(&[("a", "x"), ("b", "x")]);
        let diff = labels(&[("a", "x"), ("b", "y")]);
        assert!(keep.process(same.clone()).is_some());
        assert!(keep.process(diff.clone()).is_none());
        assert!(drop.process(same).is_none());
        assert!(drop.process(diff).is_some());
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // The expected values of Prometheus' own relabel_test.go.
        assert_eq!(hashmod("baz", 1000), 976);
        assert_eq!(hashmod("foo\nbar", 1000), 734);
        let r = rules(
            r#"rules = [{ source_labels = ["a"], target_label = "shard", modulus = 3, action = "hashmod" }]"#,
        )
        .unwrap();
        let out = r.process(labels(&[("a", "foo")])).unwrap();
        assert_eq!(
            out.get("shard"),
            Some((hashmod("foo", 3)).to_string().as_str())
        );
    }

    #[test]
    fn labelmap_labeldrop_labelkeep_case() {
        let r = rules(
            r#"rules = [
              { regex = "__meta_(.+)", action = "labelmap" },
              { regex = "__meta_.*", action = "labeldrop" },
              { source_labels = ["zone"], target_label = "zone_up", action = "uppercase" },
              { source_labels = ["zone_up"], target_label = "zone_low", action = "lowercase" },
            ]"#,
        )
        .unwrap();
        let out = r
            .process(labels(&[("__meta_zone", "Eu1"), ("job", "j")]))
            .unwrap();
        assert_eq!(
            out.iter().collect::<Vec<_>>(),
            vec![
                ("job", "j"),
                ("zone", "Eu1"),
                ("zone_low", "eu1"),
                ("zone_up", "EU1")
            ]
        );
        let keep = rules(r#"rules = [{ regex = "job|zone", action = "labelkeep" }]"#).unwrap();
        let out = keep.process(out).unwrap();
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn invalid_configs_name_the_key() {
        let cases = [
            (
                r#"rules = [{ source_labels = ["a"], regex = "(" }]"#,
                "rules[0].regex",
            ),
            (
                r#"rules = [{ source_labels = ["a"], target_label = "t", action = "hashmod" }]"#,
                "rules[0].modulus",
            ),
            (
                r#"rules = [{ source_labels = ["a"] }]"#,
                "rules[0].target_label",
            ),
            (
                r#"rules = [{ action = "keep" }, { source_labels = ["a"], target_label = "1bad" }]"#,
                "rules[1].target_label",
            ),
            (
                r#"rules = [{ target_label = "x", action = "labeldrop" }]"#,
                "rules[0].target_label",
            ),
            (
                r#"rules = [{ source_labels = ["a-b"], action = "keep" }]"#,
                "rules[0].source_labels",
            ),
            (
                r#"rules = [{ source_labels = ["a"], target_label = "t", action = "lowercase", replacement = "x" }]"#,
                "rules[0].replacement",
            ),
        ];
        for (text, key) in cases {
            match rules(text) {
                Err(BuildError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: expected Invalid at {key}, got {other:?}"),
            }
        }
        assert!(matches!(
            rules(r#"rules = [{ action = "explode" }]"#),
            Err(BuildError::Config(_))
        ));
    }

    fn arb_labels() -> impl Strategy<Value = Labels> {
        proptest::collection::vec(("[a-c_]{1,3}", "[a-c0-9:;]{0,4}"), 0..6)
            .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn keep_and_drop_partition(ls in proptest::collection::vec(arb_labels(), 0..20), re in "[a-c.*|]{0,4}") {
            let keep = Relabeler::new(&[RelabelConfig { source_labels: vec!["a".into(), "b".into()], regex: Some(re.clone()), action: Action::Keep, ..Default::default() }], "k");
            let drop = Relabeler::new(&[RelabelConfig { source_labels: vec!["a".into(), "b".into()], regex: Some(re), action: Action::Drop, ..Default::default() }], "d");
            if let (Ok(keep), Ok(drop)) = (keep, drop) {
                for l in ls {
                    let kept = keep.process(l.clone());
                    let not_dropped = drop.process(l.clone());
                    prop_assert!(kept.is_some() != not_dropped.is_some());
                    if let Some(k) = kept { prop_assert_eq!(k, l); }
                }
            }
        }

        #[test]
        fn labelkeep_labeldrop_are_complementary_subsets(l in arb_labels(), re in "[a-c_.*|]{0,4}") {
            let mk = |action| Relabeler::new(&[RelabelConfig { regex: Some(re.clone()), action, ..Default::default() }], "r");
            if let (Ok(keep), Ok(drop)) = (mk(Action::LabelKeep), mk(Action::LabelDrop)) {
                let k = keep.process(l.clone()).unwrap();
                let d = drop.process(l.clone()).unwrap();
                prop_assert!(k.iter().all(|(n, v)| l.get(n) == Some(v)));
                prop_assert!(d.iter().all(|(n, v)| l.get(n) == Some(v)));
                prop_assert_eq!(k.len() + d.len(), l.len());
            }
        }

        #[test]
        fn never_panics(l in arb_labels(), action in 0usize..11, re in "[a-c_.*()$|]{0,5}", target in "[a-c_$1{}]{0,4}", replacement in "[a-c_$1{}]{0,4}", modulus in 0u64..5) {
            let actions = [Action::Replace, Action::Keep, Action::Drop, Action::KeepEqual, Action::DropEqual, Action::HashMod, Action::LabelMap, Action::LabelDrop, Action::LabelKeep, Action::Lowercase, Action::Uppercase];
            let c = RelabelConfig {
                source_labels: vec!["a".into(), "b".into()],
                regex: Some(re),
                target_label: Some(target),
                replacement: Some(replacement),
                modulus: Some(modulus),
                action: actions[action],
                ..Default::default()
            };
            if let Ok(r) = Relabeler::new(&[c], "r")
                && let Some(out) = r.process(l.clone())
            {
                // Whatever a rule adds has a valid name and a non-empty value.
                for (n, v) in out.iter().filter(|(n, _)| l.get(n).is_none()) {
                    prop_assert!(is_valid_label_name(n) && !v.is_empty(), "{n}={v:?}");
                }
            }
        }
    }
}
