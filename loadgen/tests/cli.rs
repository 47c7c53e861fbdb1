//! The `loadgen` binary: the fleet listing (whole and one shard), clear errors (exit code 2)
//! for a bad `--slo`, a bad `--fleet` file and a bad `--shard`, and `compare` on run folders.

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
fn fleet_lists_one_shard() {
    let out = loadgen(&["fleet", "--shard", "1/3", "--devices", "30"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let indexes: Vec<u64> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("device "))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    let expected: Vec<u64> = (0..30).filter(|i| i % 3 == 1).collect();
    assert_eq!(indexes, expected, "{stdout}");
}

#[test]
fn a_bad_shard_names_the_flag() {
    for bad in ["3/2", "a/b", "0/0"] {
        for cmd in ["fleet", "run"] {
            let out = loadgen(&[cmd, "--devices", "5", "--shard", bad]);
            assert_eq!(out.status.code(), Some(2), "{cmd} --shard {bad}: {out:?}");
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert!(stderr.contains("--shard"), "{stderr}");
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["fleet", "--devices", "5", "--shard-from-env"])
        .env_remove("LOADGEN_SHARD_INDEX")
        .env_remove("JOB_COMPLETION_INDEX")
        .env("LOADGEN_SHARDS", "2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("--shard-from-env") && stderr.contains("JOB_COMPLETION_INDEX"),
        "{stderr}"
    );
}

#[test]
fn the_shard_comes_from_the_job_completion_index() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["fleet", "--devices", "10", "--shard-from-env"])
        .env_remove("LOADGEN_SHARD_INDEX")
        .env("JOB_COMPLETION_INDEX", "1")
        .env("LOADGEN_SHARDS", "2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("fleet: 5 devices (shard 1/2 of 10 devices)"),
        "{stdout}"
    );
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

#[test]
fn compare_takes_run_folders_and_warns_about_different_settings() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
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
        run.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    // Off a terminal, progress is plain lines, never a bar's control sequences.
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        !stderr.contains('\r') && !stderr.contains("\u{1b}["),
        "{stderr}"
    );
    // What a run now records: requests, body bytes and the verifier's poll interval.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    let logs = &json["signals"]["logs"];
    assert!(logs["requests"].as_u64().unwrap() > 0, "{logs}");
    assert!(logs["bytes"].as_u64().unwrap() > logs["requests"].as_u64().unwrap());
    assert_eq!(logs["verification"]["poll_interval_ms"], 1000);

    // A run against itself, by folder: no warnings, nothing better or worse.
    let out = loadgen(&["compare", run.to_str().unwrap(), run.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("≈ same") && !stdout.contains("better"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("worse") && !stdout.contains("warning"),
        "{stdout}"
    );

    // Another device count: warned about on stderr and in the output.
    let mut other = json.clone();
    other["run"]["devices"] = 5000.into();
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    std::fs::write(other_dir.join("results.json"), other.to_string()).unwrap();
    let out = loadgen(&[
        "compare",
        run.to_str().unwrap(),
        other_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stderr.contains("warning: devices: 10 and 5,000"),
        "{stderr}"
    );
    assert!(
        stdout.contains("warning: the runs differ in devices: 10 and 5,000"),
        "{stdout}"
    );
}
