//! A real API server filled like a large cluster, and the Calico reviews
//! whose verdicts must not depend on how large it is: shared by the
//! `large_cluster` bench (`bench/src/bin/large_cluster.rs`) and its small
//! CI version (`tests/cluster_scale.rs`), so both measure the same objects.
//!
//! Objects are POSTed over [`Cluster::api`], [`IN_FLIGHT`] at a time (one
//! kubectl per object would take hours). There is no controller-manager:
//! each Deployment gets its ReplicaSet here, owned by the Deployment's uid,
//! and each namespace holding Pods its `default` ServiceAccount (the
//! ServiceAccount admission plugin refuses Pods without one). Errors are
//! values, not panics, so that the bench reports them with context.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::Cluster;

/// Requests in flight while filling: enough to keep kube-apiserver and etcd
/// busy on two cores without queueing in its priority and fairness.
pub const IN_FLIGHT: usize = 32;
/// Attempts of one POST that fails transiently (429, 5xx, connection).
const ATTEMPTS: u32 = 8;

/// The Calico release installed from its published manifest.
pub const CALICO: &str = "v3.31.7";
/// The Nodes calico-node runs on (a Pod each); the last one is cordoned.
pub const CALICO_NODES: [&str; 3] = ["calico-host-0", "calico-host-1", "calico-host-2"];

/// A failure with the API server's own message.
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// What to add to the cluster beyond Calico.
#[derive(Debug, Clone, Copy)]
pub struct Fill {
    /// Namespaces in all (`fill-0000`, ...).
    pub namespaces: usize,
    /// The first this many namespaces hold the Pods and Deployments.
    pub pod_namespaces: usize,
    pub pods: usize,
    /// Deployments, each with one ReplicaSet.
    pub deployments: usize,
    pub nodes: usize,
    /// Spread over all namespaces.
    pub network_policies: usize,
}

impl Fill {
    /// Issue 20's large cluster.
    pub const LARGE: Fill = Fill {
        namespaces: 3_000,
        pod_namespaces: 200,
        pods: 20_000,
        deployments: 2_000,
        nodes: 1_000,
        network_policies: 10_000,
    };

    /// The Namespaces, and a `default` ServiceAccount in those that hold
    /// Pods. Apart from [`Fill::workloads`] so that a test can create them
    /// before Tollgate starts (Namespaces are read by a rule).
    pub async fn namespaces(&self, cluster: &Cluster) -> Result<()> {
        let namespaces =
            (0..self.namespaces).map(|i| Job::create("/api/v1/namespaces", namespace(i)));
        create_all(cluster, namespaces.collect()).await?;
        let accounts = (0..self.pod_namespaces.min(self.namespaces)).map(|i| {
            let ns = namespace_name(i);
            let account = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                                 "metadata": {"name": "default", "namespace": ns}});
            Job::create(&format!("/api/v1/namespaces/{ns}/serviceaccounts"), account)
        });
        create_all(cluster, accounts.collect()).await
    }

    /// Pods, Deployments with their ReplicaSets, Nodes and NetworkPolicies
    /// (the namespaces must exist).
    pub async fn workloads(&self, cluster: &Cluster) -> Result<()> {
        let homes = self.pod_namespaces.min(self.namespaces).max(1);
        let mut jobs = Vec::new();
        for i in 0..self.pods {
            let ns = namespace_name(i % homes);
            jobs.push(Job::create(
                &format!("/api/v1/namespaces/{ns}/pods"),
                pod(&ns, i),
            ));
        }
        for i in 0..self.deployments {
            let ns = namespace_name(i % homes);
            let (deployment, replica_set) = deployment(&ns, i);
            jobs.push(Job::Owned {
                owner: (
                    format!("/apis/apps/v1/namespaces/{ns}/deployments"),
                    deployment,
                ),
                owned: (
                    format!("/apis/apps/v1/namespaces/{ns}/replicasets"),
                    replica_set,
                ),
            });
        }
        for i in 0..self.nodes {
            jobs.push(Job::create("/api/v1/nodes", node(i)));
        }
        for i in 0..self.network_policies {
            let ns = namespace_name(i % self.namespaces.max(1));
            let path = format!("/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies");
            jobs.push(Job::create(&path, network_policy(&ns, i)));
        }
        create_all(cluster, jobs).await
    }
}

/// `fill-0042`.
pub fn namespace_name(i: usize) -> String {
    format!("fill-{i:04}")
}

