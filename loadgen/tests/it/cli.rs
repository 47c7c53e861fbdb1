//! The `loadgen` binary: the fleet listing (whole and one shard), clear errors (exit code 2)
//! for a bad `--slo`, a bad `--fleet` file, a bad `--shard` and a target that fails preflight,
//! the verdict (exit code 1, the reason first) of runs through collectors that lose or refuse
//! data, and `compare` on run folders.

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
    assert!(stderr.contains("FAIL: p99_send_ms"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("FAIL: p99_send_ms"),
        "the verdict is the first line: {stdout}"
    );
    assert!(dir.path().join("run/results.json").exists());
}

/// A receiver nobody wrote well: answers preflight's empty probes with `probe`, the n-th
/// request with data (0-based) with `status(n)`, and stores nothing. Returns its base URL.
async fn fake_receiver(
    probe: u16,
    status: impl Fn(u64) -> u16 + Send + Sync + 'static,
) -> (String, tokio::task::JoinHandle<()>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let n = Arc::new(AtomicU64::new(0));
    let status = Arc::new(status);
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let (n, status) = (n.clone(), status.clone());
        async move {
            // Probes carry (almost) nothing; count only requests with data.
            let i = if body.len() > 16 {
                n.fetch_add(1, Ordering::Relaxed)
            } else {
                0
            };
            let code = if body.len() > 16 { status(i) } else { probe };
            axum::http::StatusCode::from_u16(code).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task)
}

/// Runs loadgen (blocking, in a thread) with `args` against the embedded stack `e` as the
/// external stack.
async fn run_against(e: &stack::Endpoints, args: Vec<String>) -> Output {
    let mut all: Vec<String> = [
        "--devices",
        "6",
        "--duration",
        "2s",
        "--rate",
        "5",
        "--drain",
        "2s",
        "--stack",
        "external",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    all.extend([
        "--loki-url".into(),
        e.loki.to_string(),
        "--mimir-write-url".into(),
        e.prometheus_write.to_string(),
        "--mimir-query-url".into(),
        e.prometheus_query.to_string(),
        "--tempo-otlp-url".into(),
        e.tempo_otlp_http.to_string(),
        "--tempo-query-url".into(),
        e.tempo_query.to_string(),
    ]);
    all.extend(args);
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(&all)
            .env_remove("COLLECTOR_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn collector_at(url: &str, out: &std::path::Path) -> Vec<String> {
    vec![
        "--collector-loki-url".into(),
        url.into(),
        "--collector-write-url".into(),
        format!("{url}/api/v1/write"),
        "--collector-otlp-url".into(),
        url.into(),
        "--out".into(),
        out.display().to_string(),
    ]
}

#[tokio::test]
async fn a_collector_that_loses_everything_fails_the_run() {
    let stack = stack::EmbeddedStack::start(stack::EmbeddedConfig::default())
        .await
        .unwrap();
    // Acknowledges everything, delivers nothing.
    let (url, _task) = fake_receiver(204, |_| 204).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_against(
        stack.endpoints(),
        collector_at(&url, &dir.path().join("run")),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{out:?}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("FAIL: loss 1 > 0"), "{stdout}");
    assert!(first.contains("canaries lost (100.000%)"), "{first}");
    let results = std::fs::read_to_string(dir.path().join("run/results.json")).unwrap();
    let r: serde_json::Value = serde_json::from_str(&results).unwrap();
    assert_eq!(r["verdict"]["outcome"], "fail");
    let html = std::fs::read_to_string(dir.path().join("run/report.html")).unwrap();
    assert!(html.contains("banner fail") && !html.contains("banner pass"));
}

#[tokio::test]
async fn a_collector_that_refuses_some_requests_fails_the_run() {
    let stack = stack::EmbeddedStack::start(stack::EmbeddedConfig::default())
        .await
        .unwrap();
    let (url, _task) = fake_receiver(204, |i| if i % 2 == 0 { 204 } else { 429 }).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_against(
        stack.endpoints(),
        collector_at(&url, &dir.path().join("run")),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{out:?}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("FAIL:"), "{stdout}");
    assert!(
        first.contains("errors") && first.contains("429:"),
        "{first}"
    );
}

#[tokio::test]
async fn a_wrong_port_or_path_stops_the_run_in_preflight() {
    let stack = stack::EmbeddedStack::start(stack::EmbeddedConfig::default())
        .await
        .unwrap();
    let (url_404, _task) = fake_receiver(404, |_| 404).await;
    // Nothing listens on a port just released.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let mut args = collector_at(&closed, &dir.path().join("run"));
    // Remote write to a server that answers 404 to everything (a wrong path).
    args[3] = format!("{url_404}/api/v1/write");
    let started = std::time::Instant::now();
    let out = run_against(stack.endpoints(), args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}\n{out:?}");
    assert!(
        stderr.contains("preflight failed, the run did not start"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "logs push (Loki push API) at {closed}/loki/api/v1/push: cannot connect (Connection refused"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "metrics push (Prometheus remote write) at {url_404}/api/v1/write: HTTP 404"
        )) && stderr.contains("wrong port or path"),
        "{stderr}"
    );
    // The 2 s load never ran: the run stopped in preflight (a generous bound, for slow CI).
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(!dir.path().join("run/results.json").exists());
}

#[test]
fn a_collector_url_with_a_port_is_refused_with_the_gateway_ports() {
    let out = loadgen(&["--devices", "5", "--collector", "http://127.0.0.1:4318"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("without a port") && stderr.contains("--collector-otlp-url"),
        "{stderr}"
    );
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
