//! No credential is ever shown: runs of the real `loadgen` binary with a secret in every URL it
//! takes (userinfo, a `token` query parameter where the URL is taken whole) and in the secret
//! variables, and its every output searched for the secret: stdout, stderr, `results.json`,
//! `report.html` and every other file of the run folder, `--help` with the variables set, and
//! the errors of a bad URL and of a failed preflight.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

/// A secret no output could hold by chance.
fn secret() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("s3cr3t-{}-{nanos:09}", std::process::id())
}

/// `url` (`http://host:port/...`) with `user:secret@` in its userinfo.
fn with_userinfo(url: &str, secret: &str) -> String {
    url.replacen("http://", &format!("http://loadgen:{secret}@"), 1)
}

/// The variables a user may hold credentials in, each with the secret in it.
fn secret_env(secret: &str) -> Vec<(&'static str, String)> {
    let url = format!("http://loadgen:{secret}@127.0.0.1:9/?token={secret}");
    vec![
        ("STACK_PASSWORD", secret.to_string()),
        ("GRAFANA_URL", url.clone()),
        ("COLLECTOR_URL", url.clone()),
        ("COLLECTOR_LOKI_URL", url.clone()),
        ("COLLECTOR_WRITE_URL", url.clone()),
        ("COLLECTOR_OTLP_URL", url.clone()),
        ("LOKI_URL", url.clone()),
        ("MIMIR_WRITE_URL", url.clone()),
        ("MIMIR_QUERY_URL", url.clone()),
        ("TEMPO_OTLP_URL", url.clone()),
        ("TEMPO_OTLP_GRPC_URL", url.clone()),
        ("TEMPO_QUERY_URL", url.clone()),
        ("OTLP_URL", url),
    ]
}

/// Fails naming the place when `text` holds `secret`.
fn assert_hidden(secret: &str, what: &str, text: &str) {
    if let Some(at) = text.find(secret) {
        let from = text[..at]
            .char_indices()
            .rev()
            .nth(200)
            .map_or(0, |(i, _)| i);
        let to = (at + secret.len() + 200).min(text.len());
        let to = (to..=text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        panic!("{what} shows the secret: ...{}...", &text[from..to]);
    }
}

fn assert_output_hidden(secret: &str, what: &str, out: &Output) {
    assert_hidden(
        secret,
        &format!("{what}: stdout"),
        &String::from_utf8_lossy(&out.stdout),
    );
    assert_hidden(
        secret,
        &format!("{what}: stderr"),
        &String::from_utf8_lossy(&out.stderr),
    );
}

/// Every file under `dir`, searched; how many there were.
fn assert_folder_hidden(secret: &str, dir: &Path) -> usize {
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files += assert_folder_hidden(secret, &path);
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert_hidden(
                secret,
                &path.display().to_string(),
                &String::from_utf8_lossy(&bytes),
            );
            files += 1;
        }
    }
    files
}

