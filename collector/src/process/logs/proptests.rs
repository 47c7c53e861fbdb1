//! Properties of the log stages on arbitrary input: no stage panics, the labels stage only ever
//! produces valid label names, the drop stage accounts for every entry, the Unix time formats
//! round-trip, and CRI partial lines join back into what was split.

use proptest::prelude::*;

use super::cri::{Cri, JOINED_REASON};
use super::drop::Drop;
use super::labels::Labels;
use super::timestamp::Timestamp;
use super::{is_loki_label_name, record, table};
use crate::event::{LogBatch, LogRecord};
use crate::process::test_util::log_stage;
use crate::process::{Drops, Stage};

/// One of every log stage, with settings that read the fields the generated records carry.
fn every_log_stage() -> Vec<Box<dyn Stage<LogBatch>>> {
    [
        ("logs.docker", ""),
        ("logs.cri", "max_partial_lines = 3\nmax_partial_line_size = 64"),
        (
            "logs.json",
            r#"expressions = { a = "", b = "x.y[1]", c = "z[-1]" }"#,
        ),
        (
            "logs.json",
            "expressions = { a = \"\" }\nsource = \"f\"\ndrop_malformed = true",
        ),
        ("logs.logfmt", r#"mapping = { a = "", b = "level" }"#),
        ("logs.logfmt", "mapping = { a = \"\" }\nsource = \"f\""),
        ("logs.regex", r#"expression = '(?P<a>\w+)=(?P<b>\S*)'"#),
        ("logs.labels", r#"values = { a = "", level = "f" }"#),
        ("logs.static_labels", r#"values = { region = "eu" }"#),
        ("logs.structured_metadata", r#"values = { a = "", t = "f" }"#),
        ("logs.drop", "source = \"f\"\nexpression = \"^x\""),
        ("logs.drop", "older_than = \"1h\"\nlonger_than = 5"),
        ("logs.timestamp", "source = \"f\"\nformat = \"2006-01-02 15:04:05.000 -0700\"\nfallback_formats = [\"RFC3339\", \"Unix\", \"UnixMs\", \"Stamp\"]"),
        ("logs.timestamp", "source = \"a\"\nformat = \"UnixNs\"\naction_on_failure = \"skip\""),
        ("logs.output", r#"source = "f""#),
    ]
    .into_iter()
    .map(|(kind, settings)| log_stage(kind, settings))
    .collect()
}

/// Lines that look like what the stages parse, and lines that do not.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9TZ:.+-]{0,32} (stdout|stderr|x) (P|F|P:x)? ?.{0,40}",
        r#"\{"log":".{0,20}","stream":"(stdout|stderr)","time":"[0-9TZ:.-]{0,30}"\}"#,
        r#"\{"a":.{0,10},"x":\{"y":\[.{0,8}\]\},"z":\[[0-9,]{0,6}\]\}"#,
        r#"([a-z]{1,5}=("[^"]{0,8}"?|[^ ]{0,8}) ?){0,5}"#,
    ]
}

fn records() -> impl Strategy<Value = LogBatch> {
    prop::collection::vec((line(), prop::option::of(line()), any::<i64>()), 0..12).prop_map(
        |items| {
            items
                .into_iter()
                .map(|(l, f, ts)| {
                    let mut r: LogRecord = record(&l);
                    r.timestamp_ns = ts;
                    if let Some(f) = f {
                        r.fields.insert("f".into(), f);
                    }
                    r
                })
                .collect()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn no_log_stage_panics_on_arbitrary_lines(batches in prop::collection::vec(records(), 1..4)) {
        let stages = every_log_stage();
        let mut drops = Drops::default();
        for mut batch in batches {
            for s in &stages {
                s.process(&mut batch, &mut drops);
            }
        }
    }

    #[test]
    fn labels_stage_only_makes_valid_label_names(
        names in prop::collection::btree_map("[a-zA-Z0-9_.:-]{0,6}", "[a-z_.]{0,4}", 1..5),
        fields in prop::collection::btree_map("[a-z_.]{0,4}", any::<String>(), 0..6),
    ) {
        let mut settings = toml::Table::new();
        let values: toml::Table = names
            .into_iter()
            .map(|(k, v)| (k, toml::Value::String(v)))
            .collect();
        settings.insert("values".into(), toml::Value::Table(values));
        // Invalid names are refused at build; what builds only makes valid names.
        if let Ok(stage) = Labels::build(settings) {
            let mut r = record("x");
            r.labels = Default::default();
            r.fields = fields.into();
            let mut batch = vec![r];
            stage.process(&mut batch, &mut Drops::default());
            for (name, value) in batch[0].labels.iter() {
                prop_assert!(is_loki_label_name(name), "{name:?}");
                prop_assert!(!value.is_empty());
            }
        }
    }

    #[test]
    fn drop_stage_keeps_plus_drops_equal_input(
        batch in records(),
        expression in "[a-z.^$*|]{1,6}",
        longer in prop::option::of(0u64..40),
    ) {
        let mut settings = format!("expression = {:?}\ndrop_counter_reason = \"r\"", expression);
        if let Some(n) = longer {
            settings.push_str(&format!("\nlonger_than = {n}"));
        }
        let Ok(stage) = Drop::build(table(&settings)) else {
            return Ok(()); // not a regex
        };
        let input = batch.len() as u64;
        let mut batch = batch;
        let mut drops = Drops::default();
        stage.process(&mut batch, &mut drops);
        prop_assert_eq!(batch.len() as u64 + drops.0.get("r").copied().unwrap_or(0), input);
    }

    #[test]
    fn unix_formats_round_trip(ns in -9_000_000_000_000_000_000i64..9_000_000_000_000_000_000) {
        let secs = ns.div_euclid(1_000_000_000);
        let frac = ns.rem_euclid(1_000_000_000);
        // Seconds with a fraction, written as "-2.5" would be (-2 - 0.5) for negatives.
        let unix = if ns < 0 && frac != 0 {
            format!("-{}.{:09}", (secs + 1).unsigned_abs(), 1_000_000_000 - frac)
        } else {
            format!("{secs}.{frac:09}")
        };
        let cases = [
            ("Unix", unix, ns),
            ("UnixMs", ns.div_euclid(1_000_000).to_string(), ns.div_euclid(1_000_000) * 1_000_000),
            ("UnixUs", ns.div_euclid(1_000).to_string(), ns.div_euclid(1_000) * 1_000),
            ("UnixNs", ns.to_string(), ns),
        ];
        for (format, text, want) in cases {
            let stage = Timestamp::build(table(&format!("source = \"t\"\nformat = \"{format}\""))).unwrap();
            let mut r = record("x");
            r.fields.insert("t".into(), text.clone());
            let mut batch = vec![r];
            stage.process(&mut batch, &mut Drops::default());
            prop_assert_eq!(batch[0].timestamp_ns, want, "{} {}", format, text);
        }
    }

    #[test]
    fn cri_partial_lines_join_back(content in "[^\n]{0,60}", cuts in prop::collection::vec(0usize..60, 0..4)) {
        let mut cuts: Vec<usize> = cuts
            .into_iter()
            .map(|c| content.floor_char_boundary(c.min(content.len())))
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut pieces = Vec::new();
        let mut start = 0;
        for c in cuts {
            pieces.push(&content[start..c]);
            start = c;
        }
        let last = &content[start..];
        let mut lines: Vec<String> = pieces
            .iter()
            .map(|p| format!("2024-03-05T10:20:30Z stdout P {p}"))
            .collect();
        lines.push(format!("2024-03-05T10:20:30Z stdout F {last}"));
        let stage = Cri::build(table("")).unwrap();
        let mut batch: LogBatch = lines.iter().map(|l| record(l)).collect();
        let mut drops = Drops::default();
        stage.process(&mut batch, &mut drops);
        prop_assert_eq!(batch.len(), 1);
        prop_assert_eq!(&batch[0].line, &content);
        prop_assert_eq!(drops.0.get(JOINED_REASON).copied().unwrap_or(0), pieces.len() as u64);
    }
}
