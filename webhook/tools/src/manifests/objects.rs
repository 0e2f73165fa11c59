//! The objects of an install, as JSON values (names agreed in
//! `NAMES.md`: everything is called `tollgate`, labelled
//! `app.kubernetes.io/name: tollgate`).

use serde_json::{Value, json};
use tollgate_context::WatchPlan;

use super::CertMode;
use super::client_ca::{self, ClientCa};

/// The pod's dedicated host port: on the host network (see `deploy/README.md`).
pub const PORT: u16 = 9443;
/// Where the policy ConfigMap is mounted (a directory mount, so kubelet's
/// atomic updates reach the hot reload; a `subPath` mount never changes).
const POLICY_DIR: &str = "/etc/tollgate";
const CACHE_DIR: &str = "/var/cache/tollgate";
/// The module cache's key (apart from the cache, see `--cache-key-dir`).
const STATE_DIR: &str = "/var/lib/tollgate";
/// The cert-manager Secret's mount (outside the ConfigMap's directory).
const TLS_DIR: &str = "/var/run/tollgate/tls";
pub const TLS_SECRET: &str = "tollgate-tls";
pub const POLICY_CONFIGMAP: &str = "tollgate-policies";
pub const POLICY_KEY: &str = "policies.yaml";

/// What an install is made of: the generator's options.
#[derive(Debug, Clone)]
pub struct Install {
    /// Every object's name.
    pub name: String,
    pub namespace: String,
    pub image: String,
    pub replicas: u32,
    pub cert_mode: CertMode,
    /// Webhooks called at this URL (tests, out-of-cluster) instead of the Service.
    pub webhook_url: Option<String>,
    /// PEM of the CA for `caBundle`.
    pub ca_bundle: Option<String>,
    /// The policy configuration, as text (it becomes the ConfigMap).
    pub policies_yaml: String,
    /// What the watch caches follow for the policies' `context:` grants.
    pub read_plan: WatchPlan,
    /// Client certificates required of the API server (`--client-ca-configmap`).
    pub client_ca: Option<ClientCa>,
}

pub fn labels() -> Value {
    json!({"app.kubernetes.io/name": "tollgate"})
}

impl Install {
    fn metadata(&self, name: &str) -> Value {
        json!({"name": name, "namespace": self.namespace, "labels": labels()})
    }

    fn cluster_metadata(&self, name: &str) -> Value {
        json!({"name": name, "labels": labels()})
    }

    pub fn namespace(&self) -> Value {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": self.cluster_metadata(&self.namespace)})
    }

    pub fn service_account(&self) -> Value {
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": self.metadata(&self.name)})
    }

    fn subjects(&self) -> Value {
        json!([{"kind": "ServiceAccount", "name": self.name, "namespace": self.namespace}])
    }

    /// The read-only roles of the context grants ([`context_rbac`]).
    pub fn context_rbac(&self) -> Vec<Value> {
        context_rbac(&self.name, &self.namespace, &self.read_plan)
    }

    fn binding(&self, kind: &str, role_kind: &str, name: &str) -> Value {
        let metadata = if kind == "RoleBinding" {
            self.metadata(name)
        } else {
            self.cluster_metadata(name)
        };
        binding(kind, role_kind, metadata, &self.subjects())
    }

