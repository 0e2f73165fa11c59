//! Self-managed certificates through a real kube-apiserver (see
//! `support::cluster`): two replicas agree on one Secret, write its CA into
//! webhook configurations the API server really calls them through, and
//! rotate (certificate and CA) under a stream of writes without one failed
//! call.
//!
//! Tollgate runs as the service account the install creates, with exactly
//! the RBAC of `/work/helpers/NAMES.md` (narrowed by resourceNames even for
//! list and watch), as a client certificate of the same user name.
//!
//! `cargo test -p tollgate-tests --test cluster_certs -- --ignored` with
//! `KUBE_APISERVER` and `ETCD` set.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::cluster::Cluster;
use support::{Launch, Server, eventually, insecure_client, presented_certificate};
use tollgate_tests as support;

const SERVICE_ACCOUNT: &str = "system:serviceaccount:tollgate:tollgate";
const SECRET: &str = "/api/v1/namespaces/tollgate/secrets/tollgate-tls";
const VALIDATING: &str =
    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/tollgate";
const MUTATING: &str =
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/tollgate";

/// Namespaces, the service account's Role for its Secret and ClusterRole
/// for its webhook configurations (bound only when `bind_webhooks`).
fn install(cluster: &Cluster, bind_webhooks: bool) {
    cluster.apply(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: tollgate}\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata: {name: gated}\n---\n\
         apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: tollgate, namespace: tollgate}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n\
         metadata: {name: tollgate-certs, namespace: tollgate}\n\
         rules:\n\
         - {apiGroups: [\"\"], resources: [secrets], verbs: [create]}\n\
         - {apiGroups: [\"\"], resources: [secrets], resourceNames: [tollgate-tls], verbs: [get, list, watch, update, patch]}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n\
         metadata: {name: tollgate-certs, namespace: tollgate}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: tollgate-certs}\n\
         subjects: [{kind: ServiceAccount, name: tollgate, namespace: tollgate}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: tollgate-webhooks}\n\
         rules:\n\
         - apiGroups: [admissionregistration.k8s.io]\n  \
           resources: [validatingwebhookconfigurations, mutatingwebhookconfigurations]\n  \
           resourceNames: [tollgate]\n  verbs: [get, list, watch, update, patch]\n",
    );
    if bind_webhooks {
        bind_webhook_role(cluster);
    }
}

fn bind_webhook_role(cluster: &Cluster) {
    cluster.apply(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n\
         metadata: {name: tollgate-webhooks}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: tollgate-webhooks}\n\
         subjects: [{kind: ServiceAccount, name: tollgate, namespace: tollgate}]\n",
    );
}

/// Denies ConfigMaps named `forbidden`; everything else is unmatched.
const POLICIES: &str = "- id: no-forbidden\n  module: guests.wasm\n  rule: deny\n  \
                        match: {kinds: [{kind: ConfigMap}], names: [forbidden]}\n";

/// A replica with self-managed certificates, as the service account.
fn replica(cluster: &Cluster, ca_file: &std::path::Path) -> Server {
    Launch::new()
        .policies(POLICIES)
        .arg("--self-managed-certs")
        .arg("--namespace")
        .arg("tollgate")
        .arg("--extra-san")
        .arg("127.0.0.1")
        .arg("--cert-rotation-wait")
        .arg("2s")
        .arg("--kubeconfig")
        .arg(
            cluster
                .kubeconfig_for(SERVICE_ACCOUNT)
                .display()
                .to_string(),
        )
        .trust(ca_file)
        .start()
}

/// Validating and mutating configurations calling every replica for
/// ConfigMaps in namespace `gated`, with no caBundle (Tollgate writes it).
fn register(cluster: &Cluster, replicas: &[&Server]) {
    let webhooks = |path: &str| -> Vec<Value> {
        replicas
            .iter()
            .enumerate()
            .map(|(i, server)| {
                json!({
                    "name": format!("r{i}.tollgate.dev"),
                    "clientConfig": {"url": server.url(path)},
                    "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"], "scope": "Namespaced"}],
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gated"}},
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "timeoutSeconds": 10,
                })
            })
            .collect()
    };
    let configurations = json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
             "metadata": {"name": "tollgate"}, "webhooks": webhooks("/validate")},
            {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
             "metadata": {"name": "tollgate"}, "webhooks": webhooks("/mutate")},
        ]
    });
    cluster.apply(&configurations.to_string());
}

