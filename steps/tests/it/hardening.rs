//! Static checks that every container of ours is hardened as users harden them, without Docker
//! or Kubernetes: in `docker-compose.yaml` every service runs as a non-root user, with a
//! read-only root filesystem, all capabilities dropped (none added back), `no-new-privileges`,
//! nothing privileged or sharing the host's namespaces, and writes only to anonymous volumes,
//! tmpfs or the one bind mount that receives output (loadgen's `./runs`); the Dockerfiles it
//! builds end as a numeric non-root `USER`; every pod of `deploy/k8s/` runs non-root with the
//! runtime's default seccomp profile, and each container without privilege escalation, with a
//! read-only root filesystem and all capabilities dropped. A failure names the service (or
//! pod and container) and the missing key; the checkers are tested on bad input too.

use serde_json::Value;
use steps::dashboards::workspace_dir;

/// Bind mounts a service may write to: the place its output is for.
const WRITABLE_BINDS: &[(&str, &str)] = &[("loadgen", "./runs")];

fn yaml(rel: &str) -> Value {
    let path = workspace_dir().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml_documents(rel: &str) -> Vec<Value> {
    let path = workspace_dir().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The value compose uses for `${VAR:-default}` when VAR is unset (the default), else `s`.
fn unset_default(s: &str) -> &str {
    s.strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .and_then(|r| r.split_once(":-").or_else(|| r.split_once('-')))
        .map_or(s, |(_, default)| default)
}

/// Why `user` (compose's `uid[:gid]`, possibly `${VAR:-uid:gid}`) is not a non-root user.
fn non_root_user(user: &str) -> Result<(), String> {
    let effective = unset_default(user);
    let uid = effective.split(':').next().unwrap_or_default();
    match uid.parse::<u32>() {
        Ok(0) => Err(format!("runs as root ({user:?})")),
        Ok(_) => Ok(()),
        Err(_) if uid == "root" => Err(format!("runs as root ({user:?})")),
        Err(_) => Err(format!(
            "user {user:?} is not numeric (a name cannot be checked as non-root)"
        )),
    }
}

/// Every hardening problem of one compose service.
fn compose_service_problems(name: &str, s: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut problem =
        |what: String| out.push(format!("docker-compose.yaml: service {name}: {what}"));
    match s["user"].as_str() {
        None => problem("missing key `user` (a non-root uid:gid)".into()),
        Some(u) => {
            if let Err(e) = non_root_user(u) {
                problem(format!("`user`: {e}"));
            }
        }
    }
    if s["read_only"] != Value::Bool(true) {
        problem("missing key `read_only: true` (a read-only root filesystem)".into());
    }
    if !strings(&s["cap_drop"]).contains(&"ALL") {
        problem("missing key `cap_drop: [ALL]`".into());
    }
    if let Some(added) = s["cap_add"].as_array().filter(|a| !a.is_empty()) {
        problem(format!(
            "`cap_add` {added:?}: no service needs a capability (every port is above 1024)"
        ));
    }
    let opts = strings(&s["security_opt"]);
    if !opts
        .iter()
        .any(|o| matches!(*o, "no-new-privileges:true" | "no-new-privileges"))
    {
        problem("missing key `security_opt: [\"no-new-privileges:true\"]`".into());
    }
    if s["privileged"] == Value::Bool(true) {
        problem("`privileged: true`".into());
    }
    for key in ["pid", "ipc", "network_mode", "userns_mode"] {
        if s[key].as_str() == Some("host") {
            problem(format!("`{key}: host` shares the host's namespace"));
        }
    }
    for v in strings(&s["volumes"]) {
        let parts: Vec<&str> = v.split(':').collect();
        // An anonymous volume (`/path`): the container's own data.
        if parts.len() == 1 {
            continue;
        }
        let read_only = parts
            .get(2)
            .is_some_and(|o| o.split(',').any(|o| o == "ro"));
        let output = WRITABLE_BINDS.contains(&(name, parts[0]));
        if !read_only && !output {
            problem(format!(
                "volume {v:?} is writable: mount it `:ro`, or keep data in an anonymous volume or tmpfs"
            ));
        }
    }
    if let Some(long) = s["volumes"]
        .as_array()
        .filter(|a| a.iter().any(Value::is_object))
    {
        for v in long.iter().filter(|v| v.is_object()) {
            let bind = v["type"] == "bind";
            if bind && v["read_only"] != Value::Bool(true) {
                problem(format!("volume {v} is a writable bind mount"));
            }
        }
    }
    out
}

/// Every hardening problem of the compose file's services.
fn compose_problems(c: &Value) -> Vec<String> {
    let Some(services) = c["services"].as_object() else {
        return vec!["docker-compose.yaml: no services".into()];
    };
    services
        .iter()
        .flat_map(|(name, s)| compose_service_problems(name, s))
        .collect()
}

/// The `USER` of a Dockerfile's last stage, if any.
fn final_user(dockerfile: &str) -> Option<String> {
    let lines: Vec<&str> = dockerfile.lines().collect();
    let last_stage = lines
        .iter()
        .rposition(|l| l.trim_start().to_ascii_uppercase().starts_with("FROM "))
        .unwrap_or(0);
    lines[last_stage..].iter().rev().find_map(|l| {
        let t = l.trim_start();
        t.get(..5)
            .filter(|k| k.eq_ignore_ascii_case("USER "))
            .map(|_| t[5..].trim().to_string())
    })
}

/// Every hardening problem of one pod spec (a Pod's `spec` or a Job's `spec.template.spec`).
fn pod_problems(what: &str, spec: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let pod = &spec["securityContext"];
    if pod["runAsNonRoot"] != Value::Bool(true) {
        out.push(format!(
            "{what}: missing key `securityContext.runAsNonRoot: true`"
        ));
    }
    if pod["seccompProfile"]["type"] != "RuntimeDefault" {
        out.push(format!(
            "{what}: missing key `securityContext.seccompProfile.type: RuntimeDefault`"
        ));
    }
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    let init = spec["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for c in containers.iter().chain(&init) {
        let name = c["name"].as_str().unwrap_or("?");
        let sc = &c["securityContext"];
        let mut problem = |key: &str| {
            out.push(format!(
                "{what}: container {name}: missing key `securityContext.{key}`"
            ))
        };
        if sc["allowPrivilegeEscalation"] != Value::Bool(false) {
            problem("allowPrivilegeEscalation: false");
        }
        if sc["readOnlyRootFilesystem"] != Value::Bool(true) {
            problem("readOnlyRootFilesystem: true");
        }
        if !strings(&sc["capabilities"]["drop"]).contains(&"ALL") {
            problem("capabilities.drop: [ALL]");
        }
        if sc["privileged"] == Value::Bool(true) {
            out.push(format!("{what}: container {name}: `privileged: true`"));
        }
        if sc["capabilities"]["add"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            out.push(format!(
                "{what}: container {name}: `capabilities.add` is not empty"
            ));
        }
        let uid = sc["runAsUser"].as_u64().or(pod["runAsUser"].as_u64());
        if uid == Some(0) {
            out.push(format!("{what}: container {name}: runAsUser 0 is root"));
        }
    }
    out
}

/// Every hardening problem of a Kubernetes manifest's workloads.
fn k8s_problems(file: &str, docs: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for d in docs {
        let name = d["metadata"]["name"].as_str().unwrap_or("?");
        let kind = d["kind"].as_str().unwrap_or("?");
        let spec = match kind {
            "Pod" => &d["spec"],
            "Job" | "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
                &d["spec"]["template"]["spec"]
            }
            "CronJob" => &d["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            _ => continue,
        };
        out.extend(pod_problems(&format!("{file}: {kind} {name}"), spec));
    }
    out
}

#[test]
fn every_compose_service_is_hardened() {
    let problems = compose_problems(&yaml("docker-compose.yaml"));
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_images_we_build_end_as_a_numeric_non_root_user() {
    let c = yaml("docker-compose.yaml");
    let mut dockerfiles: Vec<String> = c["services"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|s| s["build"]["dockerfile"].as_str().map(str::to_string))
        .collect();
    dockerfiles.sort();
    dockerfiles.dedup();
    assert!(dockerfiles.len() >= 2, "{dockerfiles:?}");
    for d in dockerfiles {
        let text = std::fs::read_to_string(workspace_dir().join(&d)).unwrap();
        let user = final_user(&text).unwrap_or_else(|| panic!("{d}: no USER in the last stage"));
        if let Err(e) = non_root_user(&user) {
            panic!("{d}: USER {e}");
        }
    }
}

#[test]
fn every_kubernetes_pod_is_hardened() {
    let dir = workspace_dir().join("deploy/k8s");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let rel = format!("deploy/k8s/{}", path.file_name().unwrap().to_string_lossy());
            let docs = yaml_documents(&rel);
            let problems = k8s_problems(&rel, &docs);
            assert!(problems.is_empty(), "\n{}", problems.join("\n"));
            checked += 1;
        }
    }
    assert!(checked > 0, "no manifest in {}", dir.display());
}

#[test]
fn the_checks_name_the_service_and_the_missing_key() {
    let bad: Value = serde_saphyr::from_str(
        r#"
services:
  good:
    user: "${RUN_AS:-10001:10001}"
    read_only: true
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:true"]
    volumes: [/data, ./conf.yaml:/etc/conf.yaml:ro]
  bad:
    user: root
    cap_drop: [NET_RAW]
    cap_add: [NET_ADMIN]
    network_mode: host
    volumes: ["./state:/state"]
  nameless:
    user: app
    read_only: true
    cap_drop: [ALL]
    security_opt: [no-new-privileges]
"#,
    )
    .unwrap();
    let problems = compose_problems(&bad);
    let want = [
        "service bad: `user`: runs as root (\"root\")",
        "service bad: missing key `read_only: true`",
        "service bad: missing key `cap_drop: [ALL]`",
        "service bad: `cap_add`",
        "service bad: missing key `security_opt: [\"no-new-privileges:true\"]`",
        "service bad: `network_mode: host`",
        "service bad: volume \"./state:/state\" is writable",
        "service nameless: `user`: user \"app\" is not numeric",
    ];
    for w in want {
        assert!(
            problems.iter().any(|p| p.contains(w)),
            "{w} not in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), want.len(), "{problems:#?}");
    assert!(compose_service_problems("x", &serde_json::json!({})).len() >= 4);

    let pod: Vec<Value> = serde_saphyr::from_multiple(
        r#"
kind: Job
metadata: {name: j}
spec:
  template:
    spec:
      securityContext: {runAsUser: 0}
      containers:
        - name: c
          securityContext:
            capabilities: {drop: [NET_RAW], add: [SYS_ADMIN]}
"#,
    )
    .unwrap();
    let problems = k8s_problems("m.yaml", &pod);
    for w in [
        "m.yaml: Job j: missing key `securityContext.runAsNonRoot: true`",
        "m.yaml: Job j: missing key `securityContext.seccompProfile.type: RuntimeDefault`",
        "m.yaml: Job j: container c: missing key `securityContext.allowPrivilegeEscalation: false`",
        "m.yaml: Job j: container c: missing key `securityContext.readOnlyRootFilesystem: true`",
        "m.yaml: Job j: container c: missing key `securityContext.capabilities.drop: [ALL]`",
        "m.yaml: Job j: container c: `capabilities.add` is not empty",
        "m.yaml: Job j: container c: runAsUser 0 is root",
    ] {
        assert!(problems.iter().any(|p| p == w), "{w} not in {problems:#?}");
    }

    assert_eq!(
        final_user("FROM a AS b\nUSER 1\nFROM c\nRUN x\nUSER 10001:10001\n").as_deref(),
        Some("10001:10001")
    );
    assert_eq!(final_user("FROM a\nUSER 5\nFROM c\n"), None);
    assert!(non_root_user("0:0").is_err());
    assert!(non_root_user("${U:-0}").is_err());
    assert!(non_root_user("472").is_ok());
}
