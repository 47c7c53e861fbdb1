//! `stack`: runs the embedded Loki + Mimir + Tempo as one process (`stack serve`), so any agent
//! (Alloy, Vector, Prometheus, our collector) can be pointed at it and queried back with curl.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use stack::embedded::faults::{Api, Fault};
use stack::embedded::limits::{LokiLimits, MimirLimits};
use stack::embedded::mimir::Semantics;
use stack::embedded::{EmbeddedConfig, EmbeddedStack, Ports};

#[derive(Parser)]
#[command(
    name = "stack",
    version,
    about = "Loki, Mimir and Tempo compatible endpoints in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the embedded stack until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on. Keep 127.0.0.1 unless other hosts must reach it.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Pick free ports instead of the standard ones (the chosen ports are printed).
    #[arg(long)]
    ephemeral: bool,
    /// Loki port (push and query API).
    #[arg(long, default_value_t = Ports::STANDARD.loki)]
    loki_port: u16,
    /// Mimir port (remote write and Prometheus query API).
    #[arg(long, default_value_t = Ports::STANDARD.mimir)]
    mimir_port: u16,
    /// Tempo query API port.
    #[arg(long, default_value_t = Ports::STANDARD.tempo)]
    tempo_port: u16,
    /// Tempo OTLP/HTTP receiver port.
    #[arg(long, default_value_t = Ports::STANDARD.otlp_http)]
    otlp_http_port: u16,
    /// Tempo OTLP/gRPC receiver port.
    #[arg(long, default_value_t = Ports::STANDARD.otlp_grpc)]
    otlp_grpc_port: u16,
    /// Data each backend keeps before evicting its oldest (e.g. 256MiB, 1GiB, 500MB).
    #[arg(long, default_value = "256MiB", value_parser = parse_bytes)]
    retention: usize,
    /// Largest request body accepted; larger gets 413.
    #[arg(long, default_value = "32MiB", value_parser = parse_bytes)]
    max_body: usize,
    /// Loki's max_line_size: longer log lines are refused with 400 (0 = no limit).
    #[arg(long, default_value = "256KiB", value_parser = parse_bytes)]
    max_line_size: usize,
    /// Loki 3's discover_service_name: add a service_name label to streams without one (from
    /// service, app, ..., job; else unknown_service). `false` stores streams as sent.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    loki_discover_service_name: bool,
    /// Loki 3's discover_log_levels: add detected_level structured metadata to every entry.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    loki_discover_log_levels: bool,
    /// Mimir's/Prometheus' out_of_order_time_window (e.g. 10m): accept samples up to this much
    /// older than the newest. 0s (their default) refuses out-of-order samples.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    out_of_order_window: std::time::Duration,
    /// Evaluate PromQL as Prometheus 2 (closed range windows: rate/increase extrapolate as 2.x
    /// did) or 3 (left-open windows, as current Prometheus and Mimir).
    #[arg(long, default_value = "3", value_parser = parse_promql_compat, value_name = "2|3")]
    promql_compat: Semantics,
    /// Loki's ingestion_rate_mb: per-tenant log bytes per second (MiB, as Loki counts); over it a
    /// push gets 429. Unlimited when not given.
    #[arg(long, value_name = "MB")]
    loki_ingestion_rate_mb: Option<f64>,
    /// Loki's ingestion_burst_size_mb [default: 6, Loki's].
    #[arg(long, value_name = "MB", requires = "loki_ingestion_rate_mb")]
    loki_ingestion_burst_size_mb: Option<f64>,
    /// Mimir's ingestion_rate: per-tenant samples (plus exemplars and metadata) per second; over
    /// it a push gets 429. Unlimited when not given.
    #[arg(long, value_name = "ITEMS")]
    mimir_ingestion_rate: Option<f64>,
    /// Mimir's ingestion_burst_size [default: 200000, Mimir's].
    #[arg(long, value_name = "ITEMS", requires = "mimir_ingestion_rate")]
    mimir_ingestion_burst_size: Option<f64>,
    /// Tempo's ingestion_rate_limit_bytes: per-tenant span bytes per second; over it an export
    /// gets 429 (gRPC RESOURCE_EXHAUSTED). Unlimited when not given.
    #[arg(long, value_name = "BYTES")]
    tempo_ingestion_rate_limit_bytes: Option<f64>,
    /// Tempo's ingestion_burst_size_bytes [default: 20000000, Tempo's].
    #[arg(
        long,
        value_name = "BYTES",
        requires = "tempo_ingestion_rate_limit_bytes"
    )]
    tempo_ingestion_burst_size_bytes: Option<f64>,
    /// Loki's and Mimir's validation and series limits (their defaults unless changed).
    #[command(flatten)]
    validation: ValidationArgs,
    /// Inject a fault into one API from the start (repeatable, one flag per API), e.g.
    /// `--fault loki_push=error_rate:0.1,status:500`.
    ///
    /// APIs: loki_push, loki_query, mimir_write, mimir_query, tempo_otlp_http, tempo_otlp_grpc,
    /// tempo_query.
    ///
    /// Keys: error_rate:FRACTION answered with status:CODE (default 503), exactly every Nth
    /// request (0.1 = each 10th) · latency:DUR or latency:MIN..MAX added to every request ·
    /// outage (every request 503 until cleared) or outage:DUR (for DUR from start) ·
    /// throttle_rate:FRACTION answered 429 with Retry-After retry_after:SECONDS (default 1).
    ///
    /// While running: GET, PUT, DELETE /stack/faults on any HTTP port (JSON).
    #[arg(long = "fault", value_name = "API=KEY:VALUE,...", value_parser = parse_fault)]
    faults: Vec<(Api, Fault)>,
    /// Serve every port in TLS with this PEM certificate (chain); a renewed file is served to
    /// the next connection, no restart.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        help_heading = "TLS and authentication"
    )]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (reloaded with it).
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        help_heading = "TLS and authentication"
    )]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: only clients with a certificate signed by a CA in this PEM file get in.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        help_heading = "TLS and authentication"
    )]
    tls_client_ca: Option<PathBuf>,
    /// Require HTTP basic auth on every API, users from this htpasswd file (bcrypt, as
    /// `htpasswd -nbB USER PASSWORD` writes; or Argon2), reloaded when it changes. Refused
    /// requests get 401 and count in stack_embedded_auth_failures_total.
    #[arg(long, value_name = "FILE", help_heading = "TLS and authentication")]
    htpasswd: Option<PathBuf>,
    /// Accept bearer tokens from this file (one per line, at least 16 characters, optionally
    /// followed by the one tenant it may write as), reloaded when it changes.
    #[arg(long, value_name = "FILE", help_heading = "TLS and authentication")]
    bearer_tokens_file: Option<PathBuf>,
    /// Print the endpoints as one JSON line instead of the human-readable guide.
    #[arg(long)]
    json: bool,
}

