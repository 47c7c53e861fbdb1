//! `collector check` semantics through the library: every config mistake is named with file,
//! line and key; environment variables resolve with defaults; wiring is checked.

use collector::config::{Config, ConfigError, Section};

fn env(name: &str) -> Option<String> {
    match name {
        "REGION" => Some("eu-west".into()),
        "NODE_TYPE" => Some("pos".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "agent.toml", &env)
}

fn check(text: &str) -> Result<(), ConfigError> {
    parse(text)?.build().map(|_| ())
}

const SCRAPE: &str = r#"
[sources.node]
type = "prometheus_scrape"
targets = [{ address = "127.0.0.1:9100", labels = { region = "${REGION}", node_type = "${NODE_TYPE:-server}", brand = "${BRAND:-brand1}" } }]
"#;

#[test]
fn a_valid_config_resolves_env_with_defaults() {
    let cfg = parse(&format!(
        "{SCRAPE}\n[process.tag]\ninputs = [\"node\"]\n[[process.tag.stages]]\ntype = \"relabel\"\nrules = [{{ action = \"labeldrop\", regex = \"brand\" }}]\n"
    ))
    .unwrap();
    cfg.build().unwrap();
    let node = cfg.components.iter().find(|c| c.name == "node").unwrap();
    let labels = &node.settings["targets"][0]["labels"];
    assert_eq!(labels["region"].as_str(), Some("eu-west"));
    assert_eq!(labels["node_type"].as_str(), Some("pos"));
    assert_eq!(labels["brand"].as_str(), Some("brand1"));
    let tag = cfg.components.iter().find(|c| c.name == "tag").unwrap();
    assert_eq!(tag.section, Section::Process);
    assert_eq!(tag.stages[0].0, "relabel");
}

fn err(text: &str) -> ConfigError {
    check(text).expect_err("config should be refused")
}

#[test]
fn mistakes_are_located() {
    let e = err("[sources.node]\ntype = \"prometheus_scrape\"\ntargetz = []\n");
    assert_eq!(
        (e.file.as_str(), e.line, e.key.as_str()),
        ("agent.toml", 3, "sources.node.targetz")
    );
    assert!(e.reason.contains("unknown field"), "{e}");

    let e = err("[sources.node]\ntype = \"no_such_source\"\n");
    assert_eq!((e.line, e.key.as_str()), (2, "sources.node.type"));

    let e = err("[sources.node]\ntype = \"prometheus_scrape\"\njob_name = \"${MISSING}\"\n");
    assert_eq!((e.line, e.key.as_str()), (3, "sources.node.job_name"));
    assert!(e.reason.contains("MISSING is not set"), "{e}");

    let e = err("[sources.node]\ntype = \"prometheus_scrape\"\n[sources.node.x\n");
    assert_eq!(e.line, 3, "{e}");

    let e = err("[sources.node]\nscrape_interval = \"5s\"\n");
    assert_eq!((e.line, e.key.as_str()), (1, "sources.node.type"));

    let e = err("[outputs.x]\ntype = \"loki\"\n");
    assert_eq!(e.line, 1, "{e}");
    assert!(e.reason.contains("unknown field"), "{e}");
}

#[test]
fn wiring_is_checked() {
    let e = err(&format!(
        "{SCRAPE}\n[process.p]\ninputs = [\"nowhere\"]\n[[process.p.stages]]\ntype = \"relabel\"\nrules = []\n"
    ));
    assert_eq!(e.key, "process.p.inputs");
    assert!(e.reason.contains("no component named \"nowhere\""), "{e}");

    let e = err(&format!(
        "{SCRAPE}\n[process.a]\ninputs = [\"node\", \"b\"]\n[[process.a.stages]]\ntype = \"relabel\"\nrules = []\n\
         [process.b]\ninputs = [\"a\"]\n[[process.b.stages]]\ntype = \"relabel\"\nrules = []\n"
    ));
    assert!(e.reason.contains("cycle"), "{e}");

    let e = err(&format!("{SCRAPE}\n[process.p]\ninputs = [\"node\"]\n"));
    assert_eq!(e.key, "process.p.stages");

    let e = err(&format!(
        "{SCRAPE}\n[process.node]\ninputs = [\"node\"]\n[[process.node.stages]]\ntype = \"relabel\"\nrules = []\n"
    ));
    assert!(e.reason.contains("must be unique"), "{e}");

    let e = err(&format!(
        "{SCRAPE}\n[process.p]\ninputs = [\"node\"]\nwhen_full = \"explode\"\n[[process.p.stages]]\ntype = \"relabel\"\nrules = []\n"
    ));
    assert_eq!(e.key, "process.p.when_full");

    let e = err("[sources.node]\ntype = \"prometheus_scrape\"\ninputs = [\"x\"]\n");
    assert_eq!((e.line, e.key.as_str()), (3, "sources.node.inputs"));
}

#[test]
fn stage_settings_name_the_stage() {
    let e = err(&format!(
        "{SCRAPE}\n[process.p]\ninputs = [\"node\"]\n[[process.p.stages]]\ntype = \"relabel\"\nrules = [{{ action = \"replace\", regex = \"(\" , target_label = \"x\" }}]\n"
    ));
    assert!(e.key.starts_with("process.p.stages[0]"), "{e}");
}

/// Three mistakes, three errors, in file order, each at its value's own line: a bad common key
/// of one component, an unknown key inside a stage's rule list, a writer reading a writer.
#[test]
fn every_mistake_in_one_pass() {
    let text = format!(
        "{SCRAPE}
[process.p]
inputs = [\"node\"]
when_full = \"explode\"
[[process.p.stages]]
type = \"relabel\"
rules = [
  {{ action = \"labeldrop\", regex = \"a\" }},
  {{ action = \"labeldrop\", regexx = \"b\" }},
]

[writers.w]
type = \"loki\"
inputs = [\"other\"]
url = \"http://127.0.0.1:3100/loki/api/v1/push\"

[writers.other]
type = \"prometheus_remote_write\"
inputs = [\"node\"]
url = \"http://127.0.0.1:9009/api/v1/push\"
"
    );
    let errors = Config::check(&text, "agent.toml", &env)
        .err()
        .expect("three mistakes")
        .0;
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.key.as_str())).collect();
    let line = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert_eq!(
        got,
        [
            (line("explode"), "process.p.when_full"),
            (line("regexx"), "process.p.stages[0].rules.regexx"),
            (line("inputs = [\"other\"]"), "writers.w.inputs"),
        ],
        "{errors:#?}"
    );
    // The first one is what `parse`/`build` (used by `run`) report.
    assert_eq!(err(&text).key, "process.p.when_full");
}

#[test]
fn queue_max_bytes_takes_sizes_and_refuses_nonsense() {
    let writer = |v: &str| {
        format!(
            "{SCRAPE}\n[writers.m]\ntype = \"prometheus_remote_write\"\ninputs = [\"node\"]\nurl = \"http://127.0.0.1:9009/api/v1/push\"\nqueue_max_bytes = {v}\n"
        )
    };
    let bytes = |v: &str| {
        let cfg = parse(&writer(v)).unwrap();
        cfg.build().unwrap();
        cfg.components
            .iter()
            .find(|c| c.name == "m")
            .unwrap()
            .queue_max_bytes
    };
    assert_eq!(bytes("\"4MiB\""), 4 << 20);
    assert_eq!(bytes("65536"), 65536);
    let cfg = parse(&format!(
        "{SCRAPE}\n[writers.m]\ntype = \"prometheus_remote_write\"\ninputs = [\"node\"]\nurl = \"http://x\"\n"
    ))
    .unwrap();
    let m = cfg.components.iter().find(|c| c.name == "m").unwrap();
    assert_eq!(
        m.queue_max_bytes,
        collector::config::DEFAULT_QUEUE_MAX_BYTES
    );
    for bad in ["0", "\"lots\"", "-1"] {
        let e = err(&writer(bad));
        assert_eq!(e.key, "writers.m.queue_max_bytes", "{bad}: {e}");
        assert!(e.reason.contains("positive size"), "{e}");
    }
}
