//! The `loadgen` binary: the fleet listing, and clear errors (exit code 2) for a bad `--slo`
//! and a bad `--fleet` file.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn fleet_lists_the_devices() {
    let out = loadgen(&["fleet", "--devices", "20"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("fleet: 20 devices"), "{stdout}");
    let devices = stdout.lines().filter(|l| l.starts_with("device ")).count();
    assert_eq!(devices, 20, "{stdout}");
}

#[test]
fn a_bad_slo_names_itself() {
    let out = loadgen(&["--devices", "5", "--slo", "lost=1"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("--slo") && stderr.contains("unknown name `lost`"),
        "{stderr}"
    );
}

#[test]
fn a_bad_fleet_file_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let out = loadgen(&["fleet", "--fleet", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("--fleet") && stderr.contains("missing.toml"),
        "{stderr}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "problem_fraction = 2.0\n").unwrap();
    let out = loadgen(&["run", "--fleet", bad.to_str().unwrap(), "--duration", "1s"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("problem_fraction"), "{stderr}");
}

#[test]
fn a_breached_slo_exits_1_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let out = loadgen(&[
        "--devices",
        "10",
        "--duration",
        "2s",
        "--rate",
        "5",
        "--drain",
        "10s",
        "--direct",
        "--out",
        dir.path().join("run").to_str().unwrap(),
        "--slo",
        "p99_send_ms=0",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("SLO breached: p99_send_ms"), "{stderr}");
    assert!(dir.path().join("run/results.json").exists());
}
