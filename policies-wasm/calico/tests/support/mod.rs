//! Test support: the corpus helpers of `tollgate-testkit` (re-exported so the
//! tests read them unqualified), the pack's configuration, and rule runners
//! that check the invariants every verdict must keep.
#![allow(dead_code, unused_imports)] // each test binary uses a different subset

use std::sync::OnceLock;

use serde_json::{Value, json};
use tollgate_sdk::wire::LookupQuery;
use tollgate_sdk::{Cluster, LookupError, MemoryCluster, Objects, RuleEntry, Verdict};
pub use tollgate_testkit::corpus::{
    all_manifests, corpus_path, doc, find, manifest, read_docs, testdata_dir, try_find,
};
pub use tollgate_testkit::objects::{
    calico_data, calico_pod, default_deny_policy, namespace, network_policy, node, served, stored,
    with_image, with_replicas,
};
pub use tollgate_testkit::requests::{create, delete, request, scale, update};

/// Warnings get a ~35-character policy-id prefix and are cut at 256.
pub const WARNING_MAX: usize = 210;

/// A request parsed as the SDK does, for calling rules directly.
pub fn parse_request(request: &Value) -> tollgate_sdk::Request<'static> {
    let text: &'static str = Box::leak(request.to_string().into_boxed_str());
    tollgate_sdk::Request::parse(text.as_bytes()).expect("a request")
}

/// The `request` member of a captured review in `testdata/reviews`: rules are
/// called with the request alone.
pub fn review(file: &str) -> Value {
    tollgate_testkit::corpus::captured(file).1["request"].take()
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

pub fn entry(id: &str) -> &'static RuleEntry {
    tollgate_calico::rules()
        .rule(id)
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
