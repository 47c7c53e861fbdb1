//! The `file` source end to end on temporary directories: start_at, rotation by rename,
//! copytruncate, truncation, partial lines, new files, restart without duplicates or gaps, and
//! the positions file.
#![allow(clippy::unwrap_used)]

use crate::tailing_harness;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use tailing_harness::{Running, lines, start};
use wire::Signal;

fn settings(dir: &Path, extra: &str) -> String {
    format!(
        "paths = [\"{}/*.log\"]\npoll_interval = \"10ms\"\nsync_period = \"50ms\"\n{extra}",
        dir.display()
    )
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.sync_all().unwrap();
}

fn numbered(range: std::ops::RangeInclusive<u32>) -> String {
    range.map(|i| format!("line {i}\n")).collect()
}

fn expected(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|i| format!("line {i}")).collect()
}

struct Dirs {
    logs: tempfile::TempDir,
    data: tempfile::TempDir,
}

fn dirs() -> Dirs {
    Dirs {
        logs: tempfile::tempdir().unwrap(),
        data: tempfile::tempdir().unwrap(),
    }
}

fn run(d: &Dirs, extra: &str) -> Running {
    start(
        "file",
        "tail",
        &settings(d.logs.path(), extra),
        d.data.path(),
    )
}

#[tokio::test]
async fn file_start_at_beginning_reads_existing_lines_with_labels() {
    let d = dirs();
    let log = d.logs.path().join("app.log");
    append(&log, &numbered(1..=3));
    let mut src = run(&d, "labels = { job = \"app\" }");
    let got = src.take(3).await;
    assert_eq!(lines(&got), expected(1..=3));
    let l = &got[0].labels;
    assert_eq!(l.get("job"), Some("app"));
    assert_eq!(l.get("filename"), Some(log.to_str().unwrap()));
    assert_eq!(src.metrics.received(Signal::Logs).get(), 3);
    src.stop().await;
}

