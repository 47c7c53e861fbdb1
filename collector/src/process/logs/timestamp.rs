//! `logs.timestamp`: sets an entry's time from an extracted field, as Alloy's `stage.timestamp`.
//!
//! ```toml
//! type = "logs.timestamp"
//! source = "time"                       # extracted field (required)
//! format = "2006-01-02 15:04:05.000"    # RFC3339, RFC3339Nano, Unix, UnixMs, UnixUs, UnixNs,
//!                                       # Go's named layouts (ANSIC, RFC1123Z, Stamp, DateTime, ...)
//!                                       # or a Go reference layout
//! fallback_formats = ["UnixMs"]         # tried in order when `format` fails
//! location = "UTC"                      # for layouts without a zone: UTC or a fixed offset "+02:00"
//! action_on_failure = "fudge"           # fudge (default) | skip
//! ```
//!
//! On failure (field missing or no format parses it), `fudge` sets the time to the last time this
//! stage set for the same label set plus 1ns, keeping the stream's order, and leaves it unchanged
//! when there is none; `skip` leaves it unchanged. Go layouts are translated to chrono's format
//! once, at build; as in Go, fractional seconds are accepted after the seconds even when the
//! layout does not show them, and a layout without a year takes the current year (as Alloy).
//! IANA zone names for `location` are not supported (no time zone database here).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, Offset, TimeZone, Utc};
use parking_lot::Mutex;
use serde::Deserialize;

use super::invalid;
use crate::event::LogBatch;
use crate::process::{Drops, Stage};
use crate::sources::BuildError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    source: String,
    format: String,
    #[serde(default)]
    fallback_formats: Vec<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    action_on_failure: OnFailure,
}

/// What to do with an entry whose time cannot be read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    #[default]
    Fudge,
    Skip,
}

/// How many label sets the fudge memory holds before it starts over (Alloy keeps a bounded
/// cache too).
const MAX_LAST_KNOWN: usize = 10_000;

/// The `logs.timestamp` stage.
pub struct Timestamp {
    source: String,
    formats: Vec<TimeFormat>,
    offset: FixedOffset,
    on_failure: OnFailure,
    /// The last time set per label set, by the label set's hash (a collision only changes which
    /// time a failed entry is fudged from).
    last_known: Mutex<HashMap<u64, i64>>,
    hasher: RandomState,
}

impl Timestamp {
    pub fn build(table: toml::Table) -> Result<Self, BuildError> {
        let c: Config = BuildError::parse(table)?;
        let mut formats = vec![TimeFormat::new("format", &c.format)?];
        for (i, f) in c.fallback_formats.iter().enumerate() {
            formats.push(TimeFormat::new(&format!("fallback_formats[{i}]"), f)?);
        }
        let offset = match c.location.as_deref() {
            None => utc(),
            Some(loc) => parse_location(loc).ok_or_else(|| {
                invalid(
                    "location",
                    format!("{loc:?}: only UTC or a fixed offset such as \"+02:00\" is supported"),
                )
            })?,
        };
        Ok(Timestamp {
            source: c.source,
            formats,
            offset,
            on_failure: c.action_on_failure,
            last_known: Mutex::new(HashMap::new()),
            hasher: RandomState::new(),
        })
    }

    fn parse(&self, value: &str) -> Option<i64> {
        self.formats
            .iter()
            .find_map(|f| f.parse(value, self.offset))
    }
}

impl Stage<LogBatch> for Timestamp {
    fn process(&self, batch: &mut LogBatch, _drops: &mut Drops) {
        let mut last_known = self.last_known.lock();
        for record in batch.iter_mut() {
            let parsed = record.fields.get(&self.source).and_then(|v| self.parse(v));
            match (parsed, self.on_failure) {
                (Some(ns), OnFailure::Fudge) => {
                    record.timestamp_ns = ns;
                    if last_known.len() >= MAX_LAST_KNOWN {
                        last_known.clear();
                    }
                    last_known.insert(self.hasher.hash_one(&record.labels), ns);
                }
                (Some(ns), OnFailure::Skip) => record.timestamp_ns = ns,
                (None, OnFailure::Fudge) => {
                    if let Some(last) = last_known.get_mut(&self.hasher.hash_one(&record.labels)) {
                        *last = last.saturating_add(1);
                        record.timestamp_ns = *last;
                    }
                }
                (None, OnFailure::Skip) => {}
            }
        }
    }
}

fn utc() -> FixedOffset {
    Utc.fix()
}

