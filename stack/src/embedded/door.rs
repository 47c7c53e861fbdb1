//! What a client of the embedded stack passes through: TLS and authentication on every server
//! (Loki, Mimir, Tempo's query API and both of its OTLP receivers), as a stack behind an
//! authenticating gateway has them (`stack serve --tls-cert --tls-key --htpasswd
//! --bearer-tokens-file`), so a pipeline can be tested encrypted and authenticated end to end.
//!
//! `/ready` stays open to probes; everything else, the admin endpoint `/stack/faults` included,
//! needs credentials when auth is on. Refusals are counted on each server's `/metrics` as
//! `stack_embedded_auth_failures_total{reason}` (`missing`, `malformed`, `bad_credentials`,
//! `tenant_mismatch`), and failed TLS handshakes as `stack_embedded_tls_handshake_failures_total`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use wire::exposition::{MetricFamily, MetricKind};

use super::metrics::Counter;

/// The TLS and auth the embedded servers share.
#[derive(Clone, Default)]
pub struct Door {
    pub tls: Option<access::ServerTls>,
    gate: Option<access::Gate>,
    counts: Arc<Counts>,
}

/// Refusals by reason, and failed handshakes.
#[derive(Default)]
struct Counts {
    denied: [Counter; 4],
    handshakes: Arc<Counter>,
}

impl access::Observer for Counts {
    fn denied(&self, reason: access::DeniedReason) {
        if let Some(i) = access::DeniedReason::ALL.iter().position(|r| *r == reason) {
            self.denied[i].inc();
        }
    }
}

/// Why the door could not be built (a file named in the flags).
#[derive(Debug, thiserror::Error)]
pub enum DoorError {
    /// The message names the file (or the key) and what is wrong with it.
    #[error(transparent)]
    Tls(#[from] access::TlsError),
    #[error(transparent)]
    Auth(#[from] access::AuthError),
}

impl Door {
    /// Reads the certificate, key and credential files now.
    pub fn new(
        tls: Option<&access::TlsSettings>,
        auth: Option<&access::AuthSettings>,
    ) -> Result<Door, DoorError> {
        let counts = Arc::new(Counts::default());
        let tls = match tls {
            Some(t) => {
                let handshakes = counts.handshakes.clone();
                Some(access::ServerTls::new(t)?.on_failed_handshake(move || handshakes.inc()))
            }
            None => None,
        };
        let gate = match auth {
            Some(a) => Some(access::Gate::new(
                Arc::new(access::Authenticator::new(a)?),
                counts.clone(),
                &["/ready"],
            )),
            None => None,
        };
        Ok(Door { tls, gate, counts })
    }

    /// The URL scheme clients use.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Whether requests need credentials.
    pub fn has_auth(&self) -> bool {
        self.gate.is_some()
    }

    /// `router` behind the gate (when auth is on), its `/metrics` showing the refusals.
    pub fn protect(&self, router: Router) -> Router {
        let router = match &self.gate {
            Some(gate) => gate.clone().protect(router),
            None => router,
        };
        if self.gate.is_none() && self.tls.is_none() {
            return router;
        }
        router.layer(axum::middleware::from_fn_with_state(
            self.clone(),
            with_door_metrics,
        ))
    }

    fn families(&self) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        if self.gate.is_some() {
            let mut f = MetricFamily::new("stack_embedded_auth_failures_total", MetricKind::Counter)
                .with_help("Requests refused for their credentials (401/403, gRPC UNAUTHENTICATED/PERMISSION_DENIED), by reason.");
            for (r, c) in access::DeniedReason::ALL.iter().zip(&self.counts.denied) {
                f = f.with_sample(&[("reason", r.as_str())], c.get() as f64);
            }
            out.push(f);
        }
        if self.tls.is_some() {
            out.push(
                MetricFamily::new(
                    "stack_embedded_tls_handshake_failures_total",
                    MetricKind::Counter,
                )
                .with_help("TLS handshakes clients failed or did not finish, on every server.")
                .with_sample(&[], self.counts.handshakes.get() as f64),
            );
        }
        out
    }
}

async fn with_door_metrics(State(door): State<Door>, req: Request, next: Next) -> Response {
    let metrics = req.uri().path() == "/metrics";
    let response = next.run(req).await;
    if !metrics {
        return response;
    }
    super::http::append_exposition(response, &door.families()).await
}