    /// What self-managed certificates need: the TLS Secret in the namespace
    /// (create cannot be narrowed by name) and the caBundle of Tollgate's
    /// own webhook configurations.
    pub fn certificate_rbac(&self) -> Vec<Value> {
        let certs = format!("{}-certs", self.name);
        let webhooks = format!("{}-webhooks", self.name);
        let rule = |groups: &[&str], resources: &[&str], verbs: &[&str], names: Option<&str>| {
            let mut rule = json!({"apiGroups": groups, "resources": resources, "verbs": verbs});
            if let Some(name) = names {
                rule["resourceNames"] = json!([name]);
            }
            rule
        };
        let admission = "admissionregistration.k8s.io";
        let configurations = [
            "validatingwebhookconfigurations",
            "mutatingwebhookconfigurations",
        ];
        vec![
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": self.metadata(&certs),
                "rules": [
                    rule(&[""], &["secrets"], &["create", "list", "watch"], None),
                    rule(&[""], &["secrets"], &["get", "update", "patch"], Some(TLS_SECRET)),
                ],
            }),
            self.binding("RoleBinding", "Role", &certs),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": self.cluster_metadata(&webhooks),
                "rules": [
                    rule(&[admission], &configurations, &["list", "watch"], None),
                    rule(&[admission], &configurations, &["get", "update", "patch"], Some(&self.name)),
                ],
            }),
            self.binding("ClusterRoleBinding", "ClusterRole", &webhooks),
        ]
    }

    pub fn config_map(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.metadata(POLICY_CONFIGMAP),
            "data": {POLICY_KEY: self.policies_yaml},
        })
    }

    /// `serve`'s arguments for the certificate mode.
    pub fn args(&self, mode: CertMode) -> Vec<String> {
        let mut args = vec![
            "serve".to_owned(),
            format!("--listen=0.0.0.0:{PORT}"),
            format!("--policies={POLICY_DIR}/{POLICY_KEY}"),
            // Subdirectories: an emptyDir is mode 0777, which the module
            // cache refuses (anyone could write it); Tollgate makes these 0700.
            format!("--cache-dir={CACHE_DIR}/modules"),
            format!("--cache-key-dir={STATE_DIR}/cache-key"),
            "--log-format=json".to_owned(),
        ];
        match mode {
            CertMode::SelfManaged => args.push("--self-managed-certs".to_owned()),
            CertMode::CertManager => {
                args.push(format!("--cert={TLS_DIR}/tls.crt"));
                args.push(format!("--key={TLS_DIR}/tls.key"));
            }
        }
        args.extend(self.client_ca.iter().flat_map(ClientCa::args));
        args
    }

    /// The secret volume and mount cert-manager mode adds.
    pub fn tls_volume() -> (Value, Value) {
        (
            json!({"name": "tls", "secret": {"secretName": TLS_SECRET}}),
            json!({"name": "tls", "mountPath": TLS_DIR, "readOnly": true}),
        )
    }

    pub fn deployment(&self) -> Value {
        let selector = labels();
        let probe = |path: &str, period: u32, failures: u32| {
            client_ca::probe(self.client_ca.as_ref(), path, period, failures)
        };
        let mut ports = vec![
            json!({"name": "https", "containerPort": PORT, "hostPort": PORT, "protocol": "TCP"}),
        ];
        ports.extend(client_ca::probe_port(self.client_ca.as_ref()));
        let mut volumes = vec![
            json!({"name": "policies", "configMap": {"name": POLICY_CONFIGMAP}}),
            json!({"name": "cache", "emptyDir": {"sizeLimit": "256Mi"}}),
            json!({"name": "state", "emptyDir": {"sizeLimit": "1Mi"}}),
        ];
        let mut mounts = vec![
            json!({"name": "policies", "mountPath": POLICY_DIR, "readOnly": true}),
            json!({"name": "cache", "mountPath": CACHE_DIR}),
            json!({"name": "state", "mountPath": STATE_DIR}),
        ];
        if let Some(ca) = &self.client_ca {
            let (volume, mount) = ca.volume();
            volumes.push(volume);
            mounts.push(mount);
        }
        if self.cert_mode == CertMode::CertManager {
            // First, where kustomize's strategic merge puts what it adds.
            let (volume, mount) = Self::tls_volume();
            volumes.insert(0, volume);
            mounts.insert(0, mount);
        }
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": self.metadata(&self.name),
            "spec": {
                "replicas": self.replicas,
                "revisionHistoryLimit": 5,
                "selector": {"matchLabels": selector},
                // One replica at a time; no surge, since a second pod
                // cannot share a node's host port.
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                "template": {
                    "metadata": {"labels": selector},
                    "spec": {
                        "serviceAccountName": self.name,
                        // Reachable while the CNI it guards is replaced.
                        "hostNetwork": true,
                        "dnsPolicy": "ClusterFirstWithHostNet",
                        "priorityClassName": "system-cluster-critical",
                        // Cordoned, NotReady and network-unavailable nodes
                        // are exactly where it must keep running.
                        "tolerations": [{"operator": "Exists"}],
                        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                            {"labelSelector": {"matchLabels": selector}, "topologyKey": "kubernetes.io/hostname"}
                        ]}},
                        "securityContext": {
                            "runAsNonRoot": true,
                            "runAsUser": 65532,
                            "runAsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "terminationGracePeriodSeconds": 45,
                        "containers": [{
                            "name": "tollgate",
                            "image": self.image,
                            "imagePullPolicy": "IfNotPresent",
                            "args": self.args(self.cert_mode),
                            "env": [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                            "ports": ports,
                            // Compiling the pack on a cold cache takes a while.
                            "startupProbe": probe("/healthz", 2, 150),
                            "readinessProbe": probe("/readyz", 5, 2),
                            "livenessProbe": probe("/healthz", 10, 3),
                            // The Service's endpoints are removed before the
                            // server stops listening (the image has no shell).
                            "lifecycle": {"preStop": {"exec": {"command": ["/tollgate", "sleep", "5s"]}}},
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"cpu": "1", "memory": "512Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": mounts,
                        }],
                        "volumes": volumes,
                    },
                },
            },
        })
    }

    pub fn disruption_budget(&self) -> Value {
        json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": self.metadata(&self.name),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels()}},
        })
    }

    pub fn service(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.metadata(&self.name),
            "spec": {
                "selector": labels(),
                "ports": [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}],
            },
        })
    }

    /// The names the serving certificate carries (those the API server
    /// dials for a `service:` reference).
    pub fn dns_names(&self) -> Vec<String> {
        let (n, ns) = (&self.name, &self.namespace);
        vec![
            n.clone(),
            format!("{n}.{ns}"),
            format!("{n}.{ns}.svc"),
            format!("{n}.{ns}.svc.cluster.local"),
        ]
    }

    /// cert-manager mode: a self-signed Issuer and the serving Certificate
    /// in the Secret the Deployment mounts; cainjector copies its CA into
    /// the webhook configurations.
    pub fn cert_manager(&self) -> Vec<Value> {
        let issuer = format!("{}-selfsigned", self.name);
        vec![
            json!({
                "apiVersion": "cert-manager.io/v1",
                "kind": "Issuer",
                "metadata": self.metadata(&issuer),
                "spec": {"selfSigned": {}},
            }),
            json!({
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "metadata": self.metadata(&self.name),
                "spec": {
                    "secretName": TLS_SECRET,
                    "dnsNames": self.dns_names(),
                    "issuerRef": {"kind": "Issuer", "name": issuer},
                    "duration": "8760h",
                    "renewBefore": "720h",
                    "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                },
            }),
        ]
    }

    /// cert-manager's CA injection annotation, in that mode.
    pub fn webhook_annotations(&self) -> Option<Value> {
        (self.cert_mode == CertMode::CertManager && self.webhook_url.is_none()).then(|| {
            json!({"cert-manager.io/inject-ca-from": format!("{}/{}", self.namespace, self.name)})
        })
    }

    /// Where the API server calls: the Service, or `--webhook-url`.
    pub fn client_config(&self, path: &str) -> Value {
        use base64::Engine;
        let mut config = match &self.webhook_url {
            Some(url) => json!({"url": format!("{}{path}", url.trim_end_matches('/'))}),
            None => json!({"service": {
                "name": self.name, "namespace": self.namespace, "path": path, "port": 443,
            }}),
        };
        if let Some(pem) = &self.ca_bundle {
            config["caBundle"] =
                json!(base64::engine::general_purpose::STANDARD.encode(pem.as_bytes()));
        }
        config
    }
}