#[tokio::test]
async fn file_start_at_end_skips_what_was_there() {
    let d = dirs();
    let log = d.logs.path().join("app.log");
    append(&log, &numbered(1..=3));
    let mut src = run(&d, "start_at = \"end\"");
    // Positions are saved after a poll: then app.log may grow.
    let positions = d.data.path().join("tail.positions.json");
    let deadline = std::time::Instant::now() + tailing_harness::PATIENCE;
    while !positions.exists() {
        assert!(std::time::Instant::now() < deadline, "no positions file");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    append(&log, &numbered(4..=5));
    assert_eq!(src.take_lines(2).await, expected(4..=5));
    src.stop().await;
}

#[tokio::test]
async fn file_partial_lines_wait_for_their_newline() {
    let d = dirs();
    let log = d.logs.path().join("app.log");
    let mut src = run(&d, "");
    append(&log, "hel");
    append(&d.logs.path().join("marker.log"), "marker\n");
    // The poll that read the marker also saw "hel" (written before it) and held it back.
    assert_eq!(src.take_lines(1).await, vec!["marker"]);
    append(&log, "lo\r\nworld\n");
    assert_eq!(src.take_lines(2).await, vec!["hello", "world"]);
    src.stop().await;
}

#[tokio::test]
async fn file_new_file_matching_the_glob_is_picked_up_and_excludes_apply() {
    let d = dirs();
    let extra = format!("exclude = [\"{}/skip*\"]", d.logs.path().display());
    let mut src = run(&d, &extra);
    append(&d.logs.path().join("skip.log"), "skipped\n");
    append(&d.logs.path().join("other.txt"), "not matched\n");
    append(&d.logs.path().join("new.log"), "fresh\n");
    let got = src.take(1).await;
    assert_eq!(lines(&got), vec!["fresh"]);
    assert!(got[0].labels.get("filename").unwrap().ends_with("new.log"));
    // Nothing else arrives.
    assert!(src.stop().await.is_empty());
}

#[tokio::test]
async fn file_rotation_by_rename_finishes_the_old_file_first() {
    let d = dirs();
    let log = d.logs.path().join("app.log");
    append(&log, &numbered(1..=2));
    let mut src = run(&d, "");
    assert_eq!(src.take_lines(2).await, expected(1..=2));
    // The writer adds a line and a partial one, then the file is rotated.
    append(&log, "line 3\npartial");
    std::fs::rename(&log, d.logs.path().join("app.log.1")).unwrap();
    append(&log, &numbered(4..=5));
    let got = src.take(4).await;
    assert_eq!(lines(&got), vec!["line 3", "partial", "line 4", "line 5"]);
    assert!(
        got.iter()
            .all(|r| r.labels.get("filename") == Some(log.to_str().unwrap()))
    );
    src.stop().await;
}

#[tokio::test]
async fn file_copytruncate_and_truncation_restart_from_zero() {
    let d = dirs();
    let log = d.logs.path().join("app.log");
    append(&log, &numbered(1..=3));
    let mut src = run(&d, "");
    assert_eq!(src.take_lines(3).await, expected(1..=3));
    // copytruncate: copy, then truncate in place; the file is now smaller than the position.
    std::fs::copy(&log, d.logs.path().join("app.log.1")).unwrap();
    File::create(&log).unwrap();
    append(&log, "after truncate\n");
    assert_eq!(src.take_lines(1).await, vec!["after truncate"]);
    // Truncated and rewritten past the old position before a poll: the fingerprint tells.
    let longer = format!("{}{}", "x".repeat(100), "\nrewritten\n");
    std::fs::write(&log, longer).unwrap();
    let got = src.take_lines(2).await;
    assert_eq!(got, vec!["x".repeat(100), "rewritten".to_string()]);
    src.stop().await;
}

#[tokio::test]
async fn file_long_lines_are_dropped_and_invalid_utf8_replaced() {
    let d = dirs();
    let log = d.logs.path().join("app.log");
    let mut content = format!("{}\nok\n", "y".repeat(50)).into_bytes();
    content.extend_from_slice(b"bad \xff byte\n");
    std::fs::write(&log, content).unwrap();
    let mut src = run(&d, "max_line_size = 20");
    assert_eq!(src.take_lines(2).await, vec!["ok", "bad \u{fffd} byte"]);
    assert_eq!(
        src.metrics.discarded(Signal::Logs, "line_too_long").get(),
        1
    );
    assert_eq!(src.metrics.received(Signal::Logs).get(), 3);
    assert_eq!(
        src.registry.counter_sum(
            "collector_invalid_utf8_lines_total",
            &[("component", "tail")]
        ),
        1
    );
    src.stop().await;
}

#[tokio::test]
async fn file_restart_has_no_duplicates_and_no_gaps() {
    let d = dirs();
    let log = d.logs.path().join("app.log");
    append(&log, &numbered(1..=5000));
    let mut all = Vec::new();

    // First run: stop at an arbitrary point, with lines still being read.
    let mut src = run(&d, "");
    // 5 batches of 1000; with a queue of 1 the source is blocked sending the third one.
    all.extend(src.take(1).await);
    append(&log, &numbered(5001..=5600));
    all.extend(src.stop().await);

    // Stopped: more lines, a partial one, then rotation and a new file.
    append(&log, &numbered(5601..=5700));
    append(&log, "line 5701");
    std::fs::rename(&log, d.logs.path().join("app.log.1")).unwrap();
    append(&log, &numbered(5702..=5800));

    // The positions file is valid JSON and no temp file was left behind.
    let positions = d.data.path().join("tail.positions.json");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&positions).unwrap()).unwrap();
    assert!(json["files"].is_array(), "{json}");
    let names: Vec<_> = std::fs::read_dir(d.data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["tail.positions.json"]);

    // Second run: everything not yet accepted, exactly once, in order.
    let mut src = run(&d, "");
    assert!(all.len() < 5600, "the first run was stopped early");
    let missing = 5800 - all.len();
    all.extend(src.take(missing).await);
    append(&log, &numbered(5801..=5810));
    all.extend(src.take(10).await);
    all.extend(src.stop().await);
    assert_eq!(lines(&all), expected(1..=5810));

    // A third run finds nothing new.
    let src = run(&d, "");
    append(&d.logs.path().join("marker.log"), "marker\n");
    let mut src = src;
    assert_eq!(src.take_lines(1).await, vec!["marker"]);
    assert!(src.stop().await.is_empty());

    // Positions point at the end of each file.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&positions).unwrap()).unwrap();
    let size = std::fs::metadata(&log).unwrap().len();
    let app = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str() == log.to_str())
        .unwrap();
    assert_eq!(app["offset"].as_u64(), Some(size));
}

#[tokio::test]
async fn file_a_reused_inode_with_other_content_is_a_new_file() {
    use std::os::unix::fs::MetadataExt;
    let d = dirs();
    let log = d.logs.path().join("app.log");
    append(&log, &numbered(1..=2));
    let meta = std::fs::metadata(&log).unwrap();
    // A position saved for another file that had this (device, inode): same identity, other
    // first bytes. Reading from its offset would skip "line 1".
    let saved = serde_json::json!({"files": [{
        "path": log, "dev": meta.dev(), "ino": meta.ino(),
        "fingerprint": {"len": 5, "hash": 12345}, "offset": 7
    }]});
    std::fs::write(
        d.data.path().join("tail.positions.json"),
        serde_json::to_vec(&saved).unwrap(),
    )
    .unwrap();
    let mut src = run(&d, "start_at = \"end\"");
    assert_eq!(src.take_lines(2).await, expected(1..=2));
    src.stop().await;
}

#[tokio::test]
async fn file_a_corrupt_positions_file_is_ignored() {
    let d = dirs();
    let log = d.logs.path().join("app.log");
    append(&log, &numbered(1..=2));
    std::fs::write(d.data.path().join("tail.positions.json"), b"{torn").unwrap();
    let mut src = run(&d, "");
    assert_eq!(src.take_lines(2).await, expected(1..=2));
    src.stop().await;
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.data.path().join("tail.positions.json")).unwrap())
            .unwrap();
    assert_eq!(json["files"][0]["offset"].as_u64(), Some(14));
}
