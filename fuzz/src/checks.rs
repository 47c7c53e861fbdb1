//! The `wire` targets' bodies: decode arbitrary bytes, and for what decodes, check what must
//! hold: the decoded-size estimate covers the real heap peak of decoding ([`wire::budget`]),
//! the decompressed size stays within its limit and is asked for before it is allocated, and
//! encoding what was decoded decodes to the same thing (or, where an encoding normalizes, is a
//! fixpoint after one pass).

use prost::Message;
use wire::budget::{self, ScanError, Schema};
use wire::otlp::{
    Encoding, ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest,
    OtlpMessage,
};
use wire::{WireError, exposition, loki, remote_write};

use crate::input::Request;
use crate::{OtlpSignal, encode, peak_of};

/// The decompression limit the `wire` targets decode within.
pub const LIMIT: usize = 4 << 20;

/// A payload decoded: its estimate must have been taken (no scan error) and cover the peak.
fn estimate_covers(what: &str, estimate: Result<usize, ScanError>, peak: usize) {
    let estimate = match estimate {
        Ok(e) => e,
        Err(e) => panic!("{what}: decoded, but the estimate refused it: {e}"),
    };
    assert!(
        estimate >= peak,
        "{what}: estimate {estimate} below the heap peak {peak} of decoding"
    );
}

/// `loki_push`: a push body with its headers ([`crate::input`]) through
/// `wire::loki::push_payload`, as the receiver reads it.
pub fn loki_push(data: &[u8]) {
    let req = Request::parse(data);
    let body = if req.encode {
        encode::loki(&req)
    } else {
        req.body.to_vec()
    };
    let (ct, ce) = (req.header("content-type"), req.header("content-encoding"));
    let mut asked = Vec::new();
    let payload = loki::push_payload(ct, ce, &body, LIMIT, &mut |n| {
        asked.push(n);
        Ok::<(), WireError>(())
    });
    let Ok(payload) = payload else { return };
    assert!(
        payload.len() <= LIMIT,
        "payload {} over {LIMIT}",
        payload.len()
    );
    if matches!(payload, loki::PushPayload::Protobuf(_)) {
        // Every buffer was asked for, before it was taken, at its final size.
        assert_eq!(asked.last(), Some(&payload.len()), "asked {asked:?}");
    }
    assert!(asked.iter().all(|&n| n <= LIMIT), "asked {asked:?}");
    let estimate = payload.estimate();
    let (peak, decoded) = peak_of(|| payload.decode());
    let Ok(push) = decoded else { return };
    estimate_covers("loki push", estimate, peak);
    assert_eq!(
        loki::decode_http(ct, ce, &body, LIMIT).as_ref().ok(),
        Some(&push),
        "decode_http disagrees with push_payload"
    );
    match payload {
        loki::PushPayload::Json(_) => {
            // Decoded JSON is already in the normal form (labels sorted, metadata a map).
            if let Ok(json) = loki::encode_json(&push) {
                let back = loki::decode_json(&json).expect("encode_json output decodes");
                assert_eq!(back, push, "JSON round trip");
            }
        }
        loki::PushPayload::Protobuf(_) => {
            let back = loki::decode_protobuf(&loki::encode_protobuf(&push), usize::MAX)
                .expect("encode_protobuf output decodes");
            assert_eq!(back, push, "protobuf round trip");
            // As JSON (labels re-sorted, metadata a map, timestamps normalized): one pass
            // reaches the normal form.
            if let Ok(json) = loki::encode_json(&push) {
                let once = loki::decode_json(&json).expect("encode_json output decodes");
                let json2 = loki::encode_json(&once).expect("a decoded JSON push encodes");
                assert_eq!(loki::decode_json(&json2).ok(), Some(once), "JSON fixpoint");
            }
        }
    }
}

/// `remote_write`: the bytes as a snappy body (`wire::remote_write::decode`) and as the
/// protobuf inside one (estimate, decode, round trip, the series rules).
pub fn remote_write(data: &[u8]) {
    if let Ok(req) = remote_write::decode(data, LIMIT) {
        let raw = wire::compression::snappy_decompress(data, LIMIT).expect("it decoded");
        assert!(raw.len() <= LIMIT);
        drop(req);
    }
    let estimate = budget::protobuf_estimate(data, &budget::WRITE_REQUEST);
    let (peak, decoded) = peak_of(|| remote_write::WriteRequest::decode(data));
    let Ok(req) = decoded else { return };
    estimate_covers("remote write", estimate, peak);
    for ts in &req.timeseries {
        let _ = remote_write::check_series(&ts.labels);
        let _ = ts.metric_name();
    }
    // Compared as encoded bytes: NaNs by their bits.
    let pb = req.encode_to_vec();
    let back = remote_write::decode(&remote_write::encode(&req), usize::MAX)
        .expect("encode output decodes");
    assert_eq!(back.encode_to_vec(), pb, "protobuf round trip");
}