fn decode(value: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap_or_default())
        .expect("base64")
}

/// The Secret's `ca.crt`, `tls.crt` and bundle generation.
struct Stored {
    ca: Vec<u8>,
    cert: Vec<u8>,
    generation: String,
}

async fn stored(cluster: &Cluster) -> Option<Stored> {
    let secret = cluster.get_json(SECRET).await?;
    Some(Stored {
        ca: decode(&secret["data"]["ca.crt"]),
        cert: decode(&secret["data"]["tls.crt"]),
        generation: secret["metadata"]["annotations"]["tollgate.dev/ca-bundle-generation"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    })
}

/// Every webhook's caBundle in both configurations.
async fn bundles(cluster: &Cluster) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for path in [VALIDATING, MUTATING] {
        let config = cluster.get_json(path).await.expect("configuration");
        for webhook in config["webhooks"].as_array().expect("webhooks") {
            all.push(decode(&webhook["clientConfig"]["caBundle"]));
        }
    }
    all
}

fn der_of(pem: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(pem);
    text.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|block| {
            let body: String = block
                .split("-----END CERTIFICATE-----")
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .expect("PEM body")
        })
        .collect()
}

async fn ready(server: &Server) -> (StatusCode, String) {
    let response = insecure_client()
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// ConfigMap writes through the webhooks, from `tasks` loops, until stopped;
/// every answer other than 201 Created is a failure.
struct Writers {
    stop: Arc<AtomicBool>,
    handles: Vec<tokio::task::JoinHandle<(usize, Vec<String>)>>,
}

impl Writers {
    fn start(cluster: &Cluster, phase: &str, tasks: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let url = cluster.api_url("/api/v1/namespaces/gated/configmaps");
        let handles = (0..tasks)
            .map(|task| {
                let (client, url, stop) = (cluster.api(), url.clone(), stop.clone());
                let phase = phase.to_owned();
                tokio::spawn(async move {
                    let (mut ok, mut failures) = (0, Vec::new());
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let name = format!("{phase}-{task}-{i}");
                        i += 1;
                        let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"i": i.to_string()}});
                        match client.post(&url).json(&object).send().await {
                            Ok(r) if r.status() == StatusCode::CREATED => ok += 1,
                            Ok(r) => failures.push(format!("{name}: {} {}", r.status(), r.text().await.unwrap_or_default())),
                            Err(e) => failures.push(format!("{name}: {e}")),
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    (ok, failures)
                })
            })
            .collect();
        Self { stop, handles }
    }

    /// Stops them; returns the writes that succeeded, asserting none failed.
    async fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = 0;
        let mut failures = Vec::new();
        for handle in self.handles {
            let (ok, failed) = handle.await.expect("writer");
            total += ok;
            failures.extend(failed);
        }
        assert!(
            failures.is_empty(),
            "{} of {} writes failed, first: {:#?}",
            failures.len(),
            total + failures.len(),
            &failures[..failures.len().min(5)]
        );
        total
    }
}

