//! Canaries: a share of every signal carries the device, a per-device per-signal sequence number
//! and the send time, so the verifier can read them back from the stack and count what was lost,
//! duplicated or reordered, and how long data took to become queryable.
//!
//! | signal | where the stamp is | how the verifier finds it |
//! |---|---|---|
//! | logs | the token `loadgen_canary=<device>/<seq>/<sent_ns>/<run>` at the end of the line (as a JSON field `"loadgen_canary":"<device>/<seq>/<sent_ns>/<run>"` in JSON lines) | LogQL `{device=~"..."} \|= "loadgen_canary" \|= "/<run>"`, [`find_token`] on each line |
//! | metrics | the series `loadgen_canary_seq` with the device's labels and `loadgen_run="<run>"`: value = seq, timestamp = send time | PromQL range query of `loadgen_canary_seq{device=~"...",loadgen_run="<run>"}` |
//! | traces | a span with attributes `loadgen.canary.device`, `loadgen.canary.seq`, `loadgen.canary.sent_ns`, in a trace whose id is [`trace_id`]`(run, device index, seq)` | Tempo `GET /api/traces/<id>` |
//!
//! Every canary carries its run (`<run>` is [`run_tag`]: 8 hex digits): a real stack keeps
//! earlier runs' data, and two runs of one seed have the same devices and sequence numbers, so
//! a canary is matched on its run as well as its device and seq. Queries select the run too,
//! so a read-back costs what this run's canaries cost, not what the stack holds.

/// The metric name of metric canaries.
pub const METRIC_NAME: &str = "loadgen_canary_seq";
/// The key of the log token (logfmt/syslog `key=value`, JSON field).
pub const LOG_KEY: &str = "loadgen_canary";
/// The label of metric canaries that names their run.
pub const RUN_LABEL: &str = "loadgen_run";
/// Span attribute keys.
pub const SPAN_DEVICE: &str = "loadgen.canary.device";
pub const SPAN_SEQ: &str = "loadgen.canary.seq";
pub const SPAN_SENT_NS: &str = "loadgen.canary.sent_ns";

/// One canary as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canary {
    pub device: String,
    pub seq: u64,
    pub sent_ns: i64,
    pub run: u32,
}

/// A canary to stamp: its run and sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub run: u32,
    pub seq: u64,
}

/// How a run is written in canaries: 8 lower-case hex digits.
pub fn run_tag(run: u32) -> String {
    format!("{run:08x}")
}

/// The token's value: `<device>/<seq>/<sent_ns>/<run>` (device ids never contain `/`).
pub fn token_value(device: &str, mark: Mark, sent_ns: i64) -> String {
    format!("{device}/{}/{sent_ns}/{}", mark.seq, run_tag(mark.run))
}

/// `loadgen_canary=<value>`, for logfmt and syslog lines.
pub fn token(device: &str, mark: Mark, sent_ns: i64) -> String {
    format!("{LOG_KEY}={}", token_value(device, mark, sent_ns))
}

/// Finds the canary in a log line, in either form (`key=value` or `"key":"value"`).
pub fn find_token(line: &str) -> Option<Canary> {
    let at = line.find(LOG_KEY)?;
    let rest = &line[at + LOG_KEY.len()..];
    let rest = rest
        .strip_prefix('=')
        .or_else(|| rest.strip_prefix("\":\""))
        .or_else(|| rest.strip_prefix("\": \""))?;
    let end = rest
        .find(|c: char| c == '"' || c.is_whitespace())
        .unwrap_or(rest.len());
    let mut parts = rest[..end].splitn(4, '/');
    let device = parts.next()?.to_string();
    let seq = parts.next()?.parse().ok()?;
    let sent_ns = parts.next()?.parse().ok()?;
    let run = parts
        .next()
        .filter(|r| r.len() == 8)
        .and_then(|r| u32::from_str_radix(r, 16).ok())?;
    if device.is_empty() {
        return None;
    }
    Some(Canary {
        device,
        seq,
        sent_ns,
        run,
    })
}

/// The trace id of a device's canary trace `seq`: deterministic, so the verifier can fetch it by
/// id; never all zero. Bytes 0..8 are the device index, 8..16 the sequence number, both
/// big-endian with the top bit of byte 0 set.
///
/// `run` tells runs apart: two runs of one seed have the same devices and canary sequence
/// numbers, and a trace is looked up by id with no time window, so without it a run against a
/// stack that still holds an earlier run's traces would find that run's canaries (and miss its
/// own losses). A device's canary numbers stay far below 2^32 in any run.
pub fn trace_id(run: u32, device_index: u64, seq: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(device_index | (1 << 63)).to_be_bytes());
    id[8..12].copy_from_slice(&run.to_be_bytes());
    id[12..].copy_from_slice(&(seq as u32).to_be_bytes());
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn both_forms_are_found() {
        let line = format!(
            "<14>1 2026-11-21T10:00:00Z rtr-1 ifmon - - - link up {}",
            token("rtr-1", Mark { run: 0xab, seq: 42 }, 1_700)
        );
        assert!(
            line.ends_with("loadgen_canary=rtr-1/42/1700/000000ab"),
            "{line}"
        );
        assert_eq!(
            find_token(&line),
            Some(Canary {
                device: "rtr-1".into(),
                seq: 42,
                sent_ns: 1_700,
                run: 0xab,
            })
        );
        let json = format!(
            r#"{{"level":"info","{LOG_KEY}":"{}","msg":"x"}}"#,
            token_value("pos-1", Mark { run: 1, seq: 7 }, 9)
        );
        assert_eq!(
            find_token(&json),
            Some(Canary {
                device: "pos-1".into(),
                seq: 7,
                sent_ns: 9,
                run: 1,
            })
        );
        assert_eq!(find_token("no canary here"), None);
        assert_eq!(find_token("loadgen_canary=a/notanumber/1/00000000"), None);
        // A token without its run (an older loadgen) is not this run's canary.
        assert_eq!(find_token("loadgen_canary=a/1/1"), None);
    }

    #[test]
    fn trace_ids_are_distinct_and_nonzero() {
        assert_ne!(trace_id(0, 0, 0), [0u8; 16]);
        assert_ne!(trace_id(0, 1, 2), trace_id(0, 2, 1));
        assert_ne!(trace_id(7, 1, 2), trace_id(8, 1, 2), "runs differ");
    }

    proptest! {
        #[test]
        fn tokens_round_trip(dev in "[a-z0-9-]{1,20}", seq: u64, sent: i64, run: u32, prefix in "[ -~]{0,40}") {
            let line = format!("{prefix} {}", token(&dev, Mark { run, seq }, sent));
            let c = find_token(&line).unwrap();
            prop_assert_eq!(c, Canary { device: dev, seq, sent_ns: sent, run });
        }

        #[test]
        fn find_never_panics(s in ".*") {
            let _ = find_token(&s);
        }
    }
}
