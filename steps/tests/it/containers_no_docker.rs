#![allow(clippy::unwrap_used)]
#![cfg(feature = "e2e")]
//! `--features e2e` on a machine without Docker: `containers::start()` must fail within seconds
//! with a message that says what to run instead, not hang or print a bollard error.
//!
//! The environment cannot be changed safely inside a test process (and `unsafe` is forbidden
//! here), so the outer test runs this same binary again with `DOCKER_HOST` pointing at a socket
//! that does not exist, and the inner test (ignored unless run that way) does the start.

use std::process::Command;
use std::time::{Duration, Instant};

const INNER: &str = "STEPS_NO_DOCKER_INNER";

#[test]
fn start_without_docker_fails_fast_with_a_clear_message() {
    let exe = std::env::current_exe().unwrap();
    let t0 = Instant::now();
    let out = Command::new(exe)
        .args([
            "--exact",
            "containers_no_docker::inner_start",
            "--include-ignored",
            "--nocapture",
        ])
        .env("DOCKER_HOST", "unix:///nonexistent/steps-e2e/docker.sock")
        .env(INNER, "1")
        .output()
        .unwrap();
    let elapsed = t0.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "inner test failed:\n{text}");
    assert!(
        text.contains(
            "no Docker engine found (/nonexistent/steps-e2e/docker.sock does not exist): --features e2e needs Docker; run `cargo test` for the embedded stack or STEPS_STACK=external for your own stack"
        ),
        "{text}"
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

#[tokio::test]
#[ignore = "run by start_without_docker_fails_fast_with_a_clear_message"]
async fn inner_start() {
    if std::env::var_os(INNER).is_none() {
        return;
    }
    let t0 = Instant::now();
    let err = match steps::containers::start().await {
        Ok(_) => panic!("started containers with DOCKER_HOST at a missing socket"),
        Err(e) => e,
    };
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(matches!(
        err,
        steps::containers::ContainersError::NoDocker { .. }
    ));
    println!("{err}");
}