/// The read-only roles the watch caches need for `plan`, bound to the
/// service account `name` in `namespace`: a ClusterRole for what is read
/// across namespaces, a Role and RoleBinding in each namespace read on its
/// own (see `tollgate_context::read_access::ContextRules`). `tollgate rbac` prints
/// these, `tollgate manifests` installs them.
pub fn context_rbac(name: &str, namespace: &str, plan: &WatchPlan) -> Vec<Value> {
    let rules = tollgate_context::read_access::context_rules(plan);
    let subjects = json!([{"kind": "ServiceAccount", "name": name, "namespace": namespace}]);
    let rbac = "rbac.authorization.k8s.io/v1";
    let mut out = Vec::new();
    if !rules.cluster.is_empty() {
        let metadata = json!({"name": name, "labels": labels()});
        out.push(json!({"apiVersion": rbac, "kind": "ClusterRole", "metadata": metadata, "rules": rules.cluster}));
        out.push(binding(
            "ClusterRoleBinding",
            "ClusterRole",
            metadata,
            &subjects,
        ));
    }
    for (role_namespace, rules) in rules.namespaced {
        let metadata = json!({"name": name, "namespace": role_namespace, "labels": labels()});
        out.push(json!({"apiVersion": rbac, "kind": "Role", "metadata": metadata, "rules": rules}));
        out.push(binding("RoleBinding", "Role", metadata, &subjects));
    }
    out
}

/// A binding of the role `metadata` names (the binding shares its name
/// and namespace) to `subjects`.
fn binding(kind: &str, role_kind: &str, metadata: Value, subjects: &Value) -> Value {
    let name = metadata["name"].clone();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
        "subjects": subjects,
    })
}
