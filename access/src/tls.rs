//! TLS for a server: a certificate and key from PEM files, reloaded when they change (a renewed
//! certificate is served to the next connection, no restart), and optionally client
//! certificates verified against a CA (mutual TLS).
//!
//! ```toml
//! tls = { cert_file = "/etc/collector/tls.crt", key_file = "/etc/collector/tls.key" }
//! # mTLS: only clients with a certificate signed by this CA get in
//! tls = { cert_file = "...", key_file = "...", client_ca_file = "/etc/collector/clients-ca.crt" }
//! ```
//!
//! Both HTTP/1.1 and HTTP/2 are offered (ALPN `h2`, `http/1.1`), so gRPC and plain HTTP clients
//! share a port as without TLS. The client CA is read once, at start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::watched::{LoadError, Watched, read_file};

/// Where a server's certificate, key and (for mTLS) client CA are.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain, the server's own first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificates: when set, a client must present a certificate they signed.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client_ca_file: {0}")]
    ClientVerifier(String),
}

/// The crypto the project uses (aws-lc-rs, as reqwest's rustls does).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A server's TLS: what accepts connections.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    cert: Arc<ReloadingCert>,
    failed: Arc<std::sync::atomic::AtomicU64>,
    on_failed: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.cert.0.paths())
            .finish()
    }
}

impl ServerTls {
    /// Reads the files now: a missing file, a key that does not match its certificate or an
    /// unreadable CA is an error naming the file.
    pub fn new(settings: &TlsSettings) -> Result<Self, TlsError> {
        let provider = provider();
        let cert = Arc::new(ReloadingCert::load(settings, provider.clone())?);
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match &settings.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in certificates(ca, &read_file(ca)?)? {
                    roots
                        .add(c)
                        .map_err(|e| LoadError::new(ca, format!("not a CA certificate: {e}")))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| TlsError::ClientVerifier(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_cert_resolver(cert.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            cert,
            failed: Arc::default(),
            on_failed: None,
        })
    }

    /// What performs the handshakes.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }

    /// How many handshakes failed or timed out (clients that do not trust the certificate,
    /// or without a client certificate under mTLS).
    pub fn failed_handshakes(&self) -> u64 {
        self.failed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Calls `f` on every failed handshake too (a self-metric).
    pub fn on_failed_handshake(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_failed = Some(Arc::new(f));
        self
    }

    pub(crate) fn count_failed_handshake(&self) {
        self.failed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(f) = &self.on_failed {
            f();
        }
    }

    /// How many times the certificate was reloaded, and how many reloads failed (the previous
    /// certificate stayed in use).
    pub fn reloads(&self) -> (u64, u64) {
        (self.cert.0.reloads(), self.cert.0.reload_failures())
    }
}

/// The certificates of a PEM file (a CA bundle for a client to trust, say), DER-encoded
/// (`reqwest::Certificate::from_der` takes each).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    certificates(path, &read_file(path)?)
}

/// The certificate chain in a PEM file.
fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LoadError::new(path, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(LoadError::new(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The certificate and key, reloaded together when either file changes.
struct ReloadingCert(Watched<Arc<CertifiedKey>>);

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ReloadingCert {
    fn load(settings: &TlsSettings, provider: Arc<CryptoProvider>) -> Result<Self, LoadError> {
        let paths = vec![settings.cert_file.clone(), settings.key_file.clone()];
        Watched::load_all(paths, move |paths| {
            let (cert_file, key_file) = (&paths[0], &paths[1]);
            let certs = certificates(cert_file, &read_file(cert_file)?)?;
            let key = PrivateKeyDer::from_pem_slice(&read_file(key_file)?)
                .map_err(|e| LoadError::new(key_file, format!("not a PEM private key: {e}")))?;
            let key = provider
                .key_provider
                .load_private_key(key)
                .map_err(|e| LoadError::new(key_file, e.to_string()))?;
            let certified = CertifiedKey::new(certs, key);
            certified.keys_match().map_err(|e| {
                LoadError::new(
                    key_file,
                    format!("does not match {}: {e}", cert_file.display()),
                )
            })?;
            Ok(Arc::new(certified))
        })
        .map(ReloadingCert)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get().as_ref().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::pki::TestPki;

    trait Settings {
        fn server_settings(&self) -> TlsSettings;
    }
    impl Settings for TestPki {
        fn server_settings(&self) -> TlsSettings {
            TlsSettings {
                cert_file: self.server_cert_file(),
                key_file: self.server_key_file(),
                client_ca_file: None,
            }
        }
    }

    #[test]
    fn loads_a_pair_and_names_the_file_of_a_mistake() {
        let pki = TestPki::new();
        let ok = ServerTls::new(&pki.server_settings());
        assert!(ok.is_ok(), "{ok:?}");

        let mut s = pki.server_settings();
        s.key_file = pki.dir().join("missing.key");
        let e = ServerTls::new(&s).unwrap_err().to_string();
        assert!(e.contains("missing.key"), "{e}");

        // A key that is not the certificate's.
        let mut s = pki.server_settings();
        s.key_file = pki.client_key_file();
        let e = ServerTls::new(&s).unwrap_err().to_string();
        assert!(e.contains("does not match"), "{e}");

        let mut s = pki.server_settings();
        s.cert_file = pki.server_settings().key_file;
        let e = ServerTls::new(&s).unwrap_err().to_string();
        assert!(e.contains("no certificate"), "{e}");
    }
}
