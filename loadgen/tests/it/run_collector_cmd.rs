//! `--collector-cmd`: loadgen spawns the collector binary in front of the embedded stack, the
//! run loses nothing through it, the collector's CPU and RSS are sampled apart from loadgen's,
//! and the collector SLOs are checked (a generous bound passes, an impossible one fails).
//! A missing binary fails fast with its path.
//!
//! The collector binary is `target/<profile>/collector`, built by `cargo test --workspace`;
//! with `cargo test -p loadgen` alone it may be missing: the test then skips with a notice,
//! unless `REQUIRE_LOCAL_SERVERS=1` (CI), where it fails.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

fn collector_binary() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_loadgen")).with_file_name("collector");
    if p.is_file() {
        return Some(p);
    }
    let msg = format!(
        "collector binary {} not built (run `cargo test --workspace` or `cargo build -p collector`)",
        p.display()
    );
    if std::env::var("REQUIRE_LOCAL_SERVERS").as_deref() == Ok("1") {
        panic!("{msg}");
    }
    eprintln!("SKIP: {msg}");
    None
}

#[test]
fn a_spawned_collector_is_measured_and_its_slos_checked() {
    let Some(collector) = collector_binary() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let run = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "--devices",
            "60",
            "--duration",
            "4s",
            "--rate",
            "2",
            "--out",
        ])
        .arg(&dir)
        .arg("--collector-cmd")
        .arg(&collector)
        .args([
            "--slo",
            "loss=0",
            "--slo",
            "collector_rss_mb=4096",
            "--slo",
            "collector_cpu_cores=0.000001",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    // The impossible CPU bound breaks: exit 1, and the summary says which SLO.
    assert_eq!(run.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("FAIL  collector_cpu_cores"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("PASS  collector_rss_mb"), "{stdout}");
    assert!(stdout.contains("PASS  loss"), "{stdout}");
    assert!(stdout.contains("collector: mean CPU"), "{stdout}");

    let results =
        reports::Results::from_json(&std::fs::read_to_string(dir.join("results.json")).unwrap())
            .unwrap();
    let collector_samples: Vec<_> = results
        .resources
        .iter()
        .filter(|s| s.process == "collector")
        .collect();
    assert!(!collector_samples.is_empty(), "no collector samples");
    assert!(
        collector_samples.iter().all(|s| s.rss_bytes > 1 << 20),
        "{collector_samples:?}"
    );
    assert!(results.run.target.contains("collector process"));
    for s in results.signals.values() {
        assert_eq!(s.verification.lost, 0, "{:?}", s.verification);
        assert!(s.verification.canaries > 0);
    }
}

#[test]
fn a_missing_collector_binary_is_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "--devices",
            "5",
            "--duration",
            "2s",
            "--collector-cmd",
            "/nonexistent/collector",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/collector not found"), "{err}");
}

#[test]
fn collector_slos_need_a_collector_process() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "--devices",
            "5",
            "--duration",
            "2s",
            "--slo",
            "collector_rss_mb=100",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--collector-cmd"), "{err}");
}
