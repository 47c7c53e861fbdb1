use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use std::sync::atomic::{AtomicU64, Ordering};

use access::{AuthSettings, DeniedReason, Gate, Observer, ServerTls, TlsSettings};
use axum::routing::{get, post};
use testkit::pki::TestPki;
use tokio::net::TcpListener;

#[derive(Default)]
struct Count(AtomicU64);
impl Observer for Count {
    fn denied(&self, _reason: DeniedReason) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

const TOKEN: &str = "tok-0123456789abcdef";

struct Server {
    addr: std::net::SocketAddr,
    denied: Arc<Count>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(tls: Option<ServerTls>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("{TOKEN} t1\n")).unwrap();
    let settings = AuthSettings {
        users: vec![access::auth::UserSettings {
            username: "store-101".into(),
            password_hash: bcrypt_hash("pw-101"),
        }],
        bearer_tokens_file: Some(tokens),
        ..AuthSettings::default()
    };
    let denied = Arc::new(Count::default());
    let gate = Gate::new(
        Arc::new(access::Authenticator::new(&settings).unwrap()),
        denied.clone(),
        &["/ready"],
    );
    let router = axum::Router::new()
        .route("/ready", get(|| async { "ready" }))
        .route(
            "/push",
            post(|h: axum::http::HeaderMap| async move {
                format!(
                    "tenant={}",
                    h.get("x-scope-orgid").map_or("-", |v| v.to_str().unwrap())
                )
            }),
        );
    let router = gate.protect(router);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(access::serve(listener, router, tls, async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        denied,
        stop: Some(stop),
        task,
        _dir: dir,
    }
}

impl Server {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

/// Cost 4: the tests' hashes need not be slow.
fn bcrypt_hash(pw: &str) -> String {
    bcrypt::hash(pw, 4).unwrap()
}

fn settings(pki: &TestPki, mtls: bool) -> TlsSettings {
    TlsSettings {
        cert_file: pki.server_cert_file(),
        key_file: pki.server_key_file(),
        client_ca_file: mtls.then(|| pki.ca_file()),
    }
}

fn client(pki: &TestPki, identity: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pki.ca_pem()).unwrap());
    if identity {
        b = b.identity(reqwest::Identity::from_pem(&pki.client_identity_pem()).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test]
async fn tls_with_basic_auth_and_tokens_lets_in_the_right_ones_only() {
    let pki = TestPki::new();
    let server = start(Some(ServerTls::new(&settings(&pki, false)).unwrap())).await;
    let base = format!("https://localhost:{}", server.addr.port());
    let c = client(&pki, false);

    let r = c.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200, "an open path needs no credentials");

    let r = c.post(format!("{base}/push")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenges: Vec<_> = r.headers().get_all("www-authenticate").iter().collect();
    assert_eq!(challenges.len(), 2, "{challenges:?}");

    let r = c
        .post(format!("{base}/push"))
        .basic_auth("store-101", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = c
        .post(format!("{base}/push"))
        .basic_auth("store-101", Some("pw-101"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "tenant=-");

    // A token bound to t1: given t1 when the request names none, refused for another.
    let r = c
        .post(format!("{base}/push"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "tenant=t1");
    let r = c
        .post(format!("{base}/push"))
        .bearer_auth(TOKEN)
        .header("X-Scope-OrgID", "t2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(server.denied.0.load(Ordering::Relaxed), 3);

    // In the clear, a TLS port answers nothing useful.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/ready", server.addr.port()))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    server.stop().await;
}

#[tokio::test]
async fn mtls_refuses_a_client_without_a_certificate() {
    let pki = TestPki::new();
    let tls = ServerTls::new(&settings(&pki, true)).unwrap();
    let server = start(Some(tls.clone())).await;
    let url = format!("https://localhost:{}/ready", server.addr.port());
    assert!(client(&pki, false).get(&url).send().await.is_err());
    let r = client(&pki, true).get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(tls.failed_handshakes() >= 1);
    server.stop().await;
}

/// The serial number of the certificate the server presents.
async fn served_serial(pki: &TestPki, port: u16) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(pki.ca_file()).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(access::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    let (_, conn) = stream.get_ref();
    let cert = &conn.peer_certificates().unwrap()[0];
    // Good enough to tell two certificates apart: the whole DER.
    cert.to_vec()
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let mut pki = TestPki::new();
    let tls = ServerTls::new(&settings(&pki, false)).unwrap();
    let server = start(Some(tls.clone())).await;
    let before = served_serial(&pki, server.addr.port()).await;
    pki.issue_server();
    testkit::eventually("the renewed certificate served", || async {
        let now = served_serial(&pki, server.addr.port()).await;
        (now != before).then_some(now)
    })
    .await;
    assert_eq!(tls.reloads().0, 1);
    server.stop().await;
}
