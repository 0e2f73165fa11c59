use std::io::ErrorKind;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName as Dn, DnType, ExtendedKeyUsagePurpose,
    IsCa, Issuer, KeyPair,
};

use super::*;

/// A test CA that signs client certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name = Dn::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    fn client(&self, cn: &str, sans: &[&str]) -> CertificateDer<'static> {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = Dn::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        params.signed_by(&key, &self.issuer).unwrap().der().clone()
    }
}

fn names(list: &[&str]) -> ClientNames {
    ClientNames::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

#[test]
fn names_match_the_common_name_or_a_dns_san() {
    let ca = Ca::new("names");
    let apiserver = ca.client("kube-apiserver", &["apiserver.example"]);
    assert!(names(&[]).allow(&apiserver), "no names: any certificate");
    assert!(names(&["kube-apiserver"]).allow(&apiserver), "CN");
    assert!(
        names(&["APISERVER.example"]).allow(&apiserver),
        "SAN, any case"
    );
    assert!(names(&["other", "kube-apiserver"]).allow(&apiserver));
    assert!(!names(&["kube"]).allow(&apiserver), "no prefixes");
    assert!(!names(&["kube-apiserver.x"]).allow(&apiserver));
    assert!(!names(&["x"]).allow(&CertificateDer::from(b"not DER".to_vec())));
    // An IP SAN is not a name.
    let by_ip = ca.client("c", &["127.0.0.1"]);
    assert!(!names(&["127.0.0.1"]).allow(&by_ip));
}

fn auth(ca: &Ca, allowed: &[&str]) -> (tempfile::TempDir, Arc<ClientAuth>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, &ca.pem).unwrap();
    let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
    (dir, ClientAuth::load(&path, &allowed).unwrap())
}

fn verify(auth: &ClientAuth, cert: &CertificateDer<'_>) -> Result<(), Error> {
    auth.verify_client_cert(cert, &[], UnixTime::now())
        .map(|_| ())
}

#[test]
fn the_verifier_wants_the_ca_and_an_allowed_name() {
    let (ca, other) = (Ca::new("ours"), Ca::new("theirs"));
    let (_dir, auth) = auth(&ca, &["kube-apiserver"]);
    assert!(auth.offer_client_auth() && auth.client_auth_mandatory());
    assert!(!auth.supported_verify_schemes().is_empty());
    verify(&auth, &ca.client("kube-apiserver", &[])).unwrap();
    assert_eq!(
        verify(&auth, &other.client("kube-apiserver", &[])),
        Err(Error::InvalidCertificate(CertificateError::UnknownIssuer))
    );
    assert_eq!(
        verify(&auth, &ca.client("someone-else", &[])),
        Err(Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure
        ))
    );
}

#[tokio::test]
async fn a_reloaded_ca_verifies_the_next_handshake() {
    let (first, second) = (Ca::new("first"), Ca::new("second"));
    let (dir, auth) = auth(&first, &[]);
    let (old, new) = (first.client("a", &[]), second.client("a", &[]));
    verify(&auth, &old).unwrap();
    assert!(verify(&auth, &new).is_err());
    std::fs::write(dir.path().join("ca.pem"), &second.pem).unwrap();
    auth.reload().await.unwrap();
    verify(&auth, &new).unwrap();
    assert!(verify(&auth, &old).is_err());
    // A broken file keeps the CA that was verifying.
    std::fs::write(dir.path().join("ca.pem"), "nothing").unwrap();
    assert!(matches!(auth.reload().await, Err(ClientCaError::Empty(_))));
    verify(&auth, &new).unwrap();
}

#[test]
fn a_ca_file_that_cannot_verify_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    let load = |text: &str| {
        std::fs::write(&path, text).unwrap();
        ClientAuth::load(&path, &[]).unwrap_err()
    };
    assert!(matches!(load("no PEM here"), ClientCaError::Empty(_)));
    let bad_base64 = "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
    assert!(matches!(load(bad_base64), ClientCaError::Pem(..)));
    let not_a_cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let error = load(not_a_cert);
    assert!(matches!(error, ClientCaError::Verifier(..)), "{error}");
    let missing = ClientAuth::load(&dir.path().join("absent.pem"), &[]).unwrap_err();
    assert!(missing.to_string().contains("absent.pem"), "{missing}");
}

#[test]
fn refused_handshakes_are_told_apart() {
    let wrapped = |e: Error| std::io::Error::new(ErrorKind::InvalidData, e);
    for (error, reason) in [
        (Error::NoCertificatesPresented, ClientRefused::NoCertificate),
        (
            Error::InvalidCertificate(CertificateError::UnknownIssuer),
            ClientRefused::UnknownCa,
        ),
        (
            Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure),
            ClientRefused::NameNotAllowed,
        ),
        (
            Error::InvalidCertificate(CertificateError::Expired),
            ClientRefused::Invalid,
        ),
    ] {
        assert_eq!(refusal(&wrapped(error)), Some(reason));
    }
    // Not about the client's certificate: not counted as a refusal.
    assert_eq!(refusal(&wrapped(Error::DecryptError)), None);
    assert_eq!(
        refusal(&std::io::Error::from(ErrorKind::ConnectionReset)),
        None
    );
}
