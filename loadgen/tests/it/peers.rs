//! Any agent under test (`--agent`, `--collector-cmd CMD --collector-config TEMPLATE`): Debian's
//! `prometheus` in agent mode scrapes the fleet and remote-writes to the embedded stack, and the
//! run passes verification for metrics (logs and traces go direct, and the target says so); our
//! collector passes through the generic template path; an unknown placeholder is named with
//! file and line; an agent that exits at once fails fast with its exit status and stderr.
//!
//! Tests needing `prometheus` or the collector binary skip with a notice, unless
//! `REQUIRE_LOCAL_SERVERS=1` (CI), where they fail.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn skip(what: &str) {
    if stack::local::required() {
        panic!("{what} and REQUIRE_LOCAL_SERVERS=1");
    }
    eprintln!("SKIP: {what}");
}

fn loadgen(out: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "--devices",
            "20",
            "--duration",
            "15s",
            "--rate",
            "3",
            "--drain",
            "40s",
            "--out",
        ])
        .arg(out)
        .args(args)
        .output()
        .unwrap()
}

fn results(dir: &Path) -> reports::Results {
    reports::Results::from_json(&std::fs::read_to_string(dir.join("results.json")).unwrap())
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_prometheus_agent_passes_verification_for_metrics() {
    if stack::local::find_binary(stack::local::PROMETHEUS_BINARY).is_err() {
        return skip("prometheus is not installed (apt-get install prometheus)");
    }
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let run = loadgen(
        &dir,
        &["--agent", "prometheus-agent", "--delivery", "scrape"],
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let r = results(&dir);
    assert_eq!(r.run.agent, "prometheus-agent");
    assert!(
        r.run
            .target
            .contains("agent prometheus-agent (metrics; direct to the stack: logs, traces)"),
        "{}",
        r.run.target
    );
    let m = &r.signals["metrics"].verification;
    assert!(m.canaries > 0 && m.found == m.canaries, "{m:?}");
    assert_eq!(m.lost, 0);
    // The rendered config and the agent's logs are in the run folder; its data is gone.
    assert!(dir.join("agent/agent.yml").is_file());
    assert!(dir.join("agent/prometheus-agent.stderr.log").is_file());
    assert!(!dir.join("agent/data").exists());
    // Its CPU and RSS were sampled.
    assert!(
        r.resources
            .iter()
            .any(|s| s.process == "collector" && s.rss_bytes > 1 << 20)
    );
}

#[test]
fn our_collector_passes_through_the_generic_template_path() {
    let collector = PathBuf::from(env!("CARGO_BIN_EXE_loadgen")).with_file_name("collector");
    if !collector.is_file() {
        return skip(&format!(
            "collector binary {} not built",
            collector.display()
        ));
    }
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let template = repo().join("deploy/peers/collector/agent.toml.tmpl");
    let cmd = format!("{} run --config {{{{config}}}}", collector.display());
    let run = loadgen(
        &dir,
        &[
            "--collector-cmd",
            &cmd,
            "--collector-config",
            template.to_str().unwrap(),
            "--collector-ready",
            "/-/ready",
        ],
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let r = results(&dir);
    assert_eq!(r.run.agent, "collector");
    for (name, s) in &r.signals {
        assert!(s.verification.canaries > 0, "{name}");
        assert_eq!(s.verification.lost, 0, "{name}: {:?}", s.verification);
    }
    assert!(dir.join("agent/agent.toml").is_file());
}

#[test]
fn an_unknown_placeholder_is_named_with_file_and_line() {
    let out = tempfile::tempdir().unwrap();
    let template = out.path().join("bad.tmpl");
    std::fs::write(&template, "a = 1\nport = {{loki_port}}\n").unwrap();
    let run = loadgen(
        &out.path().join("run"),
        &[
            "--collector-cmd",
            "agent --config {{config}}",
            "--collector-config",
            template.to_str().unwrap(),
        ],
    );
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    let want = format!(
        "{}:2: unknown placeholder {{{{loki_port}}}}",
        template.display()
    );
    assert!(text(&run).contains(&want), "{want} in {}", text(&run));
}

#[test]
fn an_agent_that_exits_at_once_fails_fast_with_its_stderr() {
    use std::os::unix::fs::PermissionsExt;
    let out = tempfile::tempdir().unwrap();
    let script = out.path().join("boom-agent");
    std::fs::write(&script, "#!/bin/sh\necho boom >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let template = out.path().join("agent.yaml.tmpl");
    std::fs::write(&template, "listen: 127.0.0.1:{{remote_write_port}}\n").unwrap();
    let run = loadgen(
        &out.path().join("run"),
        &[
            "--collector-cmd",
            &format!("{} {{{{config}}}}", script.display()),
            "--collector-config",
            template.to_str().unwrap(),
        ],
    );
    let all = text(&run);
    assert_eq!(run.status.code(), Some(2), "{all}");
    for needle in ["agent `boom-agent`", "exit status: 3", "boom"] {
        assert!(all.contains(needle), "{needle} in {all}");
    }
    // Failing fast: it exited, not timed out waiting for readiness.
    assert!(!all.contains("not ready within"), "{all}");
}
