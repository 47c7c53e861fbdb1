//! Runs every scenario in `features/` (cucumber, `harness = false`) against the stack
//! `STEPS_STACK` names (default: embedded). Console output, and JUnit XML in
//! `$CARGO_TARGET_DIR/cucumber/junit.xml` (default `target/cucumber/junit.xml`). A step without a definition fails (it is never skipped).
//! Scenarios tagged `@grafana` run only where the stack has a Grafana, `@docker` only where a
//! Docker engine answers.

use std::path::Path;

use cucumber::{World as _, WriterExt as _, writer};
use steps::StepsWorld;

fn has_tag(tags: &[String], tag: &str) -> bool {
    tags.iter().any(|t| t == tag)
}

#[tokio::main]
async fn main() {
    // Beside the build's other output: CARGO_TARGET_DIR when set (relative to the workspace),
    // else the workspace's target/; never into the source tree on its own.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|d| root.join(d))
        .unwrap_or_else(|| root.join("target"));
    let out = target.join("cucumber");
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("cannot create {}: {e}", out.display());
        std::process::exit(2);
    }
    let junit_path = out.join("junit.xml");
    let junit = match std::fs::File::create(&junit_path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cannot create {}: {e}", junit_path.display());
            std::process::exit(2);
        }
    };
    let grafana = steps::target::grafana_expected();
    let docker = Path::new("/var/run/docker.sock").exists();
    for (on, tag, why) in [
        (
            grafana,
            "@grafana",
            "the stack has no Grafana (GRAFANA_URL)",
        ),
        (
            docker,
            "@docker",
            "no Docker engine at /var/run/docker.sock",
        ),
    ] {
        if !on {
            println!("scenarios tagged {tag} are left out: {why}");
        }
    }
    println!("JUnit XML: {}", junit_path.display());

    StepsWorld::cucumber()
        .max_concurrent_scenarios(12)
        // Both outputs with the credentials of any URL a step quotes masked.
        .with_writer(
            writer::Basic::raw(
                wire::redact::Writer::new(std::io::stdout()),
                writer::Coloring::Never,
                0,
            )
            .summarized()
            .tee::<StepsWorld, _>(writer::JUnit::for_tee(wire::redact::Writer::new(junit), 0))
            .normalized(),
        )
        .fail_on_skipped()
        .after(|_, _, _, _, world| {
            Box::pin(async move {
                if let Some(w) = world {
                    w.teardown().await;
                }
            })
        })
        .filter_run_and_exit(root.join("features"), move |feature, rule, scenario| {
            let tagged = |t: &str| {
                has_tag(&feature.tags, t)
                    || rule.is_some_and(|r| has_tag(&r.tags, t))
                    || has_tag(&scenario.tags, t)
            };
            (grafana || !tagged("grafana")) && (docker || !tagged("docker"))
        })
        .await;
}