fn loadgen(args: &[String], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    for (k, _) in secret_env("") {
        cmd.env_remove(k);
    }
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn help_hides_the_variables_values() {
    let secret = secret();
    let env = secret_env(&secret);
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["capacity", "--help"],
        &["node", "--help"],
    ] {
        let out = loadgen(&strings(args), &env);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert_output_hidden(&secret, &format!("loadgen {}", args.join(" ")), &out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        // The variables are still named.
        let var = if args[0] == "node" {
            "[env: OTLP_URL]"
        } else {
            "[env: LOKI_URL]"
        };
        assert!(stdout.contains(var), "{stdout}");
    }
}

/// A whole run that really sends: in-process collector in front of the embedded stack, given
/// as an external stack whose every URL carries the secret, basic auth's password from
/// STACK_PASSWORD, and remote write's full URL a `token` parameter too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_credentials_in_its_urls_shows_none() {
    let stack = stack::EmbeddedStack::start(stack::EmbeddedConfig::default())
        .await
        .unwrap();
    let e = stack.endpoints().clone();
    let secret = secret();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let u = |url: &reqwest::Url| with_userinfo(url.as_str(), &secret);
    let args = vec![
        "run".into(),
        "--devices".into(),
        "6".into(),
        "--duration".into(),
        "2s".into(),
        "--rate".into(),
        "5".into(),
        "--drain".into(),
        "30s".into(),
        "--stack".into(),
        "external".into(),
        "--loki-url".into(),
        u(&e.loki),
        "--mimir-write-url".into(),
        format!("{}?token={secret}", u(&e.prometheus_write)),
        "--mimir-query-url".into(),
        u(&e.prometheus_query),
        "--tempo-otlp-url".into(),
        u(&e.tempo_otlp_http),
        "--tempo-query-url".into(),
        u(&e.tempo_query),
        "--username".into(),
        "loadgen".into(),
        "--out".into(),
        run.display().to_string(),
    ];
    let env = vec![
        ("STACK_PASSWORD", secret.clone()),
        ("GRAFANA_URL", format!("http://admin:{secret}@127.0.0.1:9/")),
    ];
    let out = tokio::task::spawn_blocking(move || loadgen(&args, &env))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The credentials did not get in the way: everything went through and came back.
    assert!(out.status.success(), "{stdout}\n{out:?}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    // (Six devices for two seconds may send no trace.)
    for signal in ["logs", "metrics"] {
        let s = &results["signals"][signal];
        assert!(s["acknowledged"].as_u64() > Some(0), "{signal}: {s}");
    }
    // What is shown instead: the user, and a mask.
    let run_info = &results["run"];
    let target = run_info["target"].as_str().unwrap();
    assert!(
        target.contains("http://loadgen:xxxxx@127.0.0.1:"),
        "{target}"
    );
    let command = run_info["command"].as_str().unwrap();
    assert!(command.contains("?token=xxxxx"), "{command}");

    assert_output_hidden(&secret, "loadgen run", &out);
    let files = assert_folder_hidden(&secret, &run);
    assert!(files >= 2, "{files} files in the run folder");
    for name in ["results.json", "report.html"] {
        assert!(run.join(name).is_file(), "{name}");
    }
    stack.shutdown().await;
}

/// A run through a running collector (a receiver that acknowledges everything and keeps
/// nothing: the run fails, its outputs are still written) whose receiver URLs carry the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_through_a_collector_with_credentials_shows_none() {
    let stack = stack::EmbeddedStack::start(stack::EmbeddedConfig::default())
        .await
        .unwrap();
    let e = stack.endpoints().clone();
    let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::NO_CONTENT });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let secret = secret();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let collector = with_userinfo(&receiver, &secret);
    let args = vec![
        "--devices".into(),
        "4".into(),
        "--duration".into(),
        "2s".into(),
        "--rate".into(),
        "5".into(),
        "--drain".into(),
        "2s".into(),
        "--stack".into(),
        "external".into(),
        "--loki-url".into(),
        e.loki.to_string(),
        "--mimir-write-url".into(),
        e.prometheus_write.to_string(),
        "--mimir-query-url".into(),
        e.prometheus_query.to_string(),
        "--tempo-otlp-url".into(),
        e.tempo_otlp_http.to_string(),
        "--tempo-query-url".into(),
        e.tempo_query.to_string(),
        "--collector-loki-url".into(),
        collector.clone(),
        "--collector-write-url".into(),
        format!("{collector}/api/v1/write?access_token={secret}"),
        "--collector-otlp-url".into(),
        collector,
        "--out".into(),
        run.display().to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || loadgen(&args, &[]))
        .await
        .unwrap();
    // Lost everything: a failed run, with its outputs.
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_output_hidden(&secret, "loadgen through a collector", &out);
    assert!(run.join("results.json").is_file() && run.join("report.html").is_file());
    assert_folder_hidden(&secret, &run);
    task.abort();
    stack.shutdown().await;
}

/// Errors quote URLs too: a URL that does not parse (clap's own message would quote it whole),
/// a bad stack URL, and the preflight of a run whose receivers do not answer.
#[test]
fn errors_show_no_credentials() {
    let secret = secret();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = format!("http://loadgen:{secret}@[::1/");
    let with_secret = with_userinfo(&closed, &secret);
    for (what, args, code) in [
        (
            "an unparsable --collector-loki-url",
            strings(&["--devices", "2", "--collector-loki-url", &bad]),
            2,
        ),
        (
            "an unparsable --loki-url",
            strings(&["--devices", "2", "--stack", "external", "--loki-url", &bad]),
            2,
        ),
        (
            "a preflight that fails",
            strings(&[
                "--devices",
                "2",
                "--duration",
                "1s",
                "--direct",
                "--stack",
                "external",
                "--loki-url",
                &with_secret,
                "--mimir-write-url",
                &format!("{with_secret}/api/v1/push?X-Amz-Signature={secret}"),
                "--mimir-query-url",
                &with_secret,
                "--tempo-otlp-url",
                &with_secret,
                "--tempo-query-url",
                &format!("{closed}/?token={secret}"),
                "--out",
                &dir.path().join("run").display().to_string(),
            ]),
            2,
        ),
    ] {
        let out = loadgen(&args, &[]);
        assert_eq!(out.status.code(), Some(code), "{what}: {out:?}");
        assert_output_hidden(&secret, what, &out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("xxxxx"), "{what}: {stderr}");
    }
}
