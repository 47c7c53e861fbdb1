//! Log lines in the formats such devices write: JSON for POS terminals, RFC 5424 syslog for
//! routers and switches, logfmt for servers and custom devices. Levels are more often warn and
//! error in problem mode. A canary sequence number puts [`canary::token`] at the end of a
//! logfmt/syslog line, or the field [`canary::LOG_KEY`] into a JSON line.

use chrono::{DateTime, SecondsFormat};
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

use super::sample::{by_mode, chance, lognormal, one_of};
use crate::canary;
use crate::fleet::{Device, DeviceType};

/// One log line and the stream it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// The stream labels: the device's labels, sorted by name.
    pub labels: Vec<(String, String)>,
    pub timestamp_ns: i64,
    pub line: String,
}

/// Severity, as the formats spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    /// RFC 5424 severity: 6 informational, 4 warning, 3 error.
    fn syslog_severity(self) -> u8 {
        match self {
            Level::Info => 6,
            Level::Warn => 4,
            Level::Error => 3,
        }
    }

    /// Draws a level: healthy devices ~90% info, problem devices ~50%.
    pub(crate) fn draw(rng: &mut StdRng, problem: bool) -> Level {
        if chance(rng, by_mode(problem, 0.02, 0.2)) {
            Level::Error
        } else if chance(rng, by_mode(problem, 0.08, 0.35)) {
            Level::Warn
        } else {
            Level::Info
        }
    }
}

/// What a device logs about: (component or app name, message) per level.
struct Events {
    info: &'static [(&'static str, &'static str)],
    warn: &'static [(&'static str, &'static str)],
    error: &'static [(&'static str, &'static str)],
}

impl Events {
    fn for_level(&self, level: Level) -> &'static [(&'static str, &'static str)] {
        match level {
            Level::Info => self.info,
            Level::Warn => self.warn,
            Level::Error => self.error,
        }
    }
}

const POS_EVENTS: Events = Events {
    info: &[
        ("session", "cashier logged in"),
        ("drawer", "cash drawer opened"),
        ("scanner", "item scanned"),
        ("printer", "receipt printed"),
        ("sync", "price list synchronised"),
    ],
    warn: &[
        ("printer", "paper low"),
        ("scanner", "barcode unreadable, manual entry"),
        ("payment", "card reader slow to respond"),
    ],
    error: &[
        ("printer", "printer fault: paper jam"),
        ("payment", "card reader disconnected"),
        ("sync", "price list sync failed: connection refused"),
    ],
};

const NET_EVENTS: Events = Events {
    info: &[
        ("ifmgr", "interface state unchanged, link up"),
        ("dhcpd", "lease renewed"),
        ("sshd", "accepted publickey for admin"),
        ("ntpd", "clock synchronised"),
        ("stp", "topology stable"),
    ],
    warn: &[
        ("ifmgr", "interface flapping"),
        ("probe", "upstream latency above threshold"),
        ("stp", "topology change detected"),
    ],
    error: &[
        ("ifmgr", "interface down: carrier lost"),
        ("probe", "upstream unreachable: packet loss 100%"),
        ("kernel", "crc errors on interface"),
    ],
};

const SERVER_EVENTS: Events = Events {
    info: &[
        ("backup", "nightly backup completed"),
        ("inventory", "stock levels exported"),
        ("cron", "job finished"),
        ("http", "request served"),
    ],
    warn: &[
        ("disk", "filesystem above 85% used"),
        ("http", "slow request"),
        ("inventory", "retrying upstream export"),
    ],
    error: &[
        ("kernel", "out of memory: killed process"),
        ("disk", "write failed: no space left on device"),
        ("http", "upstream timed out"),
    ],
};

const CUSTOM_EVENTS: Events = Events {
    info: &[("sensor", "reading published"), ("agent", "heartbeat")],
    warn: &[
        ("sensor", "reading out of range"),
        ("agent", "queue growing"),
    ],
    error: &[
        ("sensor", "sensor not responding"),
        ("agent", "publish failed"),
    ],
};

fn events(t: DeviceType) -> &'static Events {
    match t {
        DeviceType::Pos => &POS_EVENTS,
        DeviceType::Router | DeviceType::Switch => &NET_EVENTS,
        DeviceType::Server => &SERVER_EVENTS,
        DeviceType::Custom => &CUSTOM_EVENTS,
    }
}

/// RFC 3339 UTC with milliseconds, as the devices write.
pub(crate) fn rfc3339(ns: i64) -> String {
    DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One line of the device's own format, not about a checkout.
pub(crate) fn line(
    rng: &mut StdRng,
    device: &Device,
    now_ns: i64,
    canary: Option<canary::Mark>,
) -> String {
    let level = Level::draw(rng, device.problem);
    let (component, msg) = one_of(rng, events(device.device_type).for_level(level))
        .copied()
        .unwrap_or(("agent", "heartbeat"));
    match device.device_type {
        DeviceType::Pos => {
            let mut fields = Map::new();
            fields.insert("event".into(), json!(component));
            pos_json(device, now_ns, level, msg, fields, canary)
        }
        DeviceType::Router | DeviceType::Switch => {
            let token = canary.map(|m| canary::token(&device.id, m, now_ns));
            syslog(device, now_ns, level, component, msg, token.as_deref())
        }
        DeviceType::Server | DeviceType::Custom => {
            let duration_ms = lognormal(rng, by_mode(device.problem, 40.0, 400.0), 0.8).round();
            let token = canary.map(|m| canary::token(&device.id, m, now_ns));
            let extra = format!("duration_ms={duration_ms}");
            logfmt(
                device,
                now_ns,
                level,
                component,
                msg,
                &extra,
                token.as_deref(),
            )
        }
    }
}

/// A POS JSON line: `ts`, `level`, `device`, `msg`, then `fields`, and the canary field.
pub(crate) fn pos_json(
    device: &Device,
    now_ns: i64,
    level: Level,
    msg: &str,
    mut fields: Map<String, Value>,
    canary: Option<canary::Mark>,
) -> String {
    fields.insert("ts".into(), json!(rfc3339(now_ns)));
    fields.insert("level".into(), json!(level.as_str()));
    fields.insert("device".into(), json!(device.id));
    fields.insert("msg".into(), json!(msg));
    if let Some(mark) = canary {
        fields.insert(
            canary::LOG_KEY.into(),
            json!(canary::token_value(&device.id, mark, now_ns)),
        );
    }
    Value::Object(fields).to_string()
}

/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG` (RFC 5424), facility
/// local7; MSGID is the level in capitals.
fn syslog(
    device: &Device,
    now_ns: i64,
    level: Level,
    app: &str,
    msg: &str,
    token: Option<&str>,
) -> String {
    let pri = 23 * 8 + level.syslog_severity();
    let mut line = format!(
        "<{pri}>1 {} {} {app} - {} - {msg}",
        rfc3339(now_ns),
        device.id,
        level.as_str().to_ascii_uppercase()
    );
    if let Some(t) = token {
        line.push(' ');
        line.push_str(t);
    }
    line
}

/// `ts=... level=... device=... component=... msg="..." <extra> [loadgen_canary=...]`.
fn logfmt(
    device: &Device,
    now_ns: i64,
    level: Level,
    component: &str,
    msg: &str,
    extra: &str,
    token: Option<&str>,
) -> String {
    let mut line = format!(
        "ts={} level={} device={} component={component} msg={msg:?} {extra}",
        rfc3339(now_ns),
        level.as_str(),
        device.id
    );
    if let Some(t) = token {
        line.push(' ');
        line.push_str(t);
    }
    line
}
