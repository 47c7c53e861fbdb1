//! Stages chained as an Alloy `loki.process` pipeline would chain them, built through
//! [`crate::process::build`] from the TOML a user writes.

use crate::event::LogBatch;
use crate::process::Drops;
use crate::process::test_util::log_stage;

use super::record;

/// A POS terminal's JSON logs, as Docker's json-file driver writes them.
const DOCKER_POS_LINES: &[&str] = &[
    r#"{"log":"{\"ts\":\"2024-03-05 10:20:30.123\",\"level\":\"info\",\"msg\":\"sale completed\",\"store\":{\"id\":\"S042\"},\"terminal\":7,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}\n","stream":"stdout","time":"2024-03-05T10:20:30.200000000Z"}"#,
    r#"{"log":"{\"ts\":\"2024-03-05 10:20:31.5\",\"level\":\"error\",\"msg\":\"printer offline\",\"store\":{\"id\":\"S042\"},\"terminal\":7}\n","stream":"stderr","time":"2024-03-05T10:20:31.600000000Z"}"#,
    r#"{"log":"{\"ts\":\"2024-03-05 10:20:32\",\"level\":\"debug\",\"msg\":\"heartbeat\",\"store\":{\"id\":\"S042\"},\"terminal\":7}\n","stream":"stdout","time":"2024-03-05T10:20:32.100000000Z"}"#,
    r#"{"log":"Starting POS agent v4.2 (not JSON)\n","stream":"stdout","time":"2024-03-05T10:20:29.000000000Z"}"#,
];

#[test]
fn docker_json_labels_timestamp_output_pipeline() {
    let stages = [
        log_stage("logs.docker", ""),
        log_stage(
            "logs.json",
            r#"expressions = { ts = "", level = "", msg = "", store = "store.id", trace_id = "" }"#,
        ),
        log_stage("logs.labels", r#"values = { level = "", store = "" }"#),
        log_stage("logs.structured_metadata", r#"values = { trace_id = "" }"#),
        log_stage(
            "logs.drop",
            "source = \"level\"\nvalue = \"debug\"\ndrop_counter_reason = \"debug\"",
        ),
        log_stage(
            "logs.timestamp",
            "source = \"ts\"\nformat = \"2006-01-02 15:04:05.000\"\naction_on_failure = \"skip\"",
        ),
        log_stage("logs.output", r#"source = "msg""#),
    ];
    let mut batch: LogBatch = DOCKER_POS_LINES.iter().map(|l| record(l)).collect();
    let mut drops = Drops::default();
    for s in &stages {
        s.process(&mut batch, &mut drops);
    }
    assert_eq!(drops.0.get("debug"), Some(&1));
    assert_eq!(batch.len(), 3);

    let sale = &batch[0];
    assert_eq!(sale.line, "sale completed");
    assert_eq!(
        sale.labels.to_loki_string(),
        r#"{job="test", level="info", store="S042", stream="stdout"}"#
    );
    assert_eq!(
        sale.timestamp_ns, 1_709_634_030_123_000_000,
        "from ts, not docker's time"
    );
    assert_eq!(
        sale.structured_metadata,
        vec![(
            "trace_id".to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736".to_string()
        )]
    );

    let error = &batch[1];
    assert_eq!(error.line, "printer offline");
    assert_eq!(error.labels.get("stream"), Some("stderr"));
    assert_eq!(error.labels.get("level"), Some("error"));
    assert_eq!(error.timestamp_ns, 1_709_634_031_500_000_000);
    assert!(error.structured_metadata.is_empty());

    // Not JSON inside: docker's line and time, only the stream label, kept.
    let banner = &batch[2];
    assert_eq!(banner.line, "Starting POS agent v4.2 (not JSON)");
    assert_eq!(banner.timestamp_ns, 1_709_634_029_000_000_000);
    assert_eq!(
        banner.labels.to_loki_string(),
        r#"{job="test", stream="stdout"}"#
    );
    assert!(!banner.fields.contains_key("level"));
}

#[test]
fn cri_logfmt_pipeline_with_partial_lines() {
    let stages = [
        log_stage("logs.cri", ""),
        log_stage("logs.logfmt", r#"mapping = { level = "", msg = "" }"#),
        log_stage("logs.labels", r#"values = { level = "" }"#),
        log_stage("logs.static_labels", r#"values = { region = "eu-west" }"#),
    ];
    let lines = [
        r#"2024-03-05T10:20:30.000000001Z stdout F level=info msg="store opened""#,
        r#"2024-03-05T10:20:30.5Z stderr P level=error msg="card reader "#,
        r#"2024-03-05T10:20:30.6Z stderr F timeout""#,
    ];
    let mut batch: LogBatch = lines.iter().map(|l| record(l)).collect();
    let mut drops = Drops::default();
    for s in &stages {
        s.process(&mut batch, &mut drops);
    }
    assert_eq!(batch.len(), 2);
    assert_eq!(drops.0.get(super::cri::JOINED_REASON), Some(&1));
    assert_eq!(batch[1].line, r#"level=error msg="card reader timeout""#);
    assert_eq!(batch[1].fields["msg"], "card reader timeout");
    assert_eq!(
        batch[1].labels.to_loki_string(),
        r#"{job="test", level="error", region="eu-west", stream="stderr"}"#
    );
}
