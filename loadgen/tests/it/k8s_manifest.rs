//! `deploy/k8s/loadgen-shards.yaml` parses, and its Job is an Indexed Job of N pods running
//! `loadgen run --shard-from-env` with the shard count N, resources set and the stack from the
//! ConfigMap.

#![allow(clippy::unwrap_used)]

use serde_json::Value;

fn documents() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/k8s/loadgen-shards.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple(&text).unwrap()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn the_job_is_indexed_and_shards_from_the_environment() {
    let docs = documents();
    let job = kind(&docs, "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().unwrap();
    assert!(n > 1);
    assert_eq!(spec["parallelism"].as_u64(), Some(n));

    let container = &spec["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "run");
    assert!(args.contains(&"--shard-from-env"), "{args:?}");
    assert!(args.contains(&"--stack=external"), "{args:?}");
    let shards = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "LOADGEN_SHARDS")
        .unwrap();
    assert_eq!(shards["value"].as_str(), Some(n.to_string().as_str()));
    for what in ["requests", "limits"] {
        let r = &container["resources"][what];
        assert!(
            r["cpu"].is_string() && r["memory"].is_string(),
            "{what}: {r}"
        );
    }
    let from = container["envFrom"][0]["configMapRef"]["name"]
        .as_str()
        .unwrap();
    let config = kind(&docs, "ConfigMap");
    assert_eq!(config["metadata"]["name"], from);
    for var in [
        "LOKI_URL",
        "MIMIR_WRITE_URL",
        "MIMIR_QUERY_URL",
        "TEMPO_OTLP_URL",
        "TEMPO_QUERY_URL",
    ] {
        assert!(config["data"][var].is_string(), "ConfigMap lacks {var}");
    }
}
