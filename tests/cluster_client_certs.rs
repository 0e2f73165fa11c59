//! `--client-ca` against a real kube-apiserver (see `support::cluster`):
//! the API server, given a client certificate for webhooks through
//! `--admission-control-config-file` (as `deploy/README.md` shows), gets
//! its reviews judged; a client without that certificate is refused.
//!
//! `cargo test -p tollgate-tests --test cluster_client_certs -- --ignored`
//! with `KUBE_APISERVER` and `ETCD` set.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use serde_json::json;
use support::Launch;
use support::cluster::{Cluster, TestCa};
use tollgate_tests as support;

const POLICIES: &str = r#"
- id: secret-denier
  module: guests.wasm
  rule: deny
  match: {kinds: [{kind: Secret}]}
"#;

/// The API server's side: an AdmissionConfiguration whose webhook plugins
/// read a kubeconfig giving `apiserver-client.crt` for every webhook host
/// (`*`: the webhook's port is not known yet; a real install names the
/// Service, `tollgate.tollgate.svc`).
fn admission_config(dir: &Path, _ca: &TestCa) -> Vec<String> {
    let kubeconfig = dir.join("webhook-client.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: \"*\"\n  user:\n    \
             client-certificate: {crt}\n    client-key: {key}\n",
            crt = dir.join("apiserver-client.crt").display(),
            key = dir.join("apiserver-client.key").display(),
        ),
    )
    .unwrap();
    let plugin = |name: &str| {
        format!(
            "- name: {name}\n  configuration:\n    apiVersion: apiserver.config.k8s.io/v1\n    \
             kind: WebhookAdmissionConfiguration\n    kubeConfigFile: {}\n",
            kubeconfig.display()
        )
    };
    let config = dir.join("admission.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n{}{}",
            plugin("ValidatingAdmissionWebhook"),
            plugin("MutatingAdmissionWebhook")
        ),
    )
    .unwrap();
    vec![format!(
        "--admission-control-config-file={}",
        config.display()
    )]
}

#[tokio::test]
#[ignore = "needs KUBE_APISERVER and ETCD"]
async fn the_api_server_s_certificate_gets_reviews_judged_and_others_are_refused() {
    let cluster = Cluster::start_with(admission_config);
    let launch = Launch::new();
    let pair = cluster.ca.serving_pair(launch.dir(), "webhook");
    let ca_file = launch.dir().join("ca.crt");
    std::fs::write(&ca_file, &cluster.ca.cert_pem).unwrap();
    // The cluster's CA also signs the admin's certificate: the name keeps
    // it to the API server's.
    let server = launch
        .policies(POLICIES)
        .tls(&pair.cert, &pair.key, &ca_file)
        .arg("--client-ca")
        .arg(ca_file.display().to_string())
        .arg("--client-name")
        .arg("kube-apiserver")
        .arg("--probe-listen")
        .arg("127.0.0.1:0")
        .start();
    let bundle = base64::engine::general_purpose::STANDARD.encode(&cluster.ca.cert_pem);
    cluster.kubectl_ok(&["create", "namespace", "gated"]);
    cluster.apply(
        &json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "tollgate"},
            "webhooks": [{
                "name": "validate.tollgate.dev",
                "clientConfig": {"url": server.url("/validate"), "caBundle": bundle},
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["secrets"], "scope": "Namespaced"}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gated"}},
                "failurePolicy": "Fail", "sideEffects": "None",
                "admissionReviewVersions": ["v1"], "timeoutSeconds": 10,
            }]
        })
        .to_string(),
    );

    // A kubectl write reaches Tollgate and is judged (the guests' deny
    // rule), not failed at the handshake.
    let mut denied = String::new();
    support::eventually(Duration::from_secs(30), "the webhook judges", || {
        let out = cluster.kubectl(&["create", "secret", "generic", "s", "-n", "gated"]);
        denied = String::from_utf8_lossy(&out.stderr).into_owned();
        let judged = !out.status.success() && denied.contains("secret-denier");
        async move { judged }
    })
    .await;
    assert!(denied.contains("denied the request"), "{denied}");
    assert!(!denied.contains("certificate"), "{denied}");

    // Directly, without the API server's certificate: refused.
    let direct = server
        .client()
        .post(server.url("/validate?timeout=5s"))
        .body("{}")
        .send()
        .await;
    assert!(direct.is_err(), "{direct:?}");
    // With a certificate of the same CA but another name (the admin's): refused.
    let admin = cluster
        .ca
        .client_pair(launch_dir(&server), "admin-client", "admin");
    let identity = [
        std::fs::read(&admin.cert).unwrap(),
        std::fs::read(&admin.key).unwrap(),
    ]
    .concat();
    let as_admin = server
        .client_with(|b| b.identity(reqwest::Identity::from_pem(&identity).unwrap()))
        .post(server.url("/validate?timeout=5s"))
        .body("{}")
        .send()
        .await;
    assert!(as_admin.is_err(), "{as_admin:?}");

    let probes = server
        .banner
        .lines()
        .find_map(|l| l.strip_prefix("tollgate: probes on "))
        .expect("probe address")
        .to_owned();
    let text = reqwest::get(format!("{probes}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for reason in ["no_certificate", "name_not_allowed"] {
        let line = format!("tollgate_client_certificates_refused_total{{reason=\"{reason}\"}}");
        assert!(support::metric(&text, &line) >= 1.0, "{reason}:\n{text}");
    }
}

fn launch_dir(server: &support::Server) -> &Path {
    &server.dir
}
