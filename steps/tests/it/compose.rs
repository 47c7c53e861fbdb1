#![allow(clippy::unwrap_used)]
//! Static checks of `docker-compose.yaml` and the Dockerfiles it builds, without Docker: every
//! build context, Dockerfile and mounted file exists in the repository, the profiles and the
//! node template's variables are as the README's compose workflow says, images are pinned (the
//! same tags as the e2e containers), and the services point at each other by name.
//! (`.ci/run` also runs `docker-compose config -q` where it can install Debian's docker-compose.)

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use stack::images;
use steps::dashboards::{GRAFANA_DASHBOARDS_PATH, GRAFANA_PROVISIONING_PATH, workspace_dir};

fn compose() -> Value {
    let path = workspace_dir().join("docker-compose.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn services(c: &Value) -> &serde_json::Map<String, Value> {
    c["services"].as_object().expect("services")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// A service's environment as a map (compose allows a map or a `KEY=value` list).
fn env(s: &Value) -> BTreeMap<String, String> {
    match &s["environment"] {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
        Value::Array(a) => a
            .iter()
            .filter_map(|e| e.as_str()?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

const CORE: &[&str] = &["loki", "mimir", "tempo", "grafana", "collector"];
const NODES: &[(&str, &str)] = &[
    ("node_region1_server", "server"),
    ("node_region1_pos", "pos"),
    ("node_region1_router", "router"),
    ("node_region1_switch", "switch"),
];

#[test]
fn services_and_profiles() {
    let c = compose();
    let s = services(&c);
    let mut want: BTreeMap<&str, &str> = CORE.iter().map(|n| (*n, "core")).collect();
    want.extend(NODES.iter().map(|(n, _)| (*n, "nodes")));
    want.insert("node_template", "template");
    want.insert("loadgen", "load");
    let have: BTreeSet<&str> = s.keys().map(String::as_str).collect();
    assert_eq!(have, want.keys().copied().collect(), "services");
    for (name, profile) in want {
        assert_eq!(
            strings(&s[name]["profiles"]),
            [profile],
            "{name}: profiles (every service has exactly one, so `docker compose up` with no profile starts nothing by surprise)"
        );
    }
}

#[test]
fn images_are_pinned_and_match_the_e2e_containers() {
    let c = compose();
    let mut stack_images = BTreeSet::new();
    for (name, svc) in services(&c) {
        let image = svc["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no image (built services name theirs too)"));
        let (_, tag) = image
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("{name}: {image} has no tag"));
        assert!(
            !tag.is_empty() && tag != "latest" && !tag.contains('/'),
            "{name}: {image}"
        );
        if image.starts_with("grafana/") {
            stack_images.insert(image.to_string());
        } else {
            assert!(
                svc["build"].is_object(),
                "{name}: {image} is neither grafana/* nor built here"
            );
        }
    }
    let want: BTreeSet<String> = images::all().into_iter().collect();
    assert_eq!(stack_images, want);
    assert_eq!(
        services(&c)["loki"]["image"],
        format!("{}:{}", images::LOKI.0, images::LOKI.1)
    );
}

/// `COPY` sources (other than `--from=` stages) of a Dockerfile, relative to the context.
fn copy_sources(dockerfile: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in dockerfile.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        if rest.contains("--from=") {
            continue;
        }
        let parts: Vec<&str> = rest
            .split_whitespace()
            .filter(|p| !p.starts_with("--"))
            .collect();
        if let Some((_dest, srcs)) = parts.split_last() {
            out.extend(srcs.iter().map(|s| s.to_string()));
        }
    }
    out
}

/// The one bind mount that is an output, not an input.
const OUTPUT_DIR: &str = "./runs";

#[test]
fn builds_and_mounts_exist_in_the_repository() {
    let root = workspace_dir();
    let c = compose();
    let mut dockerfiles = BTreeSet::new();
    let mut mounts = 0;
    for (name, svc) in services(&c) {
        if let Some(build) = svc.get("build") {
            let ctx = root.join(build["context"].as_str().unwrap());
            assert!(ctx.is_dir(), "{name}: context {}", ctx.display());
            let df = ctx.join(build["dockerfile"].as_str().unwrap_or("Dockerfile"));
            assert!(df.is_file(), "{name}: {}", df.display());
            dockerfiles.insert((ctx, df));
        }
        for v in strings(&svc["volumes"]) {
            let host = v.split(':').next().unwrap();
            // ./runs is where a load run writes its report: made on first use.
            if host.starts_with("./") && host != OUTPUT_DIR {
                let p = root.join(host);
                assert!(p.exists(), "{name}: mounted {} does not exist", p.display());
                mounts += 1;
            }
        }
    }
    assert!(mounts >= 6, "only {mounts} bind mounts");
    assert_eq!(
        dockerfiles.len(),
        2,
        "collector/Dockerfile and deploy/node/Dockerfile"
    );
    for (ctx, df) in dockerfiles {
        let text = std::fs::read_to_string(&df).unwrap();
        assert!(
            text.contains("FROM rust:1.95-bookworm AS build"),
            "{}",
            df.display()
        );
        assert!(
            text.contains("FROM debian:bookworm-slim"),
            "{}",
            df.display()
        );
        assert!(
            text.contains("--locked"),
            "{}: build with Cargo.lock",
            df.display()
        );
        let srcs = copy_sources(&text);
        assert!(!srcs.is_empty(), "{}", df.display());
        for src in srcs {
            assert!(
                ctx.join(&src).exists(),
                "{}: COPY {src}: not in the context",
                df.display()
            );
        }
    }
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    assert!(
        ignore.lines().any(|l| l.trim() == "target/"),
        ".dockerignore must exclude target/"
    );
}

#[test]
fn stack_services_use_the_deploy_configs() {
    let c = compose();
    let s = services(&c);
    for (svc, file, port) in [
        ("loki", "deploy/loki/loki.yaml", "3100:3100"),
        ("mimir", "deploy/mimir/mimir.yaml", "9009:9009"),
        ("tempo", "deploy/tempo/tempo.yaml", "3200:3200"),
    ] {
        let mount = strings(&s[svc]["volumes"])
            .into_iter()
            .find(|v| v.starts_with(&format!("./{file}:")))
            .unwrap_or_else(|| panic!("{svc}: {file} not mounted"));
        let target = mount.split(':').nth(1).unwrap();
        assert!(
            strings(&s[svc]["command"]).contains(&format!("-config.file={target}")),
            "{svc}: -config.file={target}"
        );
        assert!(
            strings(&s[svc]["ports"]).contains(&port.to_string()),
            "{svc}: {port}"
        );
    }
    let g = &s["grafana"];
    let e = env(g);
    assert_eq!(e["GF_SECURITY_ADMIN_USER"], "admin");
    assert_eq!(e["GF_SECURITY_ADMIN_PASSWORD"], "admin");
    assert!(strings(&g["ports"]).contains(&"3000:3000".to_string()));
    let vols = strings(&g["volumes"]);
    assert!(
        vols.contains(&format!(
            "./deploy/grafana/provisioning:{GRAFANA_PROVISIONING_PATH}:ro"
        )),
        "{vols:?}"
    );
    assert!(
        vols.contains(&format!(
            "./deploy/grafana/dashboards:{GRAFANA_DASHBOARDS_PATH}:ro"
        )),
        "{vols:?}"
    );

    // The gateway: the example config, listening on all interfaces, writing to the services.
    let col = &s["collector"];
    assert!(
        strings(&col["volumes"])
            .iter()
            .any(|v| v.starts_with("./collector/examples/gateway.toml:"))
    );
    let e = env(col);
    assert_eq!(e["LOKI_URL"], "http://loki:3100");
    assert_eq!(e["MIMIR_WRITE_URL"], "http://mimir:9009/api/v1/push");
    assert_eq!(e["TEMPO_OTLP_GRPC_URL"], "http://tempo:4317");
    for k in [
        "OTLP_GRPC_ADDRESS",
        "OTLP_HTTP_ADDRESS",
        "LOKI_PUSH_ADDRESS",
        "COLLECTOR_LISTEN",
    ] {
        assert!(e[k].starts_with("0.0.0.0:"), "collector {k}={}", e[k]);
    }
    // Every ${VAR} of gateway.toml without a default is set.
    let toml =
        std::fs::read_to_string(workspace_dir().join("collector/examples/gateway.toml")).unwrap();
    for var in toml
        .split("${")
        .skip(1)
        .filter_map(|t| t.split_once('}'))
        .map(|(v, _)| v)
    {
        if !var.contains(":-") {
            assert!(e.contains_key(var), "collector: ${{{var}}} unset");
        }
    }
}

const NODE_VARS: &[&str] = &[
    "NODE_TYPE",
    "DEVICE_TYPE",
    "DEVICE",
    "REGION",
    "LOCATION",
    "BRAND",
    "PROBLEM_MODE",
    "LOKI_URL",
    "MIMIR_WRITE_URL",
    "OTLP_URL",
    "NODE_LISTEN",
];

#[test]
fn nodes_carry_their_identity_and_reach_the_stack() {
    let c = compose();
    let s = services(&c);
    let t = env(&s["node_template"]);
    for k in NODE_VARS {
        assert!(t.contains_key(*k), "node_template: {k} missing");
    }
    for (name, ty) in NODES {
        let e = env(&s[*name]);
        assert_eq!(e["NODE_TYPE"], *ty, "{name}");
        for k in ["DEVICE", "REGION", "LOCATION", "BRAND", "PROBLEM_MODE"] {
            assert!(!e.get(k).is_none_or(String::is_empty), "{name}: {k}");
        }
        assert_eq!(
            s[*name]["build"], s["node_template"]["build"],
            "{name}: one node image"
        );
    }
    let devices: BTreeSet<_> = NODES
        .iter()
        .map(|(n, _)| env(&s[*n])["DEVICE"].clone())
        .collect();
    assert_eq!(
        devices.len(),
        NODES.len(),
        "static nodes need distinct DEVICE"
    );
    assert_eq!(t["LOKI_URL"], "http://loki:3100");
    assert_eq!(t["MIMIR_WRITE_URL"], "http://mimir:9009/api/v1/push");
    assert!(t["OTLP_URL"].starts_with("http://collector:"));
    assert!(
        t["NODE_LISTEN"].starts_with("0.0.0.0:"),
        "the runbook's -p 9500:9300 needs it"
    );

    // The node agent reads what the entrypoint exports.
    let root = workspace_dir();
    let entry = root.join("deploy/node/entrypoint.sh");
    let script = std::fs::read_to_string(&entry).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&entry).unwrap().permissions().mode();
        assert!(mode & 0o111 != 0, "entrypoint.sh must be executable");
    }
    for needle in [
        "loadgen \"${node_args[@]}\"",
        "collector run --config",
        "trap",
        "wait -n",
        "export EXPORTER_ADDRESS",
        "export LOG_PATH",
    ] {
        assert!(script.contains(needle), "entrypoint.sh lacks {needle}");
    }
    let agent = std::fs::read_to_string(root.join("collector/examples/node-agent.toml")).unwrap();
    for var in [
        "EXPORTER_ADDRESS",
        "LOG_PATH",
        "REGION",
        "LOCATION",
        "LOKI_URL",
        "MIMIR_WRITE_URL",
    ] {
        assert!(
            agent.contains(&format!("${{{var}")),
            "node-agent.toml no longer reads {var}"
        );
        assert!(
            script.contains(&format!("export {var}")) || t.contains_key(var),
            "{var} neither exported by entrypoint.sh nor set in compose"
        );
    }
}

#[test]
fn loadgen_runs_against_the_compose_stack() {
    let c = compose();
    let l = &services(&c)["loadgen"];
    let cmd = strings(&l["command"]);
    assert!(
        cmd.windows(2).any(|w| w == ["--stack", "external"]),
        "{cmd:?}"
    );
    let e = env(l);
    for (k, host) in [
        ("LOKI_URL", "loki:3100"),
        ("MIMIR_WRITE_URL", "mimir:9009"),
        ("MIMIR_QUERY_URL", "mimir:9009"),
        ("TEMPO_OTLP_URL", "tempo:4318"),
        ("TEMPO_QUERY_URL", "tempo:3200"),
    ] {
        assert!(e[k].contains(host), "loadgen {k}={}", e[k]);
    }
}
