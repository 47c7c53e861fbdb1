//! The gate in front of a server's routes: checks every request's credentials with an
//! [`Authenticator`], applies the credential's tenant binding, and answers what it refuses the
//! way the client's protocol expects:
//!
//! | refused | HTTP | gRPC (`content-type: application/grpc...`) |
//! |---|---|---|
//! | no, malformed or wrong credentials | 401 with `WWW-Authenticate` (a challenge per scheme) | `UNAUTHENTICATED` (16) |
//! | a tenant the credential is not bound to | 403 | `PERMISSION_DENIED` (7) |
//!
//! Every refusal is reported to an [`Observer`] with its [`DeniedReason`], for the server's
//! self-metrics. Paths given as open (a readiness probe) pass unchecked.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{Authenticator, Denied, DeniedReason};

/// What learns of refusals (a self-metrics counter).
pub trait Observer: Send + Sync + 'static {
    fn denied(&self, reason: DeniedReason);
}

impl Observer for () {
    fn denied(&self, _reason: DeniedReason) {}
}

/// An authenticator, what counts its refusals, and the paths left open.
#[derive(Clone)]
pub struct Gate {
    pub auth: Arc<Authenticator>,
    pub observer: Arc<dyn Observer>,
    pub open_paths: Arc<[&'static str]>,
}

impl Gate {
    pub fn new(
        auth: Arc<Authenticator>,
        observer: Arc<dyn Observer>,
        open_paths: &[&'static str],
    ) -> Gate {
        Gate {
            auth,
            observer,
            open_paths: open_paths.into(),
        }
    }

    /// Wraps `router` so that every request passes the gate first.
    pub fn protect<S: Clone + Send + Sync + 'static>(
        self,
        router: axum::Router<S>,
    ) -> axum::Router<S> {
        router.layer(axum::middleware::from_fn_with_state(self, guard))
    }

    /// The answer to a refused request, in its protocol.
    pub fn refusal(&self, is_grpc: bool, denied: &Denied) -> Response {
        self.observer.denied(denied.reason);
        tracing::debug!(reason = denied.reason.as_str(), "request refused: {denied}");
        if is_grpc {
            return grpc_refusal(denied);
        }
        let mut response = match denied.reason {
            DeniedReason::TenantMismatch => {
                (StatusCode::FORBIDDEN, format!("{denied}\n")).into_response()
            }
            _ => (StatusCode::UNAUTHORIZED, format!("{denied}\n")).into_response(),
        };
        if response.status() == StatusCode::UNAUTHORIZED {
            for c in self.auth.challenges() {
                response
                    .headers_mut()
                    .append(header::WWW_AUTHENTICATE, c.clone());
            }
        }
        response
    }
}

/// Whether a request is gRPC (its content type says so).
pub fn is_grpc(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// The gRPC status code for a refusal.
pub fn grpc_code(reason: DeniedReason) -> u8 {
    match reason {
        DeniedReason::TenantMismatch => 7,
        _ => 16,
    }
}

/// A trailers-only gRPC answer carrying the refusal's status.
fn grpc_refusal(denied: &Denied) -> Response {
    let mut r = Response::new(Body::empty());
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert(
        "grpc-status",
        HeaderValue::from(u16::from(grpc_code(denied.reason))),
    );
    // grpc-message is percent-encoded; ours is ASCII without '%'.
    let message: String = denied
        .message
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect::<String>()
        .replace('%', "%25");
    if let Ok(v) = HeaderValue::from_str(&message) {
        h.insert("grpc-message", v);
    }
    r
}

async fn guard(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    if gate.open_paths.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let grpc = is_grpc(req.headers());
    let identity = match gate.auth.check(req.headers()).await {
        Ok(identity) => identity,
        Err(denied) => return gate.refusal(grpc, &denied),
    };
    if let Err(denied) = identity.bind_tenant(req.headers_mut()) {
        return gate.refusal(grpc, &denied);
    }
    next.run(req).await
}