fn namespace(i: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": namespace_name(i),
                        "labels": {"team": format!("team-{}", i % 40), "env": "prod"}}})
}

/// A Pod as a team deploys it, about 1.9 KB of JSON: two containers with
/// image, ports, env, resources, probes and mounts, two volumes; no status,
/// not scheduled.
pub fn pod(ns: &str, i: usize) -> Value {
    let app = format!("web-{}", i % 97);
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{app}-{i:06}"), "namespace": ns,
            "labels": {"app": app, "tier": "frontend", "team": format!("team-{}", i % 40),
                       "pod-template-hash": format!("{:010x}", i * 7919)},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                            "kubernetes.io/change-cause": format!("deploy {app} release 1.{}.3 (pipeline #{})", i % 9, 40_000 + i)},
        },
        "spec": {
            "automountServiceAccountToken": false,
            "containers": [
                {
                    "name": "app",
                    "image": format!("registry.example.com/team-{}/{app}:1.{}.3", i % 40, i % 9),
                    "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
                    "env": [
                        {"name": "APP_ENV", "value": "production"},
                        {"name": "APP_LOG_LEVEL", "value": "info"},
                        {"name": "APP_FEATURE_FLAGS", "value": "checkout-v2,search-v3,recommendations"},
                        {"name": "APP_DATABASE_URL", "value": format!("postgres://db.{ns}.svc:5432/app")},
                        {"name": "APP_CACHE_URL", "value": format!("redis://cache.{ns}.svc:6379/0")},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    ],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                  "limits": {"cpu": "500m", "memory": "256Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
                    "livenessProbe": {"httpGet": {"path": "/livez", "port": 8080}, "initialDelaySeconds": 15},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": true},
                                     {"name": "data", "mountPath": "/var/lib/app"}],
                },
                {
                    "name": "log-shipper",
                    "image": "registry.example.com/platform/log-shipper:2.1.0",
                    "args": ["--input=/var/lib/app/logs", "--output=https://logs.example.com/ingest"],
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                                  "limits": {"cpu": "100m", "memory": "64Mi"}},
                    "volumeMounts": [{"name": "data", "mountPath": "/var/lib/app", "readOnly": true}],
                },
            ],
            "volumes": [{"name": "config", "configMap": {"name": format!("{app}-config")}},
                        {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}],
        },
    })
}

/// Deployment `api-NNNNN` and its ReplicaSet; the ReplicaSet's owner uid
/// is filled in once the Deployment exists.
fn deployment(ns: &str, i: usize) -> (Value, Value) {
    let name = format!("api-{i:05}");
    let hash = format!("{:010x}", i * 104_729);
    let template = |hash: Option<&str>| {
        let mut labels = json!({"app": name});
        if let Some(hash) = hash {
            labels["pod-template-hash"] = json!(hash);
        }
        json!({
            "metadata": {"labels": labels},
            "spec": {"containers": [{
                "name": "api",
                "image": format!("registry.example.com/team-{}/api:2.{}.0", i % 40, i % 7),
                "ports": [{"containerPort": 8080}],
                "env": [{"name": "APP_ENV", "value": "production"}],
                "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}},
            }]},
        })
    };
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}}, "template": template(None)},
    });
    let replica_set = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{name}-{hash}"), "namespace": ns,
            "labels": {"app": name, "pod-template-hash": hash},
            "annotations": {"deployment.kubernetes.io/revision": "1"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                                 "uid": "", "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {"replicas": 3,
                 "selector": {"matchLabels": {"app": name, "pod-template-hash": hash}},
                 "template": template(Some(&hash))},
    });
    (deployment, replica_set)
}

fn node(i: usize) -> Value {
    let name = format!("worker-{i:05}");
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": "m5.xlarge",
            "topology.kubernetes.io/zone": format!("zone-{}", i % 3)}},
        "spec": {"podCIDR": format!("10.{}.{}.0/24", 64 + i / 256, i % 256),
                 "providerID": format!("aws:///zone-{}/i-{i:017x}", i % 3)},
    })
}

fn network_policy(ns: &str, i: usize) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": format!("allow-frontend-{i:05}"), "namespace": ns},
        "spec": {
            "podSelector": {"matchLabels": {"app": format!("web-{}", i % 97)}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": format!("team-{}", i % 40)}}},
                                  {"podSelector": {"matchLabels": {"tier": "frontend"}}}],
                         "ports": [{"protocol": "TCP", "port": 8080}]}],
        },
    })
}