/// Loki's and Mimir's validation and series limits, as their settings name them; each defaults
/// to the real server's default. 0 turns a count or length check off.
#[derive(clap::Args)]
#[command(next_help_heading = "Validation and series limits (Loki's and Mimir's defaults)")]
struct ValidationArgs {
    /// Loki's max_label_names_per_series: a stream with more label names (service_name not
    /// counted) is refused with 400.
    #[arg(long, value_name = "N", default_value_t = LokiLimits::default().max_label_names_per_series)]
    loki_max_label_names_per_series: usize,
    /// Loki's max_label_name_length, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = LokiLimits::default().max_label_name_length)]
    loki_max_label_name_length: usize,
    /// Loki's max_label_value_length, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = LokiLimits::default().max_label_value_length)]
    loki_max_label_value_length: usize,
    /// Loki's creation_grace_period: entries further ahead of the clock are refused with 400.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    loki_creation_grace_period: Duration,
    /// Loki's reject_old_samples_max_age: older entries are refused with 400 (0s: accept any
    /// age, Loki's reject_old_samples: false).
    #[arg(long, value_name = "DURATION", default_value = "168h", value_parser = humantime::parse_duration)]
    loki_reject_old_samples_max_age: Duration,
    /// Loki's max_global_streams_per_user: a new stream past this many per tenant is refused
    /// with 429 (0 = no limit).
    #[arg(long, value_name = "N", default_value_t = LokiLimits::default().max_global_streams_per_user)]
    loki_max_global_streams_per_user: usize,
    /// Mimir's max_label_names_per_series (__name__ counted): a series with more labels is
    /// refused with 400.
    #[arg(long, value_name = "N", default_value_t = MimirLimits::default().max_label_names_per_series)]
    mimir_max_label_names_per_series: usize,
    /// Mimir's max_label_names_per_info_series: the same for series named *_info.
    #[arg(long, value_name = "N", default_value_t = MimirLimits::default().max_label_names_per_info_series)]
    mimir_max_label_names_per_info_series: usize,
    /// Mimir's max_label_name_length, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = MimirLimits::default().max_label_name_length)]
    mimir_max_label_name_length: usize,
    /// Mimir's max_label_value_length, in bytes (the metric name included).
    #[arg(long, value_name = "BYTES", default_value_t = MimirLimits::default().max_label_value_length)]
    mimir_max_label_value_length: usize,
    /// Mimir's creation_grace_period: a sample further ahead of the clock refuses its series
    /// with 400 (err-mimir-too-far-in-future).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    mimir_creation_grace_period: Duration,
    /// Mimir's past_grace_period: a sample older than this (plus the out-of-order window)
    /// refuses its series with 400 (0s, Mimir's default: off).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    mimir_past_grace_period: Duration,
    /// Mimir's max_global_series_per_user: a new series past this many per tenant is refused
    /// with 400 (err-mimir-max-series-per-user; 0 = no limit).
    #[arg(long, value_name = "N", default_value_t = MimirLimits::default().max_global_series_per_user)]
    mimir_max_global_series_per_user: usize,
}

