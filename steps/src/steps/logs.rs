//! `logs.feature`: node agents tail log files into Loki with the node's labels; the Docker
//! source and the docker stage; tailing across a collector restart.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cucumber::{given, then, when};

use super::{label_mismatches, node_selector};
use crate::StepsWorld;
use crate::collectors::{ScenarioCollector, loki_base, node_agent_text, toml_str, writers_toml};
use crate::device::NodeIdentity;
use crate::eventually::{Attempt, PATIENCE, eventually};
use crate::query::{Api, Exchange, label};

/// How far back log queries look.
pub const LOOKBACK: Duration = Duration::from_secs(600);

/// A node identity unique to the scenario.
pub fn identity(
    w: &StepsWorld,
    node_type: &str,
    region: &str,
    brand: &str,
    mode: &str,
) -> NodeIdentity {
    NodeIdentity {
        node_type: node_type.into(),
        region: region.into(),
        location: w.unique("store"),
        device: w.unique(node_type),
        brand: brand.into(),
        problem_mode: mode.into(),
    }
}

/// Starts the node-agent template for `id` as collector `name`: it scrapes `exporter` (an
/// address where nothing listens when there is none) and tails `log_dir/*.log`.
pub async fn start_agent(
    w: &mut StepsWorld,
    name: &str,
    id: &NodeIdentity,
    exporter: Option<SocketAddr>,
    log_dir: &Path,
) -> anyhow::Result<()> {
    let e = w.endpoints().await?;
    std::fs::create_dir_all(log_dir)?;
    let (text, file) = node_agent_text()?;
    let mut env: BTreeMap<String, String> = id
        .env()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let data = w.dir.path().join(format!("{name}-data"));
    env.insert("COLLECTOR_DATA_DIR".into(), data.display().to_string());
    env.insert("COLLECTOR_LISTEN".into(), "127.0.0.1:0".into());
    env.insert(
        "EXPORTER_ADDRESS".into(),
        exporter.map_or_else(|| "127.0.0.1:9".to_string(), |a| a.to_string()),
    );
    env.insert(
        "LOG_PATH".into(),
        log_dir.join("*.log").display().to_string(),
    );
    env.insert("LOKI_URL".into(), loki_base(&e));
    env.insert("MIMIR_WRITE_URL".into(), e.prometheus_write.to_string());
    let c = ScenarioCollector::start(name, &file, text, env).await?;
    w.collectors.insert(name.to_string(), c);
    Ok(())
}

fn log_dir(w: &StepsWorld, node: &str) -> PathBuf {
    w.dir.path().join(format!("{node}-logs"))
}

#[given(
    expr = "a node agent for a {string} node in region {string} of brand {string} in {string} mode"
)]
async fn node_agent_for(
    w: &mut StepsWorld,
    node_type: String,
    region: String,
    brand: String,
    mode: String,
) -> anyhow::Result<()> {
    let id = identity(w, &node_type, &region, &brand, &mode);
    let dir = log_dir(w, "node");
    std::fs::create_dir_all(&dir)?;
    // Present (empty) before the agent starts: it starts at the end of files it finds.
    std::fs::File::create(dir.join("app.log"))?;
    start_agent(w, "agent", &id, None, &dir).await?;
    w.identities.insert("node".into(), id);
    Ok(())
}

/// Appends `n` numbered lines to the node's `file`.
fn write_lines(w: &mut StepsWorld, file: &str, n: usize) -> anyhow::Result<()> {
    let id = w.identity("node")?;
    let path = log_dir(w, "node").join(file);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let written = w.written.entry(file.to_string()).or_default();
    for _ in 0..n {
        let seq = written.len() + 1;
        let line = format!(
            "{} level=info device={} msg=\"scenario line {seq}\" scenario={}",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            id.device,
            w.id
        );
        writeln!(f, "{line}")?;
        written.push(line);
    }
    f.flush()?;
    Ok(())
}

