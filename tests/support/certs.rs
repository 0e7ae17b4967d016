//! A throwaway CA and a server certificate for `localhost`/127.0.0.1, written as PEM files
//! into a temporary directory (for the webhook's tests and benchmark).

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::CertificateDer;

/// PEM files of a server certificate and key, and the CA that signed them.
pub struct Certs {
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// The CA, for the client to trust.
    pub ca: CertificateDer<'static>,
    _dir: tempfile::TempDir,
}

/// Make a CA and a server certificate for `localhost` and 127.0.0.1.
pub fn make() -> Certs {
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("a CA certificate");
    let key = KeyPair::generate().expect("a server key");
    let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).expect("params");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).expect("a server certificate");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cert_path = dir.path().join("tls.crt");
    let key_path = dir.path().join("tls.key");
    std::fs::write(&cert_path, cert.pem()).expect("write the certificate");
    std::fs::write(&key_path, key.serialize_pem()).expect("write the key");
    Certs {
        cert: cert_path,
        key: key_path,
        ca: ca.der().clone(),
        _dir: dir,
    }
}