/// `UTC`, `Z` or `±HH:MM` / `±HHMM`.
fn parse_location(loc: &str) -> Option<FixedOffset> {
    if loc.eq_ignore_ascii_case("utc") || loc == "Z" {
        return Some(utc());
    }
    let sign = match loc.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = loc[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = digits[2..].parse().ok()?;
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// A time format, ready to parse with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TimeFormat {
    /// RFC3339 with or without fractional seconds (RFC3339 and RFC3339Nano).
    Rfc3339,
    /// Seconds since the epoch, with an optional fraction.
    Unix,
    UnixMs,
    UnixUs,
    UnixNs,
    /// A chrono format translated from a Go layout.
    Layout {
        chrono: String,
        has_offset: bool,
        has_year: bool,
    },
}

/// Go's named layouts (`time` package constants), by name.
const GO_NAMED: &[(&str, &str)] = &[
    ("ANSIC", "Mon Jan _2 15:04:05 2006"),
    ("UnixDate", "Mon Jan _2 15:04:05 MST 2006"),
    ("RubyDate", "Mon Jan 02 15:04:05 -0700 2006"),
    ("RFC822", "02 Jan 06 15:04 MST"),
    ("RFC822Z", "02 Jan 06 15:04 -0700"),
    ("RFC850", "Monday, 02-Jan-06 15:04:05 MST"),
    ("RFC1123", "Mon, 02 Jan 2006 15:04:05 MST"),
    ("RFC1123Z", "Mon, 02 Jan 2006 15:04:05 -0700"),
    ("Stamp", "Jan _2 15:04:05"),
    ("StampMilli", "Jan _2 15:04:05.000"),
    ("StampMicro", "Jan _2 15:04:05.000000"),
    ("StampNano", "Jan _2 15:04:05.000000000"),
    ("DateTime", "2006-01-02 15:04:05"),
];

/// Go layout elements and their chrono equivalents, longest first where one is a prefix of
/// another.
const GO_ELEMENTS: &[(&str, &str)] = &[
    ("January", "%B"),
    ("Jan", "%b"),
    ("Monday", "%A"),
    ("Mon", "%a"),
    ("MST", "%Z"),
    ("2006", "%Y"),
    ("-07:00:00", "%#z"),
    ("-07:00", "%#z"),
    ("-0700", "%#z"),
    ("-07", "%#z"),
    ("Z07:00:00", "%#z"),
    ("Z07:00", "%#z"),
    ("Z0700", "%#z"),
    ("Z07", "%#z"),
    ("002", "%j"),
    ("01", "%m"),
    ("02", "%d"),
    ("03", "%I"),
    ("04", "%M"),
    ("05", "%S"),
    ("06", "%y"),
    ("_2", "%e"),
    ("15", "%H"),
    ("1", "%m"),
    ("2", "%d"),
    ("3", "%I"),
    ("4", "%M"),
    ("5", "%S"),
    ("PM", "%p"),
    ("pm", "%p"),
];

/// Translates a Go reference layout into a chrono format string.
fn go_layout_to_chrono(layout: &str) -> String {
    let mut out = String::with_capacity(layout.len() * 2);
    let mut rest = layout;
    while let Some(c) = rest.chars().next() {
        // Fractional seconds: ".000", ".999999", ",000", ... (any width, parsed at any width).
        if (c == '.' || c == ',') && rest.len() > 1 {
            let digits = rest[1..]
                .bytes()
                .take_while(|b| *b == b'0' || *b == b'9')
                .count();
            let next_is_digit = rest[1 + digits..]
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_digit());
            if digits > 0 && !next_is_digit && out.ends_with("%S%.f") {
                // "%S" already takes an optional fraction.
                rest = &rest[1 + digits..];
                continue;
            }
        }
        if let Some((go, chrono)) = GO_ELEMENTS.iter().find(|(go, _)| rest.starts_with(go)) {
            out.push_str(chrono);
            if *chrono == "%S" {
                out.push_str("%.f");
            }
            rest = &rest[go.len()..];
            continue;
        }
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

impl TimeFormat {
    /// A format by name or Go layout; `key` names the setting in errors.
    pub(crate) fn new(key: &str, format: &str) -> Result<Self, BuildError> {
        let f = match format {
            "RFC3339" | "RFC3339Nano" => TimeFormat::Rfc3339,
            "Unix" => TimeFormat::Unix,
            "UnixMs" => TimeFormat::UnixMs,
            "UnixUs" => TimeFormat::UnixUs,
            "UnixNs" => TimeFormat::UnixNs,
            "" => return Err(invalid(key, "empty format")),
            other => {
                let layout = GO_NAMED
                    .iter()
                    .find(|(name, _)| *name == other)
                    .map_or(other, |(_, layout)| *layout);
                let chrono = go_layout_to_chrono(layout);
                if !chrono.contains('%') {
                    return Err(invalid(
                        key,
                        format!(
                            "unknown format {other:?}: use RFC3339, RFC3339Nano, Unix, UnixMs, UnixUs, UnixNs, a Go named layout or a Go reference layout such as \"2006-01-02 15:04:05\""
                        ),
                    ));
                }
                let has_offset = chrono.contains("%#z");
                let has_year = chrono.contains("%Y") || chrono.contains("%y");
                let f = TimeFormat::Layout {
                    chrono,
                    has_offset,
                    has_year,
                };
                if !f.has_date() {
                    return Err(invalid(
                        key,
                        format!("layout {other:?} has no day and month (e.g. 02 and 01 or Jan)"),
                    ));
                }
                f
            }
        };
        Ok(f)
    }

    fn has_date(&self) -> bool {
        match self {
            TimeFormat::Layout { chrono, .. } => {
                let month = ["%m", "%b", "%B"].iter().any(|m| chrono.contains(m));
                let day = ["%d", "%e"].iter().any(|d| chrono.contains(d));
                month && day || chrono.contains("%j") && chrono.contains("%Y")
            }
            _ => true,
        }
    }

    /// Nanoseconds since the epoch, or `None` when `value` does not fit the format (or the time
    /// is outside i64 nanoseconds, years 1678..2262). `offset` is for layouts without one.
    pub(crate) fn parse(&self, value: &str, offset: FixedOffset) -> Option<i64> {
        let value = value.trim();
        match self {
            TimeFormat::Rfc3339 => parse_rfc3339(value),
            TimeFormat::Unix => parse_unix_seconds(value),
            TimeFormat::UnixMs => value.parse::<i64>().ok()?.checked_mul(1_000_000),
            TimeFormat::UnixUs => value.parse::<i64>().ok()?.checked_mul(1_000),
            TimeFormat::UnixNs => value.parse::<i64>().ok(),
            TimeFormat::Layout {
                chrono,
                has_offset,
                has_year,
            } => {
                if *has_offset {
                    return DateTime::parse_from_str(value, chrono)
                        .ok()?
                        .timestamp_nanos_opt();
                }
                let naive = if *has_year {
                    NaiveDateTime::parse_from_str(value, chrono).ok()?
                } else {
                    let year = Utc::now().year();
                    NaiveDateTime::parse_from_str(
                        &format!("{value} {year}"),
                        &format!("{chrono} %Y"),
                    )
                    .ok()?
                };
                offset
                    .from_local_datetime(&naive)
                    .single()?
                    .timestamp_nanos_opt()
            }
        }
    }
}

/// An RFC3339 time (fraction optional, any width) in nanoseconds since the epoch.
pub(crate) fn parse_rfc3339(value: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(value)
        .ok()?
        .timestamp_nanos_opt()
}

/// `1562708916` or `1562708916.414123` (seconds since the epoch) in nanoseconds, exactly.
fn parse_unix_seconds(value: &str) -> Option<i64> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    let negative = int.starts_with('-');
    let secs: i64 = int.parse().ok()?;
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos: i64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        nanos += i64::from(b - b'0') * 10_i64.pow(8 - i as u32);
    }
    let base = secs.checked_mul(1_000_000_000)?;
    if negative {
        base.checked_sub(nanos)
    } else {
        base.checked_add(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::logs::{invalid_key, record, table};

    fn ns(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    fn fmt(f: &str) -> TimeFormat {
        TimeFormat::new("format", f).unwrap()
    }

    #[test]
    fn go_layouts_translate_and_parse() {
        assert_eq!(
            go_layout_to_chrono("2006-01-02 15:04:05.000"),
            "%Y-%m-%d %H:%M:%S%.f"
        );
        let cases = [
            (
                "2006-01-02 15:04:05",
                "2024-03-05 10:20:30",
                "2024-03-05T10:20:30Z",
            ),
            (
                "2006-01-02 15:04:05",
                "2024-03-05 10:20:30.123",
                "2024-03-05T10:20:30.123Z",
            ),
            (
                "2006-01-02T15:04:05.000Z07:00",
                "2024-03-05T10:20:30.250+02:00",
                "2024-03-05T08:20:30.25Z",
            ),
            (
                "2006-01-02T15:04:05Z07:00",
                "2024-03-05T10:20:30Z",
                "2024-03-05T10:20:30Z",
            ),
            (
                "02/Jan/2006:15:04:05 -0700",
                "05/Mar/2024:10:20:30 +0100",
                "2024-03-05T09:20:30Z",
            ),
            (
                "RFC1123Z",
                "Tue, 05 Mar 2024 10:20:30 +0000",
                "2024-03-05T10:20:30Z",
            ),
            (
                "RFC1123",
                "Tue, 05 Mar 2024 10:20:30 UTC",
                "2024-03-05T10:20:30Z",
            ),
            ("ANSIC", "Tue Mar  5 10:20:30 2024", "2024-03-05T10:20:30Z"),
            (
                "Jan 2, 2006 3:04:05 PM",
                "Mar 5, 2024 1:20:30 PM",
                "2024-03-05T13:20:30Z",
            ),
        ];
        for (layout, value, want) in cases {
            assert_eq!(
                fmt(layout).parse(value, utc()),
                Some(ns(want)),
                "{layout} {value}"
            );
        }
        // No year: the current one.
        let got = fmt("Stamp").parse("Mar  5 10:20:30", utc()).unwrap();
        let year = Utc::now().year();
        assert_eq!(got, ns(&format!("{year}-03-05T10:20:30Z")));
    }

    #[test]
    fn named_and_unix_formats() {
        let utc = utc();
        assert_eq!(
            fmt("RFC3339Nano").parse("2019-04-30T02:12:41.8443515Z", utc),
            Some(1_556_590_361_844_351_500)
        );
        assert_eq!(
            fmt("Unix").parse("1562708916", utc),
            Some(1_562_708_916_000_000_000)
        );
        assert_eq!(
            fmt("Unix").parse("1562708916.000000123", utc),
            Some(1_562_708_916_000_000_123)
        );
        assert_eq!(
            fmt("UnixMs").parse("1562708916414", utc),
            Some(1_562_708_916_414_000_000)
        );
        assert_eq!(
            fmt("UnixUs").parse("1562708916414123", utc),
            Some(1_562_708_916_414_123_000)
        );
        assert_eq!(
            fmt("UnixNs").parse("1562708916414123456", utc),
            Some(1_562_708_916_414_123_456)
        );
        assert_eq!(fmt("UnixMs").parse("99999999999999999", utc), None);
        assert_eq!(fmt("Unix").parse("12x", utc), None);
        assert!(TimeFormat::new("format", "nonsense").is_err());
        assert!(TimeFormat::new("format", "15:04:05").is_err());
    }

    #[test]
    fn sets_time_falls_back_and_fudges() {
        let stage = Timestamp::build(table(
            r#"
            source = "ts"
            format = "RFC3339"
            fallback_formats = ["UnixMs"]
            "#,
        ))
        .unwrap();
        let mut a = record("a");
        a.fields.insert("ts".into(), "2024-03-05T10:20:30Z".into());
        let mut b = record("b");
        b.fields.insert("ts".into(), "1709634031000".into());
        let mut c = record("c");
        c.fields.insert("ts".into(), "garbage".into());
        c.timestamp_ns = 42;
        let mut other = record("other stream");
        other.labels.insert("job", "other");
        other.timestamp_ns = 7;
        let mut batch = vec![a, b, c, other];
        stage.process(&mut batch, &mut Drops::default());
        assert_eq!(batch[0].timestamp_ns, ns("2024-03-05T10:20:30Z"));
        assert_eq!(batch[1].timestamp_ns, ns("2024-03-05T10:20:31Z"));
        assert_eq!(batch[2].timestamp_ns, ns("2024-03-05T10:20:31Z") + 1);
        assert_eq!(batch[3].timestamp_ns, 7, "no last time for this stream");
    }

    #[test]
    fn skip_leaves_time_and_bad_settings_name_keys() {
        let stage = Timestamp::build(table(
            r#"
            source = "ts"
            format = "2006-01-02 15:04:05"
            location = "+02:00"
            action_on_failure = "skip"
            "#,
        ))
        .unwrap();
        let mut a = record("a");
        a.fields.insert("ts".into(), "2024-03-05 10:20:30".into());
        let mut b = record("b");
        b.timestamp_ns = 5;
        let mut batch = vec![a, b];
        stage.process(&mut batch, &mut Drops::default());
        assert_eq!(batch[0].timestamp_ns, ns("2024-03-05T08:20:30Z"));
        assert_eq!(batch[1].timestamp_ns, 5);

        for (src, key) in [
            ("source = \"t\"\nformat = \"xyz\"", "format"),
            (
                "source = \"t\"\nformat = \"Unix\"\nfallback_formats = [\"Unix\", \"\"]",
                "fallback_formats[1]",
            ),
            (
                "source = \"t\"\nformat = \"Unix\"\nlocation = \"Europe/Paris\"",
                "location",
            ),
        ] {
            assert_eq!(invalid_key(Timestamp::build(table(src))), key, "{src}");
        }
        assert!(matches!(
            Timestamp::build(table(
                "source = \"t\"\nformat = \"Unix\"\naction_on_failure = \"drop\""
            )),
            Err(BuildError::Invalid { key, .. }) if key == "action_on_failure"
        ));
    }
}
