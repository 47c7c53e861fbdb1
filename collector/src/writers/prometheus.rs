//! `prometheus_remote_write`: sends samples with Prometheus remote write 1.0 (Mimir, Prometheus)
//! to `url` (the full push URL, e.g. `http://mimir:9009/api/v1/push`), like Alloy's
//! `prometheus.remote_write`.
//!
//! Headers per the spec: `Content-Encoding: snappy`, `Content-Type: application/x-protobuf`,
//! `X-Prometheus-Remote-Write-Version: 0.1.0`, a `User-Agent`. Series labels are sent sorted
//! by name, samples in time order per series. A request holds at most `max_samples_per_send`
//! samples (default 2000). Sending is parallel only across series: the hash of a series' labels
//! picks one of `shards` workers (default 1), each sending its batches in order, so a series'
//! samples always arrive in order. 5xx and 429 are retried; other 4xx are not (spec: MUST NOT).
//!
//! Partial refusals: Mimir and Prometheus store the valid samples of a request and answer 400
//! for the others (out of order, too old, ...). Remote write 1.0 says nothing of how many were
//! stored; Remote-Write 2.0 receivers send `X-Prometheus-Remote-Write-Samples-Written` (also
//! with a 4xx). When that header is there, its count is `sent` and the rest `discarded
//! {reason="http_400"}`; without it (remote write 1.0 receivers, Mimir answering a 1.0 request)
//! the whole request is counted as refused: conservative, it never claims delivery of a sample
//! that may have been lost.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasherDefault;

use bytes::Bytes;
use serde::Deserialize;

use super::batcher::{Engine, Sink, parse_config};
use super::http::{HttpClient, PROTOBUF};
use super::retry::{Attempt, Split};
use crate::event::{MetricSample, SharedLabels, Signal};
use crate::sources::BuildError;

/// The writer's own keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoteWriteConfig {
    #[serde(default = "default_max_samples")]
    max_samples_per_send: usize,
    #[serde(default = "default_shards")]
    shards: usize,
}

fn default_max_samples() -> usize {
    2000
}
fn default_shards() -> usize {
    1
}

/// Encodes and sends batches of samples.
pub struct RemoteWriteSink {
    http: HttpClient,
    shards: usize,
}

/// Builds the writer from its settings.
pub fn build(table: toml::Table) -> Result<Engine<RemoteWriteSink>, BuildError> {
    let (common, own): (_, RemoteWriteConfig) = parse_config(table)?;
    if own.shards == 0 || own.shards > 1024 {
        return Err(BuildError::Invalid {
            key: "shards".into(),
            reason: format!("{} is not between 1 and 1024", own.shards),
        });
    }
    let http = HttpClient::new(
        &common.client,
        &common.client.url,
        &[
            PROTOBUF,
            ("content-encoding", wire::http::SNAPPY),
            (
                wire::http::REMOTE_WRITE_VERSION_HEADER,
                wire::remote_write::VERSION_HEADER_VALUE,
            ),
        ],
    )?
    .with_partial(|headers, _| samples_written(headers).map(Split::Stored));
    Ok(Engine::new(
        RemoteWriteSink {
            http,
            shards: own.shards,
        },
        own.max_samples_per_send,
        &common,
    ))
}

/// The Remote-Write 2.0 header saying how many samples a receiver stored.
pub const SAMPLES_WRITTEN: &str = "x-prometheus-remote-write-samples-written";