#[when(expr = "the node writes {int} lines to its log file {string}")]
async fn node_writes(w: &mut StepsWorld, n: usize, file: String) -> anyhow::Result<()> {
    write_lines(w, &file, n)
}

/// Waits until `selector` returns exactly `expected` (as a multiset, in any stream).
pub async fn expect_lines(
    w: &mut StepsWorld,
    what: &str,
    query: &str,
    expected: Vec<String>,
) -> anyhow::Result<Exchange> {
    let api = w.api().await?;
    let r = eventually(what, PATIENCE, || {
        let api = api.clone();
        let query = query.to_string();
        let expected = expected.clone();
        async move { lines_attempt(&api, &query, &expected).await }
    })
    .await;
    w.record(r)
}

async fn lines_attempt(api: &Api, query: &str, expected: &[String]) -> Attempt<Exchange> {
    let ex = match api.logql(query, LOOKBACK, 1000).await {
        Ok(ex) => ex,
        Err(e) => return Attempt::not_yet_bare(e.to_string()),
    };
    if !ex.ok() {
        return Attempt::not_yet("the query failed", &ex);
    }
    let mut got = ex.lines();
    got.sort();
    let mut want = expected.to_vec();
    want.sort();
    if got == want {
        return Attempt::Pass(ex);
    }
    let missing: Vec<&String> = want.iter().filter(|l| !got.contains(l)).collect();
    let mut seen = std::collections::BTreeMap::<&String, usize>::new();
    for l in &got {
        *seen.entry(l).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    Attempt::not_yet(
        format!(
            "want {} lines, got {}; missing {missing:?}; duplicated {dups:?}",
            want.len(),
            got.len()
        ),
        &ex,
    )
}

#[then(
    regex = r"^within 20 s Loki returns those (\d+) lines for the node(?:, each exactly once)?$"
)]
async fn loki_returns_those(w: &mut StepsWorld, n: usize) -> anyhow::Result<()> {
    let id = w.identity("node")?;
    let expected: Vec<String> = w.written.values().flatten().cloned().collect();
    anyhow::ensure!(
        expected.len() == n,
        "the scenario wrote {} lines, not {n}",
        expected.len()
    );
    let q = format!("{{{}}}", node_selector(&id));
    expect_lines(
        w,
        &format!("Loki returns the node's {n} lines"),
        &q,
        expected,
    )
    .await
    .map(|_| ())
}

#[then(
    "every stream of the node is labelled with its region, location, node_type, device, brand and problem_mode"
)]
async fn streams_labelled(w: &mut StepsWorld) -> anyhow::Result<()> {
    let id = w.identity("node")?;
    let ex = w
        .last
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no Loki answer to look at"))?;
    let streams = ex.streams();
    anyhow::ensure!(!streams.is_empty(), "no streams\n{ex}");
    for (labels, _) in &streams {
        let bad = label_mismatches(labels, &id);
        anyhow::ensure!(bad.is_empty(), "stream {labels:?}: {bad:?}\n{ex}");
    }
    Ok(())
}

#[when(
    "the node agent is stopped, the node writes 5 lines to its log file \"app.log\", and the agent is started again"
)]
async fn restart_agent(w: &mut StepsWorld) -> anyhow::Result<()> {
    w.collector("agent")?.stop().await;
    write_lines(w, "app.log", 5)?;
    w.collector("agent")?.restart().await?;
    Ok(())
}

#[when(
    "the node agent is killed (kill -9), the node writes 5 lines to its log file \"app.log\", and the agent is started again"
)]
async fn crash_agent(w: &mut StepsWorld) -> anyhow::Result<()> {
    w.collector("agent")?.crash_and_restart().await?;
    write_lines(w, "app.log", 5)?;
    Ok(())
}

// --- Docker

