//! `stack serve` as a user runs it: the binary starts, prints its endpoints, answers on every
//! port, stops cleanly on SIGINT (Ctrl-C) and on SIGTERM, takes the fidelity flags, and every
//! `/metrics` it serves passes `promtool check metrics` (skipped with a notice when promtool is
//! not installed, unless `REQUIRE_LOCAL_SERVERS=1`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use testkit::wait_exit;

pub(crate) struct Served {
    child: Child,
    pub(crate) endpoints: serde_json::Value,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `stack serve --ephemeral --json` with `extra` flags, once it has printed its endpoints.
pub(crate) fn serve(extra: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stack"))
        .args(["serve", "--ephemeral", "--json"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("stack binary starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reads the endpoints line");
    let endpoints = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("first line is JSON ({e}): {line:?}"));
    Served { child, endpoints }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[tokio::test]
async fn serve_answers_on_every_port_and_stops_on_ctrl_c() {
    let mut s = serve(&[]);
    let http = reqwest::Client::new();
    for key in ["loki", "mimir", "tempo"] {
        let addr = s.endpoints["addrs"][key].as_str().expect("address");
        let r = http
            .get(format!("http://{addr}/ready"))
            .send()
            .await
            .expect("ready answers");
        assert_eq!(r.status(), 200, "{key} /ready");
    }
    assert!(
        s.endpoints["addrs"]["loki"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    signal(&s.child, "-INT");
    let status = wait_exit(&mut s.child, Duration::from_secs(20));
    assert!(status.success(), "exit status after Ctrl-C: {status:?}");
}

#[test]
fn serve_stops_on_sigterm() {
    let mut s = serve(&[]);
    signal(&s.child, "-TERM");
    let status = wait_exit(&mut s.child, Duration::from_secs(20));
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_stack"))
        .args([
            "serve",
            "--loki-port",
            &port,
            "--mimir-port",
            "0",
            "--tempo-port",
            "0",
        ])
        .args(["--otlp-http-port", "0", "--otlp-grpc-port", "0"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Loki") && err.contains(&port), "stderr: {err}");
}

#[test]
fn bad_flag_values_are_named() {
    for (flag, value) in [
        ("--retention", "lots"),
        ("--promql-compat", "4"),
        ("--out-of-order-window", "ten minutes"),
        ("--loki-discover-service-name", "maybe"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_stack"))
            .args(["serve", flag, value])
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "stderr: {err}");
    }
}

/// `promtool` on PATH, or `None` after a notice (a failure with `REQUIRE_LOCAL_SERVERS=1`).
fn promtool() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("REQUIRE_LOCAL_SERVERS").as_deref() != Ok("1"),
            "promtool is not on PATH and REQUIRE_LOCAL_SERVERS=1 (apt-get install prometheus)"
        );
        eprintln!("notice: promtool not on PATH, `promtool check metrics` test skipped");
    }
    found
}

#[tokio::test]
async fn every_metrics_page_passes_promtool_check_metrics() {
    let Some(promtool) = promtool() else {
        return;
    };
    // The fidelity flags are accepted; data and refusals make labelled series appear.
    let s = serve(&[
        "--out-of-order-window",
        "10m",
        "--promql-compat",
        "2",
        "--loki-discover-service-name",
        "false",
        "--loki-discover-log-levels",
        "true",
    ]);
    let addr = |k: &str| {
        s.endpoints["addrs"][k]
            .as_str()
            .expect("address")
            .to_string()
    };
    let http = reqwest::Client::new();
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    // With discovery off a stream without labels is refused again (a discard counted).
    for (stream, want) in [
        (serde_json::json!({"job": "cli"}), 204),
        (serde_json::json!({}), 400),
    ] {
        let push = serde_json::json!({"streams": [{"stream": stream, "values": [[now_ns.to_string(), "hello"]]}]});
        let r = http
            .post(format!("http://{}/loki/api/v1/push", addr("loki")))
            .json(&push)
            .send()
            .await
            .expect("loki push");
        assert_eq!(r.status().as_u16(), want, "{stream}");
    }
    let now_ms = (now_ns / 1_000_000) as i64;
    let body = stack::embedded::mimir::write::encode_series(&[(
        vec![("__name__", "cli_up")],
        vec![(now_ms, 1.0), (now_ms - 1_200_000, 1.0)],
    )]);
    let r = http
        .post(format!("http://{}/api/v1/push", addr("mimir")))
        .header("Content-Encoding", "snappy")
        .body(body)
        .send()
        .await
        .expect("mimir push");
    assert_eq!(
        r.status().as_u16(),
        400,
        "the 20-minute-old sample is too old"
    );
    let trace = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "name": "cli", "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]});
    let r = http
        .post(format!("http://{}/v1/traces", addr("otlp_http")))
        .json(&trace)
        .send()
        .await
        .expect("otlp push");
    assert_eq!(r.status().as_u16(), 200);

    for key in ["loki", "mimir", "tempo"] {
        let page = testkit::get_text(format!("http://{}/metrics", addr(key))).await;
        assert!(!page.is_empty(), "{key}");
        let mut child = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool runs");
        {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().expect("stdin piped");
            stdin.write_all(page.as_bytes()).expect("feeds promtool");
        }
        let out = child.wait_with_output().expect("promtool finishes");
        assert!(
            out.status.success(),
            "{key} /metrics fails promtool check metrics:\n{}{}\n{page}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
