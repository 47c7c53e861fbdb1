//! The embedded Loki's and Mimir's validation and series limits over real sockets, with the
//! real servers' defaults: Mimir refuses a sample at `i64::MAX` ms (too far in the future) and a
//! series of 10,000 labels with its `err-mimir-...` messages, and a new series past the tenant's
//! `max_global_series_per_user`; Loki refuses a stream of 16 label names and a new stream past
//! `max_global_streams_per_user` (429), keeping the valid rest of each push; the refusals are
//! counted with the servers' discard reasons; `stack serve` takes every limit as a flag.

// Test code through and through (clippy.toml only exempts `#[test]` fns, not helpers).
#![allow(clippy::unwrap_used)]

use stack::embedded::limits::{LokiLimits, MimirLimits};
use stack::embedded::mimir::write::encode_series;
use stack::{EmbeddedConfig, EmbeddedStack};
use wire::loki::{Entry, PushRequest, Stream};

use crate::ingest_limits::post;

const PROTOBUF: &str = "application/x-protobuf";

fn now_ms() -> i64 {
    wire::time::now_ns() / 1_000_000
}

async fn start(loki: LokiLimits, mimir: MimirLimits) -> EmbeddedStack {
    EmbeddedStack::start(EmbeddedConfig {
        loki_limits: loki,
        mimir_limits: mimir,
        // Streams as pushed: no service_name label added.
        loki_discover_service_name: false,
        ..EmbeddedConfig::default()
    })
    .await
    .unwrap()
}