fn docker_names(w: &StepsWorld, name: &str) -> (String, String) {
    (
        w.vars
            .get(&format!("container:{name}"))
            .cloned()
            .unwrap_or_default(),
        w.vars
            .get(&format!("project:{name}"))
            .cloned()
            .unwrap_or_default(),
    )
}

#[given(
    expr = "a Docker engine running container {string} of compose service {string} in project {string}"
)]
async fn docker_engine(
    w: &mut StepsWorld,
    name: String,
    service: String,
    project: String,
) -> anyhow::Result<()> {
    let socket = w.dir.path().join("docker.sock");
    let engine = crate::docker_engine::FakeDockerEngine::start(&socket)?;
    let container = format!("{name}-{}", w.id);
    let project_name = format!("{project}-{}", w.id);
    engine.run(
        &format!("{:0>12}", w.id.replace('-', "")),
        &container,
        &service,
        &project_name,
    );
    w.vars.insert(format!("container:{name}"), container);
    w.vars.insert(format!("project:{name}"), project_name);
    w.docker = Some(engine);
    Ok(())
}

#[given("a collector following the Docker engine's containers")]
async fn docker_collector(w: &mut StepsWorld) -> anyhow::Result<()> {
    let e = w.endpoints().await?;
    let host = w
        .docker
        .as_ref()
        .map(|d| d.host())
        .ok_or_else(|| anyhow::anyhow!("no Docker engine in this scenario"))?;
    let text = format!(
        "data_dir = {dir}\n[server]\naddress = \"127.0.0.1:0\"\n\n[sources.containers]\ntype = \"docker\"\nhost = {host}\nrefresh_interval = \"200ms\"\nsync_period = \"200ms\"\nlabels = {{ job = \"docker\" }}\n\n{writers}",
        dir = toml_str(&w.dir.path().join("docker-data").display().to_string()),
        host = toml_str(&host),
        writers = writers_toml(&e, &["containers"], &[], &[], None),
    );
    let c = ScenarioCollector::start("docker", "docker.toml", text, BTreeMap::new()).await?;
    w.collectors.insert("docker".into(), c);
    Ok(())
}

#[when(expr = "container {string} writes {int} lines to stdout and {int} line(s) to stderr")]
async fn container_writes(
    w: &mut StepsWorld,
    name: String,
    out: usize,
    err: usize,
) -> anyhow::Result<()> {
    let (container, _) = docker_names(w, &name);
    let engine = w
        .docker
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no Docker engine in this scenario"))?;
    let mut lines = Vec::new();
    for (stream, n, what) in [(1u8, out, "out"), (2u8, err, "err")] {
        for k in 1..=n {
            let line = format!("GET /checkout {what} {k} from {container}");
            engine.log(&container, stream, &line);
            lines.push(line);
        }
    }
    w.written.insert(name, lines);
    Ok(())
}

#[then(expr = "within 20 s Loki returns those {int} lines for container {string}")]
async fn loki_container_lines(w: &mut StepsWorld, n: usize, name: String) -> anyhow::Result<()> {
    let (container, _) = docker_names(w, &name);
    let expected = w.written.get(&name).cloned().unwrap_or_default();
    anyhow::ensure!(
        expected.len() == n,
        "the container wrote {} lines, not {n}",
        expected.len()
    );
    let q = format!("{{container_name=\"{container}\"}}");
    expect_lines(
        w,
        &format!("Loki returns container {container}'s lines"),
        &q,
        expected,
    )
    .await
    .map(|_| ())
}

#[then(
    expr = "the container's streams are labelled container_name {string}, compose_service {string} and compose_project {string}"
)]
async fn container_labels(
    w: &mut StepsWorld,
    name: String,
    service: String,
    project: String,
) -> anyhow::Result<()> {
    let (container, project_name) = docker_names(w, &name);
    anyhow::ensure!(
        project_name.starts_with(&project),
        "project {project_name} is not {project}'s"
    );
    let ex = w
        .last
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no Loki answer to look at"))?;
    for (labels, _) in ex.streams() {
        for (k, want) in [
            ("container_name", container.as_str()),
            ("compose_service", service.as_str()),
            ("compose_project", project_name.as_str()),
        ] {
            anyhow::ensure!(
                label(&labels, k) == Some(want),
                "stream {labels:?}: {k} should be {want:?}\n{ex}"
            );
        }
    }
    Ok(())
}

