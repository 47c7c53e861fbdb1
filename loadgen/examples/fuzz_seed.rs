//! Writes the seed corpora of the fuzz targets (`fuzz/`, see fuzz/README.md) from the project's
//! own encoders: realistic fleet payloads from loadgen's generators (device scrapes as remote
//! write, exposition text and OTLP metrics; log lines as Loki pushes and OTLP logs; POS checkouts
//! as OTLP traces), encoded by `wire`, one file per payload and variant under
//! `<dir>/<target>/`. Nothing random beyond the fleet's seed: the same corpora every run.
//!
//! ```text
//! cargo run -p loadgen --features fuzz-seed --example fuzz_seed -- fuzz/corpus [devices]
//! ```
//!
//! The request targets' files are an HTTP-like head, a blank line, the body (the format is
//! `fuzz/src/input.rs`'s): `x-fuzz-encode: 1` has the target snappy/gzip/zstd-encode and frame
//! the plain protobuf or JSON body written here, so the fuzzer mutates the message itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use loadgen::fleet::FleetSpec;
use loadgen::generate::{DeviceSignals, LogEntry};
use loadgen::payload::otlp::{logs_request, metrics_request};
use prost::Message;
use wire::otlp::{Encoding, ExportTraceServiceRequest, OtlpMessage};

/// Scrapes and pushes larger than this are left out: libFuzzer mutates small inputs faster.
const MAX_SEED: usize = 48 << 10;
/// A fixed clock: the corpora do not change from run to run.
const NOW_MS: i64 = 1_700_000_000_000;

struct Corpus {
    dir: PathBuf,
    files: BTreeMap<String, usize>,
}

impl Corpus {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
        if bytes.len() > MAX_SEED {
            return Ok(());
        }
        let dir = self.dir.join(target);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        *self.files.entry(target.to_string()).or_default() += 1;
        Ok(())
    }

    /// A request target's input: the path, the headers, `x-fuzz-encode: 1`, a blank line, the
    /// plain body.
    fn request(
        &mut self,
        target: &str,
        name: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<()> {
        let mut head = format!("{path}\n");
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\n"));
        }
        head.push_str("x-fuzz-encode: 1\n\n");
        let mut input = head.into_bytes();
        input.extend_from_slice(body);
        self.put(target, name, &input)
    }

    /// An OTLP message for the `otlp_*`, `rx_otlp_http` and `rx_otlp_grpc` targets.
    fn otlp<M: OtlpMessage>(&mut self, signal: u8, name: &str, m: &M) -> Result<()> {
        let (path, service) = match signal {
            0 => ("/v1/logs", "logs.v1.LogsService"),
            1 => ("/v1/metrics", "metrics.v1.MetricsService"),
            _ => ("/v1/traces", "trace.v1.TraceService"),
        };
        let pb = wire::otlp::encode(m, Encoding::Protobuf)?;
        let json = wire::otlp::encode(m, Encoding::Json)?;
        self.put("otlp_protobuf", name, &[&[signal][..], &pb[..]].concat())?;
        self.put("otlp_json", name, &[&[signal][..], &json[..]].concat())?;
        let pbct = [("content-type", wire::http::PROTOBUF)];
        self.request("rx_otlp_http", &format!("{name}-pb"), path, &pbct, &pb)?;
        let gz = [
            ("content-type", wire::http::JSON),
            ("content-encoding", "gzip"),
        ];
        self.request(
            "rx_otlp_http",
            &format!("{name}-json-gzip"),
            path,
            &gz,
            &json,
        )?;
        let grpc_path = format!("/opentelemetry.proto.collector.{service}/Export");
        for encoding in ["identity", "gzip", "zstd"] {
            let h = [
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                ("grpc-encoding", encoding),
            ];
            let file = format!("{name}-{encoding}");
            self.request("rx_otlp_grpc", &file, &grpc_path, &h, &pb)?;
        }
        Ok(())
    }
}

