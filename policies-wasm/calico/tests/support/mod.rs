//! Test support: the shared corpus, manifests turned into the objects and
//! AdmissionRequests the API server produces, and rule runners that check the
//! invariants every verdict must keep.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_sdk::wire::LookupQuery;
use tollgate_sdk::{Cluster, LookupError, MemoryCluster, Objects, RuleEntry, Verdict};

/// Warnings get a ~35-character policy-id prefix and are cut at 256.
pub const WARNING_MAX: usize = 210;

/// `shared/` beside the repository (or `$TOLLGATE_SHARED`).
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("TOLLGATE_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")),
    }
}

pub fn corpus_path(rel: &str) -> PathBuf {
    shared_dir().join("corpus").join(rel)
}

/// Every YAML document of a file, as JSON.
pub fn read_docs(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

/// The documents of `corpus/manifests/<rel>`.
pub fn manifest(rel: &str) -> Vec<Value> {
    read_docs(&corpus_path(&format!("manifests/{rel}")))
}

/// Every manifest file of the corpus (`v2.6/etcd/calico.yaml`, ...), sorted.
pub fn all_manifests() -> Vec<(String, Vec<Value>)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let root = corpus_path("manifests");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let rel = f
                .strip_prefix(&root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            let docs = read_docs(&f);
            (rel, docs)
        })
        .collect()
}

pub fn try_find(docs: &[Value], kind: &str, name: &str) -> Option<Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .cloned()
}

pub fn find(docs: &[Value], kind: &str, name: &str) -> Value {
    try_find(docs, kind, name).unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// `find` in `corpus/manifests/<rel>`.
pub fn doc(rel: &str, kind: &str, name: &str) -> Value {
    find(&manifest(rel), kind, name)
}

fn ensure_object<'v>(v: &'v mut Value, key: &str) -> &'v mut serde_json::Map<String, Value> {
    if !v[key].is_object() {
        v[key] = json!({});
    }
    v[key].as_object_mut().expect("object")
}

/// The object as the API server sends it when the manifest was applied
/// through `apps/v1` (as the captured reviews were): apiVersion converted and
/// the defaults of that version applied.
pub fn served(doc: &Value) -> Value {
    let mut d = doc.clone();
    let kind = d["kind"].as_str().unwrap_or_default().to_owned();
    let template_labels = d["spec"]["template"]["metadata"]["labels"].clone();
    match kind.as_str() {
        "Deployment" | "ReplicaSet" | "DaemonSet" => {
            d["apiVersion"] = json!("apps/v1");
            let spec = ensure_object(&mut d, "spec");
            if !spec.contains_key("selector") && template_labels.is_object() {
                spec.insert("selector".into(), json!({"matchLabels": template_labels}));
            }
            match kind.as_str() {
                "Deployment" => {
                    spec.entry("replicas").or_insert(json!(1));
                    let strategy = spec
                        .entry("strategy")
                        .or_insert(json!({"type": "RollingUpdate"}));
                    if strategy["type"] == "RollingUpdate"
                        && strategy.get("rollingUpdate").is_none()
                    {
                        strategy["rollingUpdate"] =
                            json!({"maxUnavailable": "25%", "maxSurge": "25%"});
                    }
                }
                "ReplicaSet" => {
                    spec.entry("replicas").or_insert(json!(1));
                }
                _ => {
                    let strategy = spec
                        .entry("updateStrategy")
                        .or_insert(json!({"type": "RollingUpdate"}));
                    if strategy["type"] == "RollingUpdate" {
                        let rolling = ensure_object(strategy, "rollingUpdate");
                        rolling.entry("maxUnavailable").or_insert(json!(1));
                        rolling.entry("maxSurge").or_insert(json!(0));
                    }
                }
            }
        }
        "NetworkPolicy" => {
            d["apiVersion"] = json!("networking.k8s.io/v1");
            let spec = ensure_object(&mut d, "spec");
            if spec.get("podSelector").is_none_or(Value::is_null) {
                spec.insert("podSelector".into(), json!({}));
            }
            if !spec.contains_key("policyTypes") {
                let mut types = vec![json!("Ingress")];
                if spec.contains_key("egress") {
                    types.push(json!("Egress"));
                }
                spec.insert("policyTypes".into(), Value::Array(types));
            }
        }
        _ => {}
    }
    d
}