impl ValidationArgs {
    fn loki(&self) -> LokiLimits {
        LokiLimits {
            max_label_names_per_series: self.loki_max_label_names_per_series,
            max_label_name_length: self.loki_max_label_name_length,
            max_label_value_length: self.loki_max_label_value_length,
            creation_grace_period: self.loki_creation_grace_period,
            reject_old_samples_max_age: (!self.loki_reject_old_samples_max_age.is_zero())
                .then_some(self.loki_reject_old_samples_max_age),
            max_global_streams_per_user: self.loki_max_global_streams_per_user,
        }
    }

    fn mimir(&self) -> MimirLimits {
        MimirLimits {
            max_label_names_per_series: self.mimir_max_label_names_per_series,
            max_label_names_per_info_series: self.mimir_max_label_names_per_info_series,
            max_label_name_length: self.mimir_max_label_name_length,
            max_label_value_length: self.mimir_max_label_value_length,
            creation_grace_period: self.mimir_creation_grace_period,
            past_grace_period: self.mimir_past_grace_period,
            max_global_series_per_user: self.mimir_max_global_series_per_user,
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        // Log lines with the credentials of any URL they quote masked.
        .with_writer(|| wire::redact::Writer::new(std::io::stderr()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", wire::redact::text(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let ports = if args.ephemeral {
        Ports::EPHEMERAL
    } else {
        Ports {
            loki: args.loki_port,
            mimir: args.mimir_port,
            tempo: args.tempo_port,
            otlp_http: args.otlp_http_port,
            otlp_grpc: args.otlp_grpc_port,
        }
    };
    let limits = stack::embedded::limits::LimitSettings {
        loki_ingestion_rate_mb: args.loki_ingestion_rate_mb,
        loki_ingestion_burst_size_mb: args.loki_ingestion_burst_size_mb,
        mimir_ingestion_rate: args.mimir_ingestion_rate,
        mimir_ingestion_burst_size: args.mimir_ingestion_burst_size,
        tempo_ingestion_rate_limit_bytes: args.tempo_ingestion_rate_limit_bytes,
        tempo_ingestion_burst_size_bytes: args.tempo_ingestion_burst_size_bytes,
    }
    .limits()?;
    let cfg = EmbeddedConfig {
        limits,
        host: args.host,
        ports,
        retention_bytes: args.retention,
        max_body_bytes: args.max_body,
        max_line_size: args.max_line_size,
        loki_discover_service_name: args.loki_discover_service_name,
        loki_discover_log_levels: args.loki_discover_log_levels,
        out_of_order_window: args.out_of_order_window,
        promql_semantics: args.promql_compat,
        loki_limits: args.validation.loki(),
        mimir_limits: args.validation.mimir(),
        faults: one_fault_per_api(args.faults)?,
        tls: args
            .tls_cert
            .zip(args.tls_key)
            .map(|(cert_file, key_file)| access::TlsSettings {
                cert_file,
                key_file,
                client_ca_file: args.tls_client_ca,
            }),
        auth: (args.htpasswd.is_some() || args.bearer_tokens_file.is_some()).then(|| {
            access::AuthSettings {
                htpasswd_file: args.htpasswd,
                bearer_tokens_file: args.bearer_tokens_file,
                realm: "stack".into(),
                ..access::AuthSettings::default()
            }
        }),
        ..EmbeddedConfig::default()
    };
    // Handlers first: a signal that arrives right after the endpoints are printed must stop us
    // cleanly, not kill us by default action.
    let mut signals = Signals::install()?;
    let stack = match EmbeddedStack::start(cfg).await {
        Ok(stack) => stack,
        Err(e @ stack::embedded::EmbeddedError::Bind { .. }) => {
            return Err(anyhow::Error::new(e).context(
                "starting the embedded stack (another process may hold a port: try --ephemeral or the --*-port flags)",
            ));
        }
        Err(e) => return Err(anyhow::Error::new(e).context("starting the embedded stack")),
    };
    if args.json {
        println!("{}", endpoints_json(&stack));
    } else {
        println!("{}", guide(&stack));
    }
    signals.wait().await;
    eprintln!("stopping: finishing in-flight requests");
    stack.shutdown().await;
    eprintln!("stopped");
    Ok(())
}

/// SIGINT (Ctrl-C) and SIGTERM, registered as soon as this is created.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

fn endpoints_json(stack: &EmbeddedStack) -> serde_json::Value {
    let e = stack.endpoints();
    let a = stack.addrs();
    serde_json::json!({
        "loki": e.loki.as_str(),
        "prometheus_write": e.prometheus_write.as_str(),
        "prometheus_query": e.prometheus_query.as_str(),
        "tempo_otlp_http": e.tempo_otlp_http.as_str(),
        "tempo_otlp_grpc": e.tempo_otlp_grpc.as_ref().map(|u| u.as_str()),
        "tempo_query": e.tempo_query.as_str(),
        "addrs": {
            "loki": a.loki.to_string(),
            "mimir": a.mimir.to_string(),
            "tempo": a.tempo.to_string(),
            "otlp_http": a.otlp_http.to_string(),
            "otlp_grpc": a.otlp_grpc.to_string(),
        }
    })
}

fn guide(stack: &EmbeddedStack) -> String {
    let a = stack.addrs();
    let (loki, mimir, tempo, otlp_http, otlp_grpc) =
        (a.loki, a.mimir, a.tempo, a.otlp_http, a.otlp_grpc);
    let door = stack.door();
    let s = door.scheme();
    let mut notes = String::new();
    if door.tls.is_some() {
        notes.push_str("  Every port speaks TLS: give clients the CA (curl --cacert CA.pem).\n");
    }
    if door.has_auth() {
        notes.push_str(
            "  Every API needs credentials (curl -u USER:PASSWORD, or -H 'Authorization: Bearer TOKEN'); /ready does not.\n",
        );
    }
    let insecure = door.tls.is_none();
    format!(
        r#"Embedded stack is ready. Ctrl-C stops it.
{notes}
  Loki        {s}://{loki}        push /loki/api/v1/push · query /loki/api/v1/query_range · /metrics
  Mimir       {s}://{mimir}        remote write /api/v1/push (Mimir's rules), /api/v1/write (Prometheus') · query /prometheus/api/v1/query · /metrics
  Tempo       {s}://{tempo}        /api/traces/<id> · /api/search · /metrics
  Tempo OTLP  {s}://{otlp_http}/v1/traces (HTTP) · {otlp_grpc} (gRPC)

Environment for loadgen and the scenarios (--stack external):
  export LOKI_URL={s}://{loki}
  export MIMIR_WRITE_URL={s}://{mimir}/api/v1/push
  export MIMIR_QUERY_URL={s}://{mimir}/prometheus
  export TEMPO_OTLP_URL={s}://{otlp_http}
  export TEMPO_OTLP_GRPC_URL={s}://{otlp_grpc}
  export TEMPO_QUERY_URL={s}://{tempo}

Grafana Alloy:
  loki.write "stack" {{ endpoint {{ url = "{s}://{loki}/loki/api/v1/push" }} }}
  prometheus.remote_write "stack" {{ endpoint {{ url = "{s}://{mimir}/api/v1/push" }} }}
  otelcol.exporter.otlphttp "stack" {{ client {{ endpoint = "{s}://{otlp_http}" }} }}

Prometheus (prometheus.yml):
  remote_write:
    - url: {s}://{mimir}/api/v1/push

OpenTelemetry Collector:
  exporters:
    otlphttp: {{ endpoint: {s}://{otlp_http} }}
    otlp: {{ endpoint: {otlp_grpc}, tls: {{ insecure: {insecure} }} }}

Faults on demand (outage, errors, latency, 429s), on any of the ports above:
  curl -sS -X PUT {s}://{loki}/stack/faults -d '{{"loki_push":{{"outage":"30s"}}}}'
  curl -sS {s}://{loki}/stack/faults · curl -sS -X DELETE {s}://{loki}/stack/faults

Try it:
  curl -sS -H 'Content-Type: application/json' {s}://{loki}/loki/api/v1/push \
    --data-raw '{{"streams":[{{"stream":{{"job":"demo"}},"values":[["'"$(date +%s%N)"'","hello"]]}}]}}'
  curl -sS -G {s}://{loki}/loki/api/v1/query_range --data-urlencode 'query={{job="demo"}}'
  curl -sS -G {s}://{mimir}/prometheus/api/v1/query --data-urlencode 'query=up'
  curl -sS {s}://{tempo}/api/search"#
    )
}

/// `--fault`: one API's fault.
fn parse_fault(s: &str) -> Result<(Api, Fault), String> {
    stack::embedded::faults::parse_flag(s).map_err(|e| e.to_string())
}

/// The `--fault` flags, refused when two name the same API (the second would silently win).
fn one_fault_per_api(faults: Vec<(Api, Fault)>) -> anyhow::Result<Vec<(Api, Fault)>> {
    let mut seen = std::collections::BTreeSet::new();
    for (api, _) in &faults {
        if !seen.insert(*api) {
            anyhow::bail!(
                "--fault names {api} twice: give all of its settings in one flag ({api}=KEY:VALUE,KEY:VALUE)"
            );
        }
    }
    Ok(faults)
}

/// `--promql-compat`: the Prometheus major version whose PromQL rules to follow.
fn parse_promql_compat(s: &str) -> Result<Semantics, String> {
    match s.trim() {
        "2" => Ok(Semantics::Prometheus2),
        "3" => Ok(Semantics::Prometheus3),
        other => Err(format!(
            "{other:?} is not a Prometheus major version: use 2 or 3"
        )),
    }
}

/// Parses a size such as `256MiB`, `1GiB`, `500MB`, `64k` or a plain number of bytes.
fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (examples: 256MiB, 1GiB, 500MB, 65536)"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?} (use B, KB, KiB, MB, MiB, GB, GiB)"
            ));
        }
    };
    let bytes = num * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > usize::MAX as f64 {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(bytes as usize)
}

#[cfg(test)]
mod tests {
    use super::{Api, Cli, Command, parse_bytes};
    use clap::Parser as _;