/// One unit of work of [`create_all`].
enum Job {
    /// POST the object to the collection path.
    Create(String, Value),
    /// POST `owner`, then `owned` with its first ownerReference's uid set
    /// to the owner's.
    Owned {
        owner: (String, Value),
        owned: (String, Value),
    },
}

impl Job {
    fn create(path: &str, object: Value) -> Self {
        Job::Create(path.to_owned(), object)
    }
}

/// POSTs every job, [`IN_FLIGHT`] at a time; stops at the first error.
async fn create_all(cluster: &Cluster, jobs: Vec<Job>) -> Result<()> {
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let api = Api {
        client: cluster.api(),
        base: cluster.api_url(""),
    };
    let workers: Vec<_> = (0..IN_FLIGHT.min(jobs.len()))
        .map(|_| {
            let (jobs, next, failed, api) =
                (jobs.clone(), next.clone(), failed.clone(), api.clone());
            tokio::spawn(async move {
                while !failed.load(Ordering::Relaxed) {
                    let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    let done = match job {
                        Job::Create(path, object) => api.post(path, object).await.map(drop),
                        Job::Owned { owner, owned } => api.post_owned(owner, owned).await,
                    };
                    if let Err(e) = done {
                        failed.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker
            .await
            .map_err(|e| Error(format!("a fill worker failed: {e}")))??;
    }
    Ok(())
}

/// The admin client and the API server's URL.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn post_owned(&self, owner: &(String, Value), owned: &(String, Value)) -> Result<()> {
        let created = self.post(&owner.0, &owner.1).await?;
        let mut object = owned.1.clone();
        object["metadata"]["ownerReferences"][0]["uid"] = created["metadata"]["uid"].clone();
        self.post(&owned.0, &object).await.map(drop)
    }

    /// POSTs `object` to the collection at `path`; returns what the API
    /// server stored. Retries what may pass on a second try; a retried POST
    /// that meets AlreadyExists had succeeded before and GETs the object.
    async fn post(&self, path: &str, object: &Value) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut delay = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            let transient = match self.client.post(&url).json(object).send().await {
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    if status.is_success() {
                        return serde_json::from_str(&text)
                            .map_err(|e| Error(format!("POST {path}: answer is not JSON: {e}")));
                    }
                    if status == reqwest::StatusCode::CONFLICT && attempt > 1 {
                        let name = object["metadata"]["name"].as_str().unwrap_or_default();
                        return self.get(&format!("{path}/{name}")).await;
                    }
                    let cause = format!("{status}: {}", message(&text));
                    if status != reqwest::StatusCode::TOO_MANY_REQUESTS && !status.is_server_error()
                    {
                        return Err(Error(format!("POST {path}: {cause}")));
                    }
                    cause
                }
                Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => e.to_string(),
                Err(e) => return Err(Error(format!("POST {path}: {e}"))),
            };
            if attempt == ATTEMPTS {
                return Err(Error(format!(
                    "POST {path}: {transient} (after {ATTEMPTS} attempts)"
                )));
            }
            attempt += 1;
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.client.get(format!("{}{path}", self.base)), "GET", path)
            .await
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        verb: &str,
        path: &str,
    ) -> Result<Value> {
        let response = request
            .send()
            .await
            .map_err(|e| Error(format!("{verb} {path}: {e}")))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(Error(format!(
                "{verb} {path}: {status}: {}",
                message(&text)
            )));
        }
        serde_json::from_str(&text).map_err(|e| Error(format!("{verb} {path}: not JSON: {e}")))
    }
}

/// The `message` of a Kubernetes `Status`, or the start of the body.
fn message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|s| s["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(300).collect())
}