/// The object as the cluster stores it once running: served, with a uid and
/// a status where the rules read one (all replicas up and Ready).
pub fn stored(doc: &Value) -> Value {
    let mut d = served(doc);
    let name = d["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    d["metadata"]["uid"] = json!(format!("uid-{name}"));
    if matches!(d["kind"].as_str(), Some("Deployment" | "ReplicaSet")) {
        let replicas = d["spec"]["replicas"].clone();
        d["status"] = json!({"replicas": replicas, "readyReplicas": replicas});
    }
    d
}

/// Sets `spec.replicas` and `status.replicas` (a scaled controller).
pub fn with_replicas(mut obj: Value, spec: i64, status: i64) -> Value {
    obj["spec"]["replicas"] = json!(spec);
    obj["status"] = json!({"replicas": status});
    obj
}

fn gvk(obj: &Value) -> (String, String, String) {
    let api = obj["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api.split_once('/').unwrap_or(("", api));
    (
        group.into(),
        version.into(),
        obj["kind"].as_str().unwrap_or_default().into(),
    )
}

fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    match lower.as_str() {
        "networkpolicy" => "networkpolicies".into(),
        _ => format!("{lower}s"),
    }
}

/// An AdmissionRequest as the API server builds it.
pub fn request(operation: &str, old: Option<&Value>, new: Option<&Value>) -> Value {
    let subject = new.or(old).expect("an object");
    let (group, version, kind) = gvk(subject);
    json!({
        "uid": format!("uid-{operation}-{}", subject["metadata"]["name"].as_str().unwrap_or_default()),
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": plural(&kind)},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "name": subject["metadata"]["name"],
        "namespace": subject["metadata"]["namespace"],
        "operation": operation,
        "userInfo": {"username": "admin", "groups": ["system:masters", "system:authenticated"]},
        "object": new.cloned().unwrap_or(Value::Null),
        "oldObject": old.cloned().unwrap_or(Value::Null),
        "dryRun": false,
    })
}

/// A request parsed as the SDK does, for calling rules directly.
pub fn parse_request(request: &Value) -> tollgate_sdk::Request<'static> {
    let text: &'static str = Box::leak(request.to_string().into_boxed_str());
    serde_json::from_str(text).expect("a request")
}

pub fn create(obj: &Value) -> Value {
    request("CREATE", None, Some(obj))
}

pub fn update(old: &Value, new: &Value) -> Value {
    request("UPDATE", Some(old), Some(new))
}

pub fn delete(old: &Value) -> Value {
    request("DELETE", Some(old), None)
}

/// `kubectl scale` of a Deployment or ReplicaSet: the `scale` subresource.
pub fn scale(resource: &str, ns: &str, name: &str, from: i64, to: i64) -> Value {
    let scale = |n: i64| {
        let spec = if n == 0 {
            json!({})
        } else {
            json!({"replicas": n})
        };
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
               "metadata": {"name": name, "namespace": ns, "uid": "uid-scale"},
               "spec": spec, "status": {"replicas": from}})
    };
    json!({
        "uid": "uid-scale",
        "kind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
        "resource": {"group": "apps", "version": "v1", "resource": resource},
        "subResource": "scale",
        "name": name, "namespace": ns, "operation": "UPDATE",
        "userInfo": {"username": "admin"},
        "object": scale(to), "oldObject": scale(from), "dryRun": false,
    })
}

/// The `request` member of a captured review in `shared/reviews`.
pub fn review(file: &str) -> Value {
    let path = shared_dir().join("reviews").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let review: Value = serde_json::from_str(&text).expect("review JSON");
    review["request"].clone()
}

/// The pack's default configuration (`policies.yaml`).
pub fn policies() -> &'static [Value] {
    static POLICIES: OnceLock<Vec<Value>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/policies.yaml");
        let docs = read_docs(std::path::Path::new(path));
        docs.into_iter()
            .next()
            .and_then(|v| v.as_array().cloned())
            .expect("a list")
    })
}

pub fn policy(id: &str) -> &'static Value {
    policies()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("no policy {id}"))
}

pub fn entry(id: &str) -> RuleEntry {
    tollgate_calico::rules()
        .into_iter()
        .find(|r| r.name == id)
        .unwrap_or_else(|| panic!("no rule {id}"))
}

/// Runs a rule through its exported entry with default settings.
pub fn run(id: &str, request: &Value, cluster: &dyn Cluster) -> Verdict {
    run_with(id, request, &json!({}), cluster)
}

/// Runs a rule through its exported entry and checks what every verdict
/// must keep: short warnings (and messages, for rules that warn by default),
/// no policy-id prefix, patches only on repairable violations of mutating
/// rules.
pub fn run_with(id: &str, request: &Value, settings: &Value, cluster: &dyn Cluster) -> Verdict {
    let rule = entry(id);
    let verdict = rule
        .evaluate(
            request.to_string().as_bytes(),
            settings.to_string().as_bytes(),
            cluster,
        )
        .unwrap_or_else(|e| panic!("{id}: {e}"));
    for w in &verdict.warnings {
        assert!(
            w.chars().count() <= WARNING_MAX,
            "{id}: warning too long ({}): {w}",
            w.chars().count()
        );
        assert!(!w.starts_with(id), "{id}: warning carries the id");
    }
    if let Some(m) = &verdict.message {
        assert!(!m.starts_with(id), "{id}: message carries the id");
        if policy(id)["mode"] == "warn" {
            assert!(
                m.chars().count() <= WARNING_MAX,
                "{id}: warn-mode message too long: {m}"
            );
        }
    }
    if verdict.patch.is_some() {
        assert!(!verdict.allowed, "{id}: a patch needs a violation");
        assert!(rule.mutating, "{id}: patch from a non-mutating rule");
    }
    verdict
}

