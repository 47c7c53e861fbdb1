//! `stack serve` as a user runs it: the binary starts, prints its endpoints, answers on every
//! port, and stops cleanly on SIGINT (Ctrl-C) and on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Served {
    child: Child,
    endpoints: serde_json::Value,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(extra: &[&str]) -> Served {
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

/// Waits (bounded) for the process to exit and returns its status.
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "stack serve did not stop within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
    let status = wait_exit(&mut s.child);
    assert!(status.success(), "exit status after Ctrl-C: {status:?}");
}

#[test]
fn serve_stops_on_sigterm() {
    let mut s = serve(&[]);
    signal(&s.child, "-TERM");
    let status = wait_exit(&mut s.child);
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
    let out = Command::new(env!("CARGO_BIN_EXE_stack"))
        .args(["serve", "--retention", "lots"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--retention"), "stderr: {err}");
}
