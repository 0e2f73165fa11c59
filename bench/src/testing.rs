//! Test fixtures: a certificate and a floor on a free port.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::FloorArgs;
use crate::client::Endpoint;

/// Writes a CA (`ca.pem`) and a serving pair for localhost (`tls.crt`,
/// `tls.key`) under `dir`.
pub fn certificate(dir: &Path) -> PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&leaf_key, &Issuer::new(ca, ca_key))
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("tls.crt"), leaf.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), leaf_key.serialize_pem()).unwrap();
    dir.join("ca.pem")
}

/// A floor serving on a thread of its own (for the rest of the test
/// process), and how to reach it once it answers.
pub async fn floor(dir: &Path) -> Endpoint {
    let ca = certificate(dir);
    // Bound here and handed over: no other process can take the port
    // between finding it free and the floor binding it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let args = FloorArgs {
        listen: ([127, 0, 0, 1], port).into(),
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        uid_only: false,
    };
    std::thread::spawn(move || crate::floor::serve_on(listener, &args));
    let endpoint = Endpoint::local(port, &ca).unwrap();
    for _ in 0..500 {
        if endpoint.connect().await.is_ok() {
            return endpoint;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the floor did not come up on port {port}");
}