/// Installs Calico [`CALICO`] from its published `calico.yaml` as its docs
/// do (`kubectl apply --server-side`), waits for its CRDs, and adds what
/// the controllers of a real cluster would have made of it: Nodes
/// ([`CALICO_NODES`], the last cordoned), a Ready calico-node Pod on each,
/// and the ReplicaSet of calico-kube-controllers.
pub async fn install_calico(cluster: &Cluster) -> Result<()> {
    let manifest = tollgate_testkit::modern::modern_path(CALICO, "calico.yaml");
    let file = manifest.display().to_string();
    for args in [
        &["apply", "--server-side", "--force-conflicts", "-f", &file][..],
        &[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=120s",
        ],
    ] {
        let out = cluster.kubectl(args);
        if !out.status.success() {
            return Err(Error(format!(
                "kubectl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
    }
    let api = Api {
        client: cluster.api(),
        base: cluster.api_url(""),
    };
    let daemon_set = api
        .get("/apis/apps/v1/namespaces/kube-system/daemonsets/calico-node")
        .await?;
    for (i, host) in CALICO_NODES.iter().enumerate() {
        let cordoned = i + 1 == CALICO_NODES.len();
        let node = json!({"apiVersion": "v1", "kind": "Node",
                          "metadata": {"name": host, "labels": {"kubernetes.io/hostname": host}},
                          "spec": {"unschedulable": cordoned}});
        api.post("/api/v1/nodes", &node).await?;
        let template = &daemon_set["spec"]["template"];
        let mut spec = template["spec"].clone();
        spec["nodeName"] = json!(host);
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": format!("calico-node-{i}"), "namespace": "kube-system",
                "labels": template["metadata"]["labels"],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "calico-node",
                                     "uid": daemon_set["metadata"]["uid"], "controller": true,
                                     "blockOwnerDeletion": true}],
            },
            "spec": spec,
        });
        api.post("/api/v1/namespaces/kube-system/pods", &pod)
            .await?;
        let ready = json!({"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}]}});
        let path = format!("/api/v1/namespaces/kube-system/pods/calico-node-{i}/status");
        let patch = api
            .client
            .patch(format!("{}{path}", api.base))
            .header("content-type", "application/merge-patch+json")
            .body(ready.to_string());
        api.send(patch, "PATCH", &path).await?;
    }
    let controller = api
        .get("/apis/apps/v1/namespaces/kube-system/deployments/calico-kube-controllers")
        .await?;
    let hash = "7d8b5c9f64";
    let mut template = controller["spec"]["template"].clone();
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = controller["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let replica_set = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": format!("calico-kube-controllers-{hash}"), "namespace": "kube-system",
            "labels": template["metadata"]["labels"],
            "annotations": {"deployment.kubernetes.io/revision": "1"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                 "name": "calico-kube-controllers", "uid": controller["metadata"]["uid"],
                                 "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {"replicas": 1, "selector": selector, "template": template},
    });
    api.post(
        "/apis/apps/v1/namespaces/kube-system/replicasets",
        &replica_set,
    )
    .await?;
    Ok(())
}

/// One review of the mix: what it is, the endpoint, the AdmissionReview.
#[derive(Debug, Clone)]
pub struct Review {
    pub name: String,
    pub path: &'static str,
    pub body: Value,
}

/// Reviews of Calico's own objects as kubectl would cause them, built from
/// the objects the cluster stores (after [`install_calico`]), each sent to
/// both `/validate` and `/mutate`: calico-node DaemonSet and
/// calico-kube-controllers Deployment UPDATEs (an env change, the upgrade
/// to v3.32.1, a wider rollout, two replicas), deleting a calico-node Pod
/// on an uncordoned and on the cordoned Node, and a NetworkPolicy CREATE
/// with a null podSelector. Refusals, repairs and admissions all occur.
pub async fn review_mix(cluster: &Cluster) -> Result<Vec<Review>> {
    use tollgate_testkit::requests::{create, delete, review, update};
    let api = Api {
        client: cluster.api(),
        base: cluster.api_url(""),
    };
    let node = api
        .get("/apis/apps/v1/namespaces/kube-system/daemonsets/calico-node")
        .await?;
    let controller = api
        .get("/apis/apps/v1/namespaces/kube-system/deployments/calico-kube-controllers")
        .await?;
    let pods = "/api/v1/namespaces/kube-system/pods/calico-node";
    let uncordoned = api.get(&format!("{pods}-0")).await?;
    let cordoned = api
        .get(&format!("{pods}-{}", CALICO_NODES.len() - 1))
        .await?;
    let upgraded = |object: &Value| -> Result<Value> {
        let text = object
            .to_string()
            .replace(&format!(":{CALICO}\""), ":v3.32.1\"");
        serde_json::from_str(&text).map_err(|e| Error(e.to_string()))
    };
    let edited = |object: &Value, edit: &dyn Fn(&mut Value)| {
        let mut new = object.clone();
        edit(&mut new);
        new
    };
    let requests = [
        (
            "calico-node DaemonSet UPDATE env",
            update(
                &node,
                &edited(&node, &|o| {
                    let containers = o["spec"]["template"]["spec"]["containers"].as_array_mut();
                    let node = containers
                        .into_iter()
                        .flatten()
                        .find(|c| c["name"] == "calico-node");
                    if let Some(env) = node.and_then(|c| c["env"].as_array_mut()) {
                        env.push(json!({"name": "FELIX_LOGSEVERITYSCREEN", "value": "debug"}));
                    }
                }),
            ),
        ),
        (
            "calico-node DaemonSet UPDATE to v3.32.1",
            update(&node, &upgraded(&node)?),
        ),
        (
            "calico-node DaemonSet UPDATE maxUnavailable 3",
            update(
                &node,
                &edited(&node, &|o| {
                    o["spec"]["updateStrategy"] =
                        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 3}});
                }),
            ),
        ),
        (
            "calico-kube-controllers Deployment UPDATE replicas 2",
            update(
                &controller,
                &edited(&controller, &|o| o["spec"]["replicas"] = json!(2)),
            ),
        ),
        (
            "calico-kube-controllers Deployment UPDATE to v3.32.1",
            update(&controller, &upgraded(&controller)?),
        ),
        (
            "calico-node Pod DELETE, node not cordoned",
            delete(&uncordoned),
        ),
        ("calico-node Pod DELETE, node cordoned", delete(&cordoned)),
        (
            "NetworkPolicy CREATE, null podSelector",
            create(&json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "default-deny", "namespace": "default"},
                "spec": {"podSelector": null, "policyTypes": ["Ingress"]},
            })),
        ),
    ];
    let mut mix = Vec::new();
    for (i, (name, request)) in requests.into_iter().enumerate() {
        for path in ["/validate", "/mutate"] {
            let uid = format!("large-cluster-{i}{}", &path[1..2]);
            mix.push(Review {
                name: format!("{name} ({path})"),
                path,
                body: review(&uid, request.clone()),
            });
        }
    }
    Ok(mix)
}