#[then(expr = "its stderr line is labelled stream {string}")]
async fn stderr_labelled(w: &mut StepsWorld, want: String) -> anyhow::Result<()> {
    let ex = w
        .last
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no Loki answer to look at"))?;
    let ok = ex.streams().iter().any(|(labels, lines)| {
        label(labels, "stream") == Some(want.as_str())
            && lines.iter().all(|l| l.contains(" err "))
            && !lines.is_empty()
    });
    anyhow::ensure!(
        ok,
        "no stream labelled stream={want:?} holding the stderr line\n{ex}"
    );
    Ok(())
}

// --- json-file + docker stage

#[given("a collector tailing Docker json-file logs with the docker stage")]
async fn json_file_collector(w: &mut StepsWorld) -> anyhow::Result<()> {
    let e = w.endpoints().await?;
    let cid = format!("{:0>64}", w.id.replace('-', ""));
    let dir = w.dir.path().join("containers").join(&cid);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{cid}-json.log"));
    std::fs::File::create(&path)?;
    let text = format!(
        "data_dir = {data}\n[server]\naddress = \"127.0.0.1:0\"\n\n[sources.json_files]\ntype = \"file\"\npaths = [{glob}]\nstart_at = \"beginning\"\nlabels = {{ job = \"docker-json\", container_id = {cid} }}\n\n[process.unwrap]\ninputs = [\"json_files\"]\n[[process.unwrap.stages]]\ntype = \"logs.docker\"\n\n{writers}",
        data = toml_str(&w.dir.path().join("json-data").display().to_string()),
        glob = toml_str(
            &w.dir
                .path()
                .join("containers/*/*-json.log")
                .display()
                .to_string()
        ),
        cid = toml_str(&cid),
        writers = writers_toml(&e, &["unwrap"], &[], &[], None),
    );
    let c = ScenarioCollector::start("json", "json-file.toml", text, BTreeMap::new()).await?;
    w.collectors.insert("json".into(), c);
    w.vars
        .insert("json_path".into(), path.display().to_string());
    w.vars.insert("container_id".into(), cid);
    Ok(())
}

#[when(expr = "the container's json-file log gets {int} lines on stdout")]
async fn json_lines(w: &mut StepsWorld, n: usize) -> anyhow::Result<()> {
    let path = w.vars.get("json_path").cloned().unwrap_or_default();
    let mut f = std::fs::OpenOptions::new().append(true).open(&path)?;
    let mut lines = Vec::new();
    for k in 1..=n {
        let line = format!("json line {k} of {}", w.id);
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        writeln!(
            f,
            "{}",
            serde_json::json!({"log": format!("{line}\n"), "stream": "stdout", "time": time})
        )?;
        lines.push(line);
    }
    w.written.insert("json".into(), lines);
    Ok(())
}

#[then(
    expr = "within 20 s Loki returns the {int} lines unwrapped from their JSON, labelled stream {string}"
)]
async fn json_unwrapped(w: &mut StepsWorld, n: usize, stream: String) -> anyhow::Result<()> {
    let cid = w.vars.get("container_id").cloned().unwrap_or_default();
    let expected = w.written.get("json").cloned().unwrap_or_default();
    anyhow::ensure!(
        expected.len() == n,
        "wrote {} lines, not {n}",
        expected.len()
    );
    let q = format!("{{job=\"docker-json\", container_id=\"{cid}\", stream=\"{stream}\"}}");
    expect_lines(
        w,
        "Loki returns the unwrapped json-file lines",
        &q,
        expected,
    )
    .await
    .map(|_| ())
}