/// Applies a verdict's patch to `obj`; the patch must apply cleanly.
pub fn patched(obj: &Value, verdict: &Verdict) -> Value {
    let ops = serde_json::to_value(verdict.patch.as_ref().expect("a patch")).unwrap();
    let patch: json_patch::Patch = serde_json::from_value(ops).unwrap();
    let mut out = obj.clone();
    json_patch::patch(&mut out, &patch).unwrap_or_else(|e| panic!("patch does not apply: {e}"));
    out
}

pub fn assert_allowed(v: &Verdict) {
    assert!(v.allowed, "expected allowed, got {v:?}");
    assert!(v.patch.is_none(), "{v:?}");
}

/// A violation whose message contains every `needle`.
pub fn assert_violation(v: &Verdict, needles: &[&str]) {
    assert!(!v.allowed, "expected a violation, got {v:?}");
    let m = v.message.as_deref().unwrap_or_default();
    for n in needles {
        assert!(m.contains(n), "message lacks {n:?}: {m}");
    }
}

pub fn cluster(objects: impl IntoIterator<Item = Value>) -> MemoryCluster {
    MemoryCluster::new(objects)
}

/// A cluster whose every lookup is refused, as when the policy's context
/// does not grant it.
pub struct Refusing;

impl Cluster for Refusing {
    fn lookup(&self, query: &LookupQuery) -> Result<Objects, LookupError> {
        Err(LookupError::Refused(format!(
            "may not read {} {}",
            query.api_version, query.kind
        )))
    }
}

/// A cluster that records the queries it answers, for checking that rules
/// read only what `policies.yaml` grants them.
pub struct Recording<'c> {
    pub inner: &'c dyn Cluster,
    pub queries: std::cell::RefCell<Vec<LookupQuery>>,
}

impl<'c> Recording<'c> {
    pub fn new(inner: &'c dyn Cluster) -> Self {
        Self {
            inner,
            queries: Default::default(),
        }
    }
}

impl Cluster for Recording<'_> {
    fn lookup(&self, query: &LookupQuery) -> Result<Objects, LookupError> {
        self.queries.borrow_mut().push(query.clone());
        self.inner.lookup(query)
    }
}

pub fn namespace(name: &str, default_deny: bool) -> Value {
    let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    if default_deny {
        ns["metadata"]["annotations"] = json!({"net.beta.kubernetes.io/network-policy": "{\"ingress\":{\"isolation\":\"DefaultDeny\"}}"});
    }
    ns
}

pub fn network_policy(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

/// The guide's default-deny policy as the API server stores it.
pub fn default_deny_policy(ns: &str) -> Value {
    network_policy(
        ns,
        "default-deny",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    )
}

/// An object of the Calico TPR (`projectcalico.org/v1`, in kube-system) or
/// CRD (`crd.projectcalico.org/v1`, cluster-scoped) data.
pub fn calico_data(api: &str, kind: &str, name: &str) -> Value {
    let mut v = json!({"apiVersion": api, "kind": kind, "metadata": {"name": name}});
    if api == "projectcalico.org/v1" {
        v["metadata"]["namespace"] = json!("kube-system");
    }
    v
}

pub fn node(name: &str, cordoned: bool, images: &[&str]) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
           "spec": {"unschedulable": cordoned},
           "status": {"conditions": [{"type": "Ready", "status": "True"}],
                      "images": [{"names": images}]}})
}

pub fn calico_pod(name: &str, node: &str, image: &str, ready: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "kube-system", "labels": {"k8s-app": "calico-node"},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "calico-node", "uid": "uid-calico-node", "controller": true}]},
           "spec": {"nodeName": node, "containers": [{"name": "calico-node", "image": image}]},
           "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
}

/// What every rule says about a request, compactly: `id` for a violation,
/// `id+patch` for a repairable one, `id~warning` for advice on an allowed
/// request. Rules with nothing to say are left out.
pub fn outcomes(request: &Value, cluster: &dyn Cluster) -> Vec<String> {
    let mut out = Vec::new();
    for rule in tollgate_calico::rules() {
        let v = run(rule.name, request, cluster);
        if v.patch.is_some() {
            out.push(format!("{}+patch", rule.name));
        } else if !v.allowed {
            out.push(rule.name.to_owned());
        } else if !v.warnings.is_empty() {
            out.push(format!("{}~warning", rule.name));
        }
    }
    out
}
