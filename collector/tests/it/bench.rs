//! `collector bench` as a user runs it: a small corpus through the three pipelines of a
//! collector in its own process; every item is acknowledged, the figures are written, and a
//! mistaken flag is refused with a reason.

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn collector() -> Command {
    Command::new(env!("CARGO_BIN_EXE_collector"))
}

#[test]
fn bench_measures_every_pipeline_and_accounts_for_every_item() {
    bench_every_pipeline("memory");
}

/// The same through disk buffers: every signal's batches written, read back and delivered.
#[test]
fn bench_through_disk_buffers_accounts_for_every_item() {
    bench_every_pipeline("disk");
}

fn bench_every_pipeline(buffer: &str) {
    let dir = std::env::temp_dir().join(format!(
        "collector-bench-it-{buffer}-{}",
        std::process::id()
    ));
    let out = dir.join("bench.json");
    let run = collector()
        .args(["bench", "--writer-buffer", buffer])
        .args(["--scale", "0.002", "--timeout", "2m", "--dir"])
        .arg(&dir)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.starts_with("OK: every item of 3 pipeline(s)"),
        "{stdout}"
    );
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let rows = figures.as_array().unwrap();
    let expected = [("logs", 4000), ("metrics", 4000), ("traces", 2000)];
    assert_eq!(rows.len(), 3);
    for (row, (name, items)) in rows.iter().zip(expected) {
        assert_eq!(row["pipeline"], name);
        assert_eq!(row["items"], items, "{row}");
        assert_eq!(row["sent"], items, "{row}");
        assert!(row["cpu_seconds"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["peak_rss_bytes"].as_u64().unwrap() > 1 << 20, "{row}");
        assert!(row["input_bytes"].as_u64().unwrap() > 0, "{row}");
        assert!(row["discarded"].as_object().unwrap().is_empty(), "{row}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bench_refuses_a_mistaken_flag() {
    let run = collector()
        .args(["bench", "--scale", "0"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("a fraction above 0"), "{err}");
    let run = collector()
        .args(["bench", "--pipeline", "loki"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("logs") && err.contains("metrics"), "{err}");
    let run = collector()
        .args(["bench", "--writer-buffer", "tape"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("memory") && err.contains("disk"), "{err}");
}

/// `--backend` sends a pipeline to a real backend (here the embedded stack) instead of the null
/// one: every line and span the bench counts as acknowledged is stored there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_backend_flag_sends_to_a_real_backend() {
    let stack = stack::EmbeddedStack::start(stack::EmbeddedConfig::default())
        .await
        .unwrap();
    let a = stack.addrs();
    let dir = tempfile::tempdir().unwrap();
    let backends = format!("logs=http://{},traces=http://{}", a.loki, a.otlp_http);
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_collector"));
    cmd.args(["bench", "--pipeline", "logs,traces", "--backend", &backends])
        .args(["--scale", "0.002", "--timeout", "2m", "--dir"])
        .arg(dir.path());
    let run = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let metrics = |addr: std::net::SocketAddr| async move {
        reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let sum = |text: &str, name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let loki = metrics(a.loki).await;
    assert_eq!(sum(&loki, "loki_embedded_ingested_entries_total"), 4000.0);
    let tempo = metrics(a.tempo).await;
    assert_eq!(sum(&tempo, "tempo_embedded_ingested_spans_total"), 2000.0);
    stack.shutdown().await;
}