#[tokio::test]
#[ignore = "needs KUBE_APISERVER and ETCD"]
async fn self_managed_certificates_rotate_without_a_failed_call_through_the_real_api_server() {
    let cluster = Cluster::start();
    install(&cluster, true);
    let ca_file = cluster.dir.join("tollgate-ca.pem");
    let a = replica(&cluster, &ca_file);
    let b = replica(&cluster, &ca_file);

    // Both replicas start at once; they converge on one Secret and serve it.
    for server in [&a, &b] {
        eventually(Duration::from_secs(60), "/readyz is 200", || async {
            ready(server).await.0 == StatusCode::OK
        })
        .await;
    }
    let first = stored(&cluster).await.expect("the Secret was created");
    assert_eq!(der_of(&first.ca).len(), 1, "one CA");
    std::fs::write(&ca_file, &first.ca).unwrap();
    let leaf = der_of(&first.cert).remove(0);
    for server in [&a, &b] {
        assert_eq!(presented_certificate(server.addr).await, leaf);
        // The CA verifies it for the names a client uses.
        assert_eq!(server.get("/healthz").await.0, StatusCode::OK);
    }
    let secret = cluster.get_json(SECRET).await.unwrap();
    assert_eq!(secret["type"], "kubernetes.io/tls");

    // Registered afterwards, with no caBundle: the replicas fill it in.
    register(&cluster, &[&a, &b]);
    eventually(
        Duration::from_secs(30),
        "every webhook carries the CA",
        || async {
            bundles(&cluster)
                .await
                .iter()
                .all(|bundle| bundle == &first.ca)
        },
    )
    .await;
    let validating = cluster.get_json(VALIDATING).await.unwrap();
    assert_eq!(
        validating["metadata"]["annotations"]["tollgate.dev/ca-bundle-generation"],
        first.generation.as_str()
    );

    // The API server really calls both replicas and verifies them.
    let api = cluster.api();
    let configmaps = cluster.api_url("/api/v1/namespaces/gated/configmaps");
    let object =
        |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    let created = api
        .post(&configmaps)
        .json(&object("allowed"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.status(),
        StatusCode::CREATED,
        "{}",
        created.text().await.unwrap()
    );
    let denied = api
        .post(&configmaps)
        .json(&object("forbidden"))
        .send()
        .await
        .unwrap();
    let (status, text) = (denied.status(), denied.text().await.unwrap());
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("denied by the deny rule"), "{text}");
    for server in [&a, &b] {
        let metrics = server.metrics().await;
        for endpoint in ["validate", "mutate"] {
            let line = format!("tollgate_unmatched_reviews_total{{endpoint=\"{endpoint}\"}}");
            assert!(
                support::metric(&metrics, &line) >= 1.0,
                "{line} in\n{metrics}"
            );
        }
        // A year's certificate, not the placeholder served before the Secret.
        let expiry = support::metric(&metrics, "tollgate_certificate_expiry_timestamp_seconds");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(expiry > now + 300.0 * 86400.0, "{expiry}");
        let deny = r#"tollgate_reviews_total{endpoint="validate",policy="no-forbidden",verdict="deny",mode="enforce"}"#;
        assert!(
            support::metric(&metrics, deny) >= 1.0,
            "{deny} in\n{metrics}"
        );
    }

    // A forced certificate rotation: same CA, no bundle change.
    let writers = Writers::start(&cluster, "cert", 3);
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.kubectl_ok(&[
        "annotate",
        "secret",
        "-n",
        "tollgate",
        "tollgate-tls",
        "tollgate.dev/rotate=cert",
    ]);
    eventually(
        Duration::from_secs(30),
        "both replicas serve a new certificate",
        || async {
            let now = stored(&cluster).await.unwrap();
            let leaf_now = der_of(&now.cert).remove(0);
            leaf_now != leaf
                && presented_certificate(a.addr).await == leaf_now
                && presented_certificate(b.addr).await == leaf_now
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes = writers.finish().await;
    assert!(writes > 10, "{writes} writes");
    let after = stored(&cluster).await.unwrap();
    assert_eq!(after.ca, first.ca, "same CA");
    assert_eq!(after.generation, first.generation, "no bundle change");
    let secret = cluster.get_json(SECRET).await.unwrap();
    assert!(
        secret["metadata"]["annotations"]
            .get("tollgate.dev/rotate")
            .is_none(),
        "the request was consumed"
    );

    // A forced CA rotation: the new CA joins the bundle, the certificate
    // switches, the old CA leaves; every call verifies throughout.
    let old_ca = der_of(&first.ca).remove(0);
    let writers = Writers::start(&cluster, "ca", 3);
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.kubectl_ok(&[
        "annotate",
        "secret",
        "-n",
        "tollgate",
        "tollgate-tls",
        "tollgate.dev/rotate=ca",
    ]);
    let started = Instant::now();
    let mut seen_in_bundles = BTreeSet::new();
    let new_ca = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the CA rotation did not finish: {seen_in_bundles:?}"
        );
        for bundle in bundles(&cluster).await {
            seen_in_bundles.insert(der_of(&bundle).len());
        }
        let now = stored(&cluster).await.unwrap();
        let cas = der_of(&now.ca);
        let leaf_now = der_of(&now.cert).remove(0);
        if cas.len() == 1
            && cas[0] != old_ca
            && bundles(&cluster).await.iter().all(|b| b == &now.ca)
            && presented_certificate(a.addr).await == leaf_now
            && presented_certificate(b.addr).await == leaf_now
        {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let writes = writers.finish().await;
    assert!(writes > 20, "{writes} writes through the rotation");
    assert!(
        seen_in_bundles.contains(&2),
        "the old and the new CA were in the bundle together: {seen_in_bundles:?}"
    );
    // The test's clients follow the new CA, which alone verifies now.
    std::fs::write(&ca_file, &new_ca.ca).unwrap();
    for server in [&a, &b] {
        assert_eq!(server.get("/healthz").await.0, StatusCode::OK);
    }
    assert!(
        new_ca.generation.parse::<u64>().unwrap() >= first.generation.parse::<u64>().unwrap() + 2
    );

    // A deleted Secret comes back as it was (the API server still trusts its CA).
    cluster.kubectl_ok(&["delete", "secret", "-n", "tollgate", "tollgate-tls"]);
    eventually(Duration::from_secs(30), "the Secret is back", || async {
        stored(&cluster)
            .await
            .is_some_and(|s| s.ca == new_ca.ca && s.cert == new_ca.cert)
    })
    .await;
    let created = api
        .post(&configmaps)
        .json(&object("after-delete"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.status(),
        StatusCode::CREATED,
        "{}",
        created.text().await.unwrap()
    );

    // A configuration claiming a newer bundle than the Secret has (a Secret
    // restored from an old backup, say) and a wiped caBundle: the replicas
    // wait for the read to catch up, then raise the Secret's generation past
    // it so its bundle wins, and write it back.
    let patch = json!([
        {"op": "add", "path": "/metadata/annotations/tollgate.dev~1ca-bundle-generation", "value": "99"},
        {"op": "replace", "path": "/webhooks/0/clientConfig/caBundle", "value": ""},
        {"op": "replace", "path": "/webhooks/1/clientConfig/caBundle", "value": ""},
    ]);
    cluster.kubectl_ok(&[
        "patch",
        "validatingwebhookconfiguration",
        "tollgate",
        "--type=json",
        "-p",
        &patch.to_string(),
    ]);
    eventually(
        Duration::from_secs(30),
        "the bundle is back under a higher generation",
        || async {
            let now = stored(&cluster).await.unwrap();
            now.generation.parse::<u64>().unwrap() > 99
                && bundles(&cluster).await.iter().all(|b| b == &now.ca)
        },
    )
    .await;
    assert_eq!(stored(&cluster).await.unwrap().ca, new_ca.ca);
    let created = api
        .post(&configmaps)
        .json(&object("after-restore"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.status(),
        StatusCode::CREATED,
        "{}",
        created.text().await.unwrap()
    );
}

#[tokio::test]
#[ignore = "needs KUBE_APISERVER and ETCD"]
async fn readyz_is_503_until_the_ca_is_in_the_webhook_configurations() {
    let cluster = Cluster::start();
    // The Secret may be written, the webhook configurations not (yet).
    install(&cluster, false);
    let ca_file = cluster.dir.join("tollgate-ca.pem");
    let server = replica(&cluster, &ca_file);
    register(&cluster, &[&server]);

    eventually(Duration::from_secs(30), "the Secret is created", || async {
        stored(&cluster).await.is_some()
    })
    .await;
    for _ in 0..10 {
        let (status, text) = ready(&server).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
        assert!(
            text.contains("its CA in the webhook configurations"),
            "{text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(bundles(&cluster).await.iter().all(Vec::is_empty));
    assert!(server.logs().contains("forbidden"), "{}", server.logs());

    // Granted, it writes the bundle and becomes ready.
    bind_webhook_role(&cluster);
    eventually(Duration::from_secs(30), "/readyz is 200", || async {
        ready(&server).await.0 == StatusCode::OK
    })
    .await;
    let ca = stored(&cluster).await.unwrap().ca;
    assert!(bundles(&cluster).await.iter().all(|b| b == &ca));
}
