//! A throwaway PKI for TLS tests, made fresh in a temporary folder by every test that needs one
//! (no key is ever committed): a CA, a server certificate for `localhost` and `127.0.0.1`
//! signed by it, and a client certificate (for mTLS) signed by it too.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair,
};

/// The files of a test PKI, deleted with it.
pub struct TestPki {
    dir: tempfile::TempDir,
    ca: Issuer<'static, KeyPair>,
    serial: u64,
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

fn named(cn: &str, sans: &[&str]) -> CertificateParams {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans).unwrap_or_else(|e| panic!("params: {e}"));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params
}

impl TestPki {
    /// Makes the CA, the server's and a client's certificates and keys.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut params = named("test CA", &[]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("key: {e}"));
        let cert = params
            .self_signed(&key)
            .unwrap_or_else(|e| panic!("CA: {e}"));
        std::fs::write(dir.path().join("ca.crt"), cert.pem()).unwrap_or_else(|e| panic!("{e}"));
        let mut pki = TestPki {
            dir,
            ca: Issuer::new(params, key),
            serial: 0,
        };
        pki.issue_server();
        pki.issue(
            "client",
            named("store-101", &[]),
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        pki
    }

    /// (Re)issues the server's certificate and key (a new key each time): what a renewal
    /// writes over the old files.
    pub fn issue_server(&mut self) {
        self.serial += 1;
        let mut params = named("localhost", &["localhost", "127.0.0.1"]);
        params.serial_number = Some(self.serial.into());
        self.issue("server", params, ExtendedKeyUsagePurpose::ServerAuth);
    }

    fn issue(&self, name: &str, mut params: CertificateParams, usage: ExtendedKeyUsagePurpose) {
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("key: {e}"));
        let cert = params
            .signed_by(&key, &self.ca)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let write = |file: String, text: String| {
            std::fs::write(self.dir.path().join(file), text).unwrap_or_else(|e| panic!("{e}"))
        };
        write(format!("{name}.crt"), cert.pem());
        write(format!("{name}.key"), key.serialize_pem());
    }

    /// The folder holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// The CA certificate (PEM): what clients trust, and what verifies client certificates.
    pub fn ca_file(&self) -> PathBuf {
        self.dir().join("ca.crt")
    }
    pub fn server_cert_file(&self) -> PathBuf {
        self.dir().join("server.crt")
    }
    pub fn server_key_file(&self) -> PathBuf {
        self.dir().join("server.key")
    }
    pub fn client_cert_file(&self) -> PathBuf {
        self.dir().join("client.crt")
    }
    pub fn client_key_file(&self) -> PathBuf {
        self.dir().join("client.key")
    }
    /// The CA as PEM text.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.ca_file()).unwrap_or_else(|e| panic!("{e}"))
    }
    /// The client's certificate followed by its key, as PEM (what `reqwest::Identity::from_pem`
    /// takes).
    pub fn client_identity_pem(&self) -> Vec<u8> {
        let mut pem = std::fs::read(self.client_cert_file()).unwrap_or_else(|e| panic!("{e}"));
        pem.extend(std::fs::read(self.client_key_file()).unwrap_or_else(|e| panic!("{e}")));
        pem
    }
}
