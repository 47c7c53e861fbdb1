//! Serving an axum router on a listener, in TLS or in the clear, HTTP/1.1 and HTTP/2 (gRPC) on
//! the same port, until a shutdown signal; then the connections open finish their requests.
//!
//! A TLS handshake must end within [`HANDSHAKE_TIMEOUT`]; one that fails (a client that does not
//! trust the certificate, a client certificate missing under mTLS) closes that connection only,
//! and counts in [`ServerTls::failed_handshakes`](crate::ServerTls::failed_handshakes).

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::tls::ServerTls;

/// How long a client has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the open connections have to finish once the shutdown signal came.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` (in TLS when `tls` is given) until `shutdown` resolves, then
/// lets the requests in flight finish (at most [`DRAIN_TIMEOUT`]).
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    let acceptor = tls.as_ref().map(ServerTls::acceptor);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let result = match acceptor {
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                if let Some(tls) = &tls {
                                    tls.count_failed_handshake();
                                }
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                if let Some(tls) = &tls {
                                    tls.count_failed_handshake();
                                }
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
    Ok(())
}
