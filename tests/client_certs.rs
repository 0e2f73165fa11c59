//! Client certificates through the real binary: with `--client-ca` only a
//! client holding a certificate from that CA (and, with `--client-name`,
//! naming an allowed name) gets a review answered; every other handshake is
//! refused and counted, and `--probe-listen` answers probes and metrics in
//! plain HTTP without a certificate.

use tollgate_tests as support;

use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair,
};
use reqwest::StatusCode;
use serde_json::json;
use support::{Launch, Server, eventually, metric, object, response, review};

const POLICIES: &str = r#"
- id: denier
  module: guests.wasm
  rule: deny
  match: {kinds: [{kind: Secret}]}
"#;

/// A CA that signs client certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A client certificate and key (PEM, concatenated) for `cn`.
    fn client(&self, cn: &str) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        format!("{}{}", cert.pem(), key.serialize_pem()).into_bytes()
    }
}

/// A server requiring certificates from `ca` naming `kube-apiserver`,
/// with its probes on a port of their own; and that port.
fn start(ca: &Ca) -> (Server, String) {
    let launch = Launch::new();
    let ca_file = launch.dir().join("client-ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let server = launch
        .policies(POLICIES)
        .shared_module_cache()
        .arg("--client-ca")
        .arg(ca_file.display().to_string())
        .arg("--client-name")
        .arg("kube-apiserver")
        .arg("--probe-listen")
        .arg("127.0.0.1:0")
        .start();
    let probes = server
        .banner
        .lines()
        .find_map(|l| l.strip_prefix("tollgate: probes on "))
        .unwrap_or_else(|| panic!("no probe address in the banner:\n{}", server.banner))
        .to_owned();
    (server, probes)
}

fn client(server: &Server, identity: Option<&[u8]>) -> reqwest::Client {
    server.client_with(|builder| match identity {
        Some(pem) => builder.identity(reqwest::Identity::from_pem(pem).expect("identity")),
        None => builder,
    })
}

fn secret_review() -> serde_json::Value {
    review(
        "c1",
        ("", "v1", "Secret"),
        "CREATE",
        object("v1", "Secret", "s"),
    )
}

/// Whether `client` gets an answer from `/validate` at all.
async fn answered(server: &Server, client: &reqwest::Client) -> Result<StatusCode, String> {
    let sent = client
        .post(server.url("/validate?timeout=5s"))
        .json(&secret_review())
        .send()
        .await;
    match sent {
        Ok(response) => Ok(response.status()),
        Err(error) => Err(format!("{error:?}")),
    }
}

async fn probe_metrics(probes: &str) -> String {
    let response = reqwest::get(format!("{probes}/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

async fn refused(probes: &str, reason: &str) -> f64 {
    let line = format!("tollgate_client_certificates_refused_total{{reason=\"{reason}\"}}");
    metric(&probe_metrics(probes).await, &line)
}

#[tokio::test]
async fn only_the_ca_s_allowed_client_gets_reviews_answered() {
    let ca = Ca::new("apiserver clients");
    let (server, probes) = start(&ca);

    // The API server's certificate: reviews flow and are judged.
    let apiserver = client(&server, Some(&ca.client("kube-apiserver")));
    let request = secret_review();
    let answer =
        support::review_with(&apiserver, &server.url("/validate?timeout=5s"), &request).await;
    assert_eq!(response(&request, &answer)["allowed"], false, "{answer}");

    // Each refusal, counted by its reason.
    let other_ca = Ca::new("someone else");
    for (identity, reason) in [
        (None, "no_certificate"),
        (Some(other_ca.client("kube-apiserver")), "unknown_ca"),
        (Some(ca.client("a-pod")), "name_not_allowed"),
    ] {
        let before = refused(&probes, reason).await;
        let outcome = answered(&server, &client(&server, identity.as_deref())).await;
        assert!(outcome.is_err(), "{reason}: answered {outcome:?}");
        eventually(Duration::from_secs(10), reason, || async {
            refused(&probes, reason).await == before + 1.0
        })
        .await;
    }
    // The allowed client still gets through afterwards.
    assert_eq!(answered(&server, &apiserver).await, Ok(StatusCode::OK));
}

#[tokio::test]
async fn probes_answer_without_a_certificate_on_their_own_port() {
    let ca = Ca::new("probe test");
    let (server, probes) = start(&ca);
    assert!(probes.starts_with("http://127.0.0.1:"), "{probes}");
    for (path, body) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = reqwest::get(format!("{probes}{path}")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.text().await.unwrap().trim(), body);
    }
    let text = probe_metrics(&probes).await;
    assert!(
        text.contains("# TYPE tollgate_client_certificates_refused counter"),
        "{text}"
    );
    // Reviews are not served there.
    let review = reqwest::Client::new()
        .post(format!("{probes}/validate"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(review.status(), StatusCode::NOT_FOUND);
    // And the TLS port wants a certificate for probes too.
    let direct = server.client().get(server.url("/healthz")).send().await;
    assert!(direct.is_err(), "{direct:?}");
}

#[tokio::test]
async fn a_replaced_ca_file_takes_effect_without_a_restart() {
    let (first, second) = (Ca::new("first"), Ca::new("second"));
    let (server, _probes) = start(&first);
    let old = client(&server, Some(&first.client("kube-apiserver")));
    let new = client(&server, Some(&second.client("kube-apiserver")));
    assert_eq!(answered(&server, &old).await, Ok(StatusCode::OK));
    assert!(answered(&server, &new).await.is_err());
    replace(&server.dir.join("client-ca.pem"), &second.pem);
    eventually(Duration::from_secs(10), "the new CA", || async {
        // Fresh clients: a kept-alive connection was verified before.
        let new = client(&server, Some(&second.client("kube-apiserver")));
        answered(&server, &new).await == Ok(StatusCode::OK)
    })
    .await;
    let old = client(&server, Some(&first.client("kube-apiserver")));
    assert!(answered(&server, &old).await.is_err());
    // A broken file keeps the CA that was verifying.
    replace(&server.dir.join("client-ca.pem"), "not a CA");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let new = client(&server, Some(&second.client("kube-apiserver")));
    assert_eq!(answered(&server, &new).await, Ok(StatusCode::OK));
    assert!(
        server.logs().contains("client CA reload failed"),
        "{}",
        server.logs()
    );
}

#[test]
fn an_unusable_ca_file_stops_the_start_with_the_reason() {
    let launch = Launch::new();
    let ca_file = launch.dir().join("client-ca.pem");
    std::fs::write(&ca_file, "nothing here").unwrap();
    let output = launch
        .arg("--client-ca")
        .arg(ca_file.display().to_string())
        .run_to_exit();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("holds no certificate"), "{stderr}");
}

/// Writes `text` to `path` by rename, as a volume update does.
fn replace(path: &Path, text: &str) {
    let temp = path.with_extension("new");
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, path).unwrap();
}