fn otlp_protobuf_as<M: OtlpMessage + std::fmt::Debug>(what: &str, data: &[u8], schema: &'static Schema) {
    let estimate = budget::protobuf_estimate(data, schema);
    let (peak, decoded) = peak_of(|| wire::otlp::decode::<M>(data, Encoding::Protobuf));
    let Ok(m) = decoded else { return };
    estimate_covers(what, estimate, peak);
    let pb = wire::otlp::encode(&m, Encoding::Protobuf).expect("protobuf encodes");
    let back: M = wire::otlp::decode(&pb, Encoding::Protobuf).expect("encode output decodes");
    assert_eq!(back.encode_to_vec(), pb, "{what}: protobuf round trip");
    // As JSON: what comes back must be what went (NaNs made canonical: JSON keeps a NaN's
    // meaning, not its payload). Some protobuf has no JSON form (ids of the wrong length): it
    // may fail, never change.
    // `string_value_strindex` (AnyValue field 8) is an index into the profiles signal's string
    // table: opentelemetry-proto's serde writes it as `stringValueStrindex` but does not read it
    // back (the value comes back empty). No signal the pipeline carries uses it, so a message
    // holding one is left out of this comparison (found by this target, 2026-12-04).
    let profiles_only = format!("{m:?}").contains("StringValueStrindex");
    if !profiles_only
        && let Ok(json) = wire::otlp::encode(&m, Encoding::Json)
        && let Ok(back) = wire::otlp::decode::<M>(&json, Encoding::Json)
    {
        assert_eq!(
            back.encode_to_vec(),
            canonical_nans(&m).encode_to_vec(),
            "{what}: protobuf → JSON → protobuf changed it: {}",
            String::from_utf8_lossy(&json)
        );
    }
}

fn canonical_nans<M: OtlpMessage>(m: &M) -> M {
    let mut c = m.clone();
    c.for_each_double(&mut |d| {
        if d.is_nan() {
            *d = f64::NAN;
        }
    });
    c
}

/// `otlp_protobuf`: the first byte picks the signal ([`OtlpSignal`]), the rest is its export
/// request as protobuf.
pub fn otlp_protobuf(data: &[u8]) {
    let Some((signal, data)) = OtlpSignal::split(data) else {
        return;
    };
    match signal {
        OtlpSignal::Logs => {
            otlp_protobuf_as::<ExportLogsServiceRequest>("OTLP logs", data, &budget::EXPORT_LOGS)
        }
        OtlpSignal::Metrics => otlp_protobuf_as::<ExportMetricsServiceRequest>(
            "OTLP metrics",
            data,
            &budget::EXPORT_METRICS,
        ),
        OtlpSignal::Traces => otlp_protobuf_as::<ExportTraceServiceRequest>(
            "OTLP traces",
            data,
            &budget::EXPORT_TRACES,
        ),
    }
}

fn otlp_json_as<M: OtlpMessage>(what: &str, data: &[u8], schema: &'static Schema) {
    let estimate = budget::json_estimate(data, budget::max_struct_size(schema));
    let (peak, decoded) = peak_of(|| wire::otlp::decode::<M>(data, Encoding::Json));
    let Ok(m) = decoded else { return };
    estimate_covers(what, estimate, peak);
    let json = wire::otlp::encode(&m, Encoding::Json).expect("a decoded message encodes");
    let text = String::from_utf8_lossy(&json);
    assert!(!text.contains("null"), "{what}: null in {text}");
    let back: M = match wire::otlp::decode(&json, Encoding::Json) {
        Ok(b) => b,
        Err(e) => panic!("{what}: encode output does not decode: {e}: {text}"),
    };
    assert_eq!(
        back.encode_to_vec(),
        canonical_nans(&m).encode_to_vec(),
        "{what}: JSON round trip: {text}"
    );
    // The careful path (the JSON rewritten first) agrees with the fast one.
    let value = serde_json::from_slice(&json).expect("encode output is JSON");
    let careful: M = wire::otlp::from_json_value(value).expect("careful path decodes");
    assert_eq!(
        careful.encode_to_vec(),
        back.encode_to_vec(),
        "{what}: careful path"
    );
}

/// `otlp_json`: the first byte picks the signal ([`OtlpSignal`]), the rest is its export
/// request in the OTLP/JSON mapping.
pub fn otlp_json(data: &[u8]) {
    let Some((signal, data)) = OtlpSignal::split(data) else {
        return;
    };
    match signal {
        OtlpSignal::Logs => {
            otlp_json_as::<ExportLogsServiceRequest>("OTLP/JSON logs", data, &budget::EXPORT_LOGS)
        }
        OtlpSignal::Metrics => otlp_json_as::<ExportMetricsServiceRequest>(
            "OTLP/JSON metrics",
            data,
            &budget::EXPORT_METRICS,
        ),
        OtlpSignal::Traces => otlp_json_as::<ExportTraceServiceRequest>(
            "OTLP/JSON traces",
            data,
            &budget::EXPORT_TRACES,
        ),
    }
}

