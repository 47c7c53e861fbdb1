//! The `collector` binary as a user runs it: `check` on the shipped examples and on a broken
//! config; `run` tails a file, stops on SIGTERM within a bounded time, and saves its positions so
//! the next run neither repeats nor skips a line.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::wait_exit;

fn collector() -> Command {
    Command::new(env!("CARGO_BIN_EXE_collector"))
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn check_accepts_the_examples() {
    let out = collector()
        .args(["check", "--config", &example("gateway.toml")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("OK (4 sources, 0 process, 3 writers)"),
        "{text}"
    );

    let out = collector()
        .args(["check", "--config", &example("node-agent.toml")])
        .env("REGION", "eu-west")
        .env("LOCATION", "store-101")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_names_file_line_and_key() {
    let out = collector()
        .args(["check", "--config", &example("node-agent.toml")])
        .env_remove("REGION")
        .env("LOCATION", "store-101")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("node-agent.toml:") && err.contains("REGION is not set"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[sources.a]\ntype = \"file\"\npaths = [\"/x\"]\nstart_att = \"end\"\n",
    )
    .unwrap();
    let out = collector()
        .args(["check", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("bad.toml:4: sources.a.start_att: unknown field"),
        "{err}"
    );

    let out = collector()
        .args(["check", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the config"));
}

/// A "Loki" that records every pushed line.
async fn recording_loki() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = lines.clone();
    let app = axum::Router::new().route(
        "/loki/api/v1/push",
        axum::routing::post(move |body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let req = wire::loki::decode_protobuf(&body, 1 << 24).unwrap();
                for s in req.streams {
                    for e in s.entries {
                        seen.lock().unwrap().push(e.line);
                    }
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (addr, lines)
}

#[tokio::test(flavor = "multi_thread")]
async fn run_stops_on_sigterm_and_resumes_where_it_stopped() {
    let (loki, lines) = recording_loki().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{data}\"\n[server]\nenabled = false\n\
             [sources.tail]\ntype = \"file\"\npaths = [\"{log}\"]\nstart_at = \"beginning\"\n\
             [writers.loki]\ntype = \"loki\"\ninputs = [\"tail\"]\nurl = \"http://{loki}/loki/api/v1/push\"\nbatch_wait = \"50ms\"\n",
            data = dir.path().join("data").display(),
            log = log.display()
        ),
    )
    .unwrap();
    let mut f = std::fs::File::create(&log).unwrap();
    let write = |f: &mut std::fs::File, range: std::ops::Range<u32>| {
        for i in range {
            writeln!(f, "line {i}").unwrap();
        }
        f.flush().unwrap();
    };
    let run = || {
        collector()
            .args(["run", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait_lines = |n: usize| {
        let lines = lines.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            while lines.lock().unwrap().len() < n {
                assert!(
                    Instant::now() < deadline,
                    "only {} of {n} lines arrived",
                    lines.lock().unwrap().len()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    write(&mut f, 0..100);
    let mut first = run();
    wait_lines(100).await;
    Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(wait_exit(&mut first, Duration::from_secs(20)).success());
    let positions = dir.path().join("data").join("tail.positions.json");
    assert!(
        positions.exists(),
        "positions saved at {}",
        positions.display()
    );

    write(&mut f, 100..150);
    let mut second = run();
    wait_lines(150).await;
    // Give a wrongly restarted tail the chance to repeat lines before stopping.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Command::new("kill")
        .args(["-INT", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(wait_exit(&mut second, Duration::from_secs(20)).success());
    let got = lines.lock().unwrap().clone();
    let want: Vec<String> = (0..150).map(|i| format!("line {i}")).collect();
    assert_eq!(
        got, want,
        "every line exactly once, in order, across the restart"
    );
}

/// `check` reports every mistake in one pass, each at the line of the bad value itself (a
/// nested one at its array element's line, not the table header's or the array's).
#[test]
fn check_reports_every_mistake_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"[sources.node]
type = "prometheus_scrape"
targets = [
  { address = "127.0.0.1:9100" },
  { address = "127.0.0.1:9101", labelz = { a = "b" } },
]
scrape_interval = "often"

[writers.mimir]
type = "prometheus_remote_write"
inputs = ["nowhere"]
url = "http://127.0.0.1:9009/api/v1/push"
queue_capacity = 0
"#,
    )
    .unwrap();
    let out = collector()
        .args(["check", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "bad.toml:5: sources.node.targets.labelz: unknown field `labelz`",
        "bad.toml:7: sources.node.scrape_interval: ",
        "bad.toml:11: writers.mimir.inputs: no component named \"nowhere\"",
        "bad.toml:13: writers.mimir.queue_capacity: must be a positive",
        "4 mistakes",
    ] {
        assert!(err.contains(want), "{want:?} not in:\n{err}");
    }
}

/// A busy port: the error names the address and says why once (not "cannot listen on X:
/// Address in use: Address in use", as when the cause was also the error's source).
#[test]
fn run_on_a_busy_port_says_why_once() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("busy.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\n[server]\naddress = \"{addr}\"\n\
             [sources.otlp]\ntype = \"otlp\"\nhttp_address = \"127.0.0.1:0\"\ngrpc_address = \"127.0.0.1:0\"\n\
             [writers.tempo]\ntype = \"otlp\"\ninputs = [\"otlp\"]\nurl = \"http://127.0.0.1:1\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = collector()
        .args(["run", "--config", cfg.to_str().unwrap()])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let cause = std::io::Error::from(std::io::ErrorKind::AddrInUse).to_string();
    assert!(err.contains(&addr.to_string()), "{err}");
    assert_eq!(err.matches("in use").count(), 1, "{cause}: {err}");
    drop(busy);
}

/// A source that cannot bind its port receives nothing: the collector is then not ready (and
/// not healthy), naming the source, rather than ready with a hole in it.
#[tokio::test(flavor = "multi_thread")]
async fn a_source_on_a_busy_port_makes_the_collector_not_ready() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = busy.local_addr().unwrap();
    let server = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("busy-source.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\n[server]\naddress = \"{server}\"\n\
             [sources.push]\ntype = \"loki_push\"\naddress = \"{taken}\"\n\
             [writers.loki]\ntype = \"loki\"\ninputs = [\"push\"]\nurl = \"http://127.0.0.1:1/loki/api/v1/push\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = collector()
        .args(["run", "--config", cfg.to_str().unwrap()])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let mut last = None;
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("http://{server}/-/ready")).send().await {
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            if body.contains("push") {
                last = Some((status, body));
                break;
            }
            last = Some((status, body));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(busy);
    let (status, body) = last.expect("the server answered");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("Not ready: failed components") && body.contains("push"),
        "{body}"
    );
}

/// The self-metrics of a running collector pass `promtool check metrics` (HELP and TYPE for
/// every family, counters named `_total`, base units), and every counter is there from the
/// start. Skips without promtool unless REQUIRE_LOCAL_SERVERS=1 (CI).
#[tokio::test(flavor = "multi_thread")]
async fn self_metrics_pass_promtool_and_start_at_zero() {
    let promtool = Command::new("promtool").arg("--version").output();
    if promtool.is_err() {
        assert!(
            std::env::var("REQUIRE_LOCAL_SERVERS").as_deref() != Ok("1"),
            "promtool is not installed (apt-get install prometheus) and REQUIRE_LOCAL_SERVERS=1"
        );
        eprintln!("skipping: promtool is not on PATH (apt-get install prometheus)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"data_dir = "{data}"
[server]
address = "127.0.0.1:0"
[sources.otlp]
type = "otlp"
http_address = "127.0.0.1:0"
grpc_address = "127.0.0.1:0"
[sources.node]
type = "prometheus_scrape"
targets = [{{ address = "127.0.0.1:1" }}]
[writers.loki]
type = "loki"
inputs = ["otlp"]
url = "http://127.0.0.1:1/loki/api/v1/push"
[writers.mimir]
type = "prometheus_remote_write"
inputs = ["otlp", "node"]
url = "http://127.0.0.1:1/api/v1/push"
[writers.tempo]
type = "otlp"
inputs = ["otlp"]
url = "http://127.0.0.1:1"
"#,
        data = dir.path().display()
    );
    let cfg = collector::config::Config::parse(&text, "promtool.toml", &|_| None).unwrap();
    let c = collector::runtime::Collector::start(&cfg).await.unwrap();
    let url = format!("http://{}/metrics", c.server_addr().unwrap());
    let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
    c.shutdown().await;

    // At 0 before anything happened: retries, scrape failures, discards per reason.
    for want in [
        "collector_retries_total{component=\"mimir\",kind=\"writer\"} 0",
        "collector_scrape_failures_total{component=\"node\",kind=\"source\",reason=\"timeout\"} 0",
        "collector_discarded_items_total{component=\"otlp\",kind=\"source\",signal=\"metrics\",reason=\"delta_series_limit\"} 0",
        "collector_discarded_items_total{component=\"tempo\",kind=\"writer\",signal=\"traces\",reason=\"retries_exhausted\"} 0",
        "collector_build_info{",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_virtual_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(body.contains(want), "{want:?} not in:\n{body}");
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