/// How many samples an answer says were stored, if it says.
pub fn samples_written(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers
        .get(SAMPLES_WRITTEN)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The remote-write body (snappy protobuf) for `samples`: one time series per distinct label
/// set (labels sorted: [`Labels`](crate::event::Labels) keeps them so), in the order the sets
/// first appear, each with its samples in time order. Series are found by the sets' cached
/// content hash ([`SharedLabels::content_hash`]), so a sample costs a hash lookup, not a
/// comparison of label strings; the protobuf is written straight from the shared sets
/// ([`wire::remote_write::RequestEncoder`]), not copied into messages first.
pub fn encode_samples(samples: &[MetricSample]) -> Vec<u8> {
    /// A series' samples, chained through `next` in arrival order.
    struct Chain {
        first: usize,
        last: usize,
    }
    const END: usize = usize::MAX;
    // SharedLabels' interior mutability is the memo of its hash and size: its hash and
    // equality do not change while it is a key.
    #[allow(clippy::mutable_key_type)]
    let mut index: HashMap<&SharedLabels, usize, BuildHasherDefault<rustc_hash::FxHasher>> =
        HashMap::default();
    let mut series: Vec<Chain> = Vec::new();
    let mut next = vec![END; samples.len()];
    for (i, s) in samples.iter().enumerate() {
        match index.entry(&s.labels) {
            Entry::Occupied(e) => {
                let chain = &mut series[*e.get()];
                next[chain.last] = i;
                chain.last = i;
            }
            Entry::Vacant(e) => {
                e.insert(series.len());
                series.push(Chain { first: i, last: i });
            }
        }
    }
    // About what a node_exporter sample with a dozen labels takes.
    let mut enc = wire::remote_write::RequestEncoder::with_capacity(samples.len() * 128);
    let mut points = Vec::new();
    for chain in &series {
        points.clear();
        let mut i = chain.first;
        while i != END {
            points.push(wire::remote_write::Sample {
                value: samples[i].value,
                timestamp: samples[i].timestamp_ms,
            });
            i = next[i];
        }
        if !points.is_sorted_by_key(|p| p.timestamp) {
            points.sort_by_key(|p| p.timestamp);
        }
        enc.series(samples[chain.first].labels.iter(), &points);
    }
    enc.finish_snappy()
}

impl Sink for RemoteWriteSink {
    type Item = MetricSample;
    type Payload = Bytes;
    const SIGNAL: Signal = Signal::Metrics;

    fn count(_: &MetricSample) -> u64 {
        1
    }

    fn size_bytes(s: &MetricSample) -> usize {
        s.size_bytes()
    }

    fn weight(&self, _: &MetricSample) -> usize {
        1
    }

    fn shards(&self) -> usize {
        self.shards
    }

    fn shard(&self, s: &MetricSample) -> usize {
        (s.labels.content_hash() % self.shards as u64) as usize
    }

    fn encode(&self, items: Vec<MetricSample>) -> Bytes {
        Bytes::from(encode_samples(&items))
    }

    fn send(&self, payload: &Bytes) -> impl Future<Output = Attempt> + Send {
        self.http.post_simple(payload.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, job: &str, v: f64, ts: i64) -> MetricSample {
        MetricSample {
            labels: SharedLabels::from_iter([("job", job), ("__name__", name)]),
            value: v,
            timestamp_ms: ts,
        }
    }

    #[test]
    fn one_series_per_label_set_with_sorted_labels_and_ordered_samples() {
        // Equal sets that are not shared (two requests' copies of one series) make one series.
        let body = encode_samples(&[
            sample("up", "b", 1.0, 20),
            sample("up", "a", 2.0, 10),
            sample("up", "b", 3.0, 10),
            sample("up", "b", wire::remote_write::stale_nan(), 30),
        ]);
        let req = wire::remote_write::decode(&body, 1 << 20).unwrap();
        assert_eq!(req.timeseries.len(), 2);
        for ts in &req.timeseries {
            assert!(wire::remote_write::check_series(&ts.labels).is_ok());
            assert!(
                ts.samples
                    .windows(2)
                    .all(|w| w[0].timestamp <= w[1].timestamp)
            );
        }
        let b = &req.timeseries[0];
        assert_eq!(b.labels[1].value, "b");
        assert_eq!(
            b.samples.iter().map(|s| s.timestamp).collect::<Vec<_>>(),
            [10, 20, 30]
        );
        assert_eq!(b.samples[0].value, 3.0);
        assert!(wire::remote_write::is_stale_nan(b.samples[2].value));
        assert_eq!(req.timeseries[1].labels[1].value, "a");
    }

    #[test]
    fn a_series_always_lands_on_the_same_shard_and_headers_are_set() {
        let t: toml::Table = toml::from_str("url = \"http://m/api/v1/push\"\nshards = 4").unwrap();
        let e = build(t).unwrap();
        let s = e.sink();
        let a = sample("up", "a", 1.0, 1);
        let first = s.shard(&a);
        assert!(first < 4);
        assert!((0..10).all(|i| s.shard(&sample("up", "a", f64::from(i), i.into())) == first));
        let h = s.http.headers();
        assert_eq!(h["content-encoding"], "snappy");
        assert_eq!(h["x-prometheus-remote-write-version"], "0.1.0");
        let t: toml::Table = toml::from_str("url = \"http://m\"\nshards = 0").unwrap();
        assert!(build(t).is_err());
    }
}