fn same_value(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Families equal, values by bits (any NaN equal to any NaN).
fn same_families(what: &str, a: &[exposition::MetricFamily], b: &[exposition::MetricFamily]) {
    assert_eq!(a.len(), b.len(), "{what}: families");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            (&x.name, &x.help, x.kind, &x.unit, x.samples.len()),
            (&y.name, &y.help, y.kind, &y.unit, y.samples.len()),
            "{what}: family"
        );
        for (s, t) in x.samples.iter().zip(&y.samples) {
            assert_eq!(
                (&s.name, &s.labels, s.timestamp_ms),
                (&t.name, &t.labels, t.timestamp_ms),
                "{what}: sample"
            );
            assert!(
                same_value(s.value, t.value),
                "{what}: {} vs {}",
                s.value,
                t.value
            );
            match (&s.exemplar, &t.exemplar) {
                (None, None) => {}
                (Some(e), Some(f)) => {
                    assert_eq!((&e.labels, e.timestamp_ms), (&f.labels, f.timestamp_ms));
                    assert!(same_value(e.value, f.value), "{what}: exemplar value");
                }
                (e, f) => panic!("{what}: exemplar {e:?} became {f:?}"),
            }
        }
    }
}

/// `exposition`: UTF-8 text parsed as Prometheus text 0.0.4 and as OpenMetrics; what parses is
/// written back and must parse to the same families.
pub fn exposition(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = exposition::parse(text);
    if let Ok(fams) = exposition::parse_as(text, exposition::Format::PrometheusText) {
        let _ = exposition::to_remote_write(&fams, 1_700_000_000_000).encode_to_vec();
        let _ = exposition::samples(&fams).count();
        let out = exposition::encode(&fams);
        match exposition::parse_as(&out, exposition::Format::PrometheusText) {
            Ok(back) => same_families("0.0.4 round trip", &fams, &back),
            Err(e) => panic!("0.0.4: encode output does not parse: {e}\n{out}"),
        }
    }
    if let Ok(fams) = exposition::parse_as(text, exposition::Format::OpenMetrics) {
        let out = exposition::encode_openmetrics(&fams);
        match exposition::parse_as(&out, exposition::Format::OpenMetrics) {
            Ok(back) => same_families("OpenMetrics round trip", &fams, &back),
            Err(e) => panic!("OpenMetrics: encode output does not parse: {e}\n{out}"),
        }
    }
}

/// `compression`: the first byte picks the decoder (snappy, gzip, deflate) and the limit
/// (`1 << (b / 3 % 24)`), the rest is decompressed: never more than the limit, the output's
/// size asked for once, before it is allocated; and compressing decompresses back.
pub fn compression(data: &[u8]) {
    let Some((&b, input)) = data.split_first() else {
        return;
    };
    let limit = 1usize << (b / 3 % 24);
    let mut asked = Vec::new();
    let mut reserve = |n: usize| {
        asked.push(n);
        Ok::<(), WireError>(())
    };
    match b % 3 {
        0 => {
            let declared = wire::compression::snappy_decompressed_len(input);
            if let Ok(n) = declared {
                assert!(n <= input.len().saturating_mul(22), "snappy declares {n}");
            }
            if let Ok(out) = wire::compression::snappy_decompress(input, limit) {
                assert!(out.len() <= limit);
                assert_eq!(declared.ok(), Some(out.len()), "snappy: declared length");
            }
            let packed = wire::compression::snappy_compress(input);
            let back = wire::compression::snappy_decompress(&packed, input.len())
                .expect("snappy round trip");
            assert_eq!(back, input, "snappy round trip");
        }
        1 => {
            if let Ok(out) = wire::compression::gzip_decompress_metered(input, limit, &mut reserve)
            {
                assert!(out.len() <= limit);
                assert_eq!(asked, [out.len()], "gzip: asked once for the output");
            }
            let packed = wire::compression::gzip_compress(input);
            let back =
                wire::compression::gzip_decompress(&packed, input.len()).expect("gzip round trip");
            assert_eq!(back, input, "gzip round trip");
        }
        _ => {
            if let Ok(out) =
                wire::compression::deflate_decompress_metered(input, limit, &mut reserve)
            {
                assert!(out.len() <= limit);
                assert_eq!(asked, [out.len()], "deflate: asked once for the output");
            }
        }
    }
}

/// `labels`: the `{a="b"}` syntax parsed, written back, parsed to the same; the name rules and
/// id parsers on the same text.
pub fn labels(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(set) = wire::labels::parse_label_set(text) {
        let out = wire::labels::format_label_set(&set);
        match wire::labels::parse_label_set(&out) {
            Ok(back) => assert_eq!(back, set, "label set round trip: {out}"),
            Err(e) => panic!("format_label_set output does not parse: {e}: {out}"),
        }
    }
    let _ = wire::labels::is_valid_label_name(text);
    let _ = wire::labels::is_valid_metric_name(text);
    let s = wire::labels::sanitize_label_name(text);
    assert!(
        s.is_empty() || wire::labels::is_valid_label_name(&s),
        "sanitize_label_name gave {s:?}"
    );
    let _ = wire::otlp::trace_id_from_hex(text);
    let _ = wire::otlp::span_id_from_hex(text);
    let _ = wire::exposition::Format::from_content_type(text);
    let _ = wire::otlp::Encoding::from_content_type(text);
}