/// A sample of the series `labels` on `/metrics` (`name{labels} value`).
async fn sample(base: std::net::SocketAddr, series: &str) -> f64 {
    let text = reqwest::get(format!("http://{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn mimir_refuses_a_sample_at_i64_max_and_keeps_accepting_the_series() {
    let stack = start(LokiLimits::default(), MimirLimits::default()).await;
    let url = format!("http://{}/api/v1/push", stack.addrs().mimir);
    let up = vec![("__name__", "up"), ("job", "a")];
    let now = now_ms();
    // A good series beside the bad one is stored (Mimir keeps the valid part of a push).
    let body = encode_series(&[
        (up.clone(), vec![(i64::MAX, 1.0)]),
        (vec![("__name__", "up"), ("job", "b")], vec![(now, 1.0)]),
    ]);
    let (status, _, text) = post(url.clone(), "t", PROTOBUF, body).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(
        text,
        format!(
            "received a sample whose timestamp is too far in the future, timestamp: {} series: 'up' (err-mimir-too-far-in-future). To adjust the related per-tenant limit, configure -validation.create-grace-period, or contact your service administrator.\n",
            i64::MAX
        )
    );
    assert_eq!(stack.mimir.store.read().sample_count(), 1);
    // The refused sample left nothing behind: the series takes samples of now.
    let (status, _, text) = post(
        url.clone(),
        "t",
        PROTOBUF,
        encode_series(&[(up, vec![(now, 2.0)])]),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(stack.mimir.store.read().sample_count(), 2);
    // Within the grace period is fine; beyond it is not.
    let soon = encode_series(&[(
        vec![("__name__", "up"), ("job", "c")],
        vec![(now + 5 * 60_000, 1.0)],
    )]);
    assert_eq!(post(url.clone(), "t", PROTOBUF, soon).await.0, 200);
    let late = encode_series(&[(
        vec![("__name__", "up"), ("job", "d")],
        vec![(now + 11 * 60_000, 1.0)],
    )]);
    assert_eq!(post(url, "t", PROTOBUF, late).await.0, 400);
    let discarded = r#"cortex_discarded_samples_total{reason="too_far_in_future",user="t"}"#;
    assert_eq!(sample(stack.addrs().mimir, discarded).await, 2.0);
}

#[tokio::test]
async fn mimir_refuses_a_series_of_ten_thousand_labels_and_overlong_names_and_values() {
    let stack = start(LokiLimits::default(), MimirLimits::default()).await;
    let url = format!("http://{}/api/v1/push", stack.addrs().mimir);
    let now = now_ms();
    let names: Vec<String> = (0..9_999).map(|i| format!("l{i:05}")).collect();
    let mut labels = vec![("__name__", "up")];
    labels.extend(names.iter().map(|n| (n.as_str(), "v")));
    let (status, _, text) = post(
        url.clone(),
        "t",
        PROTOBUF,
        encode_series(&[(labels, vec![(now, 1.0)])]),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.starts_with(
            r#"received a series whose number of labels exceeds the limit (actual: 10000, limit: 30) series: '{__name__="up", l00000="v", "#
        ),
        "{text}"
    );
    assert!(
        text.ends_with("…' (err-mimir-max-label-names-per-series). To adjust the related per-tenant limit, configure -validation.max-label-names-per-series, or contact your service administrator.\n"),
        "{text}"
    );
    assert_eq!(stack.mimir.store.read().series_count(), 0);

    // 30 labels pass; a *_info series may have up to 80.
    let mut thirty = vec![("__name__", "up")];
    thirty.extend(names[..29].iter().map(|n| (n.as_str(), "v")));
    let mut info = vec![("__name__", "target_info")];
    info.extend(names[..79].iter().map(|n| (n.as_str(), "v")));
    let body = encode_series(&[(thirty, vec![(now, 1.0)]), (info, vec![(now, 1.0)])]);
    let (status, _, text) = post(url.clone(), "t", PROTOBUF, body).await;
    assert_eq!(status, 200, "{text}");

    let long_name = "n".repeat(1025);
    let body = encode_series(&[(
        vec![("__name__", "up"), (long_name.as_str(), "v")],
        vec![(now, 1.0)],
    )]);
    let (status, _, text) = post(url.clone(), "t", PROTOBUF, body).await;
    assert_eq!(status, 400);
    assert!(
        text.starts_with(
            "received a series whose label name length exceeds the limit, label: 'nnn"
        ) && text.contains("(err-mimir-label-name-too-long)"),
        "{text}"
    );
    let long_value = "v".repeat(2049);
    let body = encode_series(&[(
        vec![("__name__", "up"), ("job", long_value.as_str())],
        vec![(now, 1.0)],
    )]);
    let (status, _, text) = post(url, "t", PROTOBUF, body).await;
    assert_eq!(status, 400);
    assert!(
        text.starts_with(
            "received a series whose label value length of 2049 exceeds the limit of 2048, label: 'job', value: 'vvv"
        ) && text.contains("(err-mimir-label-value-too-long)"),
        "{text}"
    );
    for reason in [
        "max_label_names_per_series",
        "label_name_too_long",
        "label_value_too_long",
    ] {
        let series = format!(r#"cortex_discarded_samples_total{{reason="{reason}",user="t"}}"#);
        assert_eq!(sample(stack.addrs().mimir, &series).await, 1.0, "{reason}");
    }
}

#[tokio::test]
async fn mimir_refuses_new_series_past_the_tenants_series_limit() {
    let stack = start(
        LokiLimits::default(),
        MimirLimits {
            max_global_series_per_user: 3,
            ..MimirLimits::default()
        },
    )
    .await;
    let url = format!("http://{}/api/v1/push", stack.addrs().mimir);
    let now = now_ms();
    let jobs = ["a", "b", "c", "d", "e"];
    let series = |t: i64| -> Vec<_> {
        jobs.iter()
            .map(|j| (vec![("__name__", "up"), ("job", *j)], vec![(t, 1.0)]))
            .collect()
    };
    let (status, _, text) = post(url.clone(), "t1", PROTOBUF, encode_series(&series(now))).await;
    assert_eq!(status, 400);
    assert_eq!(
        text,
        "per-user series limit of 3 exceeded (err-mimir-max-series-per-user). To adjust the related per-tenant limit, configure -ingester.max-global-series-per-user, or contact your service administrator.\n"
    );
    {
        let store = stack.mimir.store.read();
        assert_eq!(store.series_count(), 3, "the first three series are kept");
        assert_eq!(store.sample_count(), 3);
    }
    // The series it holds still take samples; another tenant has its own limit.
    let known = encode_series(&series(now + 1)[..3]);
    assert_eq!(post(url.clone(), "t1", PROTOBUF, known).await.0, 200);
    assert_eq!(
        post(url, "t2", PROTOBUF, encode_series(&series(now)[..3]))
            .await
            .0,
        200
    );
    let discarded = r#"cortex_discarded_samples_total{reason="per_user_series_limit",user="t1"}"#;
    assert_eq!(sample(stack.addrs().mimir, discarded).await, 2.0);
}

fn stream(labels: String, line: &str) -> Stream {
    Stream {
        labels,
        entries: vec![Entry::new(
            wire::time::now_ns() - 1_000_000,
            line.to_string(),
        )],
        hash: 0,
    }
}

#[tokio::test]
async fn loki_refuses_a_stream_of_sixteen_label_names_and_keeps_the_rest() {
    let stack = start(LokiLimits::default(), MimirLimits::default()).await;
    let url = format!("http://{}/loki/api/v1/push", stack.addrs().loki);
    let labels = |n: usize| {
        let pairs: Vec<String> = (0..n).map(|i| format!("l{i:02}=\"v\"")).collect();
        format!("{{{}}}", pairs.join(", "))
    };
    let push = PushRequest {
        streams: vec![stream(labels(16), "too many"), stream(labels(15), "fine")],
    };
    let (status, _, text) = post(
        url.clone(),
        "fake",
        "application/json",
        wire::loki::encode_json(&push).unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        text,
        format!(
            "entry for stream '{}' has 16 label names; limit 15\n",
            labels(16)
        )
    );
    let entries = "loki_embedded_ingested_entries_total";
    assert_eq!(
        crate::ingest_limits::metric(stack.addrs().loki, entries).await,
        1.0
    );

    let long = format!("{{job=\"{}\"}}", "v".repeat(2049));
    let push = PushRequest {
        streams: vec![stream(long, "x")],
    };
    let (status, _, text) = post(
        url,
        "fake",
        "application/json",
        wire::loki::encode_json(&push).unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        text.starts_with("stream '{job=\"vvv") && text.contains("' has label value too long: 'vvv"),
        "{text}"
    );
    for reason in ["max_label_names_per_series", "label_value_too_long"] {
        let series = format!(r#"loki_discarded_samples_total{{reason="{reason}",tenant="fake"}}"#);
        assert_eq!(sample(stack.addrs().loki, &series).await, 1.0, "{reason}");
    }
}

#[tokio::test]
async fn loki_refuses_new_streams_past_the_tenants_stream_limit_with_429() {
    let stack = start(
        LokiLimits {
            max_global_streams_per_user: 2,
            ..LokiLimits::default()
        },
        MimirLimits::default(),
    )
    .await;
    let url = format!("http://{}/loki/api/v1/push", stack.addrs().loki);
    let job = |j: &str| stream(format!("{{job=\"{j}\"}}"), j);
    let send = |streams: Vec<Stream>| {
        let body = wire::loki::encode_json(&PushRequest { streams }).unwrap();
        post(url.clone(), "fake", "application/json", body)
    };
    let (status, retry, text) = send(vec![job("a"), job("b"), job("c")]).await;
    assert_eq!(status, 429);
    assert_eq!(retry, None, "Loki sends no Retry-After");
    assert_eq!(
        text,
        "Maximum active stream limit exceeded when trying to create stream {job=\"c\"}, reduce the number of active streams (reduce labels or reduce label values), or contact your Loki administrator to see if the limit can be increased, user: 'fake'\n"
    );
    let entries = "loki_embedded_ingested_entries_total";
    assert_eq!(
        crate::ingest_limits::metric(stack.addrs().loki, entries).await,
        2.0
    );
    // As Loki's ingester answers only for the last stream of a push: a refused stream followed
    // by a stored one is counted but answered 204.
    let (status, _, text) = send(vec![job("d"), job("a")]).await;
    assert_eq!(status, 204, "{text}");
    assert_eq!(
        crate::ingest_limits::metric(stack.addrs().loki, entries).await,
        3.0
    );
    let discarded = r#"loki_discarded_samples_total{reason="stream_limit",tenant="fake"}"#;
    assert_eq!(sample(stack.addrs().loki, discarded).await, 2.0);
}

#[tokio::test]
async fn stack_serve_takes_the_validation_limits_as_flags() {
    let served = crate::serve_cli::serve(&[
        "--mimir-max-label-names-per-series",
        "3",
        "--mimir-max-global-series-per-user",
        "1",
        "--mimir-creation-grace-period",
        "1h",
        "--loki-max-label-names-per-series",
        "2",
        "--loki-max-global-streams-per-user",
        "0",
        "--loki-discover-service-name",
        "false",
    ]);
    let mimir = served.endpoints["addrs"]["mimir"].as_str().unwrap();
    let url = format!("http://{mimir}/api/v1/push");
    let later = now_ms() + 30 * 60_000;
    let four = encode_series(&[(
        vec![("__name__", "up"), ("a", "1"), ("b", "1"), ("c", "1")],
        vec![(later, 1.0)],
    )]);
    let (status, _, text) = post(url.clone(), "t", PROTOBUF, four).await;
    assert_eq!(status, 400);
    assert!(text.contains("(actual: 4, limit: 3)"), "{text}");
    // 30 minutes ahead is within the 1h grace period.
    let one = encode_series(&[(vec![("__name__", "up")], vec![(later, 1.0)])]);
    assert_eq!(post(url.clone(), "t", PROTOBUF, one).await.0, 200);
    let two = encode_series(&[(vec![("__name__", "down")], vec![(later, 1.0)])]);
    let (status, _, text) = post(url, "t", PROTOBUF, two).await;
    assert_eq!(status, 400);
    assert!(
        text.starts_with("per-user series limit of 1 exceeded"),
        "{text}"
    );

    let loki = served.endpoints["addrs"]["loki"].as_str().unwrap();
    let url = format!("http://{loki}/loki/api/v1/push");
    let send = |labels: &str| {
        let body = wire::loki::encode_json(&PushRequest {
            streams: vec![stream(labels.to_string(), "x")],
        })
        .unwrap();
        post(url.clone(), "fake", "application/json", body)
    };
    let (status, _, text) = send("{a=\"1\", b=\"1\", c=\"1\"}").await;
    assert_eq!(status, 400);
    assert!(text.contains("has 3 label names; limit 2"), "{text}");
    // No stream limit (0): many streams are fine.
    for i in 0..20 {
        assert_eq!(send(&format!("{{a=\"{i}\"}}")).await.0, 204);
    }

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_stack"))
        .args([
            "serve",
            "--ephemeral",
            "--mimir-creation-grace-period",
            "soon",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8(bad.stderr).unwrap();
    assert!(stderr.contains("--mimir-creation-grace-period"), "{stderr}");
}