/// Log entries as one Loki push, a stream per label set, with structured metadata on the first
/// entry of each stream.
fn loki_push(entries: &[LogEntry], trace_id: &str) -> wire::loki::PushRequest {
    let mut streams: BTreeMap<String, wire::loki::Stream> = BTreeMap::new();
    for e in entries {
        let labels = wire::labels::format_label_set(&e.labels);
        let stream = streams
            .entry(labels.clone())
            .or_insert_with(|| wire::loki::Stream {
                labels,
                entries: Vec::new(),
                hash: 0,
            });
        let mut entry = wire::loki::Entry::new(e.timestamp_ns, e.line.clone());
        if stream.entries.is_empty() {
            entry.structured_metadata.push(wire::loki::LabelPair {
                name: "trace_id".into(),
                value: trace_id.into(),
            });
        }
        stream.entries.push(entry);
    }
    wire::loki::PushRequest {
        streams: streams.into_values().collect(),
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "fuzz/corpus".into()));
    let devices: u64 = match args.next() {
        Some(n) => n.parse().context("devices: a number")?,
        None => 16,
    };
    let spec = FleetSpec {
        devices,
        ..FleetSpec::default()
    };
    let mut c = Corpus {
        dir,
        files: BTreeMap::new(),
    };
    let mut entries: Vec<LogEntry> = Vec::new();
    let mut spans = ExportTraceServiceRequest::default();
    for i in 0..devices {
        let device = spec.device(i);
        let labels = device.labels();
        let mut signals = DeviceSignals::new(&device, spec.seed);
        let d = format!("{}-{i}", device.device_type.as_str());
        let now_ns = NOW_MS * 1_000_000;

        // Metrics: a scrape as exposition text, remote write and OTLP.
        let scrape = signals.scrape(NOW_MS, Some(i));
        c.put("exposition", &format!("{d}-text"), scrape.text().as_bytes())?;
        let om = wire::exposition::encode_openmetrics(&scrape.families);
        c.put("exposition", &format!("{d}-openmetrics"), om.as_bytes())?;
        let rw = wire::remote_write::WriteRequest {
            timeseries: scrape.series(),
            metadata: Vec::new(),
        };
        let pb = rw.encode_to_vec();
        c.put("remote_write", &format!("{d}-pb"), &pb)?;
        c.put(
            "remote_write",
            &format!("{d}-snappy"),
            &wire::remote_write::encode(&rw),
        )?;
        let rw_headers = [
            ("content-type", wire::http::PROTOBUF),
            ("content-encoding", wire::http::SNAPPY),
            (
                wire::http::REMOTE_WRITE_VERSION_HEADER,
                wire::remote_write::VERSION_HEADER_VALUE,
            ),
        ];
        c.request("rx_remote_write", &d, "/api/v1/write", &rw_headers, &pb)?;
        c.otlp(
            1,
            &format!("{d}-metrics"),
            &metrics_request(&scrape, &labels),
        )?;

        // Compression: the remote write protobuf, snappy, gzip and deflate (first byte: the
        // decoder and a 1 MiB limit).
        c.put(
            "compression",
            &format!("{d}-snappy"),
            &[&[60][..], &wire::remote_write::encode(&rw)[..]].concat(),
        )?;
        let gz = wire::compression::gzip_compress(&pb);
        c.put(
            "compression",
            &format!("{d}-gzip"),
            &[&[61][..], &gz[..]].concat(),
        )?;

        // Labels: the device's label set, and a series' with its name.
        c.put(
            "labels",
            &d,
            wire::labels::format_label_set(&labels).as_bytes(),
        )?;

        // Logs: a few lines, and a checkout's trace and log line on POS terminals.
        let mut lines: Vec<LogEntry> = (0..3)
            .map(|k| signals.log_line(now_ns + k, (k == 0).then_some(i)))
            .collect();
        let mut trace_id = String::from("5b8efff798038103d269b633813fc60c");
        if let Some(checkout) = signals.checkout(now_ns, Some(i), Some(i)) {
            trace_id = hex::encode(checkout.trace_id);
            lines.push(checkout.log.clone());
            let traces = ExportTraceServiceRequest {
                resource_spans: checkout.resource_spans,
            };
            c.otlp(2, &format!("{d}-traces"), &traces)?;
            spans.resource_spans.extend(traces.resource_spans);
        }
        c.otlp(0, &format!("{d}-logs"), &logs_request(&lines))?;
        let push = loki_push(&lines, &trace_id);
        let push_pb = push.encode_to_vec();
        let push_json = wire::loki::encode_json(&push)?;
        let loki_path = "/loki/api/v1/push";
        for (variant, headers, body) in [
            ("pb", vec![("content-type", wire::http::PROTOBUF)], &push_pb),
            (
                "pb-deflate",
                vec![
                    ("content-type", wire::http::PROTOBUF),
                    ("content-encoding", "deflate"),
                ],
                &push_pb,
            ),
            ("json", vec![("content-type", wire::http::JSON)], &push_json),
            (
                "json-gzip",
                vec![
                    ("content-type", wire::http::JSON),
                    ("content-encoding", "gzip"),
                ],
                &push_json,
            ),
        ] {
            let name = format!("{d}-{variant}");
            c.request("loki_push", &name, loki_path, &headers, body)?;
            c.request("rx_loki_push", &name, loki_path, &headers, body)?;
        }
        entries.extend(lines);
    }
    // Whole-fleet requests: every device's lines in one push, every checkout in one export.
    let push = loki_push(&entries, "5b8efff798038103d269b633813fc60c");
    let headers = [
        ("content-type", wire::http::PROTOBUF),
        ("x-fuzz-chunk", "512"),
    ];
    let body = push.encode_to_vec();
    c.request(
        "rx_loki_push",
        "fleet-pb-chunked",
        "/loki/api/v1/push",
        &headers,
        &body,
    )?;
    c.request(
        "loki_push",
        "fleet-pb",
        "/loki/api/v1/push",
        &headers,
        &body,
    )?;
    if !spans.resource_spans.is_empty() {
        c.otlp(2, "fleet-traces", &spans)?;
    }
    let deflate = std::iter::once(62u8)
        .chain(zlib(&body))
        .collect::<Vec<u8>>();
    c.put("compression", "fleet-deflate", &deflate)?;

    for (target, n) in &c.files {
        println!("{:>5} {}", n, Path::new(target).display());
    }
    Ok(())
}

/// Zlib (`Content-Encoding: deflate`): the deflate stream of `wire`'s gzip between a zlib
/// header and the Adler-32 of `bytes` (loadgen has no zlib encoder of its own).
fn zlib(bytes: &[u8]) -> Vec<u8> {
    let gz = wire::compression::gzip_compress(bytes);
    // A 10-byte gzip header without optional fields, and an 8-byte trailer.
    let deflate = &gz[10..gz.len().saturating_sub(8).max(10)];
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    let mut out = vec![0x78, 0x9c];
    out.extend_from_slice(deflate);
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}