/// Sends `review` to the Tollgate at `base` (`https://ADDR`); returns the
/// answer's `response`.
pub async fn judge(client: &reqwest::Client, base: &str, review: &Review) -> Result<Value> {
    let url = format!("{base}{}", review.path);
    let what = || format!("{}: POST {url}", review.name);
    let response = client
        .post(&url)
        .json(&review.body)
        .send()
        .await
        .map_err(|e| Error(format!("{}: {e}", what())))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status != reqwest::StatusCode::OK {
        return Err(Error(format!("{}: {status}: {text}", what())));
    }
    let answer: Value =
        serde_json::from_str(&text).map_err(|e| Error(format!("{}: {e}: {text}", what())))?;
    Ok(answer["response"].clone())
}

/// `tollgate_context_cache_objects` per type (`apps/v1 ReplicaSet`) in a
/// Prometheus exposition.
pub fn cache_objects(metrics: &str) -> BTreeMap<String, f64> {
    metrics
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("tollgate_context_cache_objects{")?;
            let (labels, value) = rest.rsplit_once("} ")?;
            let label = |name: &str| {
                let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
                let len = labels[start..].find('"')?;
                Some(labels[start..start + len].to_owned())
            };
            let key = format!("{} {}", label("api_version")?, label("kind")?);
            Some((key, value.trim().parse().ok()?))
        })
        .collect()
}

/// A one-line summary of a review's `response`, for tables and failures.
pub fn verdict_summary(response: &Value) -> String {
    let allowed = if response["allowed"] == true {
        "allowed"
    } else {
        "denied"
    };
    let mut parts = vec![allowed.to_owned()];
    if response.get("patch").is_some() {
        parts.push("patched".to_owned());
    }
    if let Some(warnings) = response["warnings"].as_array().filter(|w| !w.is_empty()) {
        parts.push(format!("{} warning(s)", warnings.len()));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_is_about_1_9_kb() {
        let size = pod(&namespace_name(7), 12_345).to_string().len();
        assert!((1_700..=2_100).contains(&size), "{size} bytes");
    }

    #[test]
    fn cache_objects_by_type() {
        let text = "# HELP x\n\
                    tollgate_context_cache_objects{api_version=\"apps/v1\",kind=\"ReplicaSet\"} 12\n\
                    tollgate_context_cache_objects{api_version=\"v1\",kind=\"Pod\"} 3\n\
                    tollgate_context_cache_synced{api_version=\"v1\",kind=\"Pod\"} 1\n";
        let counts = cache_objects(text);
        assert_eq!(counts.len(), 2);
        assert_eq!(counts["apps/v1 ReplicaSet"], 12.0);
        assert_eq!(counts["v1 Pod"], 3.0);
    }
}