    #[test]
    fn fault_flags_parse_and_bad_ones_name_the_bad_part() {
        let cli = Cli::try_parse_from([
            "stack",
            "serve",
            "--fault",
            "loki_push=error_rate:0.1,status:500",
            "--fault",
            "tempo_otlp_grpc=outage:30s",
        ])
        .expect("valid flags");
        let Command::Serve(args) = cli.command;
        let apis: Vec<Api> = args.faults.iter().map(|(a, _)| *a).collect();
        assert_eq!(apis, [Api::LokiPush, Api::TempoOtlpGrpc]);
        assert!(super::one_fault_per_api(args.faults).is_ok());

        let err = |flag: &str| match Cli::try_parse_from(["stack", "serve", "--fault", flag]) {
            Ok(_) => panic!("{flag} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err("loki_push=error_rate:1.5")
                .contains("loki_push.error_rate: must be a number from 0 to 1, got 1.5")
        );
        assert!(err("lokipush=outage").contains("unknown API \"lokipush\""));
        assert!(err("loki_push=latency:soon").contains("loki_push.latency"));

        let twice = Cli::try_parse_from([
            "stack",
            "serve",
            "--fault",
            "loki_push=outage",
            "--fault",
            "loki_push=error_rate:0.5",
        ])
        .expect("each flag is valid");
        let Command::Serve(args) = twice.command;
        let e = super::one_fault_per_api(args.faults).expect_err("same API twice");
        assert!(e.to_string().contains("--fault names loki_push twice"));
    }

    #[test]
    fn validation_flags_default_to_the_servers_defaults_and_change_them() {
        use stack::embedded::limits::{LokiLimits, MimirLimits};
        let Command::Serve(args) = Cli::try_parse_from(["stack", "serve"])
            .expect("no flags")
            .command;
        assert_eq!(args.validation.loki(), LokiLimits::default());
        assert_eq!(args.validation.mimir(), MimirLimits::default());
        let Command::Serve(args) = Cli::try_parse_from([
            "stack",
            "serve",
            "--loki-reject-old-samples-max-age",
            "0s",
            "--loki-max-global-streams-per-user",
            "100000",
            "--mimir-max-label-value-length",
            "4096",
            "--mimir-past-grace-period",
            "1h",
        ])
        .expect("valid flags")
        .command;
        let loki = args.validation.loki();
        assert_eq!(loki.reject_old_samples_max_age, None);
        assert_eq!(loki.max_global_streams_per_user, 100_000);
        let mimir = args.validation.mimir();
        assert_eq!(mimir.max_label_value_length, 4096);
        assert_eq!(
            mimir.past_grace_period,
            std::time::Duration::from_secs(3600)
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("500MB"), Ok(500_000_000));
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("1.5KiB"), Ok(1536));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
    }
}
